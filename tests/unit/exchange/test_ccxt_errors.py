"""The ccxt connector's edge: the error table, the method allow-list, exact wire numbers, local checks.

The error table is tested by raising ccxt's real exception classes inside ``ccxt_errors``; the wire
by a real ``ccxt.async_support.binance`` talking to a canned loopback HTTP server that records
every request.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from ccxt.base.decimal_to_precision import ROUND, TICK_SIZE, TRUNCATE, decimal_to_precision
from hypothesis import given
from hypothesis import strategies as st

from nutcracker.core.model import PlaceLimit, Side
from nutcracker.core.units import Precision
from nutcracker.engine.ports import Exchange
from nutcracker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    ConfigError,
    ExchangeError,
    ExchangeUnavailableError,
    ForbiddenCallError,
    InsufficientFundsError,
    InvalidOrderError,
    NutcrackerError,
    OrderNotFoundError,
    OrderRejectedError,
    PostOnlyRejectedError,
    ReconciliationError,
)
from nutcracker.exchange.ccxt_errors import ccxt_errors
from nutcracker.exchange.ccxt_exchange import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_METHODS,
    FORBIDDEN_WORDS,
    PROBE_METHODS,
    CcxtExchange,
    CcxtGuard,
    FillFees,
    exact_lots,
    exact_ticks,
    fill_fees,
    price_text,
    qty_text,
    rebase_urls,
    spot_market,
    to_decimal,
)
from nutcracker.exchange.paper import PaperExchange
from nutcracker.secrets.permissions import PROBES
from nutcracker.secrets.redaction import forget_all_secrets, redact

BTC = Precision(tick=Decimal("0.01"), lot=Decimal("0.00001"))

# --- the error table ------------------------------------------------------------------------------

# (ccxt exception, our error when reading, our error when placing)
TABLE: list[tuple[Exception, type[NutcrackerError], type[NutcrackerError]]] = [
    (
        ccxt.OrderImmediatelyFillable(
            'binance {"code":-2010,"msg":"Order would immediately match and take."}'
        ),
        PostOnlyRejectedError,
        PostOnlyRejectedError,
    ),
    (ccxt.DuplicateOrderId("duplicate clientOrderId"), AmbiguousOrderError, AmbiguousOrderError),
    (
        ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'),
        AmbiguousOrderError,
        AmbiguousOrderError,
    ),
    (
        ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}'),
        OrderNotFoundError,
        OrderNotFoundError,
    ),
    (
        ccxt.InsufficientFunds(
            '{"code":-2010,"msg":"Account has insufficient balance for requested action."}'
        ),
        InsufficientFundsError,
        InsufficientFundsError,
    ),
    (
        ccxt.InvalidOrder('{"code":-1013,"msg":"Filter failure: LOT_SIZE"}'),
        InvalidOrderError,
        InvalidOrderError,
    ),
    (
        ccxt.BadRequest('{"code":-1013,"msg":"Filter failure: NOTIONAL"}'),
        InvalidOrderError,
        InvalidOrderError,
    ),
    (ccxt.BadSymbol('{"code":-1121,"msg":"Invalid symbol."}'), InvalidOrderError, InvalidOrderError),
    (ccxt.MarketClosed('{"code":-2010,"msg":"Market is closed."}'), OrderRejectedError, OrderRejectedError),
    (ccxt.AuthenticationError('{"code":-1022,"msg":"Signature"}'), AuthenticationError, AuthenticationError),
    (ccxt.PermissionDenied("no trading permission"), AuthenticationError, AuthenticationError),
    (ccxt.AccountSuspended("suspended"), AuthenticationError, AuthenticationError),
    (
        ccxt.InvalidNonce('{"code":-1021,"msg":"Timestamp"}'),
        ExchangeUnavailableError,
        ExchangeUnavailableError,
    ),
    (ccxt.DDoSProtection("429 Too Many Requests"), ExchangeUnavailableError, ExchangeUnavailableError),
    (ccxt.RateLimitExceeded('{"code":-1015}'), ExchangeUnavailableError, ExchangeUnavailableError),
    (ccxt.RequestTimeout("timed out"), ExchangeUnavailableError, AmbiguousOrderError),
    (ccxt.ExchangeNotAvailable("503 Service Unavailable"), ExchangeUnavailableError, AmbiguousOrderError),
    (ccxt.OnMaintenance("maintenance"), ExchangeUnavailableError, AmbiguousOrderError),
    (ccxt.NetworkError("connection reset"), ExchangeUnavailableError, AmbiguousOrderError),
    (ccxt.OperationFailed('{"code":-1001}'), ExchangeUnavailableError, AmbiguousOrderError),
    (ccxt.BadResponse("not JSON"), ExchangeUnavailableError, AmbiguousOrderError),
    (
        ccxt.ExchangeError('{"code":-1008,"msg":"Server is currently overloaded"}'),
        ExchangeUnavailableError,
        AmbiguousOrderError,
    ),
    (ccxt.NotSupported("no URL for fapiPublic"), ExchangeError, ExchangeError),
    (ccxt.ArgumentsRequired("symbol required"), ExchangeError, ExchangeError),
]


@pytest.mark.parametrize(("error", "reading", "placing"), TABLE, ids=lambda v: type(v).__name__)
def test_each_ccxt_error_becomes_exactly_one_of_ours_chained_to_it(
    error: Exception, reading: type[NutcrackerError], placing: type[NutcrackerError]
) -> None:
    for is_placing, expected in ((False, reading), (True, placing)):
        with pytest.raises(NutcrackerError) as caught, ccxt_errors("binance", placing=is_placing):
            raise error
        assert type(caught.value) is expected, (type(error).__name__, is_placing)
        assert caught.value.__cause__ is error
        assert str(caught.value).startswith("binance: ")


def test_the_table_sorts_placements_into_rejected_live_and_unknown() -> None:
    def outcome(error: Exception) -> str:
        with pytest.raises(NutcrackerError) as caught, ccxt_errors("binance", placing=True):
            raise error
        if isinstance(caught.value, AmbiguousOrderError):
            return "unknown"
        if isinstance(caught.value, OrderRejectedError):
            return "rejected"
        return "live"

    assert outcome(ccxt.OrderImmediatelyFillable("x")) == "rejected"
    assert outcome(ccxt.InsufficientFunds("x")) == "rejected"
    assert outcome(ccxt.BadRequest("x")) == "rejected"
    assert outcome(ccxt.RateLimitExceeded("x")) == "live"  # refused before the matching engine
    assert outcome(ccxt.InvalidNonce("x")) == "live"
    assert outcome(ccxt.RequestTimeout("x")) == "unknown"
    assert outcome(ccxt.ExchangeNotAvailable("x")) == "unknown"
    assert outcome(ccxt.ExchangeError("x")) == "unknown"


def test_errors_that_are_not_ccxt_pass_through_untouched() -> None:
    with pytest.raises(KeyError), ccxt_errors("binance"):
        raise KeyError("ours")
    with pytest.raises(InvalidOrderError), ccxt_errors("binance", placing=True):
        raise InvalidOrderError("already ours")


# --- the allow-list -------------------------------------------------------------------------------


class RecordingFetch:
    """Stands in for the network layer of a real ccxt instance, to prove nothing was requested."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.requests.append(f"{method} {url}")
        raise AssertionError("no request may be sent")


