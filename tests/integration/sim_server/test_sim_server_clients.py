"""Issue 11 items 9 and 10: the sim-exchange driven the way it was found wanting, by other clients.

python-binance (sync ``Client`` and ``AsyncClient``, pointed at the sim by overriding their URL
attributes), Binance's official ``binance-sdk-spot`` and the response validators ccxt ships
(``ccxt/test/exchange/base``), plus ccxt with its default options. The server re-stamps the
replayed market to the wall clock (a fixed offset computed at start), as the CLI does by default.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from binance.async_client import AsyncClient
from binance.client import Client
from binance.exceptions import BinanceAPIException
from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_spot.spot import Spot
from ccxt.test.exchange.base.test_balance import test_balance as check_balance
from ccxt.test.exchange.base.test_market import test_market as check_market
from ccxt.test.exchange.base.test_ohlcv import test_ohlcv as check_ohlcv
from ccxt.test.exchange.base.test_order import test_order as check_order
from ccxt.test.exchange.base.test_order_book import test_order_book as check_order_book
from ccxt.test.exchange.base.test_ticker import test_ticker as check_ticker
from ccxt.test.exchange.base.test_trade import test_trade as check_trade
from ccxt.test.exchange.base.test_trading_fee import test_trading_fee as check_trading_fee
from sim_clients import ALICE, ccxt_binance, http

from nutcracker.exchange.ccxt_exchange import rebase_urls
from nutcracker.simexchange.accounts import MarketSpec
from nutcracker.simexchange.limits import RateLimits
from nutcracker.simexchange.server import MSG_AHEAD, SimServer, sign

SYMBOL = "BTC/USDT"
MINUTE = 60_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def wall_sim(btc_market: MarketSpec) -> Iterator[SimServer]:
    """A running sim-exchange whose market is re-stamped to the wall clock (the CLI's default)."""
    server = SimServer(
        {SYMBOL: btc_market}, [ALICE], warmup=100, seed=1, time_offset_ms=None, rate_limits=RateLimits()
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def python_binance(cls: type[Any], url: str) -> type[Any]:
    """Return a python-binance client class whose REST URLs are the sim's."""
    return type(cls.__name__, (cls,), {"API_URL": f"{url}/api", "MARGIN_API_URL": f"{url}/sapi"})


# -- item 9: one clock ----------------------------------------------------------------------------


def test_server_time_orders_and_klines_agree_with_the_wall_clock(wall_sim: SimServer) -> None:
    alice = ccxt_binance(wall_sim.url, ALICE.api_key, ALICE.secret)
    now = wall_ms()
    assert now - MINUTE <= alice.fetch_time() <= now  # aligned to the candle interval
    assert wall_sim.time_offset_ms % MINUTE == 0
    recent = alice.fetch_ohlcv(SYMBOL, "1m", now - 10 * MINUTE)
    assert len(recent) >= 10
    assert all(now - 12 * MINUTE <= row[0] <= now for row in recent)
    market = alice.create_order(SYMBOL, "market", "buy", 0.001)
    assert abs(market["timestamp"] - now) <= MINUTE
    assert abs(alice.fetch_my_trades(SYMBOL)[-1]["timestamp"] - now) <= MINUTE
    wall_sim.advance(3)  # --manual stepping still moves the market, by whole candles
    assert alice.fetch_time() == wall_sim.market_ms + wall_sim.time_offset_ms


def test_python_binance_async_client_signs_with_the_server_clock_and_is_accepted(
    wall_sim: SimServer,
) -> None:
    cls = python_binance(AsyncClient, wall_sim.url)

    async def scenario() -> tuple[int, Any, Any, Any]:
        client = await cls.create(ALICE.api_key, ALICE.secret)  # pings, learns the server's clock
        try:
            account = await client.get_account()
            order = await client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
            trades = await client.get_my_trades(symbol="BTCUSDT")
            return client.timestamp_offset, account, order, trades
        finally:
            await client.close_connection()

    offset, account, order, trades = asyncio.run(scenario())
    assert -2 * MINUTE < offset <= 1000
    assert {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"} in account["balances"]
    assert (order["status"], order["type"], order["executedQty"]) == ("FILLED", "MARKET", "0.00100000")
    assert [t["orderId"] for t in trades] == [order["orderId"]]
    assert trades[0]["isMaker"] is False


def test_a_timestamp_ahead_of_the_server_gets_binances_message(wall_sim: SimServer) -> None:
    query = f"timestamp={wall_ms() + 5_000}"
    url = f"{wall_sim.url}/api/v3/account?{query}&signature={sign(ALICE.secret, query)}"
    request = urllib.request.Request(url, headers={"X-MBX-APIKEY": ALICE.api_key})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    body = caught.value.read().decode()
    assert body == '{"code":-1021,"msg":"' + MSG_AHEAD + '"}'
    assert MSG_AHEAD == "Timestamp for this request was 1000ms ahead of the server's time."


def test_a_timestamp_behind_both_clocks_is_refused(wall_sim: SimServer) -> None:
    alice = ccxt_binance(wall_sim.url, ALICE.api_key, ALICE.secret)
    alice.options["timeDifference"] = 3 * MINUTE  # signs three minutes in the past
    with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
        alice.fetch_balance()


# -- item 10: python-binance and Binance's SDK ---------------------------------------------------


def test_python_binance_sync_client_trades_through_the_sim(wall_sim: SimServer) -> None:
    client = python_binance(Client, wall_sim.url)(ALICE.api_key, ALICE.secret)  # pings at once
    try:
        info = client.get_symbol_info("BTCUSDT")
        assert info is not None
        assert "MARKET" in info["orderTypes"]
        klines = client.get_klines(symbol="BTCUSDT", interval="1m", limit=3)
        assert [len(k) for k in klines] == [12, 12, 12]
        assert klines[-1][0] + MINUTE > client.get_server_time()["serverTime"]  # the forming candle
        assert client.get_avg_price(symbol="BTCUSDT")["mins"] == 5
        assert client.get_trade_fee(symbol="BTCUSDT") == [
            {"symbol": "BTCUSDT", "makerCommission": "0.00100000", "takerCommission": "0.00100000"}
        ]
        assert client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001") == {}
        with pytest.raises(BinanceAPIException, match="LOT_SIZE"):
            client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.000001")
        bid = Decimal(client.get_orderbook_ticker(symbol="BTCUSDT")["bidPrice"])
        maker = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=f"{bid - 5:f}")
        assert maker["status"] == "NEW"
        other = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=f"{bid - 6:f}")
        with pytest.raises(BinanceAPIException) as mismatch:
            client.get_order(
                symbol="BTCUSDT", orderId=maker["orderId"], origClientOrderId=other["clientOrderId"]
            )
        assert (mismatch.value.code, mismatch.value.message) == (
            -2039,
            "Both orderId and origClientOrderId are provided and the order ids do not match",
        )
        taken = client.order_limit_sell(symbol="BTCUSDT", quantity="0.001", price=f"{bid - 100:f}")
        assert (taken["status"], taken["fills"][0]["price"]) == ("FILLED", f"{bid:.8f}")
        assert re.fullmatch(r"\d+\.\d{8}", taken["fills"][0]["commission"])
        cancelled = client.cancel_order(symbol="BTCUSDT", orderId=maker["orderId"])
        assert cancelled["status"] == "CANCELED"
        assert [o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == [other["orderId"]]
        weight = client.response.headers["X-MBX-USED-WEIGHT-1M"]
        assert int(weight) > 0
    finally:
        client.close_connection()
        # python-binance's sync Client makes (and sets) an event loop of its own: close it
        client.loop.close()
        asyncio.set_event_loop(None)


def test_binance_sdk_spot_reads_commission_rates_and_rate_limits(wall_sim: SimServer) -> None:
    config = ConfigurationRestAPI(api_key=ALICE.api_key, api_secret=ALICE.secret, base_path=wall_sim.url)
    rest = Spot(config_rest_api=config).rest_api
    info = rest.exchange_info(symbol="BTCUSDT")
    assert info.data().symbols[0].symbol == "BTCUSDT"
    assert {(r.rate_limit_type, r.interval, r.limit) for r in info.data().rate_limits} >= {
        ("REQUEST_WEIGHT", "MINUTE", 6000),
        ("ORDERS", "SECOND", 100),
        ("ORDERS", "DAY", 200_000),
    }
    assert [(r.rateLimitType, r.interval, r.intervalNum) for r in info.rate_limits] == [
        ("REQUEST_WEIGHT", "MINUTE", 1)
    ]
    commission = rest.account_commission(symbol="BTCUSDT").data()
    assert (commission.standard_commission.maker, commission.standard_commission.taker) == ("0.00100000",) * 2
    assert rest.time().data().server_time == wall_sim.now_ms
    order = rest.new_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=0.001)
    assert order.data().status == "FILLED"
    assert {r.rateLimitType for r in order.rate_limits} == {"REQUEST_WEIGHT", "ORDERS"}
    assert rest.order_test(symbol="BTCUSDT", side="SELL", type="MARKET", quantity=0.001).status == 200
    assert Decimal(rest.avg_price(symbol="BTCUSDT").data().price) > 0


# -- item 10: ccxt with default options and ccxt's own response validators --------------------------


def test_ccxt_with_default_options_loads_markets_with_a_key(wall_sim: SimServer) -> None:
    exchange = ccxt.binance(
        {"apiKey": ALICE.api_key, "secret": ALICE.secret}
    )  # fetchCurrencies, fetchMargins on
    exchange.urls["api"] = rebase_urls(exchange.urls["api"], wall_sim.url)
    markets = exchange.load_markets()
    assert list(markets) == [SYMBOL]
    assert exchange.currencies["BTC"]["id"] == "BTC"
    assert exchange.fetch_trading_fee(SYMBOL)["maker"] == 0.001


def test_ccxts_validators_accept_every_answer(wall_sim: SimServer) -> None:
    exchange = ccxt_binance(wall_sim.url, ALICE.api_key, ALICE.secret)
    exchange.load_markets()
    skip: dict[str, Any] = {}
    now = exchange.milliseconds()
    check_market(exchange, skip, "loadMarkets", exchange.market(SYMBOL))
    for row in exchange.fetch_ohlcv(SYMBOL, "1m", None, 5):
        check_ohlcv(exchange, skip, "fetchOHLCV", row, SYMBOL, now)
    check_ticker(exchange, skip, "fetchTicker", exchange.fetch_ticker(SYMBOL), SYMBOL)
    book = exchange.fetch_order_book(SYMBOL, 5)
    no_time = {"timestamp": True, "datetime": True}  # Binance's /api/v3/depth carries no time either
    check_order_book(exchange, no_time, "fetchOrderBook", book, SYMBOL)
    check_trading_fee(exchange, skip, "fetchTradingFee", SYMBOL, exchange.fetch_trading_fee(SYMBOL))
    for trade in exchange.fetch_trades(SYMBOL, None, 5):
        check_trade(exchange, skip, "fetchTrades", trade, SYMBOL, now, True)
    bid = exchange.fetch_order_book(SYMBOL, 1)["bids"][0][0]
    resting = exchange.create_order(SYMBOL, "limit", "buy", 0.001, bid - 10, {"postOnly": True})
    taken = exchange.create_order(SYMBOL, "market", "buy", 0.001)
    now = exchange.milliseconds()
    for order in (resting, taken, exchange.fetch_order(resting["id"], SYMBOL)):
        check_order(exchange, skip, "createOrder", order, SYMBOL, now)
    for trade in exchange.fetch_my_trades(SYMBOL):
        check_trade(exchange, skip, "fetchMyTrades", trade, SYMBOL, now, False)
    check_balance(exchange, skip, "fetchBalance", exchange.fetch_balance())


def test_weight_headers_on_every_api_answer(wall_sim: SimServer) -> None:
    first = http(f"{wall_sim.url}/api/v3/exchangeInfo")[2]
    second = http(f"{wall_sim.url}/api/v3/depth?symbol=BTCUSDT&limit=500")[2]
    used = int(first["X-MBX-USED-WEIGHT-1M"]), int(second["X-MBX-USED-WEIGHT-1M"])
    assert used[1] - used[0] in (25, 25 - used[0])  # +25, unless a new minute began in between
