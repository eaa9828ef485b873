"""``nutcracker.recover`` over the simulated exchange, in process: the start-time check and the rebuild.

The end-to-end case (kill -9, a lost journal, the CLI) is ``tests/integration/test_lost_journal.py``;
these pin the rebuild's details: the same ledger the engine booked, the counter past every id, a
second recover changes nothing, a history that lacks the journal's fills is refused, a damaged
file is moved aside.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from engine_world import BTC, World, falling, make_world, params_for

from nutcracker.core.serialize import state_from_dict
from nutcracker.errors import ReconciliationError, RecoveryNeededError
from nutcracker.recover import open_for_recovery, recover_symbol, require_known_history, unknown_orders
from nutcracker.store.sqlite import SqliteJournal


def _trade(world: World, journal: SqliteJournal) -> None:
    """Trade until lots are held and their exits rest (a drop, then a partial bounce closes a cycle)."""
    worker = world.worker(journal=journal)

    async def main() -> None:
        await worker.pulse()
        for candle in falling(world.last(), 12, step=8_000):
            world.advance_with(BTC, candle)
            await worker.pulse()
        for candle in falling(world.last(), 7, step=-8_000):
            world.advance_with(BTC, candle)
            await worker.pulse()

    asyncio.run(main())


def _ledger(journal: SqliteJournal) -> dict[str, object]:
    stored = journal.load_symbol(BTC)
    assert stored is not None
    return dict(json.loads(stored.state_json)["strategy"])


def test_recover_rebuilds_the_ledger_the_engine_booked_and_never_reuses_an_id(tmp_path: Path) -> None:
    world = make_world()
    params = params_for(BTC)
    with SqliteJournal(tmp_path / "original.db") as original:
        _trade(world, original)
        booked = _ledger(original)
        booked_fills = original.known_trade_ids(BTC, 0)
    sell_fills = [f for f in world.engine.fills if f.side.value == "sell"]
    assert booked_fills
    assert sell_fills  # a cycle closed: cycles are rebuilt too
    assert world.ours()  # exits (and buys) rest

    with SqliteJournal(tmp_path / "lost.db") as lost:
        unknown = asyncio.run(unknown_orders([params], world.sim, lost))
        assert set(unknown[BTC]) >= {o.client_order_id for o in world.ours()}
        with pytest.raises(
            RecoveryNeededError, match=r"lost\.db: the exchange shows orders .*`nutcracker recover"
        ):
            asyncio.run(require_known_history([params], world.sim, lost, tmp_path / "lost.db"))

        rebuilt = asyncio.run(recover_symbol(params, world.sim, lost, 1))
        ledger = _ledger(lost)
        assert ledger["ledger"] == booked["ledger"]  # lots, cycles, PnL and fees as the engine booked them
        assert rebuilt.fills == rebuilt.new_fills == len(booked_fills)
        assert rebuilt.open_orders == len(world.ours())
        seqs = [int(cid.rsplit("-", 1)[1], 16) for cid in world.placed_ids()]
        assert rebuilt.next_seq == max(seqs) + 1 == state_from_dict(ledger).next_seq
        assert lost.known_trade_ids(BTC, 0) == booked_fills
        assert asyncio.run(unknown_orders([params], world.sim, lost)) == {}

        again = asyncio.run(recover_symbol(params, world.sim, lost, 2))  # safe to run twice
        assert (again.new_fills, again.adopted_ids, again.next_seq) == (0, 0, rebuilt.next_seq)
        assert _ledger(lost)["ledger"] == booked["ledger"]

        before = set(world.placed_ids())
        worker = world.worker(journal=lost)

        async def carry_on() -> None:
            for candle in falling(world.last(), 10, step=-5_000):
                world.advance_with(BTC, candle)
                await worker.pulse()

        asyncio.run(carry_on())
    after = world.placed_ids()
    assert len(after) == len(set(after))  # no id sent twice
    assert len(after) > len(before)


def test_recover_refuses_a_history_that_lacks_the_journals_fills(tmp_path: Path) -> None:
    world = make_world()
    with SqliteJournal(tmp_path / "journal.db") as journal:
        _trade(world, journal)
        booked = _ledger(journal)
        other = make_world(seed=9)  # another account: none of the journal's fills
        with pytest.raises(
            ReconciliationError, match=r"the journal holds .* fills the exchange does not show"
        ):
            asyncio.run(recover_symbol(params_for(BTC), other.sim, journal, 1))
        assert _ledger(journal) == booked  # nothing was changed


def test_a_damaged_journal_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"\xa5" * 8192)
    journal, aside = open_for_recovery(path)
    with journal:
        assert aside is not None
        assert aside.read_bytes() == b"\xa5" * 8192
        assert aside.name.startswith("journal.db.damaged-")
        assert journal.symbols() == []
