"""CcxtExchange: the engine's Exchange port over ``ccxt.async_support``, for any ccxt exchange id.

What it guarantees (DESIGN.md §6, ``reference/exchanges.md`` for ccxt 4.5.90):

- **Spot only.** ``market()`` refuses a symbol that is not a spot market (``ConfigError``); Binance is
  built with ``fetchMarkets`` limited to spot, so futures endpoints are never even loaded.
- **Post-only limit orders only.** ``place`` sends ``type='limit'`` with ``{'postOnly': True}`` (ccxt
  turns it into Binance's ``LIMIT_MAKER``) and our own client order id (``newClientOrderId`` on
  Binance, ccxt's unified ``clientOrderId`` elsewhere). Nothing else can be sent.
- **Exact units.** Prices and quantities leave as plain decimal strings built from integer ticks and
  lots (``core.units.Precision``); ccxt's ``price_to_precision``/``amount_to_precision`` then find
  nothing to round. Numbers coming back (ccxt parses them to floats) are read through their shortest
  round-trip text, which is the exchange's decimal for every value of up to 15 significant digits,
  and must lie on the tick/lot grid: an off-grid order or fill is a ``ReconciliationError``. Book
  and candle prices are snapped to the grid instead (see ``fetch_book`` and ``fetch_candles``).
- **Checked before sending.** Tick, lot, minimum and maximum quantity, price limits and minimum
  notional are checked locally: ``InvalidOrderError`` without any network I/O (ccxt does not enforce
  ``limits``, reference §3.2).
- **Errors translated once** by ``ccxt_errors`` (``exchange/ccxt_errors.py``). ccxt's own retries are
  off (``maxRetriesOnFailure=0``: a retried ``POST /order`` could place twice) and its rate limiter
  is on (``enableRateLimit``).
- **An allow-list of ccxt methods** (``ALLOWED_METHODS``), enforced by ``CcxtGuard``: the connector
  holds only the guard, never the ccxt instance, so nothing that withdraws or transfers can be
  called, even by mistake (``ForbiddenCallError`` before any I/O).
- **Secrets** are plain ``str`` handed over just in time (``from_credentials``), registered with
  the log redaction at once and never kept outside the ccxt instance, logged or shown in ``repr``.

Construction without keys gives a public-only connector (market data for paper mode). ``api_url``
points every endpoint section at another base URL (reference §1.2), e.g. the loopback sim server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.core.orders import MAX_ID_LENGTH
from nutcracker.core.units import PPM, Precision
from nutcracker.errors import (
    ConfigError,
    ExchangeUnavailableError,
    ForbiddenCallError,
    InvalidOrderError,
    OrderNotFoundError,
    ReconciliationError,
)
from nutcracker.exchange.ccxt_errors import ccxt_errors
from nutcracker.secrets.redaction import register_secret
from nutcracker.secrets.store import ApiCredentials

logger = logging.getLogger(__name__)

# The implicit ccxt methods (snake case) of each exchange's key-permission endpoint
# (``secrets.permissions.PROBES``, reference §2). Read-only: they report what the key may do.
PROBE_METHODS: Final[Mapping[str, str]] = {
    "binance": "sapi_get_account_apirestrictions",
    "okx": "private_get_account_config",
    "bybit": "private_get_v5_user_query_api",
    "coinbase": "v3_private_get_brokerage_key_permissions",
    "kucoin": "private_get_user_api_key",
    "kraken": "private_post_getapikeyinfo",
    "gate": "private_account_get_main_keys",
    "gateio": "private_account_get_main_keys",
    "bitget": "private_spot_get_v2_spot_account_info",
}

ALLOWED_METHODS: Final = frozenset(
    {
        # local only, no I/O
        "market",
        "milliseconds",
        "parse_timeframe",
        "close",
        # public reads
        "load_markets",
        "fetch_time",
        "fetch_ohlcv",
        "fetch_order_book",
        # private reads
        "fetch_balance",
        "fetch_trading_fee",
        "fetch_open_orders",
        "fetch_my_trades",
        "fetch_orders",  # allOrders: the start-time check and `recover`
        "fetch_order",
        # the only writes: post-only limit orders (see CcxtExchange.place) and their cancels
        "create_order",
        "cancel_order",
        # key-permission probes
        *PROBE_METHODS.values(),
    }
)
"""The ccxt methods the connector may call; everything else raises ``ForbiddenCallError``."""

ALLOWED_ATTRIBUTES: Final = frozenset({"id", "has", "markets", "precisionMode", "timeframes"})
"""Plain data of the ccxt instance the connector may read (never write)."""

# Words that must never appear in an allowed method name: moving funds, in any spelling ccxt uses.
FORBIDDEN_WORDS: Final = ("withdraw", "transfer", "deposit", "borrow", "repay", "convert", "redeem")

if any(word in name.lower() for name in ALLOWED_METHODS for word in FORBIDDEN_WORDS):  # pragma: no cover
    raise AssertionError("the ccxt allow-list contains a method that could move funds")


class CcxtGuard:
    """Expose only the allow-listed methods and attributes of a ccxt exchange instance.

    Reading any other attribute, or setting any attribute, raises ``ForbiddenCallError`` before
    anything is called, so no code holding the guard can withdraw or transfer.
    """

    __slots__ = ("_CcxtGuard__client",)

    def __init__(self, client: Any) -> None:
        object.__setattr__(self, "_CcxtGuard__client", client)

    def __getattr__(self, name: str) -> Any:
        if name in ALLOWED_METHODS or name in ALLOWED_ATTRIBUTES:
            return getattr(self.__client, name)
        raise ForbiddenCallError(
            f"ccxt method {name!r} is not on the connector's allow-list (ALLOWED_METHODS); nothing was sent"
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise ForbiddenCallError(f"the ccxt instance is read-only through its guard (tried to set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise ForbiddenCallError(f"the ccxt instance is read-only through its guard (tried to del {name!r})")

    def __repr__(self) -> str:
        return f"CcxtGuard({self.__client.id})"


# --- exact numbers ------------------------------------------------------------------------------


def to_decimal(value: object, what: str = "value") -> Decimal:
    """Return ``value`` (a ccxt number: float, int or str) as an exact Decimal.

    A float becomes the Decimal of its shortest round-trip text (``repr``), i.e. the exchange's own
    decimal whenever that has at most 15 significant digits, never the binary expansion.
    """
    if isinstance(value, bool) or value is None:
        raise ExchangeUnavailableError(f"the exchange sent no usable number for {what}: {value!r}")
    try:
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int | str | Decimal):
            number = Decimal(value)
        else:
            raise InvalidOperation
    except InvalidOperation:
        raise ExchangeUnavailableError(f"the exchange sent no usable number for {what}: {value!r}") from None
    if not number.is_finite():
        raise ExchangeUnavailableError(f"the exchange sent a non-finite number for {what}: {value!r}")
    return number


def plain(number: Decimal) -> str:
    """Return ``number`` as a plain decimal string (never an exponent), for the wire."""
    return format(number, "f")


def price_text(precision: Precision, ticks: int) -> str:
    """Return the wire text of a price of ``ticks`` ticks, e.g. 5000013 at tick 0.01 -> '50000.13'."""
    return plain(precision.ticks_to_price(ticks))


def qty_text(precision: Precision, lots: int) -> str:
    """Return the wire text of a quantity of ``lots`` lots, e.g. 123 at lot 0.00001 -> '0.00123'."""
    return plain(precision.lots_to_qty(lots))


def exact_ticks(precision: Precision, value: object, what: str) -> int:
    """Return ``value`` in ticks; an off-grid price is a ``ReconciliationError``."""
    number = to_decimal(value, what)
    ticks = number / precision.tick
    if ticks != ticks.to_integral_value():
        raise ReconciliationError(f"{what} {plain(number)} is not a multiple of the tick {precision.tick}")
    return int(ticks)


def exact_lots(precision: Precision, value: object, what: str) -> int:
    """Return ``value`` in lots; an off-grid quantity is a ``ReconciliationError``."""
    number = to_decimal(value, what)
    lots = number / precision.lot
    if lots != lots.to_integral_value():
        raise ReconciliationError(f"{what} {plain(number)} is not a multiple of the lot {precision.lot}")
    return int(lots)


@dataclass(frozen=True, slots=True)
class FillFees:
    """The commission of one fill as ``core.model.Fill`` carries it (see there)."""

    fee_qu: int  # paid in quote, or a third asset's valued in quote
    fee_bu: int  # taken from the base received, base units
    asset: str  # as the exchange named it; several joined with "+"
    commission: str  # the exchange's amount, exact ("" when several assets or none)


def fill_fees(
    precision: Precision,
    base: str,
    quote: str,
    price_ticks: int,
    qty_lots: int,
    fee_ppm: int,
    fees: Sequence[Mapping[str, Any]],
) -> FillFees:
    """Return the commission of one fill in the asset it was paid in (rounded up: never understated).

    A fee in quote is quote units; one in base (Binance charges a buy in the base received unless
    BNB pays) is base units the account did not receive; one in any other asset (BNB) touches
    neither and is carried with its name and amount, valued in quote at the market's maker fee
    rate of the notional (``price x qty x fee_ppm``): never treated as quote and never as free.
    """
    fee_qu = fee_bu = 0
    assets: list[str] = []
    amounts: list[Decimal] = []
    for fee in fees:
        cost = fee.get("cost")
        if cost is None:
            continue
        amount = to_decimal(cost, "fee")
        if not amount:
            continue
        currency = str(fee.get("currency") or "")
        if currency == quote:
            fee_qu += precision.quote_to_qu(amount, ROUND_CEILING)
        elif currency == base:
            fee_bu += precision.base_to_bu(amount)
        else:
            valued = price_ticks * qty_lots * fee_ppm
            fee_qu += valued
            logger.info(
                "fee_in_other_asset currency=%s cost=%s valued_qu=%d", currency or "?", plain(amount), valued
            )
        if currency not in assets:
            assets.append(currency or "?")
        amounts.append(amount)
    commission = plain(amounts[0]) if len(amounts) == 1 else ""
    return FillFees(fee_qu, fee_bu, "+".join(assets), commission)


# --- the connector --------------------------------------------------------------------------------

_CLIENT_ORDER_ID = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}$")
_ORDERS_PAGE_LIMIT: Final = 1000  # Binance allOrders' maximum
_STATUS: Final[Mapping[str, str]] = {
    "open": "open",
    "canceling": "open",  # Binance PENDING_CANCEL: still on the book until the cancel completes
    "closed": "filled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "expired": "cancelled",
    "rejected": "rejected",
}
_BINANCE_OPTIONS: Final[Mapping[str, object]] = {
    "fetchCurrencies": False,  # no signed capital/config/getall on load_markets
    "fetchMargins": False,  # no margin/allPairs
    "fetchMarkets": {"types": ["spot"]},  # no fapi/dapi exchangeInfo
}


@dataclass(frozen=True, slots=True)
class _Rules:
    info: MarketInfo
    precision: Precision
    min_lots: int
    max_lots: int | None
    min_ticks: int
    max_ticks: int | None


class CcxtExchange:
    """One exchange account (or public market data only) through ccxt, fitting the Exchange port."""

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        api_url: str | None = None,
        timeframe: str = "1m",
        timeout_ms: int = 10_000,
        recv_window_ms: int = 5_000,
        rate_limit_ms: float | None = None,
        book_limit: int | None = 5,
        trades_page_limit: int | None = None,
        candles_page_limit: int = 1000,
    ) -> None:
        """Build the ccxt client; no I/O happens until the first call.

        Args:
            exchange_id: the ccxt id, e.g. ``binance``.
            api_key, secret, password: the credentials (none: public market data only).
            api_url: send every request to this base URL instead (a Binance-compatible server).
            timeframe: the candle interval of ``fetch_candles``.
            rate_limit_ms: override ccxt's ``rateLimit`` (the limiter stays on).
            book_limit: depth asked of ``fetch_order_book`` (None: the exchange's default).
            trades_page_limit: page size of ``fetch_my_trades`` (default 1000 on Binance, else 100).
            candles_page_limit: page size of ``fetch_ohlcv`` (Binance serves at most 1000).
        """
        exchange_class = getattr(ccxt_async, exchange_id, None)
        if exchange_id not in ccxt_async.exchanges or exchange_class is None:
            raise ConfigError(f"exchange {exchange_id!r} is not a ccxt exchange id: use e.g. 'binance'")
        if (api_key is None) != (secret is None):
            raise ConfigError("give both the API key and its secret, or neither (public market data only)")
        for value in (api_key, secret, password):
            register_secret(value)
        self._exchange_id = exchange_id
        self._binance = exchange_id == "binance"
        options: dict[str, object] = {"maxRetriesOnFailure": 0, "defaultType": "spot"}
        if self._binance:
            options.update(_BINANCE_OPTIONS)
            options["recvWindow"] = recv_window_ms
        config: dict[str, object] = {"enableRateLimit": True, "timeout": timeout_ms, "options": options}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        if api_url is not None and _check_base_url(api_url).startswith("http://"):
            # ccxt's close() waits 250 ms for SSL transports to shut down; plain http has none.
            config["timeout_on_exit"] = 0
        if api_key is not None:
            config["apiKey"] = api_key
            config["secret"] = secret
            if password is not None:
                config["password"] = password
        client = exchange_class(config)
        if api_url is not None:
            client.urls["api"] = rebase_urls(client.urls["api"], _check_base_url(api_url))
        self._api_url = api_url
        self._authenticated = api_key is not None
        self._client = CcxtGuard(client)
        if timeframe not in (client.timeframes or {}):
            raise ConfigError(
                f"timeframe {timeframe!r} is not offered by {exchange_id}: use one of "
                f"{', '.join(sorted(client.timeframes or {}))}"
            )
        self._timeframe = timeframe
        self._interval_ms = int(client.parse_timeframe(timeframe)) * 1000
        self._book_limit = book_limit
        self._trades_page_limit = trades_page_limit or (1000 if self._binance else 100)
        self._candles_page_limit = candles_page_limit
        self._rules: dict[str, _Rules] = {}
        # Exchange order id <-> our client order id, per symbol: immutable facts, learnt as we go.
        self._client_ids: dict[tuple[str, str], str] = {}
        self._order_ids: dict[tuple[str, str], str] = {}

    @classmethod
    def from_credentials(cls, credentials: ApiCredentials, **options: Any) -> CcxtExchange:
        """Return a connector for the key in ``credentials`` (secrets revealed here, just in time)."""
        return cls(
            credentials.exchange_id,
            api_key=credentials.api_key.get_secret_value(),
            secret=credentials.secret.get_secret_value(),
            password=None if credentials.password is None else credentials.password.get_secret_value(),
            api_url=options.pop("api_url", credentials.exchange_url),
            **options,
        )

    @classmethod
    def public(cls, exchange_id: str, **options: Any) -> CcxtExchange:
        """Return a connector without keys: market data only (paper mode)."""
        return cls(exchange_id, **options)

    def __repr__(self) -> str:
        where = f", api_url={self._api_url!r}" if self._api_url else ""
        return f"CcxtExchange({self._exchange_id!r}{where}, authenticated={self._authenticated})"

    @property
    def exchange_id(self) -> str:
        return self._exchange_id

    @property
    def authenticated(self) -> bool:
        """Return True when built with a key (private calls possible)."""
        return self._authenticated

    @property
    def timeframe(self) -> str:
        return self._timeframe

    @property
    def interval_ms(self) -> int:
        """Return the length of one candle of ``timeframe`` in milliseconds."""
        return self._interval_ms

    @property
    def ccxt_client(self) -> CcxtGuard:
        """Return the guarded ccxt instance (allow-listed methods only)."""
        return self._client

    async def close(self) -> None:
        """Close the HTTP session of the ccxt client."""
        await self._client.close()

    async def __aenter__(self) -> CcxtExchange:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the Exchange port --------------------------------------------------------------------

    async def market(self, symbol: str) -> MarketInfo:
        """Return the rules of the spot market ``symbol`` (ccxt form, e.g. ``BTC/USDT``)."""
        return (await self._rules_of(symbol)).info

    async def trading_fee(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        """Return the account's (maker, taker) fee fractions on ``symbol``, as the exchange charges them.

        Binance: ``GET /sapi/v1/asset/tradeFee`` through ccxt's ``fetch_trading_fee``, the rates of
        this account (VIP tier, discounts), not the public defaults. None when it cannot be read:
        no key (public market data only) or an exchange ccxt has no ``fetchTradingFee`` for.
        """
        if not self._authenticated or not self._client.has.get("fetchTradingFee"):
            return None
        with ccxt_errors(self._exchange_id):
            fee = await self._client.fetch_trading_fee(symbol)
        return (
            to_decimal(fee.get("maker"), f"{symbol} maker fee"),
            to_decimal(fee.get("taker"), f"{symbol} taker fee"),
        )

    async def server_time_ms(self) -> int:
        """Return the exchange's clock (the local clock if the exchange has no time endpoint)."""
        if not self._client.has.get("fetchTime"):
            return int(self._client.milliseconds())
        with ccxt_errors(self._exchange_id):
            return int(await self._client.fetch_time())

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        """Return up to ``limit`` closed candles with open time >= ``since_ms``, oldest first.

        A candle is closed when ``open time + interval <= exchange time`` (read first, so a candle
        closing meanwhile is left for the next call). Prices are snapped to the tick (half-even).
        """
        if limit <= 0:
            return ()
        precision = (await self._rules_of(symbol)).precision
        now_ms = await self.server_time_ms()
        interval = self._interval_ms
        candles: list[Candle] = []
        since = since_ms
        while len(candles) < limit:
            want = min(limit - len(candles), self._candles_page_limit)
            with ccxt_errors(self._exchange_id):
                rows = await self._client.fetch_ohlcv(symbol, self._timeframe, since, want)
            last = candles[-1].ts_ms if candles else since - 1
            fresh = [row for row in rows if int(row[0]) > last and int(row[0]) >= since]
            closed = [row for row in fresh if int(row[0]) + interval <= now_ms]
            candles.extend(_candle(precision, row) for row in closed[: limit - len(candles)])
            if not closed or len(closed) < len(fresh) or len(rows) < want:
                break
            since = candles[-1].ts_ms + interval
        return tuple(candles)

    async def fetch_book(self, symbol: str) -> Book:
        """Return the top of book: best bid floored and best ask ceiled to the tick, sizes in lots."""
        precision = (await self._rules_of(symbol)).precision
        with ccxt_errors(self._exchange_id):
            book = await self._client.fetch_order_book(symbol, self._book_limit)
        bids, asks = book.get("bids") or [], book.get("asks") or []
        if not bids or not asks:
            raise ExchangeUnavailableError(f"{self._exchange_id}: the book of {symbol} has an empty side")
        bid_price, bid_size = bids[0][0], bids[0][1]
        ask_price, ask_size = asks[0][0], asks[0][1]
        # Off-grid quotes are snapped away from the spread's inside, so no order priced off them crosses.
        return Book(
            best_bid=precision.price_to_ticks(to_decimal(bid_price, "best bid"), ROUND_FLOOR),
            best_ask=precision.price_to_ticks(to_decimal(ask_price, "best ask"), ROUND_CEILING),
            bid_lots=precision.qty_to_lots(to_decimal(bid_size, "bid size"), ROUND_FLOOR),
            ask_lots=precision.qty_to_lots(to_decimal(ask_size, "ask size"), ROUND_FLOOR),
        )

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        """Return the free (unlocked) balance of every asset."""
        with ccxt_errors(self._exchange_id):
            balance = await self._client.fetch_balance()
        free = balance.get("free") or {}
        return {
            asset: to_decimal(amount, f"free {asset}") for asset, amount in free.items() if amount is not None
        }

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]:
        """Return every open order of ``symbol`` with its client order id (the engine keeps its own)."""
        precision = (await self._rules_of(symbol)).precision
        with ccxt_errors(self._exchange_id):
            orders = await self._client.fetch_open_orders(symbol)
        return tuple(self._open_order(symbol, precision, order) for order in orders)

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        """Return the account's fills on ``symbol`` with time >= ``since_ms``, oldest first.

        Pages by time (``since``), as ccxt offers for every exchange; a page is asked again from its
        last millisecond, so only more than ``trades_page_limit`` fills within one millisecond could
        be missed. A trade names its order by exchange id only: the client order id comes from the
        orders this connector placed or listed, else from one ``fetch_order`` per unknown order.
        """
        rules = await self._rules_of(symbol)
        page_limit = self._trades_page_limit
        trades: dict[str, Mapping[str, Any]] = {}
        since = since_ms
        while True:
            with ccxt_errors(self._exchange_id):
                page = await self._client.fetch_my_trades(symbol, since, page_limit)
            new = [t for t in page if str(t["id"]) not in trades and int(t["timestamp"]) >= since_ms]
            for trade in new:
                trades[str(trade["id"])] = trade
            if len(page) < page_limit:
                break
            last_ms = max(int(t["timestamp"]) for t in page)
            if new:
                since = last_ms  # ask for that millisecond again: more trades may share it
            elif last_ms == since:
                since += 1  # a full page of known trades in one millisecond: step past it
            else:
                break
        ordered = sorted(trades.values(), key=lambda t: (int(t["timestamp"]), str(t["id"])))
        return tuple([await self._fill(symbol, rules, trade) for trade in ordered])

    async def fetch_orders(self, symbol: str, limit: int | None = None) -> Sequence[OrderStatus]:
        """Return the account's orders of ``symbol``, open or closed, oldest first (``OrderHistory``).

        ``limit`` None: every order, paged by order id on Binance (``GET /api/v3/allOrders`` from
        ``orderId`` 0, ``orders_page_limit`` a page); else the ``limit`` most recent (one call).
        """
        precision = (await self._rules_of(symbol)).precision
        page_limit = _ORDERS_PAGE_LIMIT
        found: dict[str, Mapping[str, Any]] = {}
        if limit is not None or not self._exchange_id.startswith("binance"):
            with ccxt_errors(self._exchange_id):
                page = await self._client.fetch_orders(symbol, None, min(limit or page_limit, page_limit))
            found = {str(o["id"]): o for o in page}
        else:
            from_id = 0
            while True:
                with ccxt_errors(self._exchange_id):
                    page = await self._client.fetch_orders(symbol, None, page_limit, {"orderId": from_id})
                for order in page:
                    found[str(order["id"])] = order
                if len(page) < page_limit:
                    break
                from_id = max(int(o["id"]) for o in page) + 1
        out = []
        for order in sorted(found.values(), key=lambda o: (int(o.get("timestamp") or 0), str(o["id"]))):
            info = order.get("info") or {}
            cid = str(info.get("origClientOrderId") or order.get("clientOrderId") or "")
            status = _STATUS.get(str(order.get("status")))
            if status is None:
                raise ExchangeUnavailableError(
                    f"{self._exchange_id}: order {cid!r} on {symbol} has an unknown status "
                    f"{order.get('status')!r}"
                )
            out.append(OrderStatus(self._open_order(symbol, precision, order, cid or None), status))
        return tuple(out)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        """Return the order with this client order id, or None if the exchange does not know it."""
        precision = (await self._rules_of(symbol)).precision
        try:
            with ccxt_errors(self._exchange_id):
                order = await self._client.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except OrderNotFoundError:
            return None
        status = _STATUS.get(str(order.get("status")))
        if status is None:
            raise ExchangeUnavailableError(
                f"{self._exchange_id}: order {client_order_id!r} on {symbol} has an unknown status "
                f"{order.get('status')!r}"
            )
        return OrderStatus(self._open_order(symbol, precision, order, client_order_id), status)

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        """Place a post-only limit order under our client order id; return the exchange's order id.

        Raises:
            InvalidOrderError: off the market's rules (checked before sending anything).
            PostOnlyRejectedError, InsufficientFundsError, OrderRejectedError: refused by the exchange.
            AmbiguousOrderError: sent, outcome unknown; look the client order id up before anything else.
            ExchangeUnavailableError: not placed (rate limit, clock skew); retry next pulse.
        """
        rules = await self._rules_of(symbol)
        _check_order(symbol, rules, order)
        precision = rules.precision
        price, amount = price_text(precision, order.price), qty_text(precision, order.qty)
        id_param = "newClientOrderId" if self._binance else "clientOrderId"
        params = {"postOnly": True, id_param: order.client_order_id}
        logger.info(
            "order_send venue=%s symbol=%s cid=%s side=%s price=%s qty=%s",
            self._exchange_id,
            symbol,
            order.client_order_id,
            order.side.value,
            price,
            amount,
        )
        with ccxt_errors(self._exchange_id, placing=True):
            placed = await self._client.create_order(symbol, "limit", order.side.value, amount, price, params)
        order_id = placed.get("id")
        if order_id is None:
            return ""
        self._remember(symbol, str(order_id), order.client_order_id)
        return str(order_id)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """Cancel our order ``client_order_id``; ``OrderNotFoundError`` if it is no longer open."""
        await self._rules_of(symbol)
        # Binance takes the client id alone (origClientOrderId); elsewhere pass the order id when known.
        order_id = None if self._binance else self._order_ids.get((symbol, client_order_id))
        with ccxt_errors(self._exchange_id):
            await self._client.cancel_order(order_id, symbol, {"clientOrderId": client_order_id})

    # -- internals ----------------------------------------------------------------------------

    async def _rules_of(self, symbol: str) -> _Rules:
        rules = self._rules.get(symbol)
        if rules is not None:
            return rules
        with ccxt_errors(self._exchange_id):
            await self._client.load_markets()
        market = spot_market(self._exchange_id, self._client.markets or {}, symbol)
        rules = self._rules[symbol] = _rules(symbol, market, self._client.precisionMode)
        return rules

    def _remember(self, symbol: str, order_id: str, client_order_id: str) -> None:
        if client_order_id:
            self._client_ids[(symbol, order_id)] = client_order_id
            self._order_ids[(symbol, client_order_id)] = order_id

    def _open_order(
        self, symbol: str, precision: Precision, order: Mapping[str, Any], client_order_id: str | None = None
    ) -> OpenOrder:
        # Binance reports a cancelled order's cancel-request id as clientOrderId (reference §1.5).
        cid = client_order_id or str(order.get("clientOrderId") or "")
        if order.get("id") is not None:
            self._remember(symbol, str(order["id"]), cid)
        what = f"order {cid or order.get('id')!r} on {symbol}"
        return OpenOrder(
            client_order_id=cid,
            side=Side(order["side"]),
            price=exact_ticks(precision, order.get("price"), f"price of {what}"),
            qty=exact_lots(precision, order.get("amount"), f"quantity of {what}"),
            filled=exact_lots(precision, order.get("filled") or 0, f"filled quantity of {what}"),
        )

    async def _fill(self, symbol: str, rules: _Rules, trade: Mapping[str, Any]) -> Fill:
        precision, info = rules.precision, rules.info
        trade_id = str(trade["id"])
        what = f"trade {trade_id} on {symbol}"
        price = to_decimal(trade.get("price"), f"price of {what}")
        fees = trade.get("fees") or ([trade["fee"]] if trade.get("fee") else [])
        ticks = exact_ticks(precision, price, f"price of {what}")
        lots = exact_lots(precision, trade.get("amount"), f"quantity of {what}")
        fee_ppm = int(info.maker_fee * PPM)
        paid = fill_fees(precision, info.base, info.quote, ticks, lots, fee_ppm, fees)
        return Fill(
            trade_id=trade_id,
            client_order_id=await self._client_id_of(symbol, trade.get("order")),
            side=Side(trade["side"]),
            price=ticks,
            qty=lots,
            fee=paid.fee_qu,
            ts_ms=int(trade["timestamp"]),
            fee_base=paid.fee_bu,
            fee_asset=paid.asset,
            commission=paid.commission,
        )

    async def _client_id_of(self, symbol: str, order_id: object) -> str:
        """Return the client order id of an exchange order (a trade only names the order id)."""
        if order_id is None:
            return ""
        key = (symbol, str(order_id))
        cid = self._client_ids.get(key)
        if cid is None:
            with ccxt_errors(self._exchange_id):
                order = await self._client.fetch_order(str(order_id), symbol)
            cid = str(order.get("clientOrderId") or "")
            self._remember(symbol, str(order_id), cid)
        return cid