@pytest.mark.parametrize(
    "method",
    [
        "withdraw",
        "transfer",
        "sapi_post_asset_transfer",
        "sapiPostAssetTransfer",
        "sapi_post_capital_withdraw_apply",
        "fetch_deposit_address",
        "create_market_order",
        "create_order_ws",
        "cancel_all_orders",
        "edit_order",
        "borrow_cross_margin",
        "fapiprivate_post_order",
        "request",
        "fetch",
        "fetch2",
    ],
)
def test_guard_refuses_any_method_off_the_allow_list_before_any_io(method: str) -> None:
    client = ccxt_async.binance({"apiKey": "key-" + "k" * 60, "secret": "s" * 64})
    spy = RecordingFetch()
    client.fetch = spy
    guard = CcxtGuard(client)

    async def attempt() -> None:
        await getattr(guard, method)("USDT", 1, "address")

    try:
        with pytest.raises(ForbiddenCallError, match=method):
            asyncio.run(attempt())
        assert spy.requests == []
    finally:
        asyncio.run(client.close())


def test_guard_is_read_only() -> None:
    guard = CcxtGuard(ccxt.binance())
    with pytest.raises(ForbiddenCallError):
        guard.urls = {}
    with pytest.raises(ForbiddenCallError):
        del guard.id
    with pytest.raises(ForbiddenCallError):
        _ = guard.urls
    with pytest.raises(ForbiddenCallError):
        _ = guard.apiKey


