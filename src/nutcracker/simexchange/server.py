"""The sim-exchange: the matching engine served as a subset of Binance's Spot REST API on loopback.

The real, unmodified ``ccxt.binance`` client (sync or ``ccxt.async_support``) talks to this server
as it would to api.binance.com (see ``../shared/reference/exchanges.md``): the live code path,
tested end to end without the internet. There is one ``MatchingEngine`` per account, all of them
fed the same candles; accounts never interact. One lock serialises every request and clock step.

Endpoints (``GET`` unless said; "signed" ones need ``X-MBX-APIKEY`` and an HMAC signature)::

    /api/v3/ping, /api/v3/time, /api/v3/exchangeInfo, /api/v3/klines, /api/v3/depth,
    /api/v3/ticker/24hr, /api/v3/ticker/price, /api/v3/ticker/bookTicker, /api/v3/aggTrades,
    /api/v3/avgPrice, /fapi/v1/exchangeInfo and /dapi/v1/exchangeInfo (no futures: empty)
    signed: /api/v3/account, POST|GET|DELETE /api/v3/order, POST /api/v3/order/test,
            GET|DELETE /api/v3/openOrders, /api/v3/myTrades, /api/v3/allOrders, /api/v3/account/commission,
            /sapi/v1/account/apiRestrictions, /sapi/v1/asset/tradeFee, /sapi/v1/capital/config/getall,
            /sapi/v1/margin/allPairs and /sapi/v1/margin/isolated/allPairs (spot only: empty)
    test control (no auth, never faulted; only with ``manual`` or ``control``, else 403):
            POST /sim/advance?candles=N, GET /sim/state, GET|POST /sim/faults

The capital, margin and futures answers are what ccxt's default options (``fetchCurrencies``,
``fetchMargins``, every ``fetchMarkets`` type) read in ``load_markets`` with a key.

Two clocks. *Market time* is simulated: it starts at the open of the first candle plus ``warmup``
steps of one candle interval and moves only when the clock advances (``POST /sim/advance`` or
``--speed`` candles per second). Everything served carries it plus a fixed *offset*
(``time_offset_ms``): ``/api/v3/time``, order, cancel and fill times, klines, trades. The CLI
computes the offset at start (``time_offset_ms=None``) so that the market starts at the wall clock,
to the candle interval: ``fetch_ohlcv(since=now - 10 min)`` finds candles and clients that sync
to the server's time (python-binance's ``AsyncClient``) sign in the same clock; tests keep the
data's own times (offset 0), deterministic. Candles are served once closed, and klines end with
the still-forming one as Binance's do (built from the closed candles of its interval so far, flat
at the last close before any). *Wall time* is the real clock: ccxt signs with ``timestamp = now``
on its own clock. A timestamp is accepted between the wall clock and the server time (which runs at
the replay's speed from the wall clock at start), 1000 ms ahead at most (else -1021 "...1000ms ahead
of the server's time.") and ``recvWindow`` behind (else -1021 "...outside of the recvWindow."); with
the data's own times, against the wall clock only.

Orders. ``LIMIT_MAKER`` is post-only: one that would cross is refused with -2010 "Order would
immediately match and take." (ccxt: ``OrderImmediatelyFillable``). Plain ``LIMIT`` orders that do
not cross rest like ``LIMIT_MAKER`` (``GTC``) or expire at once (``IOC``/``FOK``, status
``EXPIRED``). A crossing ``LIMIT`` and a ``MARKET`` order (``quantity`` or ``quoteOrderQty``) take
at once from the depth ``/api/v3/depth`` shows, best level first, at the taker fee (``isMaker``
false): ``GTC`` rests what the levels up to its price do not cover, ``IOC`` and ``MARKET`` expire
it, ``FOK`` expires whole unless it fills in full (``MatchingEngine.take``; the engine itself only
sends post-only orders). A limit order crossing only this account's own resting order is refused
like a crossing ``LIMIT_MAKER`` (no self-trades). Stop orders are refused with -2010 "Order type
not supported for this symbol." and missing from ``exchangeInfo.orderTypes``. Resting orders fill
by the matching engine's rules (a candle trading through the price fills the order, fully) at the
maker fee. Every fee is charged as Binance charges it, in the asset received (a buy's in base, a
sell's in quote) or in the account's ``fee_asset`` (BNB), rounded up to 8 decimals: ``commission``
and ``commissionAsset`` report exactly what was charged.
``newClientOrderId`` must be unique among the symbol's open orders (-2010 "Duplicate order sent.")
and may be reused once the earlier order is closed; lookups by ``origClientOrderId`` find the
latest order with that id, and an ``orderId`` paired with another order's client id is -2039.
``DELETE /api/v3/openOrders`` with nothing open answers -2011 "Unknown order sent.", as Binance does.

Rate limits (``sim_limits``): every ``/api/v3`` answer carries ``X-MBX-USED-WEIGHT-1M``, order
placements ``X-MBX-ORDER-COUNT-10S``/``-1D``; past a limit (Binance's 6000 weight a minute, 100
orders per 10 s, 200000 a day in the CLI; ``SimServer(rate_limits=...)``) the request is refused
with 429 and ``Retry-After``.

Hardening: a body over ``max_body_bytes`` (64 KiB) gets 413, a client silent for
``read_timeout_s`` while a request is read is disconnected, ``fail_next`` queues at most
``MAX_FAIL_NEXT`` requests (kept as counts), and ``POST /sim/faults`` is checked whole before any
of it is applied (400 with the reason, nothing stored).

Keys. A missing or unknown key gets -2015, a malformed one -2014 (both HTTP 401), a bad signature
-1022 (400). A key without ``enableReading`` (signed reads) or ``enableSpotAndMarginTrading``
(placing, cancelling) gets -2015 too, which ccxt re-labels ``DDoSProtection`` once the instance
has made one successful private call (reference §3.6).

Depth model (public, the same for every account): the engine's outside book after the last
closed candle, best bid = close and best ask = close + 1 tick, then one level per tick outwards,
level ``k`` (0 at the top) holding ``(k + 1) * u`` where ``u`` is the last candle's volume / 20
rounded down to the lot (at least one lot). Our own resting orders are not shown (accounts are
private), but they still make post-only orders of the same account cross, as on a real book.
Public trades (aggTrades) are synthetic: one per closed candle, at its close, for its volume, at
its close time, id = candle index + 1, ``m`` true when the candle closed below its open.

Faults (``FaultRule``; CLI ``--fault KIND=VALUE[@ENDPOINT,...]``, ``POST /sim/faults``,
``SimServer.set_faults``/``fail_next``), drawn from ``random.Random(seed)``, only for the
endpoints named (default ``TRADING_ENDPOINTS``, the signed /api/v3 ones):

- ``latency_ms=N``: every matching request first waits N ms (not random);
- ``timeout=p``: the server waits ``timeout_ms`` (default 15 s, past ccxt's 10 s timeout) and
  closes the connection without an answer; the request is not executed;
- ``5xx=p``: HTTP 503 with Binance's body ``{"code":-1001,"msg":"Internal error; unable to process
  your request. Please try again."}``: ccxt 4.5.90 raises ``OperationFailed`` (status unknown);
- ``502=p``: HTTP 502 with a gateway's HTML body: ccxt raises ``ExchangeNotAvailable``;
- ``429=p``: HTTP 429, -1003, ``Retry-After: 1``; ``418=p``: HTTP 418, -1003, ``Retry-After: 120``
  (ccxt: ``DDoSProtection`` for both); none of these execute the request;
- ``drop_after_accept=p``: the request is executed (an order is placed), then the connection is
  closed without an answer (ccxt sync: ``NetworkError``, async: ``ExchangeNotAvailable``).

``fail_next`` queues one fault for the next request to an endpoint, ahead of the random draws.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal, cast, get_args
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, PlaceLimit, Side
from nutcracker.core.orders import MAX_ID_LENGTH
from nutcracker.core.units import PPM, QU_PER_TICK_LOT, Precision
from nutcracker.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderRejectedError,
    PostOnlyRejectedError,
)
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.simexchange.accounts import API_KEY_RE, PERMISSION_FIELDS, MarketSpec, SimAccount
from nutcracker.simexchange.limits import RateLimiter, RateLimits

_log = logging.getLogger(__name__)

FaultKind = Literal["latency_ms", "timeout", "5xx", "502", "429", "418", "drop_after_accept"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)

PUBLIC_ENDPOINTS: Final = (
    "GET /api/v3/ping",
    "GET /api/v3/time",
    "GET /api/v3/exchangeInfo",
    "GET /api/v3/klines",
    "GET /api/v3/depth",
    "GET /api/v3/ticker/24hr",
    "GET /api/v3/ticker/price",
    "GET /api/v3/ticker/bookTicker",
    "GET /api/v3/aggTrades",
)
TRADING_ENDPOINTS: Final = (
    "GET /api/v3/account",
    "POST /api/v3/order",
    "GET /api/v3/order",
    "DELETE /api/v3/order",
    "GET /api/v3/openOrders",
    "DELETE /api/v3/openOrders",
    "GET /api/v3/myTrades",
    "GET /api/v3/allOrders",
)
"""The signed /api/v3 endpoints: where faults apply unless a rule names others."""
SAPI_ENDPOINTS: Final = ("GET /sapi/v1/account/apiRestrictions",)
CLIENT_ENDPOINTS: Final = (
    "GET /api/v3/avgPrice",
    "POST /api/v3/order/test",
    "GET /api/v3/account/commission",
    "GET /sapi/v1/asset/tradeFee",
    "GET /sapi/v1/capital/config/getall",
    "GET /sapi/v1/margin/allPairs",
    "GET /sapi/v1/margin/isolated/allPairs",
    "GET /fapi/v1/exchangeInfo",
    "GET /dapi/v1/exchangeInfo",
)
"""What other clients (ccxt with default options, python-binance, binance-sdk-spot) also call."""
ENDPOINTS: Final = PUBLIC_ENDPOINTS + TRADING_ENDPOINTS + SAPI_ENDPOINTS + CLIENT_ENDPOINTS

DEFAULT_TIMEOUT_MS: Final = 15_000
MAX_NUM_ORDERS: Final = 200
DEFAULT_RECV_WINDOW_MS: Final = 5_000
MAX_RECV_WINDOW_MS: Final = 60_000

# Binance's messages, exactly (ccxt matches some of them verbatim).
MSG_WOULD_TAKE: Final = "Order would immediately match and take."
MSG_INSUFFICIENT: Final = "Account has insufficient balance for requested action."
MSG_DUPLICATE: Final = "Duplicate order sent."
MSG_UNKNOWN_ORDER: Final = "Unknown order sent."
MSG_NO_ORDER: Final = "Order does not exist."
MSG_BAD_KEY: Final = "Invalid API-key, IP, or permissions for action."
MSG_KEY_FORMAT: Final = "API-key format invalid."
MSG_BAD_SIGNATURE: Final = "Signature for this request is not valid."
MSG_RECV_WINDOW: Final = "Timestamp for this request is outside of the recvWindow."
MSG_TYPE_NOT_SUPPORTED: Final = "Order type not supported for this symbol."
MSG_AHEAD: Final = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_IDS_MISMATCH: Final = "Both orderId and origClientOrderId are provided and the order ids do not match"
MSG_CONTROL_OFF: Final = "The /sim/ test controls are off: start the server with --manual or --control."

UNLIMITED: Final = RateLimits(10**9, 10**9, 10**9)
MAX_FAIL_NEXT: Final = 10_000
"""The most requests one ``fail_next`` may queue, and the most queued in all (memory stays bounded)."""
MAX_QUEUED_RULES: Final = 100
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
DEFAULT_READ_TIMEOUT_S: Final = 30.0

_DAY_MS: Final = 86_400_000
_WEEK_OFFSET_MS: Final = 4 * _DAY_MS  # Binance weeks start on Monday; 1970-01-01 was a Thursday
_INTERVALS: Final[Mapping[str, int]] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": _DAY_MS,
    "3d": 3 * _DAY_MS,
    "1w": 7 * _DAY_MS,
}
_E8: Final = Decimal("1e-8")
_CTX: Final = Context(prec=80)
_NUMBER_RE: Final = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
_INT_RE: Final = re.compile(r"^-?[0-9]{1,20}$")
_CLIENT_ID_RE: Final = re.compile(rf"^[a-zA-Z0-9._:/-]{{1,{MAX_ID_LENGTH}}}$")
_SIGNATURE_RE: Final = re.compile(r"(?:^|&)signature=[^&]*")
_MAX_PRICE: Final = Decimal(1_000_000)
_MAX_QTY_LOTS: Final = 900_000_000
_MAX_NOTIONAL: Final = Decimal(9_000_000)
_NOT_SUPPORTED_TYPES: Final = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_TAKER_DEPTH: Final = 5000  # the most book levels a taker order walks (Binance's depth limit)


# -- faults ---------------------------------------------------------------------------------------


def endpoints_matching(spec: str) -> frozenset[str]:
    """Return the endpoint keys (``"METHOD /path"``) an endpoint spec names.

    ``*`` is every API endpoint; ``/api/v3/order`` every method of that path; ``POST /api/v3/order``
    or ``POST:/api/v3/order`` one endpoint; ``trading`` the default ``TRADING_ENDPOINTS``.
    """
    text = spec.strip()
    if text == "*":
        return frozenset(ENDPOINTS)
    if text == "trading":
        return frozenset(TRADING_ENDPOINTS)
    method, sep, path = text.replace(":", " ", 1).partition(" ")
    if not sep:
        method, path = "", text
    method, path = method.strip().upper(), path.strip()
    found = frozenset(
        k for k in ENDPOINTS if k.endswith(f" {path}") and (not method or k.startswith(f"{method} "))
    )
    if not found:
        raise ValueError(
            f"unknown endpoint {spec!r}: write '*', 'trading', a path like /api/v3/order or "
            f"'POST /api/v3/order'; known: {', '.join(ENDPOINTS)}"
        )
    return found


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Inject ``kind`` into the requests to ``endpoints``: with probability ``value``, or, for
    ``latency_ms``, a delay of ``value`` ms on every one of them."""

    kind: FaultKind
    value: float
    endpoints: frozenset[str] = frozenset(TRADING_ENDPOINTS)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.kind == "latency_ms":
            if not 0 <= self.value <= 600_000:
                raise ValueError(f"latency_ms={self.value}: give a delay in ms between 0 and 600000")
        elif not 0.0 <= self.value <= 1.0:
            raise ValueError(f"{self.kind}={self.value}: give a probability between 0 and 1")
        unknown = self.endpoints - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoint(s) {sorted(unknown)}; known: {', '.join(ENDPOINTS)}")

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """Read ``KIND=VALUE[@ENDPOINT[,ENDPOINT...]]``, e.g. ``5xx=0.1@POST:/api/v3/order``."""
        rule, _, where = text.partition("@")
        kind, sep, value = rule.partition("=")
        if not sep:
            raise ValueError(f"fault {text!r}: write KIND=VALUE[@ENDPOINT,...], e.g. 429=0.05")
        kind = kind.strip()
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault {text!r}: unknown kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        try:
            number = float(value)
        except ValueError as e:
            raise ValueError(f"fault {text!r}: {value!r} is not a number") from e
        endpoints = frozenset(TRADING_ENDPOINTS)
        if where.strip():
            endpoints = frozenset(k for spec in where.split(",") for k in endpoints_matching(spec))
        return cls(kind, number, endpoints)


