"""CcxtExchange end to end: the real ``ccxt.async_support.binance`` client against the loopback sim server.

Every port method, the error table on real HTTP answers and faults, the key probe and paper mode.
The sim's clock is manual (``server.advance``) and its data a dozen one-minute candles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from nutcracker.core.model import Book, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.core.units import Precision
from nutcracker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    ExchangeUnavailableError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PermissionRefusedError,
    PostOnlyRejectedError,
)
from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.exchange.key_probe import probe_key, require_trade_only_key, verify_key
from nutcracker.exchange.paper import PaperExchange
from nutcracker.marketdata.candles import CandleArrays, to_candles
from nutcracker.secrets.cli_keys import EXIT_REFUSED, make_keys_app
from nutcracker.secrets.keystore import PASSPHRASE_ENV, KeystoreSecretStore
from nutcracker.secrets.redaction import forget_all_secrets
from nutcracker.secrets.store import ApiCredentials, SecretStore
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import FaultKind, SimServer

SYMBOL = "BTC/USDT"
BTC = Precision(tick=Decimal("0.01"), lot=Decimal("0.00001"))
MINUTE = 60_000
T0 = 1_700_000_040_000  # a minute boundary
PRICE = 5_000_000  # 50000.00 in ticks
DIP = 3  # the candle that trades down to 49900.00
SPIKE = 5  # the candle that trades up to 50100.00
WARMUP = 3  # candles 0, 1 and 2 are closed when the server starts

TRADER = SimAccount("trader-key", "trader-secret", {"USDT": Decimal(10_000), "BTC": Decimal("0.5")})
POOR = SimAccount("poor-key", "poor-secret", {"USDT": Decimal(10)})
WITHDRAWER = SimAccount(
    "withdrawer-key", "withdrawer-secret", {"USDT": Decimal(100)}, permissions={"enableWithdrawals": True}
)
TRANSFERER = SimAccount(
    "transferer-key",
    "transferer-secret",
    {"USDT": Decimal(100)},
    permissions={"enableInternalTransfer": True},
)
UNIVERSAL = SimAccount(
    "universal-key",
    "universal-secret",
    {"USDT": Decimal(100)},
    permissions={"permitsUniversalTransfer": True},
)
ACCOUNTS = (TRADER, POOR, WITHDRAWER, TRANSFERER, UNIVERSAL)

T = TypeVar("T")


def candle_arrays(n: int = 12) -> CandleArrays:
    close = np.full(n, PRICE, dtype=np.int64)
    high = close + 500
    low = close - 500
    low[DIP] = PRICE - 10_000
    high[SPIKE] = PRICE + 10_000
    ts = T0 + MINUTE * np.arange(n, dtype=np.int64)
    volume = np.full(n, 2.0)
    return CandleArrays(ts, close.copy(), high, low, close.copy(), volume, MINUTE, SYMBOL)


MARKET = MarketInfo(SYMBOL, "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))


@pytest.fixture
def server() -> Iterator[SimServer]:
    sim = SimServer({SYMBOL: MarketSpec(MARKET, candle_arrays())}, list(ACCOUNTS), warmup=WARMUP)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    forget_all_secrets()


def connect(server: SimServer, account: SimAccount | None = TRADER, **options: Any) -> CcxtExchange:
    options.setdefault("rate_limit_ms", 1)  # the limiter stays on, just fast
    if account is None:
        return CcxtExchange.public("binance", api_url=server.url, **options)
    secret = options.pop("secret", account.secret)
    return CcxtExchange("binance", api_key=account.api_key, secret=secret, api_url=server.url, **options)


def run(
    server: SimServer,
    scenario: Callable[[CcxtExchange], Awaitable[T]],
    account: SimAccount | None = TRADER,
    **options: Any,
) -> T:
    async def go() -> T:
        async with connect(server, account, **options) as exchange:
            return await scenario(exchange)

    return asyncio.run(go())


def buy(cid: str, price: int = PRICE - 5_000, qty: int = 100) -> PlaceLimit:
    return PlaceLimit(cid, Side.BUY, price, qty, reason="test")


def sell(cid: str, price: int = PRICE + 5_000, qty: int = 100) -> PlaceLimit:
    return PlaceLimit(cid, Side.SELL, price, qty, reason="test")


# --- every port method ------------------------------------------------------------------------------


def test_market_time_candles_book_and_balances_come_from_the_sim(server: SimServer) -> None:
    async def scenario(ex: CcxtExchange) -> tuple[Any, ...]:
        return (
            await ex.market(SYMBOL),
            await ex.server_time_ms(),
            await ex.fetch_candles(SYMBOL, 0, 100),
            await ex.fetch_candles(SYMBOL, T0 + 1, 1),
            await ex.fetch_book(SYMBOL),
            await ex.fetch_balances(),
        )

    market, now_ms, candles, one, book, balances = run(server, scenario)

    assert market == MARKET
    assert now_ms == server.now_ms == T0 + WARMUP * MINUTE
    assert candles == to_candles(candle_arrays(), 0, WARMUP)  # closed ones only, exact
    assert one == to_candles(candle_arrays(), 1, 2)
    assert book.best_bid == PRICE
    assert book.best_ask == PRICE + 1
    assert server.engine(TRADER.api_key).book(SYMBOL) == Book(PRICE, PRICE + 1)
    assert book.bid_lots > 0
    assert balances["USDT"] == Decimal(10_000)
    assert balances["BTC"] == Decimal("0.5")


def test_fetch_candles_pages_through_long_ranges(server: SimServer) -> None:
    server.advance(6)

    async def scenario(ex: CcxtExchange) -> tuple[Any, ...]:
        return await ex.fetch_candles(SYMBOL, 0, 100), await ex.fetch_candles(SYMBOL, T0 + MINUTE, 5)

    everything, five = run(server, scenario, candles_page_limit=2)
    assert everything == to_candles(candle_arrays(), 0, WARMUP + 6)
    assert five == to_candles(candle_arrays(), 1, 6)


def test_fetch_candles_drops_the_candle_that_is_still_open(server: SimServer) -> None:
    async def scenario(ex: CcxtExchange) -> tuple[Any, ...]:
        before = await ex.fetch_candles(SYMBOL, 0, 100)
        server.advance(2)
        after = await ex.fetch_candles(SYMBOL, before[-1].ts_ms + 1, 100)
        return before, after

    before, after = run(server, scenario)
    assert [c.ts_ms for c in before] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert [c.ts_ms for c in after] == [T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert after[0].low == PRICE - 10_000


def test_post_only_order_rests_and_shows_in_open_orders_and_fetch_order(server: SimServer) -> None:
    async def scenario(ex: CcxtExchange) -> tuple[Any, ...]:
        order_id = await ex.place(SYMBOL, buy("nct-b1"))
        sell_id = await ex.place(SYMBOL, sell("nct-s1"))
        return order_id, sell_id, await ex.fetch_open_orders(SYMBOL), await ex.fetch_order(SYMBOL, "nct-b1")

    order_id, sell_id, open_orders, status = run(server, scenario)

    assert (order_id, sell_id) == ("1", "2")
    resting_buy = OpenOrder("nct-b1", Side.BUY, PRICE - 5_000, 100, 0)
    assert open_orders == (resting_buy, OpenOrder("nct-s1", Side.SELL, PRICE + 5_000, 100, 0))
    assert status == OrderStatus(resting_buy, "open")
    engine = server.engine(TRADER.api_key)
    assert engine.open_orders(SYMBOL) == open_orders
    # 0.001 BTC at 49950.00 locks its notional, 49.95 USDT: Binance takes a buy's fee in base
    assert engine.locked("USDT") == Decimal("49.95")


def test_cancel_closes_the_order_and_a_second_cancel_is_order_not_found(server: SimServer) -> None:
    async def scenario(ex: CcxtExchange) -> tuple[Any, ...]:
        await ex.place(SYMBOL, buy("nct-c1"))
        await ex.cancel(SYMBOL, "nct-c1")
        status = await ex.fetch_order(SYMBOL, "nct-c1")
        with pytest.raises(OrderNotFoundError):
            await ex.cancel(SYMBOL, "nct-c1")
        return status, await ex.fetch_open_orders(SYMBOL), await ex.fetch_balances()

    status, open_orders, balances = run(server, scenario)
    assert status == OrderStatus(OpenOrder("nct-c1", Side.BUY, PRICE - 5_000, 100, 0), "cancelled")
    assert open_orders == ()
    assert balances["USDT"] == Decimal(10_000)


def test_fetch_order_of_an_id_never_sent_is_none(server: SimServer) -> None:
    assert run(server, lambda ex: ex.fetch_order(SYMBOL, "nct-never")) is None


@pytest.mark.parametrize("page", [None, 1], ids=["one-page", "paginated"])
def test_fills_after_the_clock_moves_come_back_exact_with_our_client_ids(
    server: SimServer, page: int | None
) -> None:
    async def place(ex: CcxtExchange) -> None:
        await ex.place(SYMBOL, buy("nct-b1"))
        await ex.place(SYMBOL, sell("nct-s1", qty=200))

    run(server, place)
    server.advance(SPIKE - WARMUP + 1)  # the dip fills the buy, the spike the sell

    async def read(ex: CcxtExchange) -> tuple[Any, ...]:  # a fresh connector: ids learnt from the sim
        return (
            await ex.fetch_fills(SYMBOL, 0),
            await ex.fetch_fills(SYMBOL, T0 + SPIKE * MINUTE),
            await ex.fetch_order(SYMBOL, "nct-b1"),
            await ex.fetch_balances(),
        )

    fills, late, status, balances = run(server, read, trades_page_limit=page)

    fee_ppm = 1000  # 10 bps
    # as Binance charges them: the buy in the base it received, the sell in the quote it received
    bought = Fill(
        "1", "nct-b1", Side.BUY, PRICE - 5_000, 100, 0, T0 + 4 * MINUTE - 1, 100 * fee_ppm, "BTC", "0.000001"
    )
    sold = Fill(
        "2",
        "nct-s1",
        Side.SELL,
        PRICE + 5_000,
        200,
        (PRICE + 5_000) * 200 * fee_ppm,
        T0 + 6 * MINUTE - 1,
        0,
        "USDT",
        "0.1001",
    )
    assert fills == (bought, sold)
    assert bought.fee_base == BTC.base_to_bu(Decimal("0.000001"))  # 0.001 BTC x 0.001
    assert late == (sold,)
    assert fills == server.engine(TRADER.api_key).fills_since(SYMBOL, 0)
    assert status == OrderStatus(OpenOrder("nct-b1", Side.BUY, PRICE - 5_000, 100, 100), "filled")
    assert balances["BTC"] == Decimal("0.498999")  # 0.5 + 0.001 - 0.000001 - 0.002
    assert balances["USDT"] == Decimal("10000") - Decimal("49.95") + Decimal("100.1") - Decimal("0.1001")


# --- refusals -------------------------------------------------------------------------------------------


def test_a_crossing_post_only_order_is_rejected_and_nothing_rests(server: SimServer) -> None:
    async def scenario(ex: CcxtExchange) -> None:
        book = await ex.fetch_book(SYMBOL)
        await ex.place(SYMBOL, buy("nct-x1", price=book.best_ask))

    with pytest.raises(PostOnlyRejectedError, match="would immediately match and take"):
        run(server, scenario)
    assert server.engine(TRADER.api_key).open_orders(SYMBOL) == ()


def test_an_order_beyond_the_balance_is_insufficient_funds(server: SimServer) -> None:
    with pytest.raises(InsufficientFundsError):
        run(server, lambda ex: ex.place(SYMBOL, buy("nct-p1", qty=1000)), account=POOR)  # 499.50 USDT > 10


def test_an_order_below_the_minimum_notional_never_reaches_the_exchange(server: SimServer) -> None:
    with pytest.raises(InvalidOrderError, match="minimum notional"):
        run(server, lambda ex: ex.place(SYMBOL, buy("nct-m1", qty=9)))  # 4.4955 USDT < 5
    assert server.state()["accounts"][0]["open_orders"] == 0
    assert server.engine(TRADER.api_key).events == []


def test_a_duplicate_client_id_of_an_open_order_is_ambiguous_and_resolves_to_the_live_order(
    server: SimServer,
) -> None:
    async def scenario(ex: CcxtExchange) -> OrderStatus | None:
        await ex.place(SYMBOL, buy("nct-d1"))
        with pytest.raises(AmbiguousOrderError, match="already live"):
            await ex.place(SYMBOL, buy("nct-d1", price=PRICE - 6_000))
        return await ex.fetch_order(SYMBOL, "nct-d1")

    status = run(server, scenario)
    assert status is not None
    assert status.order.price == PRICE - 5_000


@pytest.mark.parametrize(
    "account", [TRADER, SimAccount("nobody-key", "x", {})], ids=["bad-secret", "unknown-key"]
)
def test_a_bad_secret_or_unknown_key_is_an_authentication_error(
    server: SimServer, account: SimAccount
) -> None:
    with pytest.raises(AuthenticationError):
        run(server, lambda ex: ex.fetch_balances(), account=account, secret="not-the-secret")
    with pytest.raises(AuthenticationError):
        run(server, lambda ex: ex.place(SYMBOL, buy("nct-a1")), account=account, secret="not-the-secret")
    assert server.engine(TRADER.api_key).open_orders(SYMBOL) == ()


# --- faults -----------------------------------------------------------------------------------------------


def test_an_order_accepted_but_whose_answer_is_lost_is_ambiguous_then_found_open(server: SimServer) -> None:
    server.fail_next("drop_after_accept")

    async def scenario(ex: CcxtExchange) -> OrderStatus | None:
        with pytest.raises(AmbiguousOrderError):
            await ex.place(SYMBOL, buy("nct-l1"))
        return await ex.fetch_order(SYMBOL, "nct-l1")

    status = run(server, scenario)
    assert status == OrderStatus(OpenOrder("nct-l1", Side.BUY, PRICE - 5_000, 100, 0), "open")


READS: dict[str, tuple[str, Callable[[CcxtExchange], Awaitable[object]]]] = {
    "balances": ("GET /api/v3/account", lambda ex: ex.fetch_balances()),
    "open-orders": ("GET /api/v3/openOrders", lambda ex: ex.fetch_open_orders(SYMBOL)),
    "fills": ("GET /api/v3/myTrades", lambda ex: ex.fetch_fills(SYMBOL, 0)),
    "order": ("GET /api/v3/order", lambda ex: ex.fetch_order(SYMBOL, "nct-any")),
    "candles": ("GET /api/v3/klines", lambda ex: ex.fetch_candles(SYMBOL, 0, 10)),
    "book": ("GET /api/v3/depth", lambda ex: ex.fetch_book(SYMBOL)),
    "time": ("GET /api/v3/time", lambda ex: ex.server_time_ms()),
}
# Every fault on one read, and one fault on every read.
READ_FAULTS: list[tuple[FaultKind, str]] = [
    (fault, "balances") for fault in ("5xx", "502", "429", "418", "timeout")
] + [("5xx", read) for read in READS if read != "balances"]


@pytest.mark.parametrize(("fault", "read"), READ_FAULTS)
def test_outages_on_reads_are_data_stalls(server: SimServer, fault: FaultKind, read: str) -> None:
    endpoint, call = READS[read]
    server.set_faults(timeout_ms=2_000)

    async def scenario(ex: CcxtExchange) -> object:
        await ex.market(SYMBOL)  # exchangeInfo first, unfaulted
        server.fail_next(fault, endpoint)
        with pytest.raises(ExchangeUnavailableError) as caught:
            await call(ex)
        assert not isinstance(caught.value, AmbiguousOrderError)
        return await call(ex)  # the next pulse works

    run(server, scenario, timeout_ms=300)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("5xx", AmbiguousOrderError),
        ("502", AmbiguousOrderError),
        ("timeout", AmbiguousOrderError),
        ("429", ExchangeUnavailableError),  # refused before the matching engine: nothing placed
        ("418", ExchangeUnavailableError),
    ],
)
def test_outages_on_placement_are_ambiguous_unless_refused_before_matching(
    server: SimServer, fault: FaultKind, outcome: type[Exception]
) -> None:
    server.set_faults(timeout_ms=2_000)

    async def scenario(ex: CcxtExchange) -> OrderStatus | None:
        await ex.market(SYMBOL)
        server.fail_next(fault)
        with pytest.raises(ExchangeUnavailableError) as caught:
            await ex.place(SYMBOL, buy("nct-f1"))
        assert type(caught.value) is outcome
        return await ex.fetch_order(SYMBOL, "nct-f1")

    assert run(server, scenario, timeout_ms=300) is None  # none of these faults executes the order


# --- the key probe ------------------------------------------------------------------------------------------


def credentials(server: SimServer, account: SimAccount, secret: str | None = None) -> ApiCredentials:
    return ApiCredentials(
        exchange_id="binance",
        name=account.api_key,
        api_key=SecretStr(account.api_key),
        secret=SecretStr(secret or account.secret),
        exchange_url=server.url,
    )


def test_a_trade_only_key_is_accepted(server: SimServer) -> None:
    permissions = asyncio.run(verify_key(credentials(server, TRADER)))
    assert permissions.safe, permissions.problems
    assert permissions.can_trade_spot is True
    assert permissions.can_withdraw is False
    assert permissions.can_transfer is False
    assert run(server, lambda ex: require_trade_only_key(ex)) == permissions


@pytest.mark.parametrize(
    ("account", "problem"),
    [
        (WITHDRAWER, "key can withdraw"),
        (TRANSFERER, "enableInternalTransfer=true"),
        (UNIVERSAL, "permitsUniversalTransfer=true"),
    ],
    ids=["withdraw", "internal-transfer", "universal-transfer"],
)
def test_a_key_that_can_withdraw_or_transfer_is_refused(
    server: SimServer, account: SimAccount, problem: str
) -> None:
    permissions = asyncio.run(verify_key(credentials(server, account)))
    assert not permissions.safe
    assert problem in permissions.refusal()
    with pytest.raises(PermissionRefusedError, match=problem):
        run(server, lambda ex: require_trade_only_key(ex), account=account)


def test_the_probe_with_a_bad_secret_is_an_authentication_error(server: SimServer) -> None:
    with pytest.raises(AuthenticationError):
        asyncio.run(verify_key(credentials(server, TRADER, secret="wrong")))
    with pytest.raises(AuthenticationError):
        run(server, lambda ex: probe_key(ex), account=TRADER, secret="wrong")


def test_keys_add_stores_a_trade_only_key_and_refuses_a_withdrawal_key(
    server: SimServer, tmp_path: Path
) -> None:
    def store(keystore: Path | None, vault: bool) -> SecretStore:
        assert keystore is not None
        return KeystoreSecretStore(keystore, scrypt_n=2**10)

    app: typer.Typer = make_keys_app(verifier=verify_key, store_factory=store)
    keystore = tmp_path / "keystore.json"

    def add(account: SimAccount) -> Any:
        args = ["add", "--exchange", "binance", "--name", account.api_key, "--exchange-url", server.url]
        stdin = f"{account.api_key}\n{account.secret}\n"
        env = {PASSPHRASE_ENV: "correct horse battery staple"}
        return CliRunner().invoke(app, [*args, "--keystore", str(keystore)], input=stdin, env=env)

    accepted = add(TRADER)
    assert accepted.exit_code == 0, accepted.output
    assert "verdict      safe" in accepted.output
    refused = add(WITHDRAWER)
    assert refused.exit_code == EXIT_REFUSED
    assert "key can withdraw" in refused.stderr
    for result in (accepted, refused):
        assert TRADER.secret not in result.output
        assert WITHDRAWER.secret not in result.stderr


# --- paper mode -------------------------------------------------------------------------------------------


def test_paper_exchange_reads_public_data_and_fills_locally(server: SimServer) -> None:
    async def scenario() -> tuple[Any, ...]:
        async with connect(server, account=None) as source:
            paper = PaperExchange(source, [SYMBOL], {"USDT": Decimal(1000)})
            history = await paper.fetch_candles(SYMBOL, 0, 100)
            book = await paper.fetch_book(SYMBOL)
            with pytest.raises(PostOnlyRejectedError):
                await paper.place(SYMBOL, buy("nct-pp0", price=book.best_ask))
            order_id = await paper.place(SYMBOL, buy("nct-pp1"))
            resting = await paper.fetch_open_orders(SYMBOL)
            server.advance(1)  # the dip
            unseen = await paper.fetch_fills(SYMBOL, 0)  # the new candle is not fetched yet
            fresh = await paper.fetch_candles(SYMBOL, history[-1].ts_ms + 1, 100)
            fills = await paper.fetch_fills(SYMBOL, 0)
            return (
                await paper.market(SYMBOL),
                history,
                book,
                order_id,
                resting,
                unseen,
                fresh,
                fills,
                await paper.fetch_order(SYMBOL, "nct-pp1"),
                await paper.fetch_balances(),
                await paper.server_time_ms(),
            )

    market, history, book, order_id, resting, unseen, fresh, fills, status, balances, now_ms = asyncio.run(
        scenario()
    )
    assert market == MARKET
    assert history == to_candles(candle_arrays(), 0, WARMUP)
    assert (book.best_bid, book.best_ask) == (PRICE, PRICE + 1)
    assert order_id == "1"
    assert resting == (OpenOrder("nct-pp1", Side.BUY, PRICE - 5_000, 100, 0),)
    assert unseen == ()
    assert fresh == to_candles(candle_arrays(), DIP, DIP + 1)
    assert fills == (
        Fill(
            "1", "nct-pp1", Side.BUY, PRICE - 5_000, 100, 0, T0 + 4 * MINUTE - 1, 100_000, "BTC", "0.000001"
        ),
    )
    assert status is not None
    assert status.status == "filled"
    assert balances["USDT"] == Decimal("1000") - Decimal("49.95")
    assert balances["BTC"] == Decimal("0.000999")  # the paper fill took its fee from the base received
    assert now_ms == server.now_ms
    # nothing reached the exchange's accounts
    for account in ACCOUNTS:
        assert server.engine(account.api_key).events == []