def test_allow_list_names_no_method_that_moves_funds() -> None:
    for name in ALLOWED_METHODS:
        assert not any(word in name.lower() for word in FORBIDDEN_WORDS), name
    assert {"withdraw", "transfer", "create_market_order", "edit_order"}.isdisjoint(ALLOWED_METHODS)
    assert not ALLOWED_ATTRIBUTES & {"urls", "apiKey", "secret", "options", "fetch"}


def test_every_allowed_method_exists_on_the_async_binance_client() -> None:
    client = ccxt_async.binance()
    other_probes = set(PROBE_METHODS.values()) - {PROBE_METHODS["binance"]}
    try:
        for name in ALLOWED_METHODS - other_probes:
            assert callable(getattr(client, name)), name
    finally:
        asyncio.run(client.close())


@pytest.mark.parametrize("exchange_id", sorted(PROBES))
def test_each_probe_method_is_the_snake_case_twin_of_the_documented_one(exchange_id: str) -> None:
    cls = getattr(ccxt_async, exchange_id)
    snake, camel = PROBE_METHODS[exchange_id], PROBES[exchange_id].ccxt_method
    assert getattr(cls, snake) is getattr(cls, camel)
    assert snake in ALLOWED_METHODS


# --- exact numbers ---------------------------------------------------------------------------------


def test_ticks_and_lots_become_exact_plain_strings() -> None:
    assert price_text(BTC, 5_000_013) == "50000.13"
    assert price_text(BTC, 1) == "0.01"
    assert qty_text(BTC, 123) == "0.00123"
    assert qty_text(BTC, 1) == "0.00001"
    assert qty_text(BTC, 100_000) == "1.00000"
    tiny = Precision(tick=Decimal("1E-8"), lot=Decimal("1E+1"))
    assert price_text(tiny, 1) == "0.00000001"
    assert qty_text(tiny, 3) == "30"


def test_ccxt_precision_floats_become_exact_decimals() -> None:
    assert to_decimal(1e-05) == Decimal("0.00001")
    assert to_decimal(0.01) == Decimal("0.01")
    assert to_decimal(0.1 + 0.2) == Decimal("0.30000000000000004")  # a computed float stays visible
    assert to_decimal("50000.13") == Decimal("50000.13")
    assert exact_ticks(BTC, 50000.13, "price") == 5_000_013
    assert exact_lots(BTC, 0.00123, "qty") == 123
    with pytest.raises(ReconciliationError, match="tick"):
        exact_ticks(BTC, 50000.125, "price")
    with pytest.raises(ReconciliationError, match="lot"):
        exact_lots(BTC, 0.000015, "qty")
    with pytest.raises(ExchangeUnavailableError):
        to_decimal(None, "price")
    with pytest.raises(ExchangeUnavailableError):
        to_decimal(float("nan"), "price")


@given(ticks=st.integers(min_value=1, max_value=10**12), lots=st.integers(min_value=1, max_value=10**9))
def test_wire_text_survives_ccxts_rounding_and_float_parsing_unchanged(ticks: int, lots: int) -> None:
    price, qty = price_text(BTC, ticks), qty_text(BTC, lots)
    # create_order applies price_to_precision (ROUND) and amount_to_precision (TRUNCATE) to what we send
    assert Decimal(decimal_to_precision(price, ROUND, 0.01, TICK_SIZE)) == Decimal(price)
    assert Decimal(decimal_to_precision(qty, TRUNCATE, 1e-05, TICK_SIZE)) == Decimal(qty)
    # and ccxt hands numbers back as floats
    assert exact_ticks(BTC, float(price), "price") == ticks
    assert exact_lots(BTC, float(qty), "qty") == lots


