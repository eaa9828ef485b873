"""The engine journals why it stopped and what was left resting (what ``nutcracker status`` reads)."""

from __future__ import annotations

import asyncio
import json
import os
import signal

from engine_world import BTC, ETH, make_world, params_for

from nutcracker.engine.runtime import Engine, EngineSettings, WallClock
from nutcracker.store.memory import InMemoryJournal


def _engine(cancel: bool) -> tuple[Engine, InMemoryJournal]:
    world = make_world((BTC, ETH))
    assert isinstance(world.journal, InMemoryJournal)
    settings = EngineSettings(pulse_interval_s=0.005, monitor_interval_s=None, cancel_on_shutdown=cancel)
    engine = Engine(
        [params_for(BTC), params_for(ETH)], world.sim, world.journal, WallClock(), settings=settings
    )  # type: ignore[arg-type]
    return engine, world.journal


def _lifecycle(journal: InMemoryJournal) -> list[tuple[str, dict[str, object]]]:
    return [(a.action, json.loads(a.detail)) for a in reversed(journal.audit_log(20)) if a.actor == "engine"]


def test_sigterm_is_journaled_as_the_stop_reason_after_the_exchange_s_count() -> None:
    engine, journal = _engine(cancel=True)

    async def main() -> None:
        async def signal_soon() -> None:
            await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)

        await asyncio.gather(engine.run(), signal_soon())

    asyncio.run(main())
    events = _lifecycle(journal)
    assert events[-2] == (
        "reconciliation",
        {s: {"open_orders": 0, "source": "exchange"} for s in (BTC, ETH)},
    )
    assert events[-1] == ("stop", {"reason": "signal SIGTERM", "clock": "wall", "open_orders": 0})
    assert ("reconciliation", {BTC: {"open_orders": 5, "source": "last pulse"}}) in events[:-2]


def test_a_stop_without_cancelling_journals_the_orders_left_resting() -> None:
    engine, journal = _engine(cancel=False)

    async def main() -> None:
        async def stop_soon() -> None:
            await asyncio.sleep(0.05)
            engine.request_stop("--pulses 3 reached")

        await asyncio.gather(engine.run(handle_signals=False), stop_soon())

    asyncio.run(main())
    action, detail = _lifecycle(journal)[-1]
    assert (action, detail["reason"], detail["open_orders"]) == ("stop", "--pulses 3 reached", 10)
