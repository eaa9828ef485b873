"""Restarts, pause / resume / kill and parameter changes of one symbol's worker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from engine_world import BTC, Recording, falling, make_world, params_for

from nutcracker.core.model import PlaceLimit, Side
from nutcracker.core.orders import parse_slot
from nutcracker.core.params import SymbolParams
from nutcracker.core.serialize import loads_params
from nutcracker.engine.worker import IDLE, KILLED, PAUSED, TRADING
from nutcracker.exchange.simulated import Faults
from nutcracker.store.memory import InMemoryJournal
from nutcracker.store.sqlite import SqliteJournal

PREFIX = params_for(BTC).order_id_prefix


class Crash(BaseException):
    """The process dies here (nothing after it runs, nothing is cleaned up)."""


def slots_of(world_orders: tuple[object, ...]) -> Counter[str | None]:
    return Counter(parse_slot(PREFIX, o.client_order_id) for o in world_orders)  # type: ignore[attr-defined]


def test_a_restart_adopts_our_open_orders_and_books_the_fills_missed_while_down(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    first_journal = SqliteJournal(path)
    world = make_world(journal=first_journal)

    async def before() -> None:
        worker = world.worker()
        await worker.pulse()
        for _ in range(3):
            world.advance()
            await worker.pulse()

    asyncio.run(before())
    resting = {o.client_order_id for o in world.ours()}
    assert len(resting) == 5
    # the process dies (buffered states lost); the market falls meanwhile and fills some buys
    missed = []
    for candle in falling(world.last(), 6, step=12_000):
        missed.extend(world.advance_with(BTC, candle))
    assert missed
    placed_before = len(world.placed_ids())

    with SqliteJournal(path) as journal:
        recording = Recording(world.sim)
        worker = world.worker(exchange=recording, journal=journal)

        async def after() -> None:
            await worker.start()
            report = await worker.pulse()
            booked = {f.trade_id for f in report.fills}
            assert booked == {f.trade_id for f in missed}
            # buys still resting were adopted: no cancel, no new order for their slots
            still_resting = {o.client_order_id for o in world.engine.open_orders(BTC)} & resting
            assert not set(recording.sent("cancel")) & still_resting
            new_slots = {parse_slot(PREFIX, cid) for cid in recording.sent("place")}
            assert not new_slots & {parse_slot(PREFIX, cid) for cid in still_resting}
            await worker.pulse()  # and the next pulse books nothing again

        asyncio.run(after())
        assert sorted(f.trade_id for f in journal.fills(BTC)) == sorted(
            f.trade_id for f in world.engine.fills if f.client_order_id.startswith(PREFIX)
        )
    first_journal.close()
    assert len(world.placed_ids()) > placed_before  # exits for the bought lots
    assert max(slots_of(world.ours()).values()) == 1
    placed = world.placed_ids()
    assert len(placed) == len(set(placed))


def test_a_crash_between_the_journal_and_the_exchange_resolves_the_intents_as_never_placed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    world = make_world(journal=SqliteJournal(path))
    recording = Recording(world.sim)

    def die(action: str, symbol: str, cid: str) -> None:
        raise Crash

    recording.before_send = die
    worker = world.worker(exchange=recording)
    with pytest.raises(Crash):
        asyncio.run(worker.pulse())
    assert not world.placed_ids()

    with SqliteJournal(path) as journal:
        assert len(journal.open_intents(BTC)) == 5  # written ahead, never sent
        again = world.worker(journal=journal)
        report = asyncio.run(again.pulse())
        assert not journal.open_intents(BTC)
        assert [r.status for r in journal.intents(BTC)][:5] == ["never_placed"] * 5
        assert [i.status for i in report.intents] == ["acked"] * 5
    placed = world.placed_ids()
    assert len(placed) == len(set(placed)) == 5


def test_a_restart_cancels_a_second_order_found_for_one_slot() -> None:
    world = make_world()
    worker = world.worker()
    asyncio.run(worker.pulse())
    b0 = next(o for o in world.ours() if parse_slot(PREFIX, o.client_order_id) == "B0")
    twin = PlaceLimit(f"{PREFIX}-B0-ff", Side.BUY, b0.price - 10, b0.qty, "left over")
    world.engine.place(BTC, twin, world.sim.now_ms)

    restarted = world.worker()
    report = asyncio.run(restarted.pulse())
    cancels = [i for i in report.intents if i.action == "cancel"]
    assert [(c.client_order_id, c.status) for c in cancels] == [(twin.client_order_id, "done")]
    assert cancels[0].reason == "duplicate order for one slot"
    assert max(slots_of(world.ours()).values()) == 1


def test_pause_stops_decisions_until_resume_and_is_audited() -> None:
    world = make_world()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    worker = world.worker()

    async def main() -> None:
        report = await worker.pause("alice", "looking at it")
        assert report.status == PAUSED
        assert "alice" in report.status_reason
        for candle in falling(world.last(), 3, step=-10_000):
            world.advance_with(BTC, candle)
            assert (await worker.pulse()).status == PAUSED
        assert not world.placed_ids()
        report = await worker.resume("alice", "fine")
        assert report.status == IDLE
        assert (await worker.pulse()).status == TRADING

    asyncio.run(main())
    assert [a.action for a in journal.audit_log(10)] == ["resume", "pause"]
    assert journal.audit_log(1)[0].actor == "alice"


def test_kill_cancels_all_our_orders_and_stops_pulsing_leaving_other_orders_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    world = make_world(journal=SqliteJournal(path), faults=Faults())
    worker = world.worker()
    manual = PlaceLimit("manual-1", Side.BUY, 4_000_000, 100, "by hand")

    async def main() -> None:
        await worker.pulse()
        world.engine.place(BTC, manual, world.sim.now_ms)
        world.sim.faults.fail_next("cancel", "timeout")  # the first try is cut short
        report = await worker.kill("bob", "panic")
        assert report.status == KILLED
        assert world.ours()  # not all gone yet
        world.advance()
        await worker.pulse()  # a killed symbol only finishes its cancels
        assert not world.ours()
        placed = len(world.placed_ids())
        for _ in range(3):
            world.advance()
            assert (await worker.pulse()).status == KILLED
        assert len(world.placed_ids()) == placed

    asyncio.run(main())
    assert [o.client_order_id for o in world.engine.open_orders(BTC)] == ["manual-1"]
    world.journal.close()
    with SqliteJournal(path) as journal:  # a restart keeps the symbol killed
        restarted = world.worker(journal=journal)
        world.advance()
        assert asyncio.run(restarted.pulse()).status == KILLED
        assert not world.ours()


def test_params_change_only_between_pulses_and_are_recorded_with_who_and_why() -> None:
    world = make_world(faults=Faults(latency_ms=5))
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    worker = world.worker()
    params = params_for(BTC)
    wider = replace(params, grid=replace(params.grid, levels=2))

    async def main() -> None:
        pulse = asyncio.create_task(worker.pulse())
        await asyncio.sleep(0.001)  # the pulse holds the lock, waiting on the exchange
        change = asyncio.create_task(worker.apply_params(wider, "carol", "fewer levels"))
        report = await pulse
        assert not change.done() or worker.params is wider
        await change
        assert len(report.intents) == 5  # decided entirely under the old params
        assert worker.params is wider
        world.advance()
        report = await worker.pulse()
        assert {i.action for i in report.intents} == {"cancel"}
        assert len(report.intents) == 3

    asyncio.run(main())
    started, row = journal.params_history(BTC)
    assert (started.actor, started.why) == ("config", "engine start")
    assert loads_params(started.params_json) == params
    assert (row.actor, row.why) == ("carol", "fewer levels")
    assert loads_params(row.params_json) == wider
    assert json.loads(row.params_json)["grid"]["levels"] == 2


def test_params_for_another_prefix_are_refused() -> None:
    world = make_world()
    worker = world.worker()
    other = replace(params_for(BTC), order_id_prefix="other")
    with pytest.raises(ValueError, match="order id prefix"):
        asyncio.run(worker.apply_params(other, "x", "y"))


def test_new_keltner_periods_restart_the_indicators_from_history() -> None:
    world = make_world(warmup=200)
    worker = world.worker()
    params = params_for(BTC)
    asyncio.run(worker.pulse())
    longer = replace(params, keltner=replace(params.keltner, ema_period=50))
    asyncio.run(worker.apply_params(longer, "dave", "slower mean"))
    assert worker.state.indicators.count == 0
    report = asyncio.run(worker.pulse())
    assert report.bands.ready
    assert worker.state.indicators.last_ts_ms == world.last().ts_ms


def test_a_fill_the_ledger_cannot_book_halts_the_symbol_until_a_person_resumes_it() -> None:
    world = make_world(balances={"USDT": Decimal(10_000), "BTC": Decimal(1)})
    worker = world.worker()
    asyncio.run(worker.pulse())
    # an exit of ours that the ledger never bought: the exchange fills it
    price = world.last().close + 2_000
    world.engine.place(BTC, PlaceLimit(f"{PREFIX}-S3-99", Side.SELL, price, 100, "?"), world.sim.now_ms)
    for candle in falling(world.last(), 3, step=-3_000):
        world.advance_with(BTC, candle)
    placed = len(world.placed_ids())
    report = asyncio.run(worker.pulse())
    assert report.status == PAUSED
    assert report.status_reason.startswith("halted: decide refused the snapshot")
    assert len(world.placed_ids()) == placed
    stored = world.journal.load_symbol(BTC)
    assert stored is not None
    assert stored.status == PAUSED


def test_a_new_journal_does_not_book_fills_older_than_the_symbol() -> None:
    world = make_world()
    world.engine.place(
        BTC, PlaceLimit(f"{PREFIX}-B0-77", Side.BUY, world.last().close - 1_000, 100, "old"), 0
    )
    for candle in falling(world.last(), 5, step=2_000):  # fills it, then time passes
        world.advance_with(BTC, candle)
    assert [f.client_order_id for f in world.engine.fills] == [f"{PREFIX}-B0-77"]
    worker = world.worker()
    report = asyncio.run(worker.pulse())
    assert report.fills == ()
    assert report.held_lots == 0
    stored = world.journal.load_symbol(BTC)
    assert stored is not None
    assert json.loads(stored.state_json)["engine"]["fills_from_ms"] > world.engine.fills[0].ts_ms


def test_a_restart_records_its_parameters_only_when_they_changed() -> None:
    world = make_world()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    params = params_for(BTC)
    wider = replace(params, grid=replace(params.grid, levels=2))

    async def start(p: SymbolParams) -> None:
        await world.worker(params=p).start()

    asyncio.run(start(params))
    asyncio.run(start(params))  # same parameters: nothing new to record
    asyncio.run(start(wider))
    rows = journal.params_history(BTC)
    assert [(r.actor, r.why) for r in rows] == [
        ("config", "engine start"),
        ("config", "engine restart with other parameters"),
    ]
    assert [loads_params(r.params_json) for r in rows] == [params, wider]


def test_a_kill_leaves_the_worker_showing_what_the_exchange_still_has_after_fills_while_paused() -> None:
    # a paused symbol reads no fills: its resting orders may fill meanwhile; the kill then finds them
    # gone on the exchange, and the orders it shows (the API's and the console's) must say so too
    world = make_world()
    worker = world.worker()

    async def main() -> None:
        assert (await worker.pulse()).status == TRADING
        buys = [o for o in worker.open_orders if o.side is Side.BUY]
        assert buys
        await worker.pause("alice", "a look")
        for candle in falling(world.last(), 30, step=20_000):  # down through the ladder
            world.advance_with(BTC, candle)
            assert (await worker.pulse()).status == PAUSED
        on_exchange = {o.client_order_id for o in world.ours()}
        assert on_exchange < {o.client_order_id for o in worker.open_orders}, "no buy filled while paused"
        await worker.kill("alice", "panic")
        assert not world.ours()
        assert worker.open_orders == ()

    asyncio.run(main())