def test_fees_are_kept_in_the_asset_they_were_paid_in() -> None:
    price = 5_000_000  # 50000.00 USDT in ticks; 0.001 BTC is 100 lots; 10 bps is 1_000 ppm
    # a sell on Binance: 0.05 USDT = 0.05 / (0.01 * 0.00001 / 1e6) qu
    in_quote = fill_fees(BTC, "BTC", "USDT", price, 100, 1_000, [{"cost": 0.05, "currency": "USDT"}])
    assert in_quote == FillFees(500_000_000_000, 0, "USDT", "0.05")
    # a buy on Binance without BNB: 0.000001 BTC not received, in base units (1e-11 BTC)
    in_base = fill_fees(BTC, "BTC", "USDT", price, 100, 1_000, [{"cost": 1e-06, "currency": "BTC"}])
    assert in_base == FillFees(0, 100_000, "BTC", "0.000001")
    # BNB is carried with its name and amount and valued at the fee rate, never taken for quote
    in_bnb = fill_fees(BTC, "BTC", "USDT", price, 100, 1_000, [{"cost": 0.0001, "currency": "BNB"}])
    assert in_bnb == FillFees(price * 100 * 1_000, 0, "BNB", "0.0001")
    # an amount below a base unit is rounded up: we never believe we hold more than we do
    tiny = fill_fees(BTC, "BTC", "USDT", price, 100, 1_000, [{"cost": "0.000000000001", "currency": "BTC"}])
    assert tiny.fee_bu == 1
    assert fill_fees(BTC, "BTC", "USDT", price, 100, 1_000, [{"cost": None, "currency": None}]) == FillFees(
        0, 0, "", ""
    )


# --- construction ----------------------------------------------------------------------------------


def test_construction_refuses_unknown_ids_half_credentials_and_bad_urls() -> None:
    with pytest.raises(ConfigError, match="not a ccxt exchange id"):
        CcxtExchange("nosuchexchange")
    with pytest.raises(ConfigError, match="both"):
        CcxtExchange("binance", api_key="k" * 64)
    with pytest.raises(ConfigError, match="base URL"):
        CcxtExchange("binance", api_url="ftp://127.0.0.1:1")
    with pytest.raises(ConfigError, match="timeframe"):
        CcxtExchange("binance", timeframe="7m")


def test_credentials_are_registered_for_redaction_and_never_shown() -> None:
    forget_all_secrets()
    key, secret = "AKEY" + "a" * 60, "SECRET" + "b" * 58
    exchange = CcxtExchange("binance", api_key=key, secret=secret)
    try:
        assert redact(f"key={key} secret={secret}") == "key=*** secret=***"
        assert key not in repr(exchange)
        assert secret not in repr(exchange)
        assert key not in repr(exchange.ccxt_client)
    finally:
        asyncio.run(exchange.close())
        forget_all_secrets()


def test_connectors_fit_the_exchange_port() -> None:
    exchange = CcxtExchange("binance")
    paper = PaperExchange(exchange, ["BTC/USDT"], {"USDT": Decimal(1000)})
    try:
        for port_user in (exchange, paper):
            typed: Exchange = port_user  # checked by mypy when it reads this file
            for name, _function in inspect.getmembers(Exchange, inspect.isfunction):
                if not name.startswith("_"):
                    assert inspect.iscoroutinefunction(getattr(typed, name)), name
    finally:
        asyncio.run(exchange.close())


# --- on the wire, against a canned loopback server ------------------------------------------------

EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1_700_000_000_000,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
                {"filterType": "NOTIONAL", "minNotional": "5", "maxNotional": "9000000"},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
        }
    ],
}
ORDER_ANSWER = {
    "symbol": "BTCUSDT",
    "orderId": 42,
    "orderListId": -1,
    "clientOrderId": "nct-1",
    "transactTime": 1_700_000_000_000,
    "price": "50000.13",
    "origQty": "0.00123",
    "executedQty": "0",
    "cummulativeQuoteQty": "0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT_MAKER",
    "side": "BUY",
    "fills": [],
}


