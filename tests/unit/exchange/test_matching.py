"""The matching engine: fill rules, rejects, fees and balances to the Decimal, the event log."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.errors import (
    ExchangeError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRejectedError,
    PostOnlyRejectedError,
)
from nutcracker.exchange.matching import MatchingEngine, OrderEvent

SYMBOL = "BTC/USDT"
# tick 0.01 USDT, lot 0.001 BTC: one quote unit (qu) is 0.01 * 0.001 / 1e6 = 1e-11 USDT.
MARKET = MarketInfo(
    symbol=SYMBOL,
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.001"),
    min_notional=Decimal("5"),
    maker_fee=Decimal("0.001"),
)
MINUTE = 60_000


def make_engine(usdt: str = "1000", btc: str = "1", market: MarketInfo = MARKET) -> MatchingEngine:
    engine = MatchingEngine({market.symbol: market}, {"USDT": Decimal(usdt), "BTC": Decimal(btc)})
    engine.set_book(market.symbol, Book(best_bid=10_000, best_ask=10_001))  # 100.00 / 100.01
    return engine


def buy(coid: str, price: int, qty: int) -> PlaceLimit:
    return PlaceLimit(coid, Side.BUY, price, qty, reason="test")


def sell(coid: str, price: int, qty: int) -> PlaceLimit:
    return PlaceLimit(coid, Side.SELL, price, qty, reason="test")


def candle(low: int, high: int, close: int | None = None, ts_ms: int = 0) -> Candle:
    close = low if close is None else close
    return Candle(ts_ms=ts_ms, open=close, high=high, low=low, close=close)


# -- candles ----------------------------------------------------------------------------------


def test_a_candle_that_only_touches_a_buy_price_does_not_fill_it() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    assert engine.on_candle(SYMBOL, candle(low=9_900, high=10_100)) == []
    assert engine.open_orders(SYMBOL) == (OpenOrder("b1", Side.BUY, 9_900, 100),)


def test_a_candle_trading_below_a_buy_fills_it_fully_at_its_price_at_the_candle_close_time() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    fills = engine.on_candle(SYMBOL, candle(low=9_899, high=10_100, ts_ms=120_000))

    # as on Binance the fee is taken from the base received: 100 lots * 1_000 ppm = 100_000 bu = 0.0001 BTC
    assert fills == [Fill("1", "b1", Side.BUY, 9_900, 100, 0, 120_000 + MINUTE - 1, 100_000, "BTC", "0.0001")]
    assert engine.open_orders(SYMBOL) == ()
    assert engine.free("BTC") == Decimal("1.0999")
    assert engine.free("USDT") == Decimal("1000") - Decimal("9.9")
    assert engine.locked("USDT") == 0


def test_a_candle_that_only_touches_a_sell_price_does_not_fill_it() -> None:
    engine = make_engine()
    engine.place(SYMBOL, sell("s1", 10_100, 100), ts_ms=0)

    assert engine.on_candle(SYMBOL, candle(low=9_900, high=10_100)) == []
    assert engine.open_orders(SYMBOL) == (OpenOrder("s1", Side.SELL, 10_100, 100),)


def test_a_candle_trading_above_a_sell_fills_it_and_credits_the_notional_minus_the_fee() -> None:
    engine = make_engine()
    engine.place(SYMBOL, sell("s1", 10_100, 100), ts_ms=0)

    fills = engine.on_candle(SYMBOL, candle(low=9_900, high=10_101), interval_ms=300_000)

    assert fills == [Fill("1", "s1", Side.SELL, 10_100, 100, 1_010_000_000, 299_999, 0, "USDT", "0.0101")]
    assert engine.free("BTC") == Decimal("0.9")
    assert engine.locked("BTC") == 0
    assert engine.free("USDT") == Decimal("1000") + Decimal("10.1") - Decimal("0.0101")


def test_a_candle_fills_in_price_priority_then_placement_order_buys_before_sells() -> None:
    engine = make_engine()
    engine.place(SYMBOL, sell("s_high", 10_200, 50), ts_ms=0)
    engine.place(SYMBOL, buy("b_low", 9_800, 60), ts_ms=0)
    engine.place(SYMBOL, sell("s_low", 10_100, 50), ts_ms=0)
    engine.place(SYMBOL, buy("b_high_first", 9_900, 60), ts_ms=0)
    engine.place(SYMBOL, buy("b_high_second", 9_900, 60), ts_ms=0)

    fills = engine.on_candle(SYMBOL, candle(low=9_700, high=10_300))

    assert [(f.trade_id, f.client_order_id) for f in fills] == [
        ("1", "b_high_first"),
        ("2", "b_high_second"),
        ("3", "b_low"),
        ("4", "s_low"),
        ("5", "s_high"),
    ]


def test_after_a_candle_the_book_is_its_close_and_one_tick_above() -> None:
    engine = make_engine()

    engine.on_candle(SYMBOL, candle(low=9_000, high=11_000, close=10_500))

    assert engine.book(SYMBOL) == Book(best_bid=10_500, best_ask=10_501)
    assert engine.last_price(SYMBOL) == 10_500


def test_setting_a_book_that_crosses_a_resting_order_fills_nothing() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    engine.set_book(SYMBOL, Book(best_bid=9_800, best_ask=9_850))

    assert engine.fills == []
    assert engine.open_orders(SYMBOL) == (OpenOrder("b1", Side.BUY, 9_900, 100),)


# -- trade prints -----------------------------------------------------------------------------


def test_a_sell_print_at_our_buy_price_first_consumes_the_queue_ahead_then_fills_partially() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=300, ask_lots=200))
    engine.place(SYMBOL, buy("b1", 10_000, 100), ts_ms=0)
    assert engine.queue_ahead(SYMBOL, "b1") == 300

    assert engine.on_trade(SYMBOL, 1_000, 10_000, 250, Side.SELL) == []
    assert engine.queue_ahead(SYMBOL, "b1") == 50

    fills = engine.on_trade(SYMBOL, 2_000, 10_000, 80, Side.SELL)

    assert fills == [Fill("1", "b1", Side.BUY, 10_000, 30, 0, 2_000, 30_000, "BTC", "0.00003")]
    assert engine.queue_ahead(SYMBOL, "b1") == 0
    assert engine.open_orders(SYMBOL) == (OpenOrder("b1", Side.BUY, 10_000, 100, filled=30),)
    assert engine.order_status(SYMBOL, "b1") == OrderStatus(
        OpenOrder("b1", Side.BUY, 10_000, 100, 30), "open"
    )


def test_a_sell_print_below_our_buy_sweeps_through_and_fills_the_full_remaining() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=300))
    engine.place(SYMBOL, buy("b1", 10_000, 100), ts_ms=0)

    fills = engine.on_trade(SYMBOL, 1_000, 9_999, 1, Side.SELL)

    assert fills == [Fill("1", "b1", Side.BUY, 10_000, 100, 0, 1_000, 100_000, "BTC", "0.0001")]
    assert engine.order_status(SYMBOL, "b1") == OrderStatus(
        OpenOrder("b1", Side.BUY, 10_000, 100, 100), "filled"
    )


def test_a_buy_print_at_our_sell_price_fills_after_the_queue_ahead_symmetrically() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=300, ask_lots=200))
    engine.place(SYMBOL, sell("s1", 10_001, 100), ts_ms=0)

    fills = engine.on_trade(SYMBOL, 1_000, 10_001, 260, Side.BUY)

    assert fills == [Fill("1", "s1", Side.SELL, 10_001, 60, 600_060_000, 1_000, 0, "USDT", "0.0060006")]
    assert engine.free("BTC") == Decimal("0.9")
    assert engine.locked("BTC") == Decimal("0.04")


def test_a_buy_print_above_our_sell_sweeps_through_and_fills_the_full_remaining() -> None:
    engine = make_engine()
    engine.place(SYMBOL, sell("s1", 10_050, 100), ts_ms=0)

    fills = engine.on_trade(SYMBOL, 1_000, 10_051, 1, Side.BUY)

    assert [(f.client_order_id, f.qty) for f in fills] == [("s1", 100)]


def test_a_print_does_not_fill_orders_on_the_takers_own_side_or_beyond_its_price() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_990, 100), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 10_050, 100), ts_ms=0)

    assert engine.on_trade(SYMBOL, 1_000, 9_980, 1_000, Side.BUY) == []
    assert engine.on_trade(SYMBOL, 1_000, 9_991, 1_000, Side.SELL) == []
    assert engine.on_trade(SYMBOL, 1_000, 10_060, 1_000, Side.SELL) == []


def test_with_unknown_queues_a_print_fills_only_the_orders_it_trades_through() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("at", 9_990, 100), ts_ms=0)
    engine.place(SYMBOL, buy("above", 9_995, 100), ts_ms=0)

    fills = engine.on_trade(SYMBOL, 1_000, 9_990, 1_000, Side.SELL, at_price=False)

    assert [(f.client_order_id, f.qty) for f in fills] == [("above", 100)]
    assert engine.open_orders(SYMBOL) == (OpenOrder("at", Side.BUY, 9_990, 100),)


def test_free_units_are_the_free_balances_in_whole_lots_and_quote_units() -> None:
    engine = make_engine(usdt="1000.5", btc="0.123456789")
    lots, qu = engine.free_units(SYMBOL)
    precision = engine.precision(SYMBOL)

    assert lots == precision.qty_to_lots(engine.free("BTC"))
    assert qu == precision.quote_to_qu(engine.free("USDT"))
    engine.place(SYMBOL, buy("b1", 9_990, 100), ts_ms=0)
    assert engine.free_units(SYMBOL)[1] == precision.quote_to_qu(engine.free("USDT"))


def test_an_order_placed_away_from_the_best_price_has_no_queue_ahead() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=300, ask_lots=200))
    engine.place(SYMBOL, buy("b1", 9_999, 100), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 10_002, 100), ts_ms=0)

    assert engine.queue_ahead(SYMBOL, "b1") == 0
    assert engine.queue_ahead(SYMBOL, "s1") == 0
    assert [f.qty for f in engine.on_trade(SYMBOL, 1_000, 9_999, 40, Side.SELL)] == [40]


def test_our_orders_at_one_price_share_a_print_in_placement_order_behind_the_outside_queue() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=50))
    engine.place(SYMBOL, buy("first", 10_000, 100), ts_ms=0)
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=80))
    engine.place(SYMBOL, buy("second", 10_000, 100), ts_ms=0)

    # 50 outside lots, then "first" (100), then 30 more outside lots, then "second"
    fills = engine.on_trade(SYMBOL, 1_000, 10_000, 200, Side.SELL)

    assert [(f.client_order_id, f.qty) for f in fills] == [("first", 100), ("second", 20)]
    assert engine.queue_ahead(SYMBOL, "second") == 0


def test_a_print_moves_the_last_price_but_not_the_book() -> None:
    engine = make_engine()

    engine.on_trade(SYMBOL, 1_000, 9_950, 10, Side.SELL)

    assert engine.last_price(SYMBOL) == 9_950
    assert engine.book(SYMBOL) == Book(best_bid=10_000, best_ask=10_001)


def test_a_print_needs_a_positive_price_and_quantity() -> None:
    engine = make_engine()

    with pytest.raises(ValueError, match="positive"):
        engine.on_trade(SYMBOL, 1_000, 10_000, 0, Side.SELL)


# -- rejects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("price", [10_001, 10_002])
def test_a_buy_at_or_above_the_best_ask_is_rejected_as_post_only(price: int) -> None:
    engine = make_engine()

    with pytest.raises(PostOnlyRejectedError, match="would immediately match and take"):
        engine.place(SYMBOL, buy("b1", price, 100), ts_ms=7)

    assert engine.open_orders(SYMBOL) == ()
    assert engine.free("USDT") == Decimal("1000")
    assert engine.events[-1].event == "rejected"
    assert "would immediately match and take" in engine.events[-1].reason


@pytest.mark.parametrize("price", [10_000, 9_999])
def test_a_sell_at_or_below_the_best_bid_is_rejected_as_post_only(price: int) -> None:
    engine = make_engine()

    with pytest.raises(PostOnlyRejectedError, match="would immediately match and take"):
        engine.place(SYMBOL, sell("s1", price, 100), ts_ms=7)


def test_a_buy_that_would_cross_our_own_resting_sell_is_rejected_as_post_only() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_100))
    engine.place(SYMBOL, sell("s1", 10_050, 100), ts_ms=0)

    with pytest.raises(PostOnlyRejectedError, match="best ask 10050"):
        engine.place(SYMBOL, buy("b1", 10_050, 100), ts_ms=0)
    engine.place(SYMBOL, buy("b2", 10_049, 100), ts_ms=0)


def test_an_order_is_accepted_on_either_side_before_any_book_is_known() -> None:
    engine = MatchingEngine({SYMBOL: MARKET}, {"USDT": Decimal(1000), "BTC": Decimal(1)})

    engine.place(SYMBOL, buy("b1", 10_000, 100), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 10_001, 100), ts_ms=0)

    assert [o.client_order_id for o in engine.open_orders(SYMBOL)] == ["b1", "s1"]


@pytest.mark.parametrize(("price", "qty"), [(0, 100), (-1, 100), (9_000, 0), (9_000, -5)])
def test_a_non_positive_price_or_quantity_is_an_invalid_order(price: int, qty: int) -> None:
    engine = make_engine()

    with pytest.raises(InvalidOrderError, match="must be positive"):
        engine.place(SYMBOL, buy("b1", price, qty), ts_ms=0)

    assert engine.order_status(SYMBOL, "b1") == OrderStatus(OpenOrder("b1", Side.BUY, price, qty), "rejected")


def test_a_notional_below_the_minimum_is_an_invalid_order_and_exactly_the_minimum_is_accepted() -> None:
    engine = make_engine()

    with pytest.raises(InvalidOrderError, match="NOTIONAL"):
        engine.place(SYMBOL, buy("small", 9_999, 50), ts_ms=0)  # 4.9995 USDT
    engine.place(SYMBOL, buy("exact", 5_000, 100), ts_ms=0)  # 5.0000 USDT

    assert [o.client_order_id for o in engine.open_orders(SYMBOL)] == ["exact"]


def test_a_buy_needs_free_quote_for_its_notional_only() -> None:
    short = make_engine(usdt="9.89999999999")  # one quote unit short of 9.9 USDT
    with pytest.raises(InsufficientFundsError, match="insufficient balance"):
        short.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    enough = make_engine(usdt="9.9")  # the fee comes out of the base received, as on Binance
    enough.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    assert enough.free("USDT") == 0
    assert enough.locked("USDT") == Decimal("9.9")


def test_a_sell_needs_free_base_for_its_quantity() -> None:
    engine = make_engine(btc="1")
    engine.place(SYMBOL, sell("s1", 10_100, 600), ts_ms=0)

    with pytest.raises(InsufficientFundsError):
        engine.place(SYMBOL, sell("s2", 10_200, 401), ts_ms=0)
    engine.place(SYMBOL, sell("s3", 10_200, 400), ts_ms=0)

    assert engine.free("BTC") == 0
    assert engine.locked("BTC") == Decimal("1")


def test_an_unknown_symbol_is_an_invalid_order() -> None:
    engine = make_engine()

    with pytest.raises(InvalidOrderError, match="Invalid symbol"):
        engine.place("ETH/USDT", buy("b1", 9_000, 100), ts_ms=0)
    with pytest.raises(ExchangeError, match="Invalid symbol"):
        engine.open_orders("ETH/USDT")


def test_a_client_order_id_used_by_an_open_order_is_a_duplicate() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    with pytest.raises(OrderRejectedError, match=r"^Duplicate order sent\.$"):
        engine.place(SYMBOL, buy("b1", 9_800, 100), ts_ms=0)

    assert engine.open_orders(SYMBOL) == (OpenOrder("b1", Side.BUY, 9_900, 100),)
    assert engine.locked("USDT") == Decimal("9.9")


def test_a_client_order_id_of_a_closed_or_rejected_order_stays_used_and_keeps_its_status() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("cancelled", 9_900, 100), ts_ms=0)
    engine.cancel(SYMBOL, "cancelled", ts_ms=1)
    with pytest.raises(PostOnlyRejectedError):
        engine.place(SYMBOL, buy("rejected", 10_001, 100), ts_ms=0)

    for coid in ("cancelled", "rejected"):
        with pytest.raises(OrderRejectedError, match="Duplicate order sent"):
            engine.place(SYMBOL, buy(coid, 9_000, 100), ts_ms=2)

    assert engine.order_status(SYMBOL, "cancelled") == OrderStatus(
        OpenOrder("cancelled", Side.BUY, 9_900, 100), "cancelled"
    )
    assert engine.order_status(SYMBOL, "rejected") == OrderStatus(
        OpenOrder("rejected", Side.BUY, 10_001, 100), "rejected"
    )


def test_every_reject_is_logged_with_its_reason() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)
    attempts = [
        buy("b1", 9_800, 100),
        buy("cross", 10_001, 100),
        buy("tiny", 100, 1),
        buy("huge", 9_000, 10**6),
    ]
    for attempt in attempts:
        with pytest.raises(OrderRejectedError):
            engine.place(SYMBOL, attempt, ts_ms=5)

    rejected = [e for e in engine.events if e.event == "rejected"]
    assert [(e.client_order_id, e.reason.split(":")[0]) for e in rejected] == [
        ("b1", "Duplicate order sent."),
        ("cross", "Order would immediately match and take"),
        ("tiny", "Filter failure"),
        ("huge", "Account has insufficient balance for requested action"),
    ]
    assert rejected[1] == OrderEvent(
        5, SYMBOL, "rejected", Side.BUY, 10_001, 100, "cross", rejected[1].reason
    )


# -- cancel and locks -------------------------------------------------------------------------


def test_placing_locks_the_notional_for_a_buy_and_the_quantity_for_a_sell() -> None:
    engine = make_engine()

    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 10_100, 250), ts_ms=0)

    assert engine.locked("USDT") == Decimal("9.9")
    assert engine.free("USDT") == Decimal("990.1")
    assert engine.locked("BTC") == Decimal("0.25")
    assert engine.free("BTC") == Decimal("0.75")
    assert engine.balances() == {"BTC": Decimal("0.75"), "USDT": Decimal("990.1")}


def test_cancelling_unlocks_everything_an_untouched_order_locked() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 10_100, 250), ts_ms=0)

    engine.cancel(SYMBOL, "b1", ts_ms=1)
    engine.cancel(SYMBOL, "s1", ts_ms=1)

    assert (engine.free("USDT"), engine.locked("USDT")) == (Decimal("1000"), Decimal(0))
    assert (engine.free("BTC"), engine.locked("BTC")) == (Decimal("1"), Decimal(0))


def test_cancelling_after_a_partial_fill_unlocks_only_the_remainder() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001))
    engine.place(SYMBOL, buy("b1", 10_000, 100), ts_ms=0)
    engine.on_trade(SYMBOL, 1_000, 10_000, 40, Side.SELL)

    cancelled = engine.cancel(SYMBOL, "b1", ts_ms=2_000, reason="repricing")

    # spent: 40 lots * 100 USDT = 4 USDT; received 0.04 BTC less the 0.00004 BTC fee
    assert cancelled == OpenOrder("b1", Side.BUY, 10_000, 100, filled=40)
    assert engine.free("USDT") == Decimal("996")
    assert engine.locked("USDT") == 0
    assert engine.free("BTC") == Decimal("1.03996")
    assert engine.events[-1] == OrderEvent(
        2_000, SYMBOL, "cancelled", Side.BUY, 10_000, 60, "b1", "repricing"
    )
    assert engine.order_status(SYMBOL, "b1") == OrderStatus(cancelled, "cancelled")


def test_cancelling_an_unknown_or_closed_order_raises_order_not_found() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("filled", 9_900, 100), ts_ms=0)
    engine.on_candle(SYMBOL, candle(low=9_000, high=10_000))
    engine.place(SYMBOL, buy("cancelled", 9_000, 100), ts_ms=0)
    engine.cancel(SYMBOL, "cancelled", ts_ms=0)

    for coid in ("never", "filled", "cancelled"):
        with pytest.raises(OrderNotFoundError, match="Unknown order sent"):
            engine.cancel(SYMBOL, coid, ts_ms=0)


def test_cancel_all_cancels_every_open_order_in_placement_order() -> None:
    engine = make_engine()
    engine.place(SYMBOL, sell("s1", 10_100, 100), ts_ms=0)
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)

    cancelled = engine.cancel_all(SYMBOL, ts_ms=3, reason="shutdown")

    assert [o.client_order_id for o in cancelled] == ["s1", "b1"]
    assert engine.open_orders(SYMBOL) == ()
    assert engine.balances() == {"BTC": Decimal("1"), "USDT": Decimal("1000")}


def test_order_status_remembers_filled_orders_and_knows_nothing_of_unseen_ones() -> None:
    engine = make_engine()
    engine.place(SYMBOL, sell("s1", 10_100, 100), ts_ms=0)
    engine.on_candle(SYMBOL, candle(low=10_000, high=10_200))

    assert engine.order_status(SYMBOL, "s1") == OrderStatus(
        OpenOrder("s1", Side.SELL, 10_100, 100, 100), "filled"
    )
    assert engine.order_status(SYMBOL, "unseen") is None
    assert engine.order_id(SYMBOL, "s1") == 1
    assert engine.order_id(SYMBOL, "unseen") is None


# -- queries, units, config -------------------------------------------------------------------


def test_fills_since_returns_the_fills_at_or_after_a_time_oldest_first() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)
    engine.place(SYMBOL, buy("b2", 9_800, 100), ts_ms=0)
    engine.on_candle(SYMBOL, candle(low=9_850, high=10_000, ts_ms=0))
    engine.on_candle(SYMBOL, candle(low=9_700, high=9_900, ts_ms=MINUTE))

    assert [f.client_order_id for f in engine.fills_since(SYMBOL, 0)] == ["b1", "b2"]
    assert [f.client_order_id for f in engine.fills_since(SYMBOL, MINUTE - 1)] == ["b1", "b2"]
    assert [f.client_order_id for f in engine.fills_since(SYMBOL, MINUTE)] == ["b2"]
    assert engine.fills_since(SYMBOL, 2 * MINUTE) == ()


def test_fills_since_still_works_when_prints_arrive_out_of_time_order() -> None:
    engine = make_engine()
    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)
    engine.place(SYMBOL, buy("b2", 9_800, 100), ts_ms=0)
    engine.on_trade(SYMBOL, 5_000, 9_850, 1, Side.SELL)
    engine.on_trade(SYMBOL, 3_000, 9_750, 1, Side.SELL)

    assert [f.client_order_id for f in engine.fills_since(SYMBOL, 4_000)] == ["b1"]


def test_resting_bounds_are_the_highest_buy_and_the_lowest_sell() -> None:
    engine = make_engine()
    assert engine.resting_bounds(SYMBOL) == (None, None)

    engine.place(SYMBOL, buy("b1", 9_900, 100), ts_ms=0)
    engine.place(SYMBOL, buy("b2", 9_950, 100), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 10_100, 100), ts_ms=0)
    assert engine.resting_bounds(SYMBOL) == (9_950, 10_100)

    engine.cancel(SYMBOL, "b2", ts_ms=0)
    engine.on_candle(SYMBOL, candle(low=10_000, high=10_101, close=10_050))
    assert engine.resting_bounds(SYMBOL) == (9_900, None)


def test_to_units_converts_exact_decimals_and_refuses_prices_and_quantities_off_the_grid() -> None:
    engine = make_engine()

    assert engine.to_units(SYMBOL, Decimal("100.25"), Decimal("0.123")) == (10_025, 123)
    with pytest.raises(InvalidOrderError, match="PRICE_FILTER"):
        engine.to_units(SYMBOL, Decimal("100.255"), Decimal("0.123"))
    with pytest.raises(InvalidOrderError, match="LOT_SIZE"):
        engine.to_units(SYMBOL, Decimal("100.25"), Decimal("0.1234"))
    with pytest.raises(InvalidOrderError, match="finite"):
        engine.to_units(SYMBOL, Decimal("Infinity"), Decimal("0.1"))


def test_a_maker_fee_that_is_not_a_whole_number_of_ppm_is_refused() -> None:
    market = MarketInfo(
        SYMBOL, "BTC", "USDT", Decimal("0.01"), Decimal("0.001"), Decimal(5), Decimal("0.0000005")
    )

    with pytest.raises(ValueError, match="whole number of ppm"):
        MatchingEngine({SYMBOL: market}, {})


def test_balances_stay_exact_on_a_fine_grid() -> None:
    fine = MarketInfo(
        "PEPE/USDT", "PEPE", "USDT", Decimal("0.00000001"), Decimal("1"), Decimal(1), Decimal("0.00075")
    )
    engine = MatchingEngine({fine.symbol: fine}, {"USDT": Decimal("100"), "PEPE": Decimal("0")})
    engine.place(fine.symbol, buy("b1", 1_234, 999_999), ts_ms=0)  # at 0.00001234

    engine.on_candle(fine.symbol, candle(low=1_233, high=1_300))

    notional = Decimal("0.00001234") * 999_999  # 12.33998766
    assert engine.free("USDT") == Decimal("100") - notional
    assert engine.free("USDT") == Decimal("87.66001234")
    assert engine.free("PEPE") == Decimal("999999") - Decimal("999999") * Decimal("0.00075")
    assert engine.free("PEPE") == Decimal("999249.00075")
    assert engine.fills[0].commission == "749.99925"


# -- the event log and determinism ------------------------------------------------------------


def test_the_event_log_records_a_whole_order_life() -> None:
    engine = make_engine()
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001))
    engine.place(SYMBOL, PlaceLimit("b1", Side.BUY, 10_000, 100, reason="grid level 1"), ts_ms=10)
    engine.on_trade(SYMBOL, 20, 10_000, 30, Side.SELL)
    engine.on_candle(SYMBOL, candle(low=9_999, high=10_001, ts_ms=0))

    assert engine.events == [
        OrderEvent(10, SYMBOL, "placed", Side.BUY, 10_000, 100, "b1", "grid level 1"),
        OrderEvent(20, SYMBOL, "partially_filled", Side.BUY, 10_000, 30, "b1", "1"),
        OrderEvent(MINUTE - 1, SYMBOL, "filled", Side.BUY, 10_000, 70, "b1", "2"),
    ]
    assert [f.qty for f in engine.fills] == [30, 70]


def run_scenario() -> tuple[list[OrderEvent], list[Fill], dict[str, Decimal]]:
    engine = make_engine(btc="3")
    engine.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001, bid_lots=20, ask_lots=20))
    for i in range(5):
        engine.place(SYMBOL, buy(f"b{i}", 10_000 - 10 * i, 400 + i), ts_ms=i)
        engine.place(SYMBOL, sell(f"s{i}", 10_001 + 10 * i, 400 + i), ts_ms=i)
    engine.on_trade(SYMBOL, 100, 10_000, 35, Side.SELL)
    engine.on_trade(SYMBOL, 200, 10_011, 50, Side.BUY)
    engine.on_candle(SYMBOL, candle(low=9_975, high=10_025, ts_ms=MINUTE))
    engine.cancel(SYMBOL, "b4", ts_ms=MINUTE * 2)
    for attempt in (buy("b0", 9_000, 10), sell("x", 9_000, 100)):
        with pytest.raises(OrderRejectedError):
            engine.place(SYMBOL, attempt, ts_ms=MINUTE * 2)
    return engine.events, engine.fills, engine.balances()


def test_the_same_inputs_give_identical_events_fills_and_balances() -> None:
    first, second = run_scenario(), run_scenario()

    assert first == second
    assert [(f.client_order_id, f.qty) for f in first[1]] == [
        ("b0", 15),  # 20 lots ahead in the queue
        ("s0", 400),  # swept through
        ("s1", 50),  # at the print's price, nothing ahead
        ("b0", 385),
        ("b1", 401),
        ("b2", 402),
        ("s1", 351),
        ("s2", 402),
    ]


@pytest.mark.parametrize(
    ("market", "balances", "message"),
    [
        (MARKET, {"USDT": Decimal(-1)}, "negative"),
        (MARKET, {"USDT": Decimal("Infinity")}, "finite"),
        (replace(MARKET, tick_size=Decimal(0)), {}, "must be positive"),
        (replace(MARKET, maker_fee=Decimal(1)), {}, "strictly between"),
    ],
)
def test_an_engine_refuses_a_broken_market_or_a_negative_balance(
    market: MarketInfo, balances: dict[str, Decimal], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MatchingEngine({SYMBOL: market}, balances)


def test_an_engine_refuses_a_market_registered_under_another_symbol() -> None:
    with pytest.raises(ValueError, match="registered under"):
        MatchingEngine({"ETH/USDT": MARKET}, {})


# -- invariants -------------------------------------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(9_000, 10_000), st.integers(1, 900)),
        st.tuples(st.just("sell"), st.integers(10_001, 11_000), st.integers(1, 900)),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("candle"), st.integers(8_900, 10_500), st.integers(0, 1_500)),
        st.tuples(st.just("print_sell"), st.integers(9_000, 10_000), st.integers(1, 500)),
        st.tuples(st.just("print_buy"), st.integers(10_001, 11_000), st.integers(1, 500)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps=actions)
def test_funds_are_conserved_locks_match_open_orders_and_nothing_goes_negative(
    steps: list[tuple[str, int, int]],
) -> None:
    engine = make_engine(usdt="500", btc="3")
    placed = 0
    for n, (kind, a, b) in enumerate(steps):
        if kind in ("buy", "sell"):
            order = buy(f"o{n}", a, b) if kind == "buy" else sell(f"o{n}", a, b)
            try:
                engine.place(SYMBOL, order, ts_ms=n)
                placed += 1
            except OrderRejectedError:
                pass
        elif kind == "cancel":
            with contextlib.suppress(OrderNotFoundError):
                engine.cancel(SYMBOL, f"o{a}", ts_ms=n)
        elif kind == "candle":
            engine.on_candle(SYMBOL, candle(low=a, high=a + b, ts_ms=n * MINUTE))
        else:
            engine.on_trade(SYMBOL, n, a, b, Side.SELL if kind == "print_sell" else Side.BUY)

    tick, lot, qu = Decimal("0.01"), Decimal("0.001"), Decimal("1e-11")
    bought = sum((f.qty for f in engine.fills if f.side is Side.BUY), 0)
    sold = sum((f.qty for f in engine.fills if f.side is Side.SELL), 0)
    spent = sum((f.price * f.qty * tick * lot for f in engine.fills if f.side is Side.BUY), Decimal(0))
    base_fees = sum((Decimal(f.commission) for f in engine.fills if f.side is Side.BUY), Decimal(0))
    assert all(
        f.fee_base == f.qty * 1_000 and f.fee_asset == "BTC" for f in engine.fills if f.side is Side.BUY
    )
    earned = sum(
        (f.price * f.qty * tick * lot - f.fee * qu for f in engine.fills if f.side is Side.SELL), Decimal(0)
    )
    assert engine.free("BTC") + engine.locked("BTC") == Decimal(3) + (bought - sold) * lot - base_fees
    assert engine.free("USDT") + engine.locked("USDT") == Decimal(500) - spent + earned

    open_orders = engine.open_orders(SYMBOL)
    assert engine.locked("BTC") == sum(
        (o.remaining * lot for o in open_orders if o.side is Side.SELL), Decimal(0)
    )
    assert engine.locked("USDT") == sum(
        (o.price * o.remaining * tick * lot for o in open_orders if o.side is Side.BUY),
        Decimal(0),
    )
    assert min(engine.free("BTC"), engine.free("USDT"), engine.locked("BTC"), engine.locked("USDT")) >= 0
    assert all(0 < o.remaining <= o.qty for o in open_orders)
    assert len([e for e in engine.events if e.event == "placed"]) == placed


# -- commissions as Binance charges them (issue 11, item 1) ----------------------------------

BTC_MARKET = MarketInfo(
    symbol=SYMBOL,
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
    min_notional=Decimal("5"),
    maker_fee=Decimal("0.001"),
)


def btc_engine(**balances: str) -> MatchingEngine:
    engine = MatchingEngine({SYMBOL: BTC_MARKET}, {a: Decimal(v) for a, v in balances.items()})
    engine.set_book(SYMBOL, Book(best_bid=5_000_000, best_ask=5_000_001))  # 50_000.00 USDT
    return engine


def test_a_buy_of_one_btc_locks_only_its_notional_and_receives_0_999_btc() -> None:
    engine = btc_engine(USDT="50000", BTC="0")

    engine.place(SYMBOL, buy("b1", 5_000_000, 100_000), ts_ms=0)  # 1.0 BTC at 50_000

    assert engine.locked("USDT") == Decimal("50000")  # price x qty, no fee on top
    assert engine.free("USDT") == 0
    (fill,) = engine.on_trade(SYMBOL, 1, 4_999_999, 1, Side.SELL)
    assert engine.free("BTC") == Decimal("0.999")
    assert engine.locked("USDT") == 0
    assert (fill.fee, fill.fee_base, fill.fee_asset, fill.commission) == (0, 100_000_000, "BTC", "0.001")


def test_a_sell_pays_its_commission_in_quote() -> None:
    engine = btc_engine(USDT="0", BTC="1")

    engine.place(SYMBOL, sell("s1", 5_000_001, 100_000), ts_ms=0)
    (fill,) = engine.on_trade(SYMBOL, 1, 5_000_002, 1, Side.BUY)

    assert engine.free("BTC") == 0
    assert engine.free("USDT") == Decimal("50000.01") - Decimal("50.00001")
    assert (fill.fee_base, fill.fee_asset, fill.commission) == (0, "USDT", "50.00001")


def test_an_account_paying_in_bnb_is_charged_bnb_at_the_configured_price() -> None:
    engine = MatchingEngine(
        {SYMBOL: BTC_MARKET},
        {"USDT": Decimal("50000"), "BTC": Decimal("1"), "BNB": Decimal("1")},
        fee_asset="BNB",
        fee_asset_price=Decimal("600"),
    )
    engine.set_book(SYMBOL, Book(best_bid=5_000_000, best_ask=5_000_001))
    engine.place(SYMBOL, buy("b1", 5_000_000, 100_000), ts_ms=0)
    engine.place(SYMBOL, sell("s1", 5_000_001, 50_000), ts_ms=0)

    buy_fill, sell_fill = engine.on_candle(SYMBOL, candle(low=4_999_000, high=5_001_000))

    # 0.1 % of 50_000 USDT = 50 USDT = 0.08333334 BNB at 600 (rounded up to 8 decimals)
    assert (buy_fill.fee_asset, buy_fill.commission, buy_fill.fee_base) == ("BNB", "0.08333334", 0)
    assert buy_fill.fee == 5_000_000 * 100_000 * 1_000  # valued at the fee rate of the notional
    assert (sell_fill.fee_asset, sell_fill.commission) == ("BNB", "0.04166668")  # 25.000005 / 600
    assert engine.free("BNB") == Decimal("1") - Decimal("0.08333334") - Decimal("0.04166668")
    assert engine.free("BTC") == Decimal("1.5")  # 1 - 0.5 sold + 1 bought, no base withheld
    assert engine.free("USDT") == Decimal("25000.005")  # - 50_000 + 25_000.005, no quote fee


def test_an_account_short_of_bnb_pays_in_the_received_asset_as_binance_falls_back() -> None:
    engine = MatchingEngine(
        {SYMBOL: BTC_MARKET},
        {"USDT": Decimal("50000"), "BNB": Decimal("0.01")},
        fee_asset="BNB",
        fee_asset_price=Decimal("600"),
    )
    engine.set_book(SYMBOL, Book(best_bid=5_000_000, best_ask=5_000_001))
    engine.place(SYMBOL, buy("b1", 5_000_000, 100_000), ts_ms=0)

    (fill,) = engine.on_candle(SYMBOL, candle(low=4_999_000, high=5_001_000))

    assert (fill.fee_asset, fill.commission) == ("BTC", "0.001")
    assert engine.free("BNB") == Decimal("0.01")
    assert engine.free("BTC") == Decimal("0.999")


def test_a_fee_asset_needs_a_price_and_must_not_be_traded_here() -> None:
    with pytest.raises(ValueError, match="fee_asset_price"):
        MatchingEngine({SYMBOL: BTC_MARKET}, {}, fee_asset="BNB")
    with pytest.raises(ValueError, match="third asset"):
        MatchingEngine({SYMBOL: BTC_MARKET}, {}, fee_asset="BTC", fee_asset_price=Decimal(1))


def test_a_commission_below_the_announced_precision_is_rounded_up_to_it() -> None:
    market = replace(BTC_MARKET, maker_fee=Decimal("0.00075"))
    engine = MatchingEngine({SYMBOL: market}, {"USDT": Decimal("100")})
    engine.set_book(SYMBOL, Book(best_bid=5_000_000, best_ask=5_000_001))
    engine.place(SYMBOL, buy("b1", 5_000_000, 11), ts_ms=0)  # 0.00011 BTC: fee 8.25e-8 BTC

    (fill,) = engine.on_candle(SYMBOL, candle(low=4_999_000, high=5_001_000))

    assert fill.commission == "0.00000009"
    assert engine.free("BTC") == Decimal("0.00011") - Decimal("0.00000009")
    assert fill.fee_base == 9_000  # bu of 1e-11 BTC: exactly what was withheld