def spot_market(exchange_id: str, markets: Mapping[str, Any], symbol: str) -> Mapping[str, Any]:
    """Return the ccxt market ``symbol``; ``ConfigError`` unless it exists and is a spot market."""
    market: Mapping[str, Any] | None = markets.get(symbol)
    if market is None:
        raise ConfigError(f"{symbol!r} is not a market of {exchange_id}: use the ccxt form, e.g. BTC/USDT")
    if market.get("spot") is not True or market.get("type") != "spot":
        raise ConfigError(
            f"{symbol} on {exchange_id} is a {market.get('type')} market: Nutcracker trades spot "
            "markets only; configure a spot symbol such as BTC/USDT"
        )
    return market


def _candle(precision: Precision, row: Sequence[Any]) -> Candle:
    o, h, low, c = (
        precision.price_to_ticks(to_decimal(v, "candle price"), ROUND_HALF_EVEN) for v in row[1:5]
    )
    volume = row[5] if len(row) > 5 and row[5] is not None else 0.0
    return Candle(ts_ms=int(row[0]), open=o, high=h, low=low, close=c, volume=float(volume))


def _rules(symbol: str, market: Mapping[str, Any], precision_mode: int) -> _Rules:
    precision_raw = market.get("precision") or {}
    tick = _grid_size(symbol, "price", precision_raw.get("price"), precision_mode)
    lot = _grid_size(symbol, "amount", precision_raw.get("amount"), precision_mode)
    precision = Precision(tick=tick, lot=lot)
    limits = market.get("limits") or {}
    amount_limits = limits.get("amount") or {}
    price_limits = limits.get("price") or {}
    cost_min = (limits.get("cost") or {}).get("min")
    maker = market.get("maker")
    info = MarketInfo(
        symbol=symbol,
        base=str(market["base"]),
        quote=str(market["quote"]),
        tick_size=tick,
        lot_size=lot,
        min_notional=Decimal(0) if cost_min is None else to_decimal(cost_min, "minimum notional"),
        maker_fee=Decimal(0) if maker is None else to_decimal(maker, "maker fee"),
    )

    def bound(value: object, to_units: Literal["lots", "ticks"], rounding: str) -> int | None:
        if value is None:
            return None
        number = to_decimal(value, f"{symbol} limit")
        if to_units == "lots":
            return precision.qty_to_lots(number, rounding)
        return precision.price_to_ticks(number, rounding)

    return _Rules(
        info=info,
        precision=precision,
        min_lots=bound(amount_limits.get("min"), "lots", ROUND_CEILING) or 1,
        max_lots=bound(amount_limits.get("max"), "lots", ROUND_FLOOR) or None,
        min_ticks=bound(price_limits.get("min"), "ticks", ROUND_CEILING) or 1,
        max_ticks=bound(price_limits.get("max"), "ticks", ROUND_FLOOR) or None,
    )


