"""The suites every implementation of the multi-process ports must pass (a Redis one included).

Parametrised over the implementations: today the in-process ones (``engine.inprocess``,
``engine.portfolio.PortfolioRails``); a Redis implementation adds its factory to each list.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal

import pytest

from nutcracker.core.commands import Command, PauseSymbol, ResumeSymbol, Role
from nutcracker.core.units import Precision
from nutcracker.engine.inprocess import InProcessInbox, InProcessLease
from nutcracker.engine.portfolio import PortfolioRails
from nutcracker.engine.ports import CommandInbox, QuoteBudget, SymbolLease
from nutcracker.store.redis_budget import RedisQuoteBudget
from nutcracker.store.redis_inbox import RedisInbox
from nutcracker.store.redis_lease import RedisLease

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
PRECISION = Precision(Decimal("0.01"), Decimal("0.001"))
QU = PRECISION.quote_to_qu(Decimal(1))  # quote units per USDT

INBOXES = ["in-process", "redis"]
LEASES = ["in-process", "redis"]  # redis: on a real redis-server (tests/redis_server.py)
BUDGETS = ["in-process", "redis"]


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def pause(n: int, symbol: str | None = BTC) -> Command:
    return PauseSymbol(f"c-{n}", symbol, "ops", Role.OPERATOR, f"#{n}", n)


# -- CommandInbox -----------------------------------------------------------------------------------


@pytest.fixture(params=INBOXES)
def new_inbox(request: pytest.FixtureRequest) -> Callable[[], CommandInbox]:
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        return lambda: RedisInbox(client)
    return InProcessInbox


def test_inbox_delivers_each_command_once_in_order_to_its_owner_only(
    new_inbox: Callable[[], CommandInbox],
) -> None:
    async def main() -> None:
        inbox = new_inbox()
        await inbox.claim("a", [BTC])
        await inbox.claim("b", [ETH])
        sent = [pause(n, BTC if n % 3 else ETH) for n in range(30)]
        for command in sent:
            await inbox.send(command)
        got_a = [await inbox.receive("a", 0.1) for _ in range(20)]
        got_b = [await inbox.receive("b", 0.1) for _ in range(10)]
        assert got_a == [c for c in sent if c.symbol == BTC]
        assert got_b == [c for c in sent if c.symbol == ETH]
        assert await inbox.receive("a", 0.01) is None  # each once: nothing left
        assert await inbox.receive("b", 0.01) is None

    run(main())


def test_inbox_holds_a_command_until_its_symbol_is_claimed_and_broadcasts_all_symbol_ones(
    new_inbox: Callable[[], CommandInbox],
) -> None:
    async def main() -> None:
        inbox = new_inbox()
        await inbox.claim("a", [BTC])
        await inbox.send(pause(1, SOL))  # nobody owns SOL yet
        assert await inbox.receive("a", 0.01) is None
        await inbox.claim("b", [SOL])
        assert await inbox.receive("b", 0.1) == pause(1, SOL)
        everyone = pause(2, None)
        await inbox.send(everyone)
        assert await inbox.receive("a", 0.1) == everyone
        assert await inbox.receive("b", 0.1) == everyone

    run(main())


def test_inbox_wakes_a_waiting_owner_and_a_takeover_moves_pending_commands(
    new_inbox: Callable[[], CommandInbox],
) -> None:
    async def main() -> None:
        inbox = new_inbox()
        await inbox.claim("a", [BTC])
        waiting = asyncio.create_task(inbox.receive("a", 5))
        await asyncio.sleep(0.01)
        await inbox.send(pause(1))
        assert await waiting == pause(1)
        await inbox.send(pause(2))
        await inbox.send(ResumeSymbol("c-3", BTC, "ops", Role.OPERATOR, "", 3))
        await inbox.claim("b", [BTC])  # "a" died before reading them
        assert [await inbox.receive("b", 0.1), await inbox.receive("b", 0.1)] == [
            pause(2),
            ResumeSymbol("c-3", BTC, "ops", Role.OPERATOR, "", 3),
        ]
        assert await inbox.receive("a", 0.01) is None

    run(main())


# -- SymbolLease ------------------------------------------------------------------------------------


@pytest.fixture(params=LEASES)
def leases(request: pytest.FixtureRequest) -> SymbolLease:
    if request.param == "redis":
        return RedisLease(request.getfixturevalue("redis_client"))
    return InProcessLease()


def test_a_lease_is_exclusive_until_it_expires_or_is_released(leases: SymbolLease) -> None:
    async def main() -> None:
        a = await leases.acquire(BTC, "a", 1000, now_ms=0)
        assert a is not None
        assert a.owner == "a"
        assert await leases.acquire(BTC, "b", 1000, now_ms=999) is None
        assert await leases.acquire(ETH, "b", 1000, now_ms=999) is not None  # per symbol
        b = await leases.acquire(BTC, "b", 1000, now_ms=1000)  # a's expired
        assert b is not None
        assert b.owner == "b"
        assert await leases.renew(a, 1000, now_ms=1001) is None  # taken over: a cannot renew
        await leases.release(a)  # ignored: a no longer holds it
        assert await leases.acquire(BTC, "c", 1000, now_ms=1002) is None
        await leases.release(b)
        assert await leases.acquire(BTC, "c", 1000, now_ms=1003) is not None

    run(main())


def test_renewal_keeps_the_token_and_extends_the_lease(leases: SymbolLease) -> None:
    async def main() -> None:
        a = await leases.acquire(BTC, "a", 1000, now_ms=0)
        assert a is not None
        renewed = await leases.renew(a, 1000, now_ms=900)
        assert renewed is not None
        assert renewed.token == a.token
        assert renewed.expires_ms == 1900
        assert await leases.acquire(BTC, "b", 1000, now_ms=1500) is None
        assert await leases.renew(renewed, 1000, now_ms=1900) is None  # expired: renew too late

    run(main())


def test_fencing_tokens_grow_and_a_stale_token_is_refused(leases: SymbolLease) -> None:
    async def main() -> None:
        tokens = []
        for n in range(5):
            lease = await leases.acquire(BTC, "ab"[n % 2], 10, now_ms=n * 100)
            assert lease is not None
            tokens.append(lease.token)
            assert await leases.check(BTC, lease.token)
        assert tokens == sorted(set(tokens))  # strictly increasing, never reused
        for stale in tokens[:-1]:
            assert not await leases.check(BTC, stale)
        again = await leases.acquire(BTC, "a", 10, now_ms=1000)  # the same owner, a new lease
        assert again is not None
        assert again.token > tokens[-1]
        assert not await leases.check(BTC, tokens[-1])
        assert not await leases.check(ETH, 1)  # never leased

    run(main())


# -- QuoteBudget ------------------------------------------------------------------------------------


@pytest.fixture(params=BUDGETS)
def new_budget(request: pytest.FixtureRequest) -> Callable[[dict[str, Decimal]], QuoteBudget]:
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        return lambda budgets: RedisQuoteBudget(client, budgets)
    return PortfolioRails


@pytest.mark.parametrize("seed", range(5))
def test_racing_reservations_never_overspend_the_budget(
    new_budget: Callable[[dict[str, Decimal]], QuoteBudget], seed: int
) -> None:
    budget = new_budget({"USDT": Decimal(1000)})
    symbols = [f"S{i}/USDT" for i in range(8)]
    rng = random.Random(seed)

    async def spender(symbol: str) -> None:
        for _ in range(20):
            async with budget.hold(symbol):
                own = budget.committed_qu(symbol) or 0
                allowance = budget.allowance(symbol, own)
                assert allowance is not None
                await asyncio.sleep(rng.random() / 1000)  # another task runs here, as a decide would
                spend = min(allowance, rng.randrange(0, 300 * QU))
                budget.reserve(symbol, own + spend)
            await asyncio.sleep(0)

    async def main() -> None:
        for symbol in symbols:
            budget.register(symbol, "USDT", PRECISION)
        for symbol in symbols:
            budget.reserve(symbol, 0)
        await asyncio.gather(*(spender(s) for s in symbols))

    run(main())
    total = sum(budget.committed_qu(s) or 0 for s in symbols)
    assert 0 < total <= 1000 * QU
    assert budget.allowance(symbols[0], budget.committed_qu(symbols[0]) or 0) == 1000 * QU - total


def test_an_unknown_commitment_blocks_the_rest_and_an_asset_without_budget_is_free(
    new_budget: Callable[[dict[str, Decimal]], QuoteBudget],
) -> None:
    budget = new_budget({"USDT": Decimal(10)})
    budget.register(BTC, "USDT", PRECISION)
    budget.register(ETH, "USDT", PRECISION)
    budget.register("BTC/EUR", "EUR", PRECISION)
    assert budget.allowance(BTC, 0) == 0  # ETH's resting orders may already use it
    budget.reserve(ETH, 4 * QU)
    assert budget.allowance(BTC, 1 * QU) == 5 * QU
    assert budget.has_budget(BTC)
    assert not budget.has_budget("BTC/EUR")
    assert budget.allowance("BTC/EUR", 0) is None

    async def main() -> None:
        async with budget.hold("BTC/EUR"):  # a no-op section
            pass

    run(main())
