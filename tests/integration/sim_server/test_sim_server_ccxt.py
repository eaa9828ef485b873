"""The real ccxt.binance client (sync and async) against the sim-exchange: every endpoint through
ccxt's unified calls, post-only rejects, fills after the clock moves, balances to the Decimal."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from sim_clients import ALICE, READ_ONLY, ccxt_binance, http

from nutcracker.simexchange.accounts import MarketSpec
from nutcracker.simexchange.server import SimServer

SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")
LOT = Decimal("0.00001")
MINUTE = 60_000


def price_of(ticks: int) -> Decimal:
    return ticks * TICK


def balances_of(exchange: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """Return {asset: (free, locked)} from the raw account answer, exact."""
    raw = exchange.fetch_balance()["info"]["balances"]
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"])) for b in raw}


def next_fill_index(market: MarketSpec, start: int) -> int:
    """Return the first candle index >= start whose low trades below the previous close."""
    c = market.candles
    return next(i for i in range(start, len(c)) if c.low[i] < c.close[i - 1])


# -- market data --------------------------------------------------------------------------------


def test_load_markets_reads_the_binance_filters_of_btc_usdt(alice: Any) -> None:
    market = alice.market(SYMBOL)
    assert market["id"] == "BTCUSDT"
    assert market["spot"] is True
    assert market["active"] is True
    assert market["precision"] == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert market["limits"]["cost"]["min"] == 5.0
    assert market["limits"]["amount"]["min"] == 1e-05
    assert market["info"]["orderTypes"] == ["LIMIT", "LIMIT_MAKER", "MARKET"]  # issue 11: MARKET takes


def test_fetch_time_is_the_market_clock_and_moves_only_with_advance(sim: SimServer, alice: Any) -> None:
    start = sim.market(SYMBOL).candles.ts_ms[0]
    assert alice.fetch_time() == start + 100 * MINUTE
    status, answer, _ = http(f"{sim.url}/sim/advance?candles=5", "POST")
    assert status == 200
    assert answer == {"time": start + 105 * MINUTE, "advanced": 5, "exhausted": False}
    assert alice.fetch_time() == start + 105 * MINUTE
    assert sim.advance(2) == start + 107 * MINUTE


def test_fetch_ohlcv_returns_the_closed_candles_exactly_then_the_forming_one(
    sim: SimServer, alice: Any
) -> None:
    candles = sim.market(SYMBOL).candles
    rows = alice.fetch_ohlcv(SYMBOL, "1m", None, 4)
    # issue 11: as on Binance the last candle is the one still forming (flat at the last close)
    assert [r[0] for r in rows] == candles.ts_ms[97:101].tolist()
    last_close = float(price_of(int(candles.close[99])))
    assert rows[-1][1:6] == [last_close, last_close, last_close, last_close, 0.0]
    rows = rows[:-1]
    assert rows[-1][1:5] == [
        float(price_of(int(getattr(candles, k)[99]))) for k in ("open", "high", "low", "close")
    ]
    assert rows[-1][5] == float(candles.volume[99])
    raw = alice.publicGetKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 2})[:1]
    assert raw[0][6] == candles.ts_ms[99] + MINUTE - 1 < alice.fetch_time()
    assert raw[0][4] == f"{price_of(int(candles.close[99])):.8f}"


def test_fetch_ohlcv_with_since_pages_forward_and_stops_at_the_clock(sim: SimServer, alice: Any) -> None:
    candles = sim.market(SYMBOL).candles
    rows = alice.fetch_ohlcv(SYMBOL, "1m", int(candles.ts_ms[10]), 5)
    assert [r[0] for r in rows] == candles.ts_ms[10:15].tolist()
    rows = alice.fetch_ohlcv(SYMBOL, "1m", int(candles.ts_ms[95]), 500)
    assert [r[0] for r in rows] == candles.ts_ms[95:101].tolist()  # the last one still forming
    until = alice.fetch_ohlcv(SYMBOL, "1m", None, 2, {"until": int(candles.ts_ms[20])})
    assert [r[0] for r in until] == candles.ts_ms[19:21].tolist()


def test_fetch_ohlcv_resamples_closed_five_minute_candles(sim: SimServer, alice: Any) -> None:
    candles = sim.market(SYMBOL).candles
    sim.advance(3)  # 103 closed one-minute candles: the 5m bar of minutes 100-104 is still open
    rows = alice.fetch_ohlcv(SYMBOL, "5m", None, 3)
    first = int(candles.ts_ms[0])
    assert first % (5 * MINUTE) == 0
    assert [r[0] for r in rows] == [first + 90 * MINUTE, first + 95 * MINUTE, first + 100 * MINUTE]
    forming = rows.pop()  # issue 11: the forming 5m bar holds the three minutes closed so far
    assert forming[1:5] == [
        float(price_of(int(candles.open[100]))),
        float(price_of(int(candles.high[100:103].max()))),
        float(price_of(int(candles.low[100:103].min()))),
        float(price_of(int(candles.close[102]))),
    ]
    lo, hi = 95, 100
    assert rows[-1][1:6] == [
        float(price_of(int(candles.open[lo]))),
        float(price_of(int(candles.high[lo:hi].max()))),
        float(price_of(int(candles.low[lo:hi].min()))),
        float(price_of(int(candles.close[hi - 1]))),
        pytest.approx(float(candles.volume[lo:hi].sum())),
    ]


def test_klines_refuse_an_unknown_interval(alice: Any) -> None:
    with pytest.raises(ccxt.BadRequest, match="Invalid interval"):
        alice.publicGetKlines({"symbol": "BTCUSDT", "interval": "1s"})


def test_fetch_order_book_is_the_engine_book_on_the_tick_grid(sim: SimServer, alice: Any) -> None:
    book = alice.fetch_order_book(SYMBOL, 5)
    engine_book = sim.engine(ALICE.api_key).book(SYMBOL)
    assert engine_book is not None
    bids = [Decimal(str(p)) for p, _ in book["bids"]]
    asks = [Decimal(str(p)) for p, _ in book["asks"]]
    assert bids == [price_of(engine_book.best_bid - k) for k in range(5)]
    assert asks == [price_of(engine_book.best_ask + k) for k in range(5)]
    assert engine_book.best_bid == sim.market(SYMBOL).candles.close[99]
    assert all(q > 0 for _, q in book["bids"] + book["asks"])
    assert book["nonce"] == 100


def test_fetch_ticker_reports_the_last_close_and_the_book(sim: SimServer, alice: Any) -> None:
    candles = sim.market(SYMBOL).candles
    ticker = alice.fetch_ticker(SYMBOL)
    assert ticker["last"] == float(price_of(int(candles.close[99])))
    assert ticker["bid"] == float(price_of(int(candles.close[99])))
    assert ticker["ask"] == float(price_of(int(candles.close[99]) + 1))
    assert ticker["high"] == float(price_of(int(candles.high[:100].max())))
    assert ticker["open"] == float(price_of(int(candles.open[0])))
    tickers = alice.publicGetTicker24hr()
    assert [t["symbol"] for t in tickers] == ["BTCUSDT"]


def test_fetch_trades_are_one_print_per_closed_candle(sim: SimServer, alice: Any) -> None:
    candles = sim.market(SYMBOL).candles
    trades = alice.fetch_trades(SYMBOL, None, 3)
    assert [t["id"] for t in trades] == ["98", "99", "100"]
    assert trades[-1]["price"] == float(price_of(int(candles.close[99])))
    assert trades[-1]["timestamp"] == candles.ts_ms[99] + MINUTE - 1
    since = alice.fetch_trades(SYMBOL, int(candles.ts_ms[10]), 2)
    assert [t["id"] for t in since] == ["11", "12"]


def test_unknown_symbol_is_bad_symbol(alice: Any) -> None:
    with pytest.raises(ccxt.BadSymbol):
        alice.publicGetDepth({"symbol": "DOGEUSDT"})


# -- account and orders -----------------------------------------------------------------------


def test_fetch_balance_reports_free_and_locked(alice: Any) -> None:
    balance = alice.fetch_balance()
    assert balance["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    assert balance["BTC"] == {"free": 0.5, "used": 0.0, "total": 0.5}
    assert balance["info"]["permissions"] == ["SPOT"]


def test_api_restrictions_come_from_the_accounts_permissions(sim: SimServer, alice: Any) -> None:
    restrictions = alice.sapiGetAccountApiRestrictions()
    assert restrictions["enableSpotAndMarginTrading"] is True
    assert restrictions["enableWithdrawals"] is False
    assert restrictions["enableReading"] is True
    bob = ccxt_binance(sim.url, READ_ONLY.api_key, READ_ONLY.secret)
    bob_restrictions = bob.sapiGetAccountApiRestrictions()
    assert bob_restrictions["enableWithdrawals"] is True
    assert bob_restrictions["enableSpotAndMarginTrading"] is False


def test_a_key_without_trading_permission_cannot_place_orders(sim: SimServer) -> None:
    bob = ccxt_binance(sim.url, READ_ONLY.api_key, READ_ONLY.secret)
    bob.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        bob.create_order(SYMBOL, "limit", "buy", 0.001, 10000, {"postOnly": True})


def test_post_only_order_rests_locks_funds_and_is_found_by_client_order_id(
    sim: SimServer, alice: Any
) -> None:
    bid = price_of(int(sim.market(SYMBOL).candles.close[99]))
    order = alice.create_order(
        SYMBOL, "limit", "buy", 0.001, float(bid), {"postOnly": True, "clientOrderId": "bot-1"}
    )
    assert order["status"] == "open"
    assert order["clientOrderId"] == "bot-1"
    assert order["postOnly"] is True
    assert order["info"]["type"] == "LIMIT_MAKER"
    assert order["timestamp"] == alice.fetch_time()
    assert order["trades"] == []
    cost = bid * Decimal("0.001")  # a buy locks its notional only: Binance takes its fee in base
    assert balances_of(alice)["USDT"] == (Decimal(10000) - cost, cost)

    fetched = alice.fetch_order(None, SYMBOL, {"clientOrderId": "bot-1"})
    assert (fetched["id"], fetched["status"], fetched["price"], fetched["amount"]) == (
        order["id"],
        "open",
        float(bid),
        0.001,
    )
    assert alice.fetch_order(order["id"], SYMBOL)["clientOrderId"] == "bot-1"
    assert [o["clientOrderId"] for o in alice.fetch_open_orders(SYMBOL)] == ["bot-1"]

    cancelled = alice.cancel_order(None, SYMBOL, {"clientOrderId": "bot-1"})
    assert cancelled["status"] == "canceled"
    assert cancelled["info"]["origClientOrderId"] == "bot-1"
    assert alice.fetch_order(None, SYMBOL, {"clientOrderId": "bot-1"})["status"] == "canceled"
    assert alice.fetch_open_orders(SYMBOL) == []
    assert balances_of(alice)["USDT"] == (Decimal(10000), Decimal(0))


def test_crossing_post_only_order_is_order_immediately_fillable(sim: SimServer, alice: Any) -> None:
    ask = price_of(int(sim.market(SYMBOL).candles.close[99]) + 1)
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        alice.create_order(
            SYMBOL, "limit", "buy", 0.001, float(ask), {"postOnly": True, "clientOrderId": "x-1"}
        )
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        alice.create_order(SYMBOL, "limit", "sell", 0.001, float(ask - 2 * TICK), {"postOnly": True})
    with pytest.raises(ccxt.OrderNotFound):  # a refused order is not kept
        alice.fetch_order(None, SYMBOL, {"clientOrderId": "x-1"})


def test_our_own_resting_order_makes_a_post_only_order_cross(sim: SimServer, alice: Any) -> None:
    close = int(sim.market(SYMBOL).candles.close[99])
    alice.create_order(SYMBOL, "limit", "sell", 0.001, float(price_of(close + 50)), {"postOnly": True})
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        alice.create_order(SYMBOL, "limit", "buy", 0.001, float(price_of(close + 50)), {"postOnly": True})


def test_insufficient_balance_is_insufficient_funds(sim: SimServer, alice: Any) -> None:
    bid = price_of(int(sim.market(SYMBOL).candles.close[99]))
    with pytest.raises(ccxt.InsufficientFunds):
        alice.create_order(SYMBOL, "limit", "buy", 1, float(bid), {"postOnly": True})
    with pytest.raises(ccxt.InsufficientFunds):
        alice.create_order(SYMBOL, "limit", "sell", 0.6, float(bid * 2), {"postOnly": True})


def test_filter_failures_are_binance_errors(alice: Any) -> None:
    def place(price: str, qty: str) -> Any:
        return alice.privatePostOrder(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": qty, "price": price}
        )

    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: PRICE_FILTER"):
        place("50000.005", "0.001")
    with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
        place("50000", "0.000015")
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
        place("50000", "0.00001")
    with pytest.raises(ccxt.BadRequest, match="Precision is over the maximum"):
        place("50000", "0.000000001")


def test_market_and_crossing_limit_orders_take_at_the_taker_fee(sim: SimServer, alice: Any) -> None:
    """Issue 11: other tools rehearse with MARKET orders and crossing LIMITs: they take from the
    depth the simulator shows, at the taker fee; the stop orders stay refused."""
    ask = price_of(int(sim.market(SYMBOL).candles.close[99]) + 1)
    before = balances_of(alice)
    market = alice.create_order(SYMBOL, "market", "buy", 0.001, None, {"clientOrderId": "mkt-1"})
    assert (market["status"], market["filled"], market["average"]) == ("closed", 0.001, float(ask))
    # Binance's way: the buy's commission out of the base received
    assert market["info"]["fills"][0]["commission"] == f"{Decimal('0.001') * Decimal('0.001'):.8f}"
    assert market["info"]["fills"][0]["commissionAsset"] == "BTC"
    trade = alice.fetch_my_trades(SYMBOL)[-1]
    assert (trade["takerOrMaker"], trade["price"], trade["order"]) == ("taker", float(ask), market["id"])
    after = balances_of(alice)
    assert after["USDT"][0] == before["USDT"][0] - ask * Decimal("0.001")
    assert after["BTC"][0] == before["BTC"][0] + Decimal("0.001") * Decimal("0.999")
    limit = alice.create_order(
        SYMBOL, "limit", "sell", 0.002, float(ask - 50 * TICK), {"clientOrderId": "lim-1"}
    )
    bid = price_of(int(sim.market(SYMBOL).candles.close[99]))
    assert (limit["status"], limit["filled"], limit["average"]) == ("closed", 0.002, float(bid))
    quote = alice.create_order(SYMBOL, "market", "buy", None, None, {"cost": 20, "clientOrderId": "q-1"})
    assert quote["filled"] == float((Decimal(20) / ask).quantize(LOT, rounding="ROUND_DOWN"))
    with pytest.raises(ccxt.InvalidOrder, match=re.escape("Order type not supported for this symbol.")):
        alice.privatePostOrder(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_LOSS", "quantity": "0.001", "stopPrice": "1"}
        )


def test_plain_limit_orders_rest_and_ioc_expires(sim: SimServer, alice: Any) -> None:
    bid = float(price_of(int(sim.market(SYMBOL).candles.close[99])))
    gtc = alice.create_order(SYMBOL, "limit", "buy", 0.001, bid, {"clientOrderId": "gtc-1"})
    assert (gtc["status"], gtc["info"]["type"], gtc["timeInForce"]) == ("open", "LIMIT", "GTC")
    ioc = alice.create_order(
        SYMBOL, "limit", "buy", 0.001, bid, {"timeInForce": "IOC", "clientOrderId": "ioc-1"}
    )
    assert (ioc["status"], ioc["filled"]) == ("expired", 0.0)
    assert [o["clientOrderId"] for o in alice.fetch_open_orders(SYMBOL)] == ["gtc-1"]
    with pytest.raises(ccxt.BadRequest, match="Invalid timeInForce"):
        alice.create_order(SYMBOL, "limit", "buy", 0.001, bid, {"timeInForce": "GTX"})


def test_duplicate_client_order_id_is_refused_while_open_and_reusable_after(
    sim: SimServer, alice: Any
) -> None:
    bid = float(price_of(int(sim.market(SYMBOL).candles.close[99]) - 10))
    first = alice.create_order(SYMBOL, "limit", "buy", 0.001, bid, {"postOnly": True, "clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match=re.escape("Duplicate order sent.")):
        alice.create_order(SYMBOL, "limit", "buy", 0.002, bid, {"postOnly": True, "clientOrderId": "dup"})
    alice.cancel_order(first["id"], SYMBOL)
    second = alice.create_order(
        SYMBOL, "limit", "buy", 0.002, bid, {"postOnly": True, "clientOrderId": "dup"}
    )
    assert second["id"] != first["id"]
    found = alice.fetch_order(None, SYMBOL, {"clientOrderId": "dup"})
    assert (found["id"], found["amount"], found["status"]) == (second["id"], 0.002, "open")
    assert alice.fetch_order(first["id"], SYMBOL)["status"] == "canceled"


def test_unknown_orders_are_order_not_found(alice: Any) -> None:
    with pytest.raises(ccxt.OrderNotFound, match=re.escape("Order does not exist.")):
        alice.fetch_order(None, SYMBOL, {"clientOrderId": "never"})
    with pytest.raises(ccxt.OrderNotFound, match=re.escape("Unknown order sent.")):
        alice.cancel_order(None, SYMBOL, {"clientOrderId": "never"})
    with pytest.raises(ccxt.OrderNotFound, match=re.escape("Unknown order sent.")):
        alice.cancel_order("12345", SYMBOL)
    with pytest.raises(
        ccxt.OrderNotFound, match=re.escape("Unknown order sent.")
    ):  # nothing open: as Binance
        alice.cancel_all_orders(SYMBOL)


def test_cancel_all_orders_cancels_every_open_order_of_the_symbol(sim: SimServer, alice: Any) -> None:
    close = int(sim.market(SYMBOL).candles.close[99])
    for k in range(3):
        alice.create_order(
            SYMBOL,
            "limit",
            "buy",
            0.001,
            float(price_of(close - k)),
            {"postOnly": True, "clientOrderId": f"b{k}"},
        )
    cancelled = alice.cancel_all_orders(SYMBOL)
    assert sorted(o["info"]["origClientOrderId"] for o in cancelled) == ["b0", "b1", "b2"]
    assert {o["status"] for o in cancelled} == {"canceled"}
    assert alice.fetch_open_orders(SYMBOL) == []
    assert sim.state()["accounts"][0]["open_orders"] == 0


def test_a_fill_after_advance_shows_in_my_trades_and_balances_exactly(sim: SimServer, alice: Any) -> None:
    market = sim.market(SYMBOL)
    i = next_fill_index(market, 100)
    sim.advance(i - 100)  # candles 0..i-1 closed; candle i trades below the last close
    price = price_of(int(market.candles.close[i - 1]))
    qty = Decimal("0.00123")
    order = alice.create_order(
        SYMBOL, "limit", "buy", float(qty), float(price), {"postOnly": True, "clientOrderId": "fill-1"}
    )
    placed_at = alice.fetch_time()
    assert alice.fetch_my_trades(SYMBOL) == []

    sim.advance(1)
    fill_ms = int(market.candles.ts_ms[i]) + MINUTE - 1
    trades = alice.fetch_my_trades(SYMBOL, placed_at, 10)
    assert len(trades) == 1
    trade = trades[0]
    cost = price * qty
    fee = qty * Decimal("0.001")  # as Binance charges a buy: in the base received, 8 decimals
    assert (trade["order"], trade["side"], trade["takerOrMaker"], trade["timestamp"]) == (
        order["id"],
        "buy",
        "maker",
        fill_ms,
    )
    assert Decimal(trade["info"]["price"]) == price
    assert Decimal(trade["info"]["qty"]) == qty
    assert Decimal(trade["info"]["quoteQty"]) == cost
    assert trade["info"]["commission"] == "0.00000123"
    assert Decimal(trade["info"]["commission"]) == fee
    assert trade["info"]["commissionAsset"] == "BTC"
    assert trade["fee"]["currency"] == "BTC"

    balances = balances_of(alice)
    assert balances["USDT"] == (Decimal(10000) - cost, Decimal(0))
    assert balances["BTC"] == (Decimal("0.5") + qty - fee, Decimal(0))
    engine = sim.engine(ALICE.api_key)
    assert (engine.free("USDT"), engine.free("BTC")) == (balances["USDT"][0], balances["BTC"][0])

    filled = alice.fetch_order(None, SYMBOL, {"clientOrderId": "fill-1"})
    assert (filled["status"], filled["filled"], filled["lastUpdateTimestamp"]) == (
        "closed",
        float(qty),
        fill_ms,
    )
    assert Decimal(filled["info"]["cummulativeQuoteQty"]) == cost
    with pytest.raises(ccxt.OrderNotFound, match=re.escape("Unknown order sent.")):  # already filled
        alice.cancel_order(None, SYMBOL, {"clientOrderId": "fill-1"})
    assert alice.fetch_my_trades(SYMBOL, fill_ms + 1) == []
    assert [t["id"] for t in alice.fetch_my_trades(SYMBOL, None, None, {"fromId": trade["id"]})] == [
        trade["id"]
    ]


def test_accounts_do_not_share_orders_or_balances(sim: SimServer, alice: Any) -> None:
    bid = float(price_of(int(sim.market(SYMBOL).candles.close[99]) - 5))
    alice.create_order(SYMBOL, "limit", "buy", 0.001, bid, {"postOnly": True})
    bob = ccxt_binance(sim.url, READ_ONLY.api_key, READ_ONLY.secret)
    bob.load_markets()
    assert bob.fetch_open_orders(SYMBOL) == []
    assert bob.fetch_balance()["USDT"]["total"] == 100.0
    state = sim.state()
    assert [(a["name"], a["open_orders"]) for a in state["accounts"]] == [("alice", 1), ("bob", 0)]


def test_the_async_client_drives_the_same_server(sim: SimServer) -> None:
    bid = float(price_of(int(sim.market(SYMBOL).candles.close[99])))

    async def scenario() -> tuple[Any, ...]:
        exchange = ccxt_binance(sim.url, ALICE.api_key, ALICE.secret, async_=True)
        try:
            await exchange.load_markets()
            server_time = await exchange.fetch_time()
            ohlcv = await exchange.fetch_ohlcv(SYMBOL, "1m", None, 2)
            book = await exchange.fetch_order_book(SYMBOL, 5)
            placed = await exchange.create_order(
                SYMBOL, "limit", "buy", 0.001, bid, {"postOnly": True, "clientOrderId": "async-1"}
            )
            fetched = await exchange.fetch_order(None, SYMBOL, {"clientOrderId": "async-1"})
            with pytest.raises(ccxt.OrderImmediatelyFillable):
                await exchange.create_order(
                    SYMBOL, "limit", "buy", 0.001, book["asks"][0][0], {"postOnly": True}
                )
            cancelled = await exchange.cancel_order(None, SYMBOL, {"clientOrderId": "async-1"})
            balance = await exchange.fetch_balance()
            restrictions = await exchange.sapiGetAccountApiRestrictions()
            return server_time, ohlcv, placed, fetched, cancelled, balance, restrictions
        finally:
            await exchange.close()

    server_time, ohlcv, placed, fetched, cancelled, balance, restrictions = asyncio.run(scenario())
    assert server_time == sim.now_ms
    assert len(ohlcv) == 2
    assert (placed["status"], fetched["id"], cancelled["status"]) == ("open", placed["id"], "canceled")
    assert balance["USDT"]["free"] == 10000.0
    assert restrictions["enableWithdrawals"] is False


def test_order_answers_come_in_the_ack_result_and_full_shapes(sim: SimServer, alice: Any) -> None:
    price = f"{price_of(int(sim.market(SYMBOL).candles.close[99]) - 30):f}"
    common = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.001", "price": price}
    ack = alice.privatePostOrder({**common, "newClientOrderId": "r-ack"})  # LIMIT_MAKER defaults to ACK
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = alice.privatePostOrder({**common, "newClientOrderId": "r-result", "newOrderRespType": "RESULT"})
    assert "fills" not in result
    assert (result["status"], result["type"], result["origQty"]) == ("NEW", "LIMIT_MAKER", "0.00100000")
    full = alice.privatePostOrder({**common, "newClientOrderId": "r-full", "newOrderRespType": "FULL"})
    assert full["fills"] == []
    assert full["transactTime"] == sim.now_ms
    every_symbol = alice.privateGetOpenOrders()  # no symbol: all of them, as Binance
    assert [o["clientOrderId"] for o in every_symbol] == ["r-ack", "r-result", "r-full"]
    assert alice.privateGetOrder({"symbol": "BTCUSDT", "orderId": ack["orderId"]})["clientOrderId"] == "r-ack"
    # orderId and origClientOrderId must name the same order: Binance's -2039 (issue 11)
    with pytest.raises(ccxt.ExchangeError, match=r"-2039.*order ids do not match"):
        alice.privateGetOrder({"symbol": "BTCUSDT", "orderId": ack["orderId"], "origClientOrderId": "r-full"})