def _grid_size(symbol: str, what: str, value: object, precision_mode: int) -> Decimal:
    if value is None:
        raise ConfigError(f"{symbol}: the exchange reports no {what} precision; it cannot be traded exactly")
    if precision_mode == ccxt.TICK_SIZE:
        size = to_decimal(value, f"{symbol} {what} tick")
    elif precision_mode == ccxt.DECIMAL_PLACES:
        size = Decimal(1).scaleb(-int(to_decimal(value, f"{symbol} {what} digits")))
    else:
        raise ConfigError(
            f"{symbol}: the exchange counts {what} precision in significant digits, which has no fixed "
            "tick; Nutcracker cannot trade it exactly"
        )
    if size <= 0:
        raise ConfigError(f"{symbol}: the exchange reports a {what} step of {value}")
    return size


def _check_order(symbol: str, rules: _Rules, order: PlaceLimit) -> None:
    """Refuse, before sending, an order the market's rules would reject (reference §3.2)."""
    info, precision = rules.info, rules.precision
    cid = order.client_order_id
    if not _CLIENT_ORDER_ID.match(cid):
        raise InvalidOrderError(
            f"client order id {cid!r} must be 1 to {MAX_ID_LENGTH} characters of [A-Za-z0-9_-] "
            "(nothing was sent)"
        )
    if order.qty < rules.min_lots or (rules.max_lots is not None and order.qty > rules.max_lots):
        top = "none" if rules.max_lots is None else qty_text(precision, rules.max_lots)
        raise InvalidOrderError(
            f"{symbol}: quantity {qty_text(precision, order.qty)} is outside the market's limits "
            f"[{qty_text(precision, rules.min_lots)}, {top}] (nothing was sent)"
        )
    if order.price < rules.min_ticks or (rules.max_ticks is not None and order.price > rules.max_ticks):
        top = "none" if rules.max_ticks is None else price_text(precision, rules.max_ticks)
        raise InvalidOrderError(
            f"{symbol}: price {price_text(precision, order.price)} is outside the market's limits "
            f"[{price_text(precision, rules.min_ticks)}, {top}] (nothing was sent)"
        )
    notional = precision.ticks_to_price(order.price) * precision.lots_to_qty(order.qty)
    if notional < info.min_notional:
        raise InvalidOrderError(
            f"{symbol}: notional {plain(notional)} {info.quote} is below the minimum notional "
            f"{plain(info.min_notional)} {info.quote} (nothing was sent)"
        )


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"api_url {url!r} is not an http(s) base URL: write e.g. 'http://127.0.0.1:8900'")
    return url.rstrip("/")


def rebase_urls(urls: object, base: str) -> object:
    """Return ccxt's ``urls['api']`` with every section's scheme and host replaced by ``base``."""
    if isinstance(urls, str):
        return base + urlsplit(urls).path.rstrip("/")
    if isinstance(urls, Mapping):
        return {section: rebase_urls(url, base) for section, url in urls.items()}
    return urls


__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_METHODS",
    "FORBIDDEN_WORDS",
    "PROBE_METHODS",
    "CcxtExchange",
    "CcxtGuard",
    "FillFees",
    "exact_lots",
    "exact_ticks",
    "fill_fees",
    "plain",
    "price_text",
    "qty_text",
    "rebase_urls",
    "spot_market",
    "to_decimal",
]
