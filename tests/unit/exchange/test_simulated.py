"""SimExchange: the Exchange port over the matching engine, its clock, history and faults."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from decimal import Decimal

import pytest

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.engine.ports import Exchange
from nutcracker.errors import (
    AmbiguousOrderError,
    ExchangeUnavailableError,
    OrderNotFoundError,
    PostOnlyRejectedError,
)
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.exchange.simulated import Faults, SimExchange

SYMBOL = "BTC/USDT"
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
T0 = 1_700_000_040_000  # a minute boundary


def make_sim(faults: Faults | None = None) -> SimExchange:
    engine = MatchingEngine({SYMBOL: MARKET}, {"USDT": Decimal("1000"), "BTC": Decimal("1")})
    return SimExchange(engine, faults=faults)


def candle(i: int, low: int = 9_950, high: int = 10_050, close: int = 10_000) -> Candle:
    return Candle(ts_ms=T0 + i * MINUTE, open=close, high=high, low=low, close=close)


def buy(coid: str, price: int = 9_900, qty: int = 100) -> PlaceLimit:
    return PlaceLimit(coid, Side.BUY, price, qty, reason="test")


def test_sim_exchange_fits_the_exchange_port() -> None:
    sim: Exchange = make_sim()  # checked by mypy when it reads this file

    for name, _function in inspect.getmembers(Exchange, inspect.isfunction):
        if not name.startswith("_"):
            assert inspect.iscoroutinefunction(getattr(sim, name)), name


def test_advance_moves_the_clock_to_the_candle_close_time() -> None:
    sim = make_sim()

    sim.advance(SYMBOL, candle(0))

    assert sim.now_ms == T0 + MINUTE - 1
    assert asyncio.run(sim.server_time_ms()) == T0 + MINUTE - 1


def test_advance_refuses_a_candle_that_does_not_follow_the_last_one() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(1))

    with pytest.raises(ValueError, match="does not follow"):
        sim.advance(SYMBOL, candle(1))


def test_fetch_candles_returns_the_first_limit_candles_from_since_oldest_first() -> None:
    sim = make_sim()
    for i in range(5):
        sim.advance(SYMBOL, candle(i))

    got = asyncio.run(sim.fetch_candles(SYMBOL, since_ms=T0 + MINUTE + 1, limit=2))
    everything = asyncio.run(sim.fetch_candles(SYMBOL, since_ms=0, limit=100))

    assert [c.ts_ms for c in got] == [T0 + 2 * MINUTE, T0 + 3 * MINUTE]
    assert [c.ts_ms for c in everything] == [T0 + i * MINUTE for i in range(5)]
    assert asyncio.run(sim.fetch_candles(SYMBOL, since_ms=T0 + 5 * MINUTE, limit=10)) == ()


def test_a_bounded_history_keeps_at_least_the_latest_candles() -> None:
    engine = MatchingEngine({SYMBOL: MARKET}, {})
    sim = SimExchange(engine, max_history=3)
    for i in range(10):
        sim.advance(SYMBOL, candle(i))

    got = asyncio.run(sim.fetch_candles(SYMBOL, since_ms=T0 + 7 * MINUTE, limit=10))

    assert [c.ts_ms for c in got] == [T0 + i * MINUTE for i in (7, 8, 9)]


def test_the_book_is_unavailable_before_the_first_candle_and_follows_the_close_after() -> None:
    sim = make_sim()

    with pytest.raises(ExchangeUnavailableError, match="no book"):
        asyncio.run(sim.fetch_book(SYMBOL))
    sim.advance(SYMBOL, candle(0, close=10_020))

    assert asyncio.run(sim.fetch_book(SYMBOL)) == Book(best_bid=10_020, best_ask=10_021)


def test_an_order_placed_through_the_port_rests_fills_and_shows_in_fills_and_balances() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(0))

    async def scenario() -> tuple[
        str, Sequence[OpenOrder], list[Fill], OrderStatus | None, dict[str, Decimal]
    ]:
        order_id = await sim.place(SYMBOL, buy("b1", 9_900, 100))
        resting = await sim.fetch_open_orders(SYMBOL)
        sim.advance(SYMBOL, candle(1, low=9_899))
        fills = list(await sim.fetch_fills(SYMBOL, since_ms=T0))
        status = await sim.fetch_order(SYMBOL, "b1")
        balances = dict(await sim.fetch_balances())
        return order_id, resting, fills, status, balances

    order_id, resting, fills, status, balances = asyncio.run(scenario())

    assert order_id == "1"
    assert resting == (OpenOrder("b1", Side.BUY, 9_900, 100),)
    assert fills == [Fill("1", "b1", Side.BUY, 9_900, 100, 0, T0 + 2 * MINUTE - 1, 100_000, "BTC", "0.0001")]
    assert status == OrderStatus(OpenOrder("b1", Side.BUY, 9_900, 100, filled=100), "filled")
    assert balances == {"BTC": Decimal("1.0999"), "USDT": Decimal("990.1")}


def test_orders_are_placed_and_cancelled_at_the_simulated_time() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(0))

    async def scenario() -> None:
        await sim.place(SYMBOL, buy("b1"))
        await sim.cancel(SYMBOL, "b1")

    asyncio.run(scenario())

    assert [(e.event, e.ts_ms) for e in sim.engine.events] == [
        ("placed", T0 + MINUTE - 1),
        ("cancelled", T0 + MINUTE - 1),
    ]
    assert asyncio.run(sim.fetch_balances()) == {"BTC": Decimal("1"), "USDT": Decimal("1000")}


def test_errors_of_the_engine_reach_the_caller_unchanged() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(0))

    with pytest.raises(PostOnlyRejectedError):
        asyncio.run(sim.place(SYMBOL, buy("b1", price=10_001)))
    with pytest.raises(OrderNotFoundError):
        asyncio.run(sim.cancel(SYMBOL, "never"))
    assert asyncio.run(sim.fetch_order(SYMBOL, "never")) is None


def test_market_returns_the_rules_of_the_symbol() -> None:
    assert asyncio.run(make_sim().market(SYMBOL)) == MARKET


# -- faults -----------------------------------------------------------------------------------


def test_a_timeout_raises_exchange_unavailable_before_doing_anything() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(0))
    sim.faults.fail_next("place", "timeout")

    with pytest.raises(ExchangeUnavailableError, match="simulated timeout in place"):
        asyncio.run(sim.place(SYMBOL, buy("b1")))

    assert asyncio.run(sim.fetch_order(SYMBOL, "b1")) is None
    assert asyncio.run(sim.place(SYMBOL, buy("b1"))) == "1"  # the fault was for one call only


def test_a_dropped_answer_leaves_the_order_resting_and_fetch_order_finds_it() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(0))
    sim.faults.fail_next("place", "drop_after_accept")

    with pytest.raises(AmbiguousOrderError, match="no answer came"):
        asyncio.run(sim.place(SYMBOL, buy("b1")))

    assert asyncio.run(sim.fetch_order(SYMBOL, "b1")) == OrderStatus(
        OpenOrder("b1", Side.BUY, 9_900, 100), "open"
    )
    assert asyncio.run(sim.fetch_open_orders(SYMBOL)) == (OpenOrder("b1", Side.BUY, 9_900, 100),)


def test_a_dropped_answer_to_a_rejected_order_is_ambiguous_and_fetch_order_shows_the_reject() -> None:
    sim = make_sim()
    sim.advance(SYMBOL, candle(0))
    sim.faults.fail_next("place", "drop_after_accept")

    with pytest.raises(AmbiguousOrderError) as caught:
        asyncio.run(sim.place(SYMBOL, buy("b1", price=10_001)))

    assert isinstance(caught.value.__cause__, PostOnlyRejectedError)
    status = asyncio.run(sim.fetch_order(SYMBOL, "b1"))
    assert status is not None
    assert status.status == "rejected"


def test_seeded_random_faults_hit_the_same_calls_on_every_run() -> None:
    def outcomes() -> list[str]:
        sim = make_sim(Faults(seed=7, timeout=0.3, drop_after_accept=0.3))
        sim.advance(SYMBOL, candle(0))
        seen = []
        for i in range(30):
            try:
                asyncio.run(sim.place(SYMBOL, buy(f"b{i}", price=9_000 + i)))
                seen.append("ok")
            except AmbiguousOrderError:
                seen.append("ambiguous")
            except ExchangeUnavailableError:
                seen.append("timeout")
        return seen

    first = outcomes()

    assert first == outcomes()
    assert {"ok", "ambiguous", "timeout"} <= set(first)


def test_a_certain_timeout_hits_every_method() -> None:
    sim = make_sim(Faults(timeout=1.0))

    with pytest.raises(ExchangeUnavailableError):
        asyncio.run(sim.fetch_balances())
    with pytest.raises(ExchangeUnavailableError):
        asyncio.run(sim.market(SYMBOL))


def test_latency_delays_every_call() -> None:
    sim = make_sim(Faults(latency_ms=20))

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await sim.server_time_ms()
        return loop.time() - start

    assert asyncio.run(timed()) >= 0.015


def test_faults_refuse_unknown_methods_kinds_and_probabilities() -> None:
    faults = Faults()

    with pytest.raises(ValueError, match="unknown method"):
        faults.fail_next("withdraw", "timeout")
    with pytest.raises(ValueError, match="place' only"):
        faults.fail_next("cancel", "drop_after_accept")
    with pytest.raises(ValueError, match="probability"):
        Faults(timeout=1.5)
