"""The runtime: one task per symbol, graceful shutdown, signals, the observer hook, the clocks."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

from engine_world import BTC, ETH, Recording, make_world, params_for

from nutcracker.core.commands import KillSymbol, Outcome, PauseSymbol, ResumeSymbol, Role
from nutcracker.engine import runtime
from nutcracker.engine.runtime import Engine, EngineSettings, PulseReport, SimulatedClock, WallClock
from nutcracker.engine.worker import KILLED, PAUSED, TRADING, WorkerSettings
from nutcracker.store.memory import InMemoryJournal

FAST = EngineSettings(pulse_interval_s=0.005, monitor_interval_s=0.01, shutdown_timeout_s=0.5)


def two_symbol_engine(
    settings: EngineSettings = FAST, *, exchange: object = None
) -> tuple[Engine, object, InMemoryJournal]:
    world = make_world((BTC, ETH))
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    engine = Engine(
        [params_for(BTC), params_for(ETH)],
        exchange or world.sim,  # type: ignore[arg-type]
        journal,
        WallClock(),
        settings=settings,
    )
    return engine, world, journal


async def stop_after(engine: Engine, seconds: float) -> None:
    await asyncio.sleep(seconds)
    engine.request_stop()


def test_run_pulses_every_symbol_and_shuts_down_cancelling_resting_orders() -> None:
    engine, world, journal = two_symbol_engine()
    reports: list[PulseReport] = []
    engine.add_observer(reports.append)
    queue = engine.subscribe(maxsize=3)

    async def main() -> None:
        await asyncio.gather(engine.run(handle_signals=False), stop_after(engine, 0.2))

    asyncio.run(main())
    by_symbol = {r.symbol for r in reports}
    assert by_symbol == {BTC, ETH}
    assert sum(r.symbol == BTC for r in reports) >= 5
    assert queue.qsize() == 3  # the oldest reports were dropped, the newest kept
    assert engine.latest()[BTC].status == TRADING
    assert not world.ours(BTC)
    assert not world.ours(ETH)
    assert all(r.status in ("done",) for r in journal.intents(BTC) if r.action == "cancel")


def test_shutdown_without_cancel_on_shutdown_leaves_orders_resting() -> None:
    settings = EngineSettings(pulse_interval_s=0.005, monitor_interval_s=None, cancel_on_shutdown=False)
    engine, world, _ = two_symbol_engine(settings)

    async def main() -> None:
        await asyncio.gather(engine.run(handle_signals=False), stop_after(engine, 0.05))

    asyncio.run(main())
    assert len(world.ours(BTC)) == 5  # type: ignore[attr-defined]


def test_sigterm_stops_the_engine_gracefully() -> None:
    engine, world, _ = two_symbol_engine()

    async def signal_soon() -> None:
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    async def main() -> None:
        await asyncio.gather(engine.run(), signal_soon())

    asyncio.run(main())
    assert engine.latest()[BTC].seq >= 2
    assert not world.ours(BTC)  # type: ignore[attr-defined]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_stalled_symbol_never_holds_up_another() -> None:
    world = make_world((BTC, ETH))
    recording = Recording(world.sim)
    recording.gates[ETH] = asyncio.Event()  # ETH's exchange calls hang forever
    engine, _, _ = two_symbol_engine(exchange=recording)
    reports: list[PulseReport] = []
    engine.add_observer(reports.append)

    async def main() -> None:
        await asyncio.gather(engine.run(handle_signals=False), stop_after(engine, 0.2))

    asyncio.run(main())
    assert sum(r.symbol == BTC for r in reports) >= 5
    assert not [r for r in reports if r.symbol == ETH]  # its one pulse never finished; cut at shutdown


def test_global_pause_resume_and_kill() -> None:
    engine, world, journal = two_symbol_engine()

    async def main() -> None:
        await engine.pulse_all()
        await engine.submit(PauseSymbol("c1", None, "ops", Role.OPERATOR, "maintenance", 1))
        assert {r.status for r in engine.latest().values()} == {PAUSED}
        placed = len(world.placed_ids())  # type: ignore[attr-defined]
        await engine.pulse_all()
        assert len(world.placed_ids()) == placed  # type: ignore[attr-defined]
        await engine.submit(ResumeSymbol("c2", None, "ops", Role.OPERATOR, "done", 2))
        await engine.pulse_all()
        assert {r.status for r in engine.latest().values()} == {TRADING}
        await engine.submit(KillSymbol("c3", ETH, "ops", Role.OPERATOR, "delisting", 3))
        assert engine.latest()[ETH].status == KILLED
        assert not world.ours(ETH)  # type: ignore[attr-defined]
        assert len(world.ours(BTC)) == 5  # type: ignore[attr-defined]
        # an unknown symbol was a KeyError; through submit it is a refused (and journaled) command
        refused = await engine.submit(PauseSymbol("c4", "DOGE/USDT", "ops", Role.OPERATOR, "?", 4))
        assert refused.outcome == Outcome.REFUSED
        assert "not traded" in refused.detail

    asyncio.run(main())
    assert [a.action for a in journal.audit_log(10)] == [
        "pause",
        "kill",
        "resume",
        "resume",
        "pause",
        "pause",
    ]


def test_an_observer_that_raises_does_not_stop_the_engine() -> None:
    engine, _, _ = two_symbol_engine()

    def broken(report: PulseReport) -> None:
        raise RuntimeError("view bug")

    engine.add_observer(broken)
    reports = asyncio.run(engine.pulse_all())
    assert [r.symbol for r in reports] == [BTC, ETH]


def test_reports_carry_prices_bands_inventory_and_rails() -> None:
    engine, _, _ = two_symbol_engine()
    (report, _) = asyncio.run(engine.pulse_all())
    assert report.book is not None
    assert report.book.best_bid > 0
    assert report.bands.ready
    assert report.bands.lower < report.bands.ema < report.bands.upper
    assert report.max_base_lots == params_for(BTC).rails.max_base_lots
    assert report.committed_quote_qu == sum(o.price * o.qty * 1_000_000 for o in report.open_orders)
    assert report.quote(report.committed_quote_qu) < Decimal(600)
    assert report.price(report.book.best_bid) > Decimal(40_000)
    assert report.dispatched
    assert len(report.open_orders) == 5


def test_the_simulated_clock_wakes_sleepers_when_driven_past_their_time() -> None:
    clock = SimulatedClock(1_000)

    async def main() -> list[int]:
        woke: list[int] = []

        async def sleeper(seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(clock.now_ms())

        tasks = [asyncio.create_task(sleeper(s)) for s in (1.0, 3.0)]
        await asyncio.sleep(0)
        clock.advance_to(1_500)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance_to(2_000)
        await asyncio.sleep(0)
        assert woke == [2_000]
        clock.advance_to(500)  # never backwards
        assert clock.now_ms() == 2_000
        clock.advance_to(10_000)
        await asyncio.gather(*tasks)
        return woke

    assert asyncio.run(main()) == [2_000, 10_000]


def test_a_stalled_symbol_waits_its_backoff_in_the_run_loop() -> None:
    settings = EngineSettings(
        pulse_interval_s=0.001,
        monitor_interval_s=None,
        worker=WorkerSettings(backoff_initial_s=0.05, backoff_max_s=0.05),
    )
    world = make_world((BTC, ETH))
    recording = Recording(world.sim)
    recording.server_time_shift_ms = 10 * 60_000  # every pulse: stale candles, a data-stall
    engine, _, _ = two_symbol_engine(settings, exchange=recording)
    reports: list[PulseReport] = []
    engine.add_observer(reports.append)

    async def main() -> None:
        await asyncio.gather(engine.run(handle_signals=False), stop_after(engine, 0.22))

    asyncio.run(main())
    stalled = [r for r in reports if r.symbol == BTC]
    assert {r.status for r in stalled} == {"stalled"}
    assert 2 <= len(stalled) <= 6  # about one try per 50 ms, not one per millisecond


def _pulses_seen_by_a_callback(slice_s: float) -> list[int]:
    """Run one ``pulse_all`` round with a callback waiting its turn; return the pulses done by then."""
    engine, _, _ = two_symbol_engine()
    seen: list[int] = []

    async def main() -> None:
        await engine.start()
        await engine.pulse_all()  # first pulses (hydrating) out of the way
        done_before = sum(w._seq for w in engine.workers.values())
        asyncio.get_running_loop().call_soon(
            lambda: seen.append(sum(w._seq for w in engine.workers.values()) - done_before)
        )
        await engine.pulse_all()
        await engine.shutdown("test over")

    original = runtime.PULSE_SLICE_S
    runtime.PULSE_SLICE_S = slice_s
    try:
        asyncio.run(main())
    finally:
        runtime.PULSE_SLICE_S = original
    return seen


def test_pulse_all_gives_the_loop_a_turn_within_a_round_once_its_slice_is_used() -> None:
    assert _pulses_seen_by_a_callback(0.0) == [1]  # after the first symbol's pulse, not the round
    assert _pulses_seen_by_a_callback(60.0) == [2]  # within its slice, the round goes on