def check_fail_next(kind: object, count: object) -> None:
    """Refuse a ``fail_next`` request that is not a fault kind or not a count in 1..MAX_FAIL_NEXT."""
    if kind not in FAULT_KINDS or kind == "latency_ms":
        raise ValueError(f"fail_next: kind must be one of {', '.join(FAULT_KINDS[1:])}, got {kind!r}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FAIL_NEXT:
        raise ValueError(f"fail_next: count must be a whole number from 1 to {MAX_FAIL_NEXT}, got {count!r}")


def check_timeout_ms(timeout_ms: object) -> int:
    """Return a valid ``timeout_ms`` (whole ms, 0 to 600000) or raise ValueError."""
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 0 <= timeout_ms <= 600_000:
        raise ValueError(f"timeout_ms must be a whole number of ms from 0 to 600000, got {timeout_ms!r}")
    return timeout_ms


def check_seed(seed: object) -> int:
    """Return a valid seed (a whole number) or raise ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or abs(seed) > 2**63:
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    return seed


class _Faults:
    """The fault plan of one server: rules, a seeded RNG and queued one-shot faults."""

    def __init__(self, rules: Sequence[FaultRule], seed: int, timeout_ms: int) -> None:
        self._lock = threading.Lock()
        self.rules: tuple[FaultRule, ...] = tuple(rules)
        self.seed = seed
        self.timeout_ms = timeout_ms
        self._rng = random.Random(seed)
        self._queued: deque[list[Any]] = deque()  # [kind, endpoints, requests left]

    def configure(
        self, rules: Sequence[FaultRule] | None, seed: int | None, timeout_ms: int | None, clear: bool
    ) -> None:
        if seed is not None:
            check_seed(seed)
        if timeout_ms is not None:
            check_timeout_ms(timeout_ms)
        with self._lock:
            if clear:
                self.rules = ()
                self._queued.clear()
            if rules is not None:
                self.rules = tuple(rules)
            if seed is not None:
                self.seed = seed
                self._rng = random.Random(seed)
            if timeout_ms is not None:
                self.timeout_ms = check_timeout_ms(timeout_ms)

    def queue(self, kind: FaultKind, endpoints: frozenset[str], count: int) -> None:
        check_fail_next(kind, count)
        with self._lock:
            queued = sum(item[2] for item in self._queued)
            if len(self._queued) >= MAX_QUEUED_RULES or queued + count > MAX_FAIL_NEXT:
                raise ValueError(
                    f"fail_next: at most {MAX_FAIL_NEXT} queued requests in {MAX_QUEUED_RULES} entries; "
                    f"{queued} are queued already (clear them first)"
                )
            self._queued.append([kind, endpoints, count])

    def draw(self, endpoint: str) -> tuple[float, FaultKind | None]:
        """Return (latency in ms, the fault hitting this request or None)."""
        with self._lock:
            latency = max(
                (r.value for r in self.rules if r.kind == "latency_ms" and endpoint in r.endpoints),
                default=0.0,
            )
            for i, item in enumerate(self._queued):
                if endpoint in item[1]:
                    item[2] -= 1
                    if not item[2]:
                        del self._queued[i]
                    return latency, cast(FaultKind, item[0])
            # Draw only for the rules that apply, so that a request without faults uses no randomness.
            for rule in self.rules:
                applies = rule.kind != "latency_ms" and rule.value and endpoint in rule.endpoints
                if applies and self._rng.random() < rule.value:
                    return latency, rule.kind
            return latency, None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seed": self.seed,
                "timeout_ms": self.timeout_ms,
                "rules": [
                    {"kind": r.kind, "value": r.value, "endpoints": sorted(r.endpoints)} for r in self.rules
                ],
                "queued": [{"kind": k, "endpoints": sorted(e), "count": n} for k, e, n in self._queued],
            }


# -- state ---------------------------------------------------------------------------------------


class _ApiError(Exception):
    """A Binance error answer: HTTP status and ``{"code": code, "msg": msg}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def _bad_request(code: int, msg: str) -> _ApiError:
    return _ApiError(400, code, msg)


@dataclass(slots=True)
class _Order:
    order_id: int
    symbol: str
    client_order_id: str
    engine_cid: str
    side: Side
    order_type: str
    time_in_force: str
    price: int
    qty: int
    time_ms: int
    update_ms: int
    expired: bool = False
    quote_qu: int = 0  # the quote of its fills so far (taker fills may be at better prices)


@dataclass(frozen=True, slots=True)
class _Trade:
    trade_id: int
    order_id: int
    side: Side
    price: int
    qty: int
    fee_qu: int
    ts_ms: int
    maker: bool = True
    commission: str = "0"  # exactly what the matching engine charged, 8 decimals
    commission_asset: str = ""


@dataclass(slots=True)
class _Account:
    index: int
    spec: SimAccount
    engine: MatchingEngine
    orders: dict[int, _Order] = field(default_factory=dict)
    by_client_id: dict[tuple[str, str], _Order] = field(default_factory=dict)  # the latest per id
    by_engine_cid: dict[tuple[str, str], _Order] = field(default_factory=dict)
    client_id_uses: dict[tuple[str, str], int] = field(default_factory=dict)
    trades: dict[str, list[_Trade]] = field(default_factory=dict)
    next_client_id: int = 1


@dataclass(slots=True)
class _Feed:
    spec: MarketSpec
    market_id: str
    precision: Precision
    max_price: Decimal  # PRICE_FILTER maxPrice: a power of ten at least 100x the data's highest price
    cursor: int = 0  # candles applied (closed)
    taker_ppm: int = 0  # the taker fee in ppm (MarketSpec.taker_fee, else the maker fee)


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    access: Literal["public", "read", "trade", "key"]


_ROUTES: Final[Mapping[str, _Route]] = {
    "GET /api/v3/ping": _Route("ping", "public"),
    "GET /api/v3/time": _Route("time", "public"),
    "GET /api/v3/exchangeInfo": _Route("exchange_info", "public"),
    "GET /api/v3/klines": _Route("klines", "public"),
    "GET /api/v3/depth": _Route("depth", "public"),
    "GET /api/v3/ticker/24hr": _Route("ticker_24hr", "public"),
    "GET /api/v3/ticker/price": _Route("ticker_price", "public"),
    "GET /api/v3/ticker/bookTicker": _Route("book_ticker", "public"),
    "GET /api/v3/aggTrades": _Route("agg_trades", "public"),
    "GET /api/v3/account": _Route("account", "read"),
    "POST /api/v3/order": _Route("new_order", "trade"),
    "GET /api/v3/order": _Route("query_order", "read"),
    "DELETE /api/v3/order": _Route("cancel_order", "trade"),
    "GET /api/v3/openOrders": _Route("open_orders", "read"),
    "DELETE /api/v3/openOrders": _Route("cancel_open_orders", "trade"),
    "GET /api/v3/myTrades": _Route("my_trades", "read"),
    "GET /api/v3/allOrders": _Route("all_orders", "read"),
    "GET /sapi/v1/account/apiRestrictions": _Route("api_restrictions", "key"),
    "GET /api/v3/avgPrice": _Route("avg_price", "public"),
    "POST /api/v3/order/test": _Route("test_order", "trade"),
    "GET /api/v3/account/commission": _Route("account_commission", "read"),
    "GET /sapi/v1/asset/tradeFee": _Route("trade_fee", "read"),
    "GET /sapi/v1/capital/config/getall": _Route("capital_config", "read"),
    "GET /sapi/v1/margin/allPairs": _Route("margin_pairs", "read"),
    "GET /sapi/v1/margin/isolated/allPairs": _Route("margin_pairs", "read"),
    "GET /fapi/v1/exchangeInfo": _Route("futures_exchange_info", "public"),
    "GET /dapi/v1/exchangeInfo": _Route("futures_exchange_info", "public"),
}
assert set(_ROUTES) == set(ENDPOINTS)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    payload: object
    headers: tuple[tuple[str, str], ...] = ()


# -- the server ----------------------------------------------------------------------------------


class SimServer:
    """Serve one MatchingEngine per account as Binance's Spot REST API on loopback.

    Args:
        markets: the markets by unified symbol (``BTC/USDT``), each with its candles.
        accounts: the accounts; their engines all see the same candles.
        speed: advance the clock by itself, ``speed`` candles per second (needs ``manual=False``).
        manual: the clock moves only by ``advance`` / ``POST /sim/advance``.
        warmup: clock steps taken before serving (1: the first candle is closed, there is a book).
        faults, timeout_ms: the fault plan (see the module docstring); ``seed`` seeds its draws.
        time_offset_ms: added to every timestamp served (the market re-stamped); None: computed at
            ``start`` so that the market time is the wall clock then, to the candle interval.
        control: serve the ``/sim/`` test controls (always on with ``manual``).
        rate_limits: the request weight and order count limits (``sim_limits``); None: counted and
            reported in the headers but never reached (tests that hammer the server). The CLI
            passes Binance's (``RateLimits()``) unless told otherwise.
        max_body_bytes, read_timeout_s: a longer request body gets 413; a connection silent this
            long while a request is read is closed.
    """

    def __init__(
        self,
        markets: Mapping[str, MarketSpec],
        accounts: Sequence[SimAccount],
        *,
        speed: float | None = None,
        manual: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        warmup: int = 1,
        faults: Sequence[FaultRule] = (),
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        time_offset_ms: int | None = 0,
        control: bool = False,
        rate_limits: RateLimits | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        if not markets:
            raise ValueError("the sim-exchange needs at least one market")
        if not accounts:
            raise ValueError("the sim-exchange needs at least one account")
        if speed is not None and (manual or speed <= 0):
            raise ValueError("speed needs manual=False and a positive number of candles per second")
        if speed is None and not manual:
            raise ValueError("manual=False needs a speed (candles per second)")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        if max_body_bytes < 0 or not read_timeout_s > 0:
            raise ValueError("max_body_bytes must be >= 0 and read_timeout_s > 0")
        self._feeds: dict[str, _Feed] = {}
        self._by_market_id: dict[str, str] = {}
        infos: dict[str, MarketInfo] = {}
        for symbol, spec in markets.items():
            if symbol != spec.symbol:
                raise ValueError(f"market {spec.symbol} is registered under the key {symbol!r}")
            info = spec.info
            market_id = info.base + info.quote
            precision = Precision(info.tick_size, info.lot_size)
            max_price = _MAX_PRICE
            while max_price < 100 * precision.ticks_to_price(int(spec.candles.high.max())):
                max_price *= 10
            self._feeds[symbol] = _Feed(
                spec, market_id, precision, max_price, taker_ppm=int(spec.taker * PPM)
            )
            self._by_market_id[market_id] = symbol
            infos[symbol] = info
        self._accounts: dict[str, _Account] = {}
        for i, account in enumerate(accounts):
            if account.api_key in self._accounts:
                raise ValueError(f"accounts[{i}] repeats the api_key of another account")
            try:
                engine = MatchingEngine(infos, account.balances, account.fee_asset, account.fee_asset_price)
            except ValueError as e:
                raise ValueError(f"accounts[{i}] ({account.name or account.api_key}): {e}") from e
            self._accounts[account.api_key] = _Account(i, account, engine)
        self._step_ms = min(f.spec.candles.interval_ms for f in self._feeds.values())
        self._align_ms = max(f.spec.candles.interval_ms for f in self._feeds.values())
        self._now_ms = min(int(f.spec.candles.ts_ms[0]) for f in self._feeds.values())
        self._start_ms = self._now_ms
        self._exhausted = False
        self._lock = threading.RLock()
        self._faults = _Faults(faults, seed, check_timeout_ms(timeout_ms))
        self._wall_offset = time_offset_ms is None
        self._offset_ms = time_offset_ms or 0
        self._control = manual or control
        self._limiter = RateLimiter(rate_limits or UNLIMITED)
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s
        self._speed = speed
        self._host = host
        self._port = port
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._advance_locked(warmup)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in background threads; return the base URL ``http://HOST:PORT``."""
        if self._httpd is not None:
            raise RuntimeError("the sim-exchange is already running")
        if self._wall_offset:
            with self._lock:
                self._offset_ms = _wall_offset(self._now_ms, self._align_ms)
        self._stopping.clear()
        self._httpd = _HttpServer((self._host, self._port), self)
        server = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-exchange", daemon=True
        )
        server.start()
        self._threads = [server]
        if self._speed is not None:
            clock = threading.Thread(target=self._run_clock, name="sim-exchange-clock", daemon=True)
            clock.start()
            self._threads.append(clock)
        _log.info(
            "sim-exchange serving url=%s symbols=%s accounts=%d",
            self.url,
            list(self._feeds),
            len(self._accounts),
        )
        return self.url

    def stop(self) -> None:
        """Stop serving and the clock; requests still sleeping (latency, timeout) are dropped."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:PORT``) of the running server."""
        if self._httpd is None:
            raise RuntimeError("the sim-exchange is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- clock and inspection ----------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """Return the server time (ms) ``/api/v3/time`` answers: the market time plus the offset."""
        with self._lock:
            return self._now_ms + self._offset_ms

    @property
    def market_ms(self) -> int:
        """Return the market time in the data's own clock: every candle closing by then is applied."""
        with self._lock:
            return self._now_ms

    @property
    def time_offset_ms(self) -> int:
        """Return what is added to the data's timestamps when served (0 until ``start`` if computed)."""
        with self._lock:
            return self._offset_ms

    @property
    def exhausted(self) -> bool:
        """Return True once every market's candles have all been applied."""
        with self._lock:
            return self._exhausted

    def advance(self, candles: int = 1) -> int:
        """Move the market clock ``candles`` intervals forward, filling what they trade through.

        Returns the new market time; stops early at the end of the data.
        """
        if candles < 0:
            raise ValueError(f"candles must be >= 0, got {candles}")
        with self._lock:
            self._advance_locked(candles)
            return self._now_ms + self._offset_ms

    def engine(self, api_key: str) -> MatchingEngine:
        """Return the matching engine of the account with ``api_key`` (for assertions)."""
        return self._account_of(api_key).engine

    def market(self, symbol: str) -> MarketSpec:
        """Return the market ``symbol`` (its rules and all its candles)."""
        return self._feeds[symbol].spec

    def closed_candles(self, symbol: str) -> int:
        """Return how many candles of ``symbol`` are closed (have been applied)."""
        with self._lock:
            return self._feeds[symbol].cursor

    def state(self) -> dict[str, Any]:
        """Return what ``GET /sim/state`` answers: time, candles closed, balances, open orders."""
        with self._lock:
            accounts = []
            for account in self._accounts.values():
                engine = account.engine
                balances = {
                    asset: {"free": _fmt(free), "locked": _fmt(engine.locked(asset))}
                    for asset, free in sorted(engine.balances().items())
                }
                open_count = sum(len(engine.open_orders(s)) for s in self._feeds)
                accounts.append(
                    {
                        "name": account.spec.name or f"account-{account.index}",
                        "api_key": account.spec.api_key,
                        "balances": balances,
                        "open_orders": open_count,
                        "trades": sum(len(t) for t in account.trades.values()),
                    }
                )
            return {
                "time": self._now_ms + self._offset_ms,
                "exhausted": self._exhausted,
                "candles": {s: f.cursor for s, f in self._feeds.items()},
                "accounts": accounts,
            }

    # -- faults --------------------------------------------------------------------------------

    def set_faults(
        self,
        rules: Sequence[FaultRule] | None = None,
        *,
        seed: int | None = None,
        timeout_ms: int | None = None,
        clear: bool = False,
    ) -> None:
        """Replace the fault rules (when given), reseed the draws, set the timeout fault's wait.

        ``clear`` first drops every rule and queued fault.
        """
        self._faults.configure(rules, seed, timeout_ms, clear)

    def fail_next(self, kind: FaultKind, endpoint: str = "POST /api/v3/order", count: int = 1) -> None:
        """Make the next ``count`` requests to ``endpoint`` (a spec as in ``endpoints_matching``) fail."""
        self._faults.queue(kind, endpoints_matching(endpoint), count)

    def faults(self) -> dict[str, Any]:
        """Return the fault plan: seed, timeout, rules and queued faults."""
        return self._faults.describe()

    # -- internals: clock ----------------------------------------------------------------------

    def _run_clock(self) -> None:
        speed = self._speed
        assert speed is not None
        started = time.monotonic()
        done = 0
        while not self._stopping.is_set():
            due = int((time.monotonic() - started) * speed) - done
            if due > 0:
                with self._lock:
                    self._advance_locked(due)
                    exhausted = self._exhausted
                done += due
                if exhausted:
                    _log.info(
                        "sim-exchange clock reached the end of the data at market time %d", self._now_ms
                    )
                    return
            self._stopping.wait(min(1.0 / speed, 0.25))

    def _advance_locked(self, steps: int) -> int:
        taken = 0
        while taken < steps and not self._exhausted:
            target = self._now_ms + self._step_ms
            for symbol, feed in self._feeds.items():
                candles = feed.spec.candles
                interval = candles.interval_ms
                n = len(candles)
                while feed.cursor < n and int(candles.ts_ms[feed.cursor]) + interval <= target:
                    i = feed.cursor
                    candle = Candle(
                        int(candles.ts_ms[i]) + self._offset_ms,  # fills carry served times
                        int(candles.open[i]),
                        int(candles.high[i]),
                        int(candles.low[i]),
                        int(candles.close[i]),
                        float(candles.volume[i]),
                    )
                    for account in self._accounts.values():
                        for fill in account.engine.on_candle(symbol, candle, interval):
                            order = account.by_engine_cid[(symbol, fill.client_order_id)]
                            self._record_fill(account, order, fill, maker=True)
                    feed.cursor += 1
            self._now_ms = target
            taken += 1
            self._exhausted = all(f.cursor >= len(f.spec.candles) for f in self._feeds.values())
        return taken

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the server stops first; return True if it is stopping."""
        return self._stopping.wait(seconds)

    # -- internals: requests -------------------------------------------------------------------

    def _account_of(self, api_key: str) -> _Account:
        account = self._accounts.get(api_key)
        if account is None:
            raise KeyError(f"no account with api_key {api_key!r}")
        return account

    def _handle(
        self, route: _Route, query: str, body: str, api_key: str | None, endpoint: str = ""
    ) -> _Reply:
        """Answer one API request (auth, rate limits, then the endpoint) under the lock."""
        headers: tuple[tuple[str, str], ...] = ()
        try:
            params = _params(query, body if route.access != "public" else "")
            account = None
            if route.access != "public":
                account = self._authenticate(route, query, body, params, api_key)
            verdict = self._limiter.check(endpoint, params, None if account is None else account.spec.api_key)
            headers = verdict.headers
            if verdict.refused is not None:
                code, msg, retry_after = verdict.refused
                return _Reply(429, {"code": code, "msg": msg}, (*headers, ("Retry-After", str(retry_after))))
            handler = cast(
                Callable[[_Account | None, dict[str, str]], object], getattr(self, f"_ep_{route.name}")
            )
            with self._lock:
                payload = handler(account, params)
            return _Reply(200, payload, headers)
        except _ApiError as e:
            return _Reply(e.status, {"code": e.code, "msg": e.msg}, headers)

    def _served_ms(self) -> int:
        """Return the server time: the market time re-stamped by the offset (call under the lock)."""
        return self._now_ms + self._offset_ms

    def _authenticate(
        self, route: _Route, query: str, body: str, params: Mapping[str, str], api_key: str | None
    ) -> _Account:
        if not api_key:
            raise _ApiError(401, -2015, MSG_BAD_KEY)
        if not API_KEY_RE.match(api_key):
            raise _ApiError(401, -2014, MSG_KEY_FORMAT)
        account = self._accounts.get(api_key)
        if account is None:
            raise _ApiError(401, -2015, MSG_BAD_KEY)
        signature = params.get("signature")
        if not signature:
            raise _mandatory("signature")
        # HMAC over the raw query string followed by the raw body, without the signature itself.
        payload = _without_signature(query) + _without_signature(body)
        # http.server decodes the request line as latin-1 and so does _serve for the body: encoding
        # back with latin-1 gives the bytes exactly as received.
        expected = _hmac_hex(account.spec.secret, payload.encode("latin-1"))
        if not hmac.compare_digest(expected, signature.lower()):
            raise _bad_request(-1022, MSG_BAD_SIGNATURE)
        timestamp = _int_param(params, "timestamp", required=True)
        assert timestamp is not None
        recv_window = Decimal(DEFAULT_RECV_WINDOW_MS)
        if "recvWindow" in params:
            try:
                recv_window = Decimal(params["recvWindow"])
            except InvalidOperation as e:
                raise _bad_request(-1100, "Illegal characters found in parameter 'recvWindow'.") from e
            if not recv_window.is_finite() or recv_window <= 0 or recv_window > MAX_RECV_WINDOW_MS:
                raise _bad_request(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}.")
        # Clients sign with the wall clock (ccxt, python-binance's Client, Binance's SDK) or with
        # the server's clock learnt at start (python-binance's AsyncClient). Re-stamped to the
        # wall clock, the server time runs at the replay's speed from the wall clock at start, so
        # a timestamp between the two clocks is accepted, with Binance's margins (1000 ms ahead,
        # recvWindow behind). With the data's own times only the wall clock counts.
        wall_ms = time.time_ns() // 1_000_000
        with self._lock:
            served_ms = self._served_ms() if self._wall_offset else wall_ms
        if timestamp >= max(wall_ms, served_ms) + 1000:
            raise _bad_request(-1021, MSG_AHEAD)
        if min(wall_ms, served_ms) - timestamp > recv_window:
            raise _bad_request(-1021, MSG_RECV_WINDOW)
        spec = account.spec
        if route.access == "read" and not spec.permission("enableReading"):
            raise _ApiError(401, -2015, MSG_BAD_KEY)
        if route.access == "trade" and not spec.permission("enableSpotAndMarginTrading"):
            raise _ApiError(401, -2015, MSG_BAD_KEY)
        return account

    # -- public endpoints ----------------------------------------------------------------------

    def _ep_ping(self, _account: _Account | None, _params: dict[str, str]) -> object:
        return {}

    def _ep_time(self, _account: _Account | None, _params: dict[str, str]) -> object:
        return {"serverTime": self._served_ms()}

    def _ep_exchange_info(self, _account: _Account | None, params: dict[str, str]) -> object:
        symbols = self._symbols_param(params, default_all=True)
        return {
            "timezone": "UTC",
            "serverTime": self._served_ms(),
            "rateLimits": self._limiter.limits.exchange_info(),
            "exchangeFilters": [],
            "symbols": [self._symbol_info(self._feeds[s]) for s in symbols],
        }

    def _symbol_info(self, feed: _Feed) -> dict[str, Any]:
        info = feed.spec.info
        return {
            "symbol": feed.market_id,
            "status": "TRADING",
            "baseAsset": info.base,
            "baseAssetPrecision": 8,
            "quoteAsset": info.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "opoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _fmt(info.tick_size),
                    "maxPrice": _fmt(feed.max_price),
                    "tickSize": _fmt(info.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _fmt(info.lot_size),
                    "maxQty": _fmt(info.lot_size * _MAX_QTY_LOTS),
                    "stepSize": _fmt(info.lot_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": _fmt(Decimal(0)),
                    "maxQty": _fmt(info.lot_size * _MAX_QTY_LOTS),
                    "stepSize": _fmt(Decimal(0)),
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": _fmt(info.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": _fmt(_MAX_NOTIONAL),
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": MAX_NUM_ORDERS},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _ep_klines(self, _account: _Account | None, params: dict[str, str]) -> object:
        """Candles by served open time, the last one still forming as on Binance.

        The forming candle holds the closed candles of its interval so far (an hour built from the
        minutes already closed); when none has closed yet it is flat at the last close with no
        volume: nothing of the future candle is shown. The data has no trade counts or taker-buy
        volumes: they are 0.
        """
        feed = self._feed_param(params)
        interval_name = params.get("interval")
        if not interval_name:
            raise _mandatory("interval")
        interval = _INTERVALS.get(interval_name)
        candles = feed.spec.candles
        if interval is None or interval % candles.interval_ms:
            raise _bad_request(-1120, "Invalid interval.")
        limit = _limit_param(params, default=500, maximum=1000)
        start = _int_param(params, "startTime")
        end = _int_param(params, "endTime")
        n = feed.cursor
        now = self._served_ms()
        ts = candles.ts_ms[:n] + self._offset_ms
        offset = _WEEK_OFFSET_MS if interval_name == "1w" else 0

        def bucket(t: int) -> int:
            return (t - offset) // interval * interval + offset

        lo = 0 if start is None else int(np.searchsorted(ts, bucket(start), "left"))
        hi = n if end is None else int(np.searchsorted(ts, bucket(end) + interval, "left"))
        ratio = interval // candles.interval_ms
        if start is None and hi > lo:
            lo = max(lo, hi - (limit + 1) * ratio)
            lo = int(np.searchsorted(ts, bucket(int(ts[lo])), "left"))  # start on a bucket boundary
        elif start is not None:
            hi = min(hi, lo + (limit + 1) * ratio)
        tick = feed.precision.tick
        rows: list[list[Any]] = []
        if hi > lo:
            part = slice(lo, hi)
            opens_ms = (ts[part] - offset) // interval * interval + offset
            starts = np.flatnonzero(np.diff(opens_ms, prepend=opens_ms[0] - 1))
            ends = np.append(starts[1:], len(opens_ms))
            bucket_ms = opens_ms[starts]
            high = np.maximum.reduceat(candles.high[part], starts)
            low = np.minimum.reduceat(candles.low[part], starts)
            volume = np.add.reduceat(candles.volume[part], starts)
            close_px = candles.close[part]
            quote_volume = np.add.reduceat(candles.volume[part] * close_px.astype(np.float64), starts)
            for r in range(len(starts)):
                rows.append(
                    _kline_row(
                        int(bucket_ms[r]),
                        interval,
                        tick,
                        (
                            int(candles.open[lo + starts[r]]),
                            int(high[r]),
                            int(low[r]),
                            int(close_px[ends[r] - 1]),
                        ),
                        float(volume[r]),
                        float(quote_volume[r]) * float(tick),
                    )
                )
        forming = bucket(now)
        if n and not self._exhausted and (not rows or rows[-1][0] < forming) and hi == n:
            last = int(candles.close[n - 1])
            rows.append(_kline_row(forming, interval, tick, (last, last, last, last), 0.0, 0.0))
        rows = [
            row
            for row in rows
            if (start is None or row[0] >= start) and (end is None or row[0] <= end) and row[0] <= now
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def _ep_depth(self, _account: _Account | None, params: dict[str, str]) -> object:
        feed = self._feed_param(params)
        limit = _limit_param(params, default=100, maximum=5000)
        book = self._book(feed)
        if book is None:
            return {"lastUpdateId": feed.cursor, "bids": [], "asks": []}
        unit = self._level_lots(feed)
        p = feed.precision
        bids = [
            [_fmt(p.ticks_to_price(book.best_bid - k)), _fmt(p.lots_to_qty(unit * (k + 1)))]
            for k in range(min(limit, book.best_bid))  # prices stay positive
        ]
        asks = [
            [_fmt(p.ticks_to_price(book.best_ask + k)), _fmt(p.lots_to_qty(unit * (k + 1)))]
            for k in range(limit)
        ]
        return {"lastUpdateId": feed.cursor, "bids": bids, "asks": asks}

    def _ep_ticker_24hr(self, _account: _Account | None, params: dict[str, str]) -> object:
        if "symbol" in params:
            return self._ticker(self._feed_param(params))
        return [self._ticker(self._feeds[s]) for s in self._symbols_param(params, default_all=True)]

    def _ep_ticker_price(self, _account: _Account | None, params: dict[str, str]) -> object:
        def price(feed: _Feed) -> dict[str, str]:
            n = feed.cursor
            last = int(feed.spec.candles.close[n - 1]) if n else 0
            return {"symbol": feed.market_id, "price": _fmt(feed.precision.ticks_to_price(last))}

        if "symbol" in params:
            return price(self._feed_param(params))
        return [price(self._feeds[s]) for s in self._symbols_param(params, default_all=True)]

    def _ep_book_ticker(self, _account: _Account | None, params: dict[str, str]) -> object:
        if "symbol" in params:
            return self._book_ticker(self._feed_param(params))
        return [self._book_ticker(self._feeds[s]) for s in self._symbols_param(params, default_all=True)]

    def _ep_agg_trades(self, _account: _Account | None, params: dict[str, str]) -> object:
        feed = self._feed_param(params)
        limit = _limit_param(params, default=500, maximum=1000)
        from_id = _int_param(params, "fromId")
        start = _int_param(params, "startTime")
        end = _int_param(params, "endTime")
        candles = feed.spec.candles
        n = feed.cursor
        close_ms = candles.ts_ms[:n] + (candles.interval_ms - 1 + self._offset_ms)
        if from_id is not None:
            lo = max(0, from_id - 1)
            hi = min(n, lo + limit)
        elif start is not None or end is not None:
            lo = 0 if start is None else int(np.searchsorted(close_ms, start, "left"))
            hi = n if end is None else int(np.searchsorted(close_ms, end, "right"))
            hi = min(hi, lo + limit)
        else:
            hi = n
            lo = max(0, n - limit)
        p = feed.precision
        return [
            {
                "a": i + 1,
                "p": _fmt(p.ticks_to_price(int(candles.close[i]))),
                "q": f"{float(candles.volume[i]):.8f}",
                "f": i + 1,
                "l": i + 1,
                "T": int(close_ms[i]),
                "m": bool(candles.close[i] < candles.open[i]),
                "M": True,
            }
            for i in range(lo, hi)
        ]

    # -- signed endpoints ----------------------------------------------------------------------

    def _ep_account(self, account: _Account | None, params: dict[str, str]) -> object:
        assert account is not None
        engine = account.engine
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        balances = []
        for asset, free in sorted(engine.balances().items()):
            locked = engine.locked(asset)
            if omit_zero and not free and not locked:
                continue
            balances.append({"asset": asset, "free": _fmt(free), "locked": _fmt(locked)})
        fee = max(f.spec.info.maker_fee for f in self._feeds.values())
        taker = max(f.spec.taker for f in self._feeds.values())
        can_trade = account.spec.permission("enableSpotAndMarginTrading")
        return {
            "makerCommission": int(fee * 10_000),
            "takerCommission": int(taker * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _fmt(fee),
                "taker": _fmt(taker),
                "buyer": _fmt(Decimal(0)),
                "seller": _fmt(Decimal(0)),
            },
            "canTrade": can_trade,
            "canWithdraw": True,  # an account flag on Binance, not the key's permission
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._served_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": account.index + 1,
        }

    def _ep_avg_price(self, _account: _Account | None, params: dict[str, str]) -> object:
        """The volume-weighted close of the candles closed in the last 5 minutes (else the last close)."""
        feed = self._feed_param(params)
        candles = feed.spec.candles
        n = feed.cursor
        if not n:
            return {"mins": 5, "price": _fmt(Decimal(0)), "closeTime": self._served_ms()}
        lo = int(np.searchsorted(candles.ts_ms[:n] + candles.interval_ms, self._now_ms - 5 * 60_000, "right"))
        lo = min(lo, n - 1)
        volume = candles.volume[lo:n]
        closes = candles.close[lo:n].astype(np.float64)
        total = float(volume.sum())
        ticks = float((volume * closes).sum()) / total if total > 0 else float(candles.close[n - 1])
        close_ms = int(candles.ts_ms[n - 1]) + candles.interval_ms - 1 + self._offset_ms
        return {"mins": 5, "price": f"{ticks * float(feed.precision.tick):.8f}", "closeTime": close_ms}

    def _commission_rates(self, feed: _Feed) -> dict[str, Any]:
        """Return ``GET /api/v3/account/commission``'s answer for one symbol (no discounts, no tax)."""
        zero = _fmt(Decimal(0))
        maker, taker = feed.spec.info.maker_fee, feed.spec.taker
        return {
            "symbol": feed.market_id,
            "standardCommission": {"maker": _fmt(maker), "taker": _fmt(taker), "buyer": zero, "seller": zero},
            "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": zero,
            },
        }

    def _ep_account_commission(self, _account: _Account | None, params: dict[str, str]) -> object:
        return self._commission_rates(self._feed_param(params))

    def _ep_trade_fee(self, _account: _Account | None, params: dict[str, str]) -> object:
        """``GET /sapi/v1/asset/tradeFee`` (ccxt's ``fetch_trading_fee(s)``): one item per symbol."""
        return [
            {
                "symbol": self._feeds[s].market_id,
                "makerCommission": _fmt(self._feeds[s].spec.info.maker_fee),
                "takerCommission": _fmt(self._feeds[s].spec.taker),
            }
            for s in self._symbols_param(params, default_all=True)
        ]

    def _ep_capital_config(self, account: _Account | None, _params: dict[str, str]) -> object:
        """``GET /sapi/v1/capital/config/getall`` (ccxt's ``fetch_currencies``): no deposit or withdrawal."""
        assert account is not None
        engine = account.engine
        assets = set(engine.balances())
        for feed in self._feeds.values():
            assets |= {feed.spec.info.base, feed.spec.info.quote}
        zero = _fmt(Decimal(0))
        return [
            {
                "coin": asset,
                "name": asset,
                "depositAllEnable": False,
                "withdrawAllEnable": False,
                "free": _fmt(engine.free(asset)),
                "locked": _fmt(engine.locked(asset)),
                "freeze": zero,
                "withdrawing": zero,
                "ipoing": zero,
                "ipoable": zero,
                "storage": zero,
                "isLegalMoney": False,
                "trading": True,
                "networkList": [],
            }
            for asset in sorted(assets)
        ]

    def _ep_futures_exchange_info(self, _account: _Account | None, _params: dict[str, str]) -> object:
        """The futures markets ccxt loads with its default ``fetchMarkets`` types: none (spot only)."""
        return {
            "timezone": "UTC",
            "serverTime": self._served_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [],
            "symbols": [],
        }

    def _ep_margin_pairs(self, _account: _Account | None, _params: dict[str, str]) -> object:
        """The margin pair lists ccxt reads with ``fetchMargins`` on: none, the simulator is spot only."""
        return []

    def _ep_api_restrictions(self, account: _Account | None, _params: dict[str, str]) -> object:
        assert account is not None
        answer: dict[str, Any] = {
            "ipRestrict": account.spec.permission("ipRestrict"),
            "createTime": self._start_ms + self._offset_ms,
        }
        for name in PERMISSION_FIELDS[1:]:
            answer[name] = account.spec.permission(name)
        return answer

    def _ep_new_order(self, account: _Account | None, params: dict[str, str]) -> object:
        return self._new_order(account, params, test=False)

    def _ep_test_order(self, account: _Account | None, params: dict[str, str]) -> object:
        """``POST /api/v3/order/test``: every check of a new order, nothing placed."""
        answer = self._new_order(account, params, test=True)
        if params.get("computeCommissionRates") == "true":
            return self._commission_rates(self._feed_param(params))
        return answer

    def _new_order(self, account: _Account | None, params: dict[str, str], *, test: bool) -> object:
        assert account is not None
        feed = self._feed_param(params)
        symbol = feed.spec.symbol
        side_name = params.get("side")
        if not side_name:
            raise _mandatory("side")
        if side_name not in ("BUY", "SELL"):
            raise _bad_request(-1117, "Invalid side.")
        order_type = params.get("type")
        if not order_type:
            raise _mandatory("type")
        if order_type in _NOT_SUPPORTED_TYPES:
            raise _bad_request(-2010, MSG_TYPE_NOT_SUPPORTED)
        if order_type not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise _bad_request(-1116, "Invalid orderType.")
        time_in_force = params.get("timeInForce")
        if order_type in ("LIMIT_MAKER", "MARKET"):
            if time_in_force is not None:
                raise _bad_request(-1106, "Parameter 'timeInForce' sent when not required.")
            time_in_force = "GTC"
        elif not time_in_force:
            raise _mandatory("timeInForce")
        elif time_in_force not in ("GTC", "IOC", "FOK"):
            raise _bad_request(-1115, "Invalid timeInForce.")
        resp_type = params.get("newOrderRespType") or ("ACK" if order_type == "LIMIT_MAKER" else "FULL")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise _bad_request(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
        client_id = params.get("newClientOrderId")
        if client_id is None or client_id == "":
            client_id = f"sim{account.index}x{account.next_client_id:016d}"
            account.next_client_id += 1
        elif not _CLIENT_ID_RE.match(client_id):
            raise _bad_request(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        side = Side.BUY if side_name == "BUY" else Side.SELL
        book = self._book(feed)
        levels: list[tuple[int, int]] | None = None  # set: the order takes (a taker execution)
        if order_type == "MARKET":
            ticks, lots, levels = self._market_order(feed, book, side, params)
        else:
            if "quoteOrderQty" in params:
                raise _bad_request(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            qty = _decimal_param(params, "quantity")
            price = _decimal_param(params, "price")
            ticks, lots = self._check_filters(feed, price, qty)
            crosses = book is not None and (
                ticks >= book.best_ask if side is Side.BUY else ticks <= book.best_bid
            )
            if order_type == "LIMIT" and crosses:
                assert book is not None
                levels = _taker_levels(book, self._level_lots(feed), side, ticks, lots, None)
                if time_in_force == "FOK" and sum(n for _, n in levels) < lots:
                    levels = []  # cannot fill in full: it expires, nothing filled
        engine = account.engine
        if len(engine.open_orders(symbol)) >= MAX_NUM_ORDERS:
            raise _bad_request(-1013, "Filter failure: MAX_NUM_ORDERS")
        earlier = account.by_client_id.get((symbol, client_id))
        if earlier is not None and self._status(account, earlier)[0] in ("NEW", "PARTIALLY_FILLED"):
            raise _bad_request(-2010, MSG_DUPLICATE)
        if test:
            return {}
        uses = account.client_id_uses.get((symbol, client_id), 0)
        account.client_id_uses[(symbol, client_id)] = uses + 1
        engine_cid = client_id if uses == 0 else f"{client_id} {uses}"  # a space: never in a client id
        now = self._served_ms()
        intent = PlaceLimit(engine_cid, side, ticks, lots, f"{order_type} {time_in_force}")
        fills: list[Fill] = []
        try:
            if levels is None:
                engine.place(symbol, intent, now)
            else:
                rest = order_type == "LIMIT" and time_in_force == "GTC"
                fills = engine.take(symbol, intent, levels, feed.taker_ppm, now, rest=rest)
        except PostOnlyRejectedError as e:
            raise _bad_request(-2010, MSG_WOULD_TAKE) from e
        except InsufficientFundsError as e:
            raise _bad_request(-2010, MSG_INSUFFICIENT) from e
        except InvalidOrderError as e:
            reason = str(e)
            kind = reason.split(":")[1].strip() if reason.startswith("Filter failure:") else "PRICE_FILTER"
            raise _bad_request(-1013, f"Filter failure: {kind}") from e
        except OrderRejectedError as e:
            raise _bad_request(-2010, str(e)) from e
        order_id = engine.order_id(symbol, engine_cid)
        assert order_id is not None
        order = _Order(
            order_id, symbol, client_id, engine_cid, side, order_type, time_in_force, ticks, lots, now, now
        )
        account.orders[order_id] = order
        account.by_client_id[(symbol, client_id)] = order
        account.by_engine_cid[(symbol, engine_cid)] = order
        trades = [self._record_fill(account, order, fill, maker=False) for fill in fills]
        status = engine.order_status(symbol, engine_cid)
        assert status is not None
        if levels is None and time_in_force in ("IOC", "FOK"):  # it did not cross: nothing fills it
            engine.cancel(symbol, engine_cid, now, f"{time_in_force} expired")
            order.expired = True
        elif status.status == "cancelled":  # a taker's remainder that does not rest expires
            order.expired = True
        if resp_type == "ACK":
            return {
                "symbol": feed.market_id,
                "orderId": order_id,
                "orderListId": -1,
                "clientOrderId": client_id,
                "transactTime": now,
            }
        answer = self._order_json(account, order, compact=True)
        answer["transactTime"] = now
        answer["workingTime"] = now
        if resp_type == "FULL":
            answer["fills"] = [self._fill_json(feed, t) for t in trades]
        return answer

    def _market_order(
        self, feed: _Feed, book: Book | None, side: Side, params: Mapping[str, str]
    ) -> tuple[int, int, list[tuple[int, int]]]:
        """Check a MARKET order (``quantity`` or ``quoteOrderQty``); return (ticks, lots, levels)."""
        if "price" in params:
            raise _bad_request(-1106, "Parameter 'price' sent when not required.")
        has_qty, has_quote = bool(params.get("quantity")), bool(params.get("quoteOrderQty"))
        if has_qty == has_quote:
            if has_qty:
                raise _bad_request(-1106, "Parameter 'quoteOrderQty' sent when not required.")
            raise _bad_request(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if book is None:
            raise _bad_request(-1112, "No orders on book for symbol.")
        p = feed.precision
        best = book.best_ask if side is Side.BUY else book.best_bid
        unit = self._level_lots(feed)
        if has_qty:
            _, lots = self._check_filters(feed, p.ticks_to_price(best), _decimal_param(params, "quantity"))
            levels = _taker_levels(book, unit, side, None, lots, None)
        else:
            quote = _decimal_param(params, "quoteOrderQty")
            if quote < feed.spec.info.min_notional:
                raise _bad_request(-1013, "Filter failure: NOTIONAL")
            levels = _taker_levels(book, unit, side, None, None, p.quote_to_qu(quote))
            lots = sum(n for _, n in levels)
            if not lots:
                raise _bad_request(-1013, "Filter failure: LOT_SIZE")
        worst = levels[-1][0] if levels else best
        return worst, lots, levels

    def _record_fill(self, account: _Account, order: _Order, fill: Fill, *, maker: bool) -> _Trade:
        """Keep one fill of ``order`` as a trade of the account."""
        order.update_ms = fill.ts_ms
        order.quote_qu += fill.price * fill.qty * QU_PER_TICK_LOT
        trade = _Trade(
            int(fill.trade_id),
            order.order_id,
            fill.side,
            fill.price,
            fill.qty,
            fill.fee,
            fill.ts_ms,
            maker,
            fill.commission,
            fill.fee_asset,
        )
        account.trades.setdefault(order.symbol, []).append(trade)
        return trade

    def _fill_json(self, feed: _Feed, trade: _Trade) -> dict[str, Any]:
        """Return one item of a FULL order answer's ``fills``."""
        p = feed.precision
        return {
            "price": _fmt(p.ticks_to_price(trade.price)),
            "qty": _fmt(p.lots_to_qty(trade.qty)),
            "commission": _commission_text(Decimal(trade.commission or 0)),  # what matching charged
            "commissionAsset": trade.commission_asset or feed.spec.info.quote,
            "tradeId": trade.trade_id,
        }

    def _ep_query_order(self, account: _Account | None, params: dict[str, str]) -> object:
        assert account is not None
        order = self._find_order(account, params, -2013, MSG_NO_ORDER)
        return self._order_json(account, order)

    def _ep_cancel_order(self, account: _Account | None, params: dict[str, str]) -> object:
        assert account is not None
        order = self._find_order(account, params, -2011, MSG_UNKNOWN_ORDER)
        if self._status(account, order)[0] not in ("NEW", "PARTIALLY_FILLED"):
            raise _bad_request(-2011, MSG_UNKNOWN_ORDER)
        return self._cancel(account, order, params.get("newClientOrderId"))

    def _ep_open_orders(self, account: _Account | None, params: dict[str, str]) -> object:
        assert account is not None
        symbols = [self._feed_param(params).spec.symbol] if "symbol" in params else list(self._feeds)
        return [self._order_json(account, order) for order in self._open_orders(account, symbols)]

    def _ep_cancel_open_orders(self, account: _Account | None, params: dict[str, str]) -> object:
        assert account is not None
        symbol = self._feed_param(params).spec.symbol
        orders = self._open_orders(account, [symbol])
        if not orders:
            raise _bad_request(-2011, MSG_UNKNOWN_ORDER)
        return [self._cancel(account, order, None) for order in orders]

    def _ep_my_trades(self, account: _Account | None, params: dict[str, str]) -> object:
        assert account is not None
        feed = self._feed_param(params)
        limit = _limit_param(params, default=500, maximum=1000)
        order_id = _int_param(params, "orderId")
        from_id = _int_param(params, "fromId")
        start = _int_param(params, "startTime")
        end = _int_param(params, "endTime")
        if from_id is not None and (start is not None or end is not None):
            raise _bad_request(-1128, "Combination of optional parameters invalid.")
        trades = [
            t
            for t in account.trades.get(feed.spec.symbol, [])
            if (order_id is None or t.order_id == order_id)
            and (from_id is None or t.trade_id >= from_id)
            and (start is None or t.ts_ms >= start)
            and (end is None or t.ts_ms <= end)
        ]
        trades = trades[:limit] if (from_id is not None or start is not None) else trades[-limit:]
        p = feed.precision
        info = feed.spec.info
        return [
            {
                "symbol": feed.market_id,
                "id": t.trade_id,
                "orderId": t.order_id,
                "orderListId": -1,
                "price": _fmt(p.ticks_to_price(t.price)),
                "qty": _fmt(p.lots_to_qty(t.qty)),
                "quoteQty": _fmt(_quote(p, t.price * t.qty * QU_PER_TICK_LOT)),
                "commission": _commission_text(Decimal(t.commission or 0)),
                "commissionAsset": t.commission_asset or info.quote,
                "time": t.ts_ms,
                "isBuyer": t.side is Side.BUY,
                "isMaker": t.maker,
                "isBestMatch": True,
            }
            for t in trades
        ]

    def _ep_all_orders(self, account: _Account | None, params: dict[str, str]) -> object:
        """``GET /api/v3/allOrders``: the account's orders of a symbol, open or closed, oldest first.

        As Binance: ``orderId`` gives the orders from that id on; else ``startTime``/``endTime``
        (at most 24 hours apart) the orders created in that window; else the most recent ones;
        ``limit`` 500 by default, at most 1000.
        """
        assert account is not None
        symbol = self._feed_param(params).spec.symbol
        limit = _limit_param(params, default=500, maximum=1000)
        order_id = _int_param(params, "orderId")
        start = _int_param(params, "startTime")
        end = _int_param(params, "endTime")
        if start is not None and end is not None and end - start > _DAY_MS:
            raise _bad_request(-1127, "More than 24 hours between startTime and endTime.")
        orders = [
            o
            for o in sorted(account.orders.values(), key=lambda o: o.order_id)
            if o.symbol == symbol
            and (order_id is None or o.order_id >= order_id)
            and (start is None or o.time_ms >= start)
            and (end is None or o.time_ms <= end)
        ]
        orders = orders[:limit] if (order_id is not None or start is not None) else orders[-limit:]
        return [self._order_json(account, order) for order in orders]

    # -- helpers -------------------------------------------------------------------------------

    def _feed_param(self, params: Mapping[str, str]) -> _Feed:
        market_id = params.get("symbol")
        if not market_id:
            raise _mandatory("symbol")
        symbol = self._by_market_id.get(market_id)
        if symbol is None:
            raise _bad_request(-1121, "Invalid symbol.")
        return self._feeds[symbol]

    def _symbols_param(self, params: Mapping[str, str], *, default_all: bool) -> list[str]:
        if "symbol" in params:
            return [self._feed_param(params).spec.symbol]
        if "symbols" in params:
            try:
                ids = json.loads(params["symbols"])
            except ValueError as e:
                raise _bad_request(-1100, "Illegal characters found in parameter 'symbols'.") from e
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise _bad_request(-1100, "Illegal characters found in parameter 'symbols'.")
            return [self._feed_param({"symbol": i}).spec.symbol for i in ids]
        return list(self._feeds) if default_all else []

    def _book(self, feed: _Feed) -> Book | None:
        account = next(iter(self._accounts.values()))
        return account.engine.book(feed.spec.symbol)

    def _level_lots(self, feed: _Feed) -> int:
        n = feed.cursor
        if not n:
            return 1
        volume = float(feed.spec.candles.volume[n - 1])
        return max(1, int(volume / float(feed.spec.info.lot_size) / 20))

    def _ticker(self, feed: _Feed) -> dict[str, Any]:
        candles = feed.spec.candles
        n = feed.cursor
        p = feed.precision
        lo = int(np.searchsorted(candles.ts_ms[:n], self._now_ms - _DAY_MS, "left"))
        book = self._book(feed)
        unit = p.lots_to_qty(self._level_lots(feed))
        if n == 0 or lo >= n:
            zero = _fmt(Decimal(0))
            open_px = last = high = low = Decimal(0)
            volume = quote_volume = 0.0
            prev_close = zero
            first_id, last_id, count = -1, -1, 0
        else:
            open_px = p.ticks_to_price(int(candles.open[lo]))
            last = p.ticks_to_price(int(candles.close[n - 1]))
            high = p.ticks_to_price(int(candles.high[lo:n].max()))
            low = p.ticks_to_price(int(candles.low[lo:n].min()))
            volume = float(candles.volume[lo:n].sum())
            quote_volume = float((candles.volume[lo:n] * candles.close[lo:n]).sum()) * float(p.tick)
            prev_close = _fmt(p.ticks_to_price(int(candles.close[lo - 1]))) if lo else _fmt(open_px)
            first_id, last_id, count = lo + 1, n, n - lo
        change = last - open_px
        last_qty = float(candles.volume[n - 1]) if n else 0.0
        pct = (change / open_px * 100).quantize(Decimal("0.001")) if open_px else Decimal(0)
        weighted = quote_volume / volume if volume else float(last)
        return {
            "symbol": feed.market_id,
            "priceChange": _fmt(change),
            "priceChangePercent": f"{pct:f}",
            "weightedAvgPrice": f"{weighted:.8f}",
            "prevClosePrice": prev_close,
            "lastPrice": _fmt(last),
            "lastQty": f"{last_qty:.8f}",
            "bidPrice": _fmt(p.ticks_to_price(book.best_bid) if book else Decimal(0)),
            "bidQty": _fmt(unit if book else Decimal(0)),
            "askPrice": _fmt(p.ticks_to_price(book.best_ask) if book else Decimal(0)),
            "askQty": _fmt(unit if book else Decimal(0)),
            "openPrice": _fmt(open_px),
            "highPrice": _fmt(high),
            "lowPrice": _fmt(low),
            "volume": f"{volume:.8f}",
            "quoteVolume": f"{quote_volume:.8f}",
            "openTime": self._served_ms() - _DAY_MS,
            "closeTime": self._served_ms() - 1,
            "firstId": first_id,
            "lastId": last_id,
            "count": count,
        }

    def _book_ticker(self, feed: _Feed) -> dict[str, str]:
        book = self._book(feed)
        p = feed.precision
        unit = p.lots_to_qty(self._level_lots(feed)) if book else Decimal(0)
        return {
            "symbol": feed.market_id,
            "bidPrice": _fmt(p.ticks_to_price(book.best_bid) if book else Decimal(0)),
            "bidQty": _fmt(unit),
            "askPrice": _fmt(p.ticks_to_price(book.best_ask) if book else Decimal(0)),
            "askQty": _fmt(unit),
        }

    def _check_filters(self, feed: _Feed, price: Decimal, qty: Decimal) -> tuple[int, int]:
        """Apply PRICE_FILTER, LOT_SIZE and NOTIONAL; return (ticks, lots)."""
        for value in (price, qty):
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and exponent < -8 and value != value.quantize(_E8, context=_CTX):
                raise _bad_request(-1111, "Precision is over the maximum defined for this asset.")
        info = feed.spec.info
        ticks = _CTX.divide(price, info.tick_size)
        if price < info.tick_size or price > feed.max_price or ticks != ticks.to_integral_value():
            raise _bad_request(-1013, "Filter failure: PRICE_FILTER")
        lots = _CTX.divide(qty, info.lot_size)
        if qty < info.lot_size or lots > _MAX_QTY_LOTS or lots != lots.to_integral_value():
            raise _bad_request(-1013, "Filter failure: LOT_SIZE")
        notional = _CTX.multiply(price, qty)
        if notional < info.min_notional or notional > _MAX_NOTIONAL:
            raise _bad_request(-1013, "Filter failure: NOTIONAL")
        return int(ticks), int(lots)

    def _status(self, account: _Account, order: _Order) -> tuple[str, int]:
        """Return the order's Binance status and its filled lots."""
        status = account.engine.order_status(order.symbol, order.engine_cid)
        assert status is not None
        filled = status.order.filled
        if order.expired:
            return "EXPIRED", filled
        if status.status == "open":
            return ("PARTIALLY_FILLED" if filled else "NEW"), filled
        if status.status == "filled":
            return "FILLED", filled
        return "CANCELED", filled

    def _order_json(self, account: _Account, order: _Order, *, compact: bool = False) -> dict[str, Any]:
        """Return the order object; ``compact``: the shape of order placement and cancel answers."""
        status, filled = self._status(account, order)
        p = self._feeds[order.symbol].precision
        answer: dict[str, Any] = {
            "symbol": self._feeds[order.symbol].market_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": _fmt(Decimal(0) if order.order_type == "MARKET" else p.ticks_to_price(order.price)),
            "origQty": _fmt(p.lots_to_qty(order.qty)),
            "executedQty": _fmt(p.lots_to_qty(filled)),
            "cummulativeQuoteQty": _fmt(_quote(p, order.quote_qu)),
            "status": status,
            "timeInForce": order.time_in_force,
            "type": order.order_type,
            "side": "BUY" if order.side is Side.BUY else "SELL",
        }
        if compact:
            answer["origQuoteOrderQty"] = "0.00000000"
            answer["selfTradePreventionMode"] = "EXPIRE_MAKER"
            return answer
        answer.update(
            {
                "stopPrice": "0.00000000",
                "icebergQty": "0.00000000",
                "time": order.time_ms,
                "updateTime": order.update_ms,
                "isWorking": True,
                "workingTime": order.time_ms,
                "origQuoteOrderQty": "0.00000000",
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
        )
        return answer

    def _find_order(self, account: _Account, params: Mapping[str, str], code: int, msg: str) -> _Order:
        symbol = self._feed_param(params).spec.symbol
        order_id = _int_param(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise _bad_request(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        if order_id is not None:
            order = account.orders.get(order_id)
            if order is None or order.symbol != symbol:
                raise _bad_request(code, msg)
            if client_id is not None and order.client_order_id != client_id:
                raise _bad_request(-2039, MSG_IDS_MISMATCH)
            return order
        assert client_id is not None
        found = account.by_client_id.get((symbol, client_id))
        if found is None:
            raise _bad_request(code, msg)
        return found

    def _open_orders(self, account: _Account, symbols: Iterable[str]) -> list[_Order]:
        orders = []
        for symbol in symbols:
            for view in account.engine.open_orders(symbol):
                orders.append(account.by_engine_cid[(symbol, view.client_order_id)])
        return orders

    def _cancel(self, account: _Account, order: _Order, cancel_id: str | None) -> dict[str, Any]:
        now = self._served_ms()
        account.engine.cancel(order.symbol, order.engine_cid, now, "cancelled by the client")
        order.update_ms = now
        if not cancel_id:
            cancel_id = f"sim{account.index}c{account.next_client_id:016d}"
            account.next_client_id += 1
        answer = self._order_json(account, order, compact=True)
        answer["origClientOrderId"] = order.client_order_id
        answer["clientOrderId"] = cancel_id
        answer["transactTime"] = now
        return answer

    def _control_request(self, method: str, path: str, query: str, body: bytes) -> _Reply:
        """Answer the test-control endpoints under /sim/."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            if (method, path) == ("POST", "/sim/advance"):
                raw = params.get("candles", "1")
                if not _INT_RE.match(raw) or int(raw) < 0:
                    raise _bad_request(-1130, "Data sent for parameter 'candles' is not valid.")
                with self._lock:
                    taken = self._advance_locked(int(raw))
                    return _Reply(
                        200, {"time": self._served_ms(), "advanced": taken, "exhausted": self._exhausted}
                    )
            if (method, path) == ("GET", "/sim/state"):
                return _Reply(200, self.state())
            if (method, path) == ("GET", "/sim/faults"):
                return _Reply(200, self.faults())
            if (method, path) == ("POST", "/sim/faults"):
                self._configure_faults(body)
                return _Reply(200, self.faults())
        except _ApiError as e:
            return _Reply(e.status, {"code": e.code, "msg": e.msg})
        return _not_found()

    def _configure_faults(self, body: bytes) -> None:
        """Apply ``POST /sim/faults``: every part is checked first, so a refused body changes nothing."""
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            unknown = set(spec) - {"rules", "seed", "timeout_ms", "clear", "fail_next"}
            if unknown:
                raise ValueError(
                    f"unknown key(s) {sorted(unknown)}; use rules, seed, timeout_ms, clear, fail_next"
                )
            rules = None
            if "rules" in spec:
                if not isinstance(spec["rules"], list):
                    raise ValueError("rules must be a list of {kind, value, endpoints}")
                rules = [_rule_of(r) for r in spec["rules"]]
            seed = None if spec.get("seed") is None else check_seed(spec["seed"])
            timeout_ms = None if spec.get("timeout_ms") is None else check_timeout_ms(spec["timeout_ms"])
            clear = spec.get("clear", False)
            if not isinstance(clear, bool):
                raise ValueError(f"clear must be true or false, got {clear!r}")
            items = spec.get("fail_next", [])
            if not isinstance(items, list):
                raise ValueError("fail_next must be a list of {kind, endpoint, count}")
            queued = []
            for item in items:
                if not isinstance(item, dict) or set(item) - {"kind", "endpoint", "count"}:
                    raise ValueError("each fail_next item is {kind, endpoint, count}")
                kind, count = item.get("kind"), item.get("count", 1)
                check_fail_next(kind, count)
                endpoint = item.get("endpoint", "POST /api/v3/order")
                if not isinstance(endpoint, str):
                    raise ValueError(f"fail_next endpoint must be a string, got {endpoint!r}")
                queued.append((cast(FaultKind, kind), endpoints_matching(endpoint), count))
            if sum(c for _, _, c in queued) > MAX_FAIL_NEXT:
                raise ValueError(f"fail_next: at most {MAX_FAIL_NEXT} queued requests")
            self.set_faults(rules, seed=seed, timeout_ms=timeout_ms, clear=clear)
            for kind, endpoints, count in queued:
                self._faults.queue(kind, endpoints, count)
        except (ValueError, KeyError, TypeError) as e:
            raise _bad_request(-1130, f"Invalid fault configuration: {e}") from e


def _rule_of(raw: object) -> FaultRule:
    """Read one rule of ``POST /sim/faults``: ``{"kind", "value", "endpoints"}``."""
    if not isinstance(raw, dict) or set(raw) - {"kind", "value", "endpoints"}:
        raise ValueError("each rule is {kind, value, endpoints}")
    value, endpoints = raw.get("value"), raw.get("endpoints", ["trading"])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"rule value must be a number, got {value!r}")
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        raise ValueError("rule endpoints must be a list of strings")
    kind = cast(FaultKind, raw.get("kind"))  # FaultRule refuses an unknown kind
    return FaultRule(kind, float(value), frozenset(k for e in endpoints for k in endpoints_matching(e)))


# -- HTTP ------------------------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a request sleeping through a fault never holds up stop()
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimServer) -> None:
        super().__init__(address, _Handler)
        self.sim = sim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ccxt's sessions expect
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "nutcracker-sim-exchange"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def setup(self) -> None:
        # A read timeout: a client that stops sending mid-request (or idles on keep-alive) does
        # not hold a thread forever; http.server closes the connection when it fires.
        self.connection_timeout = cast(_HttpServer, self.server).sim.read_timeout_s
        super().setup()
        self.connection.settimeout(self.connection_timeout)

    def log_message(self, fmt: str, *args: Any) -> None:
        _log.debug("sim-exchange %s " + fmt, self.address_string(), *args)

    def _serve(self, method: str) -> None:
        sim = cast(_HttpServer, self.server).sim
        split = urlsplit(self.path)
        path, query = split.path, split.query
        body = self._read_body(sim.max_body_bytes)
        if body is None:
            return
        if path.startswith("/sim/"):
            if not sim._control:
                self._send(_Reply(403, {"code": -1002, "msg": MSG_CONTROL_OFF}))
                return
            self._send(sim._control_request(method, path, query, body))
            return
        endpoint = f"{method} {path}"
        route = _ROUTES.get(endpoint)
        if route is None:
            _log.warning("sim-exchange: no endpoint %s", endpoint)
            self._send(_not_found())
            return
        latency_ms, fault = sim._faults.draw(endpoint)
        if latency_ms and sim._sleep(latency_ms / 1000):
            self._drop()
            return
        if fault == "timeout":
            sim._sleep(sim._faults.timeout_ms / 1000)
            self._drop()
            return
        if fault is not None and fault != "drop_after_accept":
            self._send(_FAULT_REPLIES[fault])
            return
        try:
            reply = sim._handle(
                route, query, body.decode("latin-1"), self.headers.get("X-MBX-APIKEY"), endpoint
            )
        except Exception:  # a bug of ours: answer as Binance does to an internal error, and say so
            _log.exception("sim-exchange: %s failed", endpoint)
            reply = _Reply(
                500, {"code": -1000, "msg": "An unknown error occurred while processing the request."}
            )
        if fault == "drop_after_accept":
            self._drop()
            return
        self._send(reply)

    def _read_body(self, limit: int) -> bytes | None:
        """Return the request body; None after answering 400/413 (bad or too large Content-Length)."""
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit() or len(raw) > 18:
            self.close_connection = True
            self._send(_Reply(400, {"code": -1130, "msg": "Invalid Content-Length header."}))
            return None
        length = int(raw)
        if length > limit:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            self._send(
                _Reply(
                    413,
                    {"code": -1130, "msg": f"Request body too large: at most {limit} bytes are accepted."},
                )
            )
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: _Reply) -> None:
        if isinstance(reply.payload, bytes):
            data, content_type = reply.payload, "text/html"
        else:
            data, content_type = (
                json.dumps(reply.payload, separators=(",", ":")).encode(),
                "application/json;charset=UTF-8",
            )
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection without an answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)


_FAULT_REPLIES: Final[Mapping[str, _Reply]] = {
    "5xx": _Reply(
        503, {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
    ),
    "502": _Reply(
        502, b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    ),
    "429": _Reply(
        429,
        {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
        },
        (("Retry-After", "1"),),
    ),
    "418": _Reply(
        418,
        {
            "code": -1003,
            "msg": "Way too much request weight used; IP banned. "
            "Please use WebSocket Streams for live updates to avoid bans.",
        },
        (("Retry-After", "120"),),
    ),
}


# -- small helpers -------------------------------------------------------------------------------


def _taker_levels(
    book: Book, unit: int, side: Side, limit_ticks: int | None, lots: int | None, quote_qu: int | None
) -> list[tuple[int, int]]:
    """Return the (price, lots) a taker takes from the depth ``GET /api/v3/depth`` shows.

    Level ``k`` (0 at the top) holds ``(k + 1) * unit`` lots. Walk until ``lots`` are taken (or
    ``quote_qu`` quote units spent), the order's limit price is passed or the depth ends.
    """
    levels: list[tuple[int, int]] = []
    buy = side is Side.BUY
    for k in range(_TAKER_DEPTH):
        price = book.best_ask + k if buy else book.best_bid - k
        if price <= 0 or (limit_ticks is not None and (price > limit_ticks if buy else price < limit_ticks)):
            break
        size = unit * (k + 1)
        if lots is not None:
            take = min(size, lots)
            lots -= take
        else:
            assert quote_qu is not None
            take = min(size, quote_qu // (price * QU_PER_TICK_LOT))
            quote_qu -= take * price * QU_PER_TICK_LOT
        if take <= 0:
            break
        levels.append((price, take))
        if lots == 0:
            break
    return levels


def _kline_row(
    open_ms: int, interval: int, tick: Decimal, ohlc: tuple[int, int, int, int], volume: float, quote: float
) -> list[Any]:
    """Return one Binance kline: 12 fields, prices from ticks, no trade count or taker-buy volume."""
    o, h, low, c = ohlc
    return [
        open_ms,
        _fmt(o * tick),
        _fmt(h * tick),
        _fmt(low * tick),
        _fmt(c * tick),
        f"{volume:.8f}",
        open_ms + interval - 1,
        f"{quote:.8f}",
        0,
        "0.00000000",
        "0.00000000",
        "0",
    ]


def _wall_offset(market_ms: int, align_ms: int) -> int:
    """Return the offset (a whole number of ``align_ms``) that makes ``market_ms`` about the wall clock."""
    wall_ms = time.time_ns() // 1_000_000
    return (wall_ms - market_ms) // align_ms * align_ms


def _not_found() -> _Reply:
    return _Reply(404, {"code": -1020, "msg": "This operation is not supported."})


def _fmt(value: Decimal) -> str:
    """Format like Binance (8 decimals), keeping every further decimal an exact amount needs."""
    if not value:
        return "0.00000000"
    exponent = value.normalize(_CTX).as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -8:
        return f"{value.quantize(_E8, context=_CTX):f}"
    return f"{value.normalize(_CTX):f}"


def _commission_text(amount: Decimal) -> str:
    """Format a commission at Binance's announced precision (``*CommissionPrecision``: 8 decimals)."""
    return f"{amount.quantize(_E8, context=_CTX):f}"


def _quote(p: Precision, qu: int) -> Decimal:
    return _CTX.multiply(Decimal(qu), p.quote_unit)


def _mandatory(name: str) -> _ApiError:
    return _bad_request(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _params(query: str, body: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True):
        if key in params:
            raise _bad_request(-1101, "Duplicate values for a parameter detected.")
        params[key] = value
    return params


def _without_signature(raw: str) -> str:
    """Remove the ``signature`` parameter from a raw query string or body, leaving the rest as sent."""
    match = _SIGNATURE_RE.search(raw)
    if match is None:
        return raw
    start, end = match.span()
    if start == 0 and end < len(raw):
        end += 1  # 'signature=..&rest': drop the '&' after it
    return raw[:start] + raw[end:]


def _int_param(params: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _mandatory(name)
        return None
    if not _INT_RE.match(raw):
        raise _bad_request(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(raw)


def _decimal_param(params: Mapping[str, str], name: str) -> Decimal:
    raw = params.get(name)
    if not raw:
        raise _mandatory(name)
    if not _NUMBER_RE.match(raw):
        raise _bad_request(
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return Decimal(raw)


def _limit_param(params: Mapping[str, str], *, default: int, maximum: int) -> int:
    limit = _int_param(params, "limit")
    if limit is None:
        return default
    if limit <= 0:
        raise _bad_request(-1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, maximum)


def sign(secret: str, payload: str) -> str:
    """Return Binance's HMAC-SHA256 signature (hex) of ``payload`` under ``secret``."""
    return _hmac_hex(secret, payload.encode())


def _hmac_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "PUBLIC_ENDPOINTS",
    "SAPI_ENDPOINTS",
    "TRADING_ENDPOINTS",
    "FaultKind",
    "FaultRule",
    "MarketSpec",
    "SimAccount",
    "SimServer",
    "endpoints_matching",
    "sign",
]
