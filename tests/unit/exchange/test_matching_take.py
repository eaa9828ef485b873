"""MatchingEngine.take: the HTTP simulator's taker path (issue 11 item 10), separate from ``place``.

Prices in ticks of 0.01 USDT, quantities in lots of 0.001 BTC (as test_matching.py); the taker fee
is passed in ppm (2000 = 20 bps) and charged as a maker fee is, Binance's way: a buy's in the base
received, a sell's in quote, on every level taken.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from nutcracker.core.model import Book, Candle, MarketInfo, PlaceLimit, Side
from nutcracker.errors import InsufficientFundsError, OrderRejectedError
from nutcracker.exchange.matching import MatchingEngine

SYMBOL = "BTC/USDT"
MARKET = MarketInfo(SYMBOL, "BTC", "USDT", Decimal("0.01"), Decimal("0.001"), Decimal(5), Decimal("0.001"))
TAKER_PPM = 2000


def engine(usdt: str = "1000", btc: str = "1") -> MatchingEngine:
    e = MatchingEngine({SYMBOL: MARKET}, {"USDT": Decimal(usdt), "BTC": Decimal(btc)})
    e.set_book(SYMBOL, Book(best_bid=10_000, best_ask=10_001))
    return e


def test_a_buy_takes_each_level_at_its_price_and_pays_the_taker_fee_in_base() -> None:
    e = engine()
    fills = e.take(
        SYMBOL,
        PlaceLimit("t1", Side.BUY, 10_002, 3, "MARKET"),
        [(10_001, 1), (10_002, 2)],
        TAKER_PPM,
        5,
        rest=False,
    )
    assert [(f.price, f.qty, f.ts_ms) for f in fills] == [(10_001, 1, 5), (10_002, 2, 5)]
    spent = Decimal("100.01") * Decimal("0.001") + Decimal("100.02") * Decimal("0.002")
    assert e.free("USDT") == Decimal(1000) - spent
    assert e.free("BTC") == Decimal("1.003") - Decimal("0.003") * Decimal("0.002")
    assert [(f.fee_asset, f.commission) for f in fills] == [("BTC", "0.000002"), ("BTC", "0.000004")]
    status = e.order_status(SYMBOL, "t1")
    assert status is not None
    assert status.status == "filled"
    assert e.open_orders(SYMBOL) == ()


def test_a_gtc_remainder_rests_locked_and_fills_later_an_ioc_remainder_is_dropped() -> None:
    e = engine()
    e.take(
        SYMBOL, PlaceLimit("gtc", Side.BUY, 10_001, 5, "LIMIT GTC"), [(10_001, 2)], TAKER_PPM, 0, rest=True
    )
    assert [(o.client_order_id, o.qty, o.filled) for o in e.open_orders(SYMBOL)] == [("gtc", 5, 2)]
    assert e.locked("USDT") == Decimal("100.01") * Decimal("0.003")  # the buy's fee comes out of its base
    fills = e.on_candle(SYMBOL, Candle(60_000, 10_000, 10_003, 9_990, 10_000))
    assert [(f.client_order_id, f.qty, f.fee_asset) for f in fills] == [("gtc", 3, "BTC")]
    e.take(
        SYMBOL, PlaceLimit("ioc", Side.SELL, 9_000, 4, "LIMIT IOC"), [(9_999, 1)], TAKER_PPM, 0, rest=False
    )
    status = e.order_status(SYMBOL, "ioc")
    assert status is not None
    assert (status.status, status.order.filled) == ("cancelled", 1)
    assert e.locked("BTC") == 0


def test_take_refuses_what_the_free_balance_cannot_cover_and_a_used_id() -> None:
    e = engine(usdt="0.1")
    with pytest.raises(InsufficientFundsError):
        e.take(
            SYMBOL, PlaceLimit("poor", Side.BUY, 10_001, 1, "MARKET"), [(10_001, 1)], TAKER_PPM, 0, rest=False
        )
    assert e.free("USDT") == Decimal("0.1")
    e = engine()
    e.take(SYMBOL, PlaceLimit("dup", Side.SELL, 9_999, 1, "MARKET"), [(10_000, 1)], TAKER_PPM, 0, rest=False)
    with pytest.raises(OrderRejectedError, match="Duplicate"):
        e.take(
            SYMBOL, PlaceLimit("dup", Side.SELL, 9_999, 1, "MARKET"), [(10_000, 1)], TAKER_PPM, 0, rest=False
        )
