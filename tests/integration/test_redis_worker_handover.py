"""One engine per symbol in a worker process, even when the process takes a symbol back.

The Redis journal fences a symbol per process: its writes carry the last token the process took.
A worker whose lease ran out while its engine was in the middle of a pulse (the process was stopped,
or slow) drops the symbol; if it claimed the symbol again at once, the old engine, still finishing
its pulse, would write under the new lease's token beside the new engine: two engines trading one
symbol, and the new one's ledger, loaded before the old one's last commit, missing the fills that
commit booked (a later sell of those lots cannot be booked: the symbol halts, and books no fill
after that). The worker claims a symbol again only once its previous engine is done.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from nutcracker.app.worker import ScaleOutWorker, WorkerOptions
from nutcracker.core.model import Book, MarketInfo
from nutcracker.engine.runtime import EngineSettings
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.exchange.simulated import SimExchange
from nutcracker.marketdata.candles import to_candles
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_lease import RedisLease

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from factories import BTC, symbol_params

SYMBOL = "BTC/USDT"
LEASE_MS = 300


class GatedExchange:
    """A SimExchange whose ``fetch_book`` waits while the gate is closed: a pulse held mid-way."""

    def __init__(self, inner: SimExchange) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = 0  # pulses waiting at the gate now

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def fetch_book(self, symbol: str) -> Book:
        if not self.gate.is_set():
            self.held += 1
            try:
                await self.gate.wait()
            finally:
                self.held -= 1
        return await self.inner.fetch_book(symbol)


async def _until(what: str, condition: Callable[[], bool | Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result if isinstance(result, bool) else await result:
            return
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.01)


def test_a_symbol_is_not_claimed_again_while_its_previous_engine_in_the_process_still_runs(
    redis_url: str,
) -> None:
    info = MarketInfo(SYMBOL, "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    sim = SimExchange(MatchingEngine({SYMBOL: info}, {"USDT": Decimal(100_000)}))
    for candle in to_candles(synthetic_candles(3, 200, Decimal(40_000), BTC, symbol=SYMBOL)):
        sim.advance(SYMBOL, candle)
    exchange = GatedExchange(sim)
    params = replace(symbol_params(), order_id_prefix="nchandover")
    settings = EngineSettings(
        pulse_interval_s=0.02, monitor_interval_s=None, cancel_on_shutdown=False, shutdown_timeout_s=3
    )
    journal = RedisJournal(redis_url)
    leases = RedisLease(journal.client)

    async def main() -> None:
        worker = ScaleOutWorker(
            [params], exchange, journal, settings, WorkerOptions("w1", lease_ttl_ms=LEASE_MS)
        )
        await worker.tick()
        assert worker.held == [SYMBOL]
        assert leases.latest_token(SYMBOL) == 1
        await _until("the engine pulsed", lambda: journal.load_symbol(SYMBOL) is not None, 5)
        exchange.gate.clear()  # the next pulse stops half-way, as in a process stopped mid-pulse
        await _until("a pulse held at the gate", lambda: exchange.held > 0, 5)
        await asyncio.sleep(LEASE_MS / 1000 + 0.1)  # no tick meanwhile: the lease runs out unrenewed
        await worker.tick()  # the lease is lost: the engine is stopped, its held pulse not done yet
        assert exchange.held > 0
        assert worker.held == []  # not claimed again: the old engine would write under the new token
        assert leases.latest_token(SYMBOL) == 1
        exchange.gate.set()  # the held pulse finishes, the old engine stops
        await _until("claimed again once the old engine is done", _claimed(worker), 10)
        assert leases.latest_token(SYMBOL) == 2
        stop = asyncio.Event()
        stop.set()
        await worker.run(stop)  # gives the symbol back and stops its engine

    try:
        asyncio.run(main())
    finally:
        journal.close()


def _claimed(worker: ScaleOutWorker) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await worker.tick()
        return worker.held == [SYMBOL]

    return check


def test_a_stopping_worker_stops_every_engine_at_once(redis_url: str) -> None:
    """SIGTERM's stop asks every held engine to stop together: one after the other, each waited for
    its running pulse while the others went on trading (a worker of 20 symbols took 87 s)."""
    symbols = [f"S{i}/USDT" for i in range(3)]
    infos = {
        s: MarketInfo(s, s.split("/")[0], "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
        for s in symbols
    }
    sim = SimExchange(MatchingEngine(infos, {"USDT": Decimal(100_000)}))
    for s in symbols:
        for candle in to_candles(synthetic_candles(3, 200, Decimal(40_000), BTC, symbol=s)):
            sim.advance(s, candle)
    exchange = GatedExchange(sim)
    base = symbol_params()
    params = [
        replace(
            base, market=replace(base.market, symbol=s, base=s.split("/")[0]), order_id_prefix=f"ncstop{i}"
        )
        for i, s in enumerate(symbols)
    ]
    settings = EngineSettings(
        pulse_interval_s=0.02, monitor_interval_s=None, cancel_on_shutdown=False, shutdown_timeout_s=5
    )
    journal = RedisJournal(redis_url)
    leases = RedisLease(journal.client)

    async def main() -> None:
        worker = ScaleOutWorker(params, exchange, journal, settings, WorkerOptions("w1", lease_ttl_ms=5_000))
        await worker.tick()
        assert worker.held == symbols
        await _until("every engine pulsed", lambda: all(journal.load_symbol(s) for s in symbols), 5)
        exchange.gate.clear()
        await _until("every engine's pulse held at the gate", lambda: exchange.held == 3, 5)
        stop = asyncio.Event()
        stop.set()
        stopping = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.2)  # far less than one engine's wait for its pulse (5 s)
        assert worker.held == []  # all three asked to stop, not the first alone
        assert not stopping.done()  # each waits for its held pulse
        exchange.gate.set()
        await asyncio.wait_for(stopping, 5)
        assert all(leases.holder(s) is None for s in symbols)  # every lease released

    try:
        asyncio.run(main())
    finally:
        journal.close()