class _Canned(BaseHTTPRequestHandler):
    log: list[tuple[str, str, dict[str, list[str]]]]

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.log.append((method, parts.path, parse_qs(parts.query or body)))
        payload: object = {"code": -1000, "msg": "unexpected"}
        status = 400
        if parts.path == "/api/v3/exchangeInfo":
            payload, status = EXCHANGE_INFO, 200
        elif parts.path == "/api/v3/order" and method == "POST":
            payload, status = ORDER_ANSWER, 200
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def canned() -> Iterator[tuple[str, list[tuple[str, str, dict[str, list[str]]]]]]:
    log: list[tuple[str, str, dict[str, list[str]]]] = []
    handler = type("Handler", (_Canned,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _place(url: str, order: PlaceLimit) -> str:
    async def run() -> str:
        async with CcxtExchange("binance", api_key="k" * 64, secret="s" * 64, api_url=url) as exchange:
            return await exchange.place("BTC/USDT", order)

    return asyncio.run(run())


def test_post_only_order_goes_out_as_limit_maker_with_exact_text_and_our_id(
    canned: tuple[str, list[tuple[str, str, dict[str, list[str]]]]],
) -> None:
    url, log = canned
    order_id = _place(url, PlaceLimit("nct-1", Side.BUY, 5_000_013, 123, reason="test"))
    assert order_id == "42"
    assert [(m, p) for m, p, _ in log] == [("GET", "/api/v3/exchangeInfo"), ("POST", "/api/v3/order")]
    sent = log[-1][2]
    assert sent["type"] == ["LIMIT_MAKER"]
    assert "timeInForce" not in sent
    assert sent["price"] == ["50000.13"]
    assert sent["quantity"] == ["0.00123"]
    assert sent["newClientOrderId"] == ["nct-1"]
    assert sent["side"] == ["BUY"]


@pytest.mark.parametrize(
    ("order", "why"),
    [
        (PlaceLimit("nct-2", Side.BUY, 5_000_000, 9, reason="t"), "minimum notional"),  # 4.50 USDT < 5
        (PlaceLimit("nct-3", Side.BUY, 5_000_000, 900_000_001, reason="t"), "limits"),  # > 9000 BTC
        (PlaceLimit("nct 4", Side.BUY, 5_000_000, 100, reason="t"), "client order id"),
        (PlaceLimit("n" * 37, Side.BUY, 5_000_000, 100, reason="t"), "client order id"),
        (PlaceLimit("nct-5", Side.SELL, 100_000_001, 100, reason="t"), "limits"),  # price > 1000000
    ],
)
def test_orders_off_the_market_rules_are_refused_before_sending(
    canned: tuple[str, list[tuple[str, str, dict[str, list[str]]]]], order: PlaceLimit, why: str
) -> None:
    url, log = canned
    with pytest.raises(InvalidOrderError, match=why):
        _place(url, order)
    assert [(m, p) for m, p, _ in log] == [("GET", "/api/v3/exchangeInfo")]


def test_api_url_moves_every_endpoint_section_and_market_reads_the_rules(
    canned: tuple[str, list[tuple[str, str, dict[str, list[str]]]]],
) -> None:
    url, log = canned

    async def run() -> Any:
        async with CcxtExchange("binance", api_url=url + "/") as exchange:
            return await exchange.market("BTC/USDT")

    info = asyncio.run(run())
    assert info.tick_size == Decimal("0.01")
    assert info.lot_size == Decimal("0.00001")
    assert info.min_notional == Decimal(5)
    assert info.maker_fee == Decimal("0.001")
    assert (info.base, info.quote) == ("BTC", "USDT")
    assert log[0][1] == "/api/v3/exchangeInfo"
    rebased = rebase_urls(ccxt.binance().urls["api"], "http://127.0.0.1:9")
    assert isinstance(rebased, dict)
    assert rebased["sapi"] == "http://127.0.0.1:9/sapi/v1"
    assert rebased["public"] == "http://127.0.0.1:9/api/v3"
    assert rebased["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert all(v.startswith("http://127.0.0.1:9/") for v in rebased.values())


def test_non_spot_markets_are_refused_with_what_to_configure() -> None:
    markets = {
        "BTC/USDT": {"type": "spot", "spot": True},
        "BTC/USDT:USDT": {"type": "swap", "spot": False},
        "BTC/USDT:USDT-251226": {"type": "future", "spot": False},
    }
    assert spot_market("binance", markets, "BTC/USDT") is markets["BTC/USDT"]
    for symbol in ("BTC/USDT:USDT", "BTC/USDT:USDT-251226"):
        with pytest.raises(ConfigError, match="spot markets only"):
            spot_market("binance", markets, symbol)
    with pytest.raises(ConfigError, match="not a market"):
        spot_market("binance", markets, "DOGE/USDT")


def test_unknown_symbols_are_config_errors(
    canned: tuple[str, list[tuple[str, str, dict[str, list[str]]]]],
) -> None:
    url, _ = canned

    async def run() -> None:
        async with CcxtExchange("binance", api_url=url) as exchange:
            await exchange.market("DOGE/USDT")

    with pytest.raises(ConfigError, match="not a market"):
        asyncio.run(run())
