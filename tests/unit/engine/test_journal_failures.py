"""Issue 11 item 4: a damaged journal never leaves the engine looping on ``pulse_error``.

- a symbol whose journaled state cannot be read is halted (``paused``, with the reason, journaled)
  while the other symbols trade; resuming it is refused (it would trade on an empty ledger and
  overwrite what the journal holds);
- a journal that stops taking writes stops the whole engine with its ``JournalError``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_world import BTC, ETH, make_world, params_for

from nutcracker.core.commands import ResumeSymbol, Role
from nutcracker.engine.runtime import Engine, EngineSettings, PulseReport, WallClock
from nutcracker.engine.worker import PAUSED, TRADING
from nutcracker.errors import JournalError
from nutcracker.store.sqlite import SqliteJournal

FAST = EngineSettings(pulse_interval_s=0.005, monitor_interval_s=None, shutdown_timeout_s=0.5)


def _journal_with_both(path: Path) -> None:
    """Trade both symbols once so the journal holds a state for each."""
    world = make_world((BTC, ETH))
    with SqliteJournal(path) as journal:
        engine = Engine([params_for(BTC), params_for(ETH)], world.sim, journal, world.clock, settings=FAST)
        asyncio.run(engine.pulse_all())


@pytest.mark.parametrize(
    "blob",
    [
        "{not json",
        '{"engine": {"format": 1, "fills_from_ms": 0}, "strategy": {"ledger": 7}}',
        '{"engine": {"format": 9, "fills_from_ms": 0}, "strategy": {}}',
        "[]",
    ],
    ids=["not-json", "bad-ledger", "unknown-envelope", "not-an-object"],
)
def test_an_unreadable_state_halts_that_symbol_while_the_others_trade(tmp_path: Path, blob: str) -> None:
    path = tmp_path / "journal.db"
    _journal_with_both(path)
    with SqliteJournal(path) as journal:
        journal.save_state(ETH, blob, 1)
    world = make_world((BTC, ETH))
    reports: list[PulseReport] = []
    with SqliteJournal(path) as journal:
        engine = Engine([params_for(BTC), params_for(ETH)], world.sim, journal, WallClock(), settings=FAST)
        engine.add_observer(reports.append)

        async def main() -> None:
            async def stop_after_pulses() -> None:
                while sum(r.symbol == ETH for r in reports) < 3 or sum(r.symbol == BTC for r in reports) < 3:
                    await asyncio.sleep(0.005)
                await engine.submit(ResumeSymbol("resume-1", ETH, "ops", Role.OPERATOR, "try again", 1))
                engine.request_stop()

            await asyncio.wait_for(
                asyncio.gather(engine.run(handle_signals=False), stop_after_pulses()), timeout=10
            )

        asyncio.run(main())
        stored = journal.load_symbol(ETH)
        assert stored is not None
        assert stored.state_json == blob  # never overwritten
    eth = [r for r in reports if r.symbol == ETH]
    assert {r.status for r in eth} == {PAUSED}
    assert all("cannot be read" in r.status_reason and "nutcracker recover" in r.status_reason for r in eth)
    assert any(r.status == TRADING for r in reports if r.symbol == BTC)
    assert not world.ours(ETH)  # nothing placed on a ledger that could not be read
    assert stored.status == PAUSED
    assert "cannot be read" in stored.status_reason


def test_a_journal_that_stops_taking_writes_stops_the_engine(tmp_path: Path) -> None:
    world = make_world((BTC, ETH))
    with SqliteJournal(tmp_path / "journal.db", checkpoint_every_s=None) as journal:
        engine = Engine([params_for(BTC), params_for(ETH)], world.sim, journal, WallClock(), settings=FAST)

        async def main() -> None:
            await engine.start()
            journal._conn.execute("PRAGMA query_only = ON")  # every write now fails, as on a dead disk
            await asyncio.wait_for(engine.run(handle_signals=False), timeout=10)

        with pytest.raises(
            JournalError, match=r"journal\.db: .*failed: attempt to write a readonly database"
        ):
            asyncio.run(main())
        journal._conn.execute("PRAGMA query_only = OFF")
    assert not world.placed_ids()  # nothing is sent that was not journaled first
