"""The pulse of one symbol over the simulator: write-ahead, data-stall, ambiguous placements, fills."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from engine_world import (
    BTC,
    Recording,
    WriteAheadCheck,
    falling,
    make_world,
    params_for,
)

from nutcracker.core.model import Side
from nutcracker.core.orders import parse_slot
from nutcracker.core.units import BU_PER_LOT
from nutcracker.engine.worker import IDLE, PAUSED, STALLED, TRADING, WorkerSettings
from nutcracker.exchange.simulated import Faults
from nutcracker.store.memory import InMemoryJournal
from nutcracker.store.sqlite import SqliteJournal

PREFIX = params_for(BTC).order_id_prefix


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_every_order_and_cancel_is_journaled_pending_before_the_exchange_sees_it() -> None:
    world = make_world()
    recording = Recording(world.sim)
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    check = WriteAheadCheck(journal.intents)
    recording.before_send = check
    worker = world.worker(exchange=recording)

    async def main() -> None:
        await worker.pulse()
        for candle in falling(world.last(), 6, step=-10_000):  # a rally: the trailing grid re-prices
            world.advance_with(BTC, candle)
            await worker.pulse()
        for candle in falling(world.last(), 12, step=8_000):  # a drop: buys fill, exits are placed
            world.advance_with(BTC, candle)
            await worker.pulse()

    asyncio.run(main())
    assert check.checked["place"] >= 5
    assert check.checked["cancel"] >= 1
    # and every intent left pending was answered afterwards
    assert {r.status for r in journal.intents(BTC)} <= {"acked", "done", "rejected"}


def test_a_sqlite_journal_has_the_intent_on_disk_before_the_order_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with SqliteJournal(path) as journal, SqliteJournal(path) as reader:
        world = make_world(journal=journal)
        recording = Recording(world.sim)
        check = WriteAheadCheck(reader.intents)  # another connection: sees committed rows only
        recording.before_send = check
        worker = world.worker(exchange=recording)

        async def main() -> None:
            for _ in range(120):
                world.advance()
                await worker.pulse()

        asyncio.run(main())
    assert check.checked["place"] >= 5


def test_an_idle_pulse_makes_no_durable_commit_and_saves_state_only_when_it_changed() -> None:
    world = make_world()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    worker = world.worker(
        params_for(BTC, gates=replace(params_for(BTC).gates, max_atr_ppm=1)),
        settings=WorkerSettings(save_state_every_candles=3),
    )

    async def main() -> None:
        await worker.pulse()  # too wild for buys: idle
        events = len(journal.recent_events(BTC, 1000))
        state = journal.load_symbol(BTC)
        await worker.pulse()  # no new candle: the state did not change
        assert journal.load_symbol(BTC) == state
        for _ in range(2):  # new candles: indicator progress only, handed over every third one
            world.advance()
            report = await worker.pulse()
            assert report.status == IDLE
            assert "volatility" in report.status_reason
            assert journal.load_symbol(BTC) == state
        world.advance()
        await worker.pulse()
        assert len(journal.recent_events(BTC, 1000)) == events  # saved, not committed
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.state_json != state.state_json  # type: ignore[union-attr]

    asyncio.run(main())
    assert not [e for e in journal.recent_events(BTC, 1000) if e.kind == "pulse"]


def test_a_timeout_while_hydrating_is_a_data_stall_with_backoff_then_the_symbol_resumes() -> None:
    world = make_world(faults=Faults())
    worker = world.worker(settings=WorkerSettings(backoff_initial_s=0.5, backoff_max_s=2.0))
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)

    async def main() -> None:
        first = await worker.pulse()
        assert first.status == TRADING
        world.advance()
        placed_before = len(world.placed_ids())
        retries = []
        for method in ("fetch_book", "fetch_open_orders", "fetch_fills", "fetch_candles"):
            world.sim.faults.fail_next(method, "timeout")
            report = await worker.pulse()
            assert report.status == STALLED
            assert "data-stall" in report.status_reason
            assert method in report.status_reason
            assert not report.intents
            retries.append(report.retry_in_s)
        assert retries == [0.5, 1.0, 2.0, 2.0]  # exponential, capped
        assert worker.next_delay_s(60.0) == 2.0
        assert len(world.placed_ids()) == placed_before  # nothing dispatched while stalled
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.status == STALLED
        report = await worker.pulse()
        assert report.status in (TRADING, IDLE)
        assert report.retry_in_s is None
        assert worker.next_delay_s(60.0) == 60.0
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.status == report.status

    asyncio.run(main())


def test_stale_candles_are_a_data_stall() -> None:
    world = make_world()
    recording = Recording(world.sim)
    worker = world.worker(exchange=recording)

    async def main() -> None:
        assert (await worker.pulse()).status == TRADING
        recording.server_time_shift_ms = 10 * 60_000  # the exchange clock runs, no candle closes
        report = await worker.pulse()
        assert report.status == STALLED
        assert "no fresh closed candle" in report.status_reason

    asyncio.run(main())


def test_an_ambiguous_placement_is_resolved_by_client_id_before_anything_else_and_never_doubled() -> None:
    world = make_world(faults=Faults())
    recording = Recording(world.sim)
    worker = world.worker(exchange=recording)
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)

    async def main() -> None:
        world.sim.faults.fail_next("place", "drop_after_accept")
        report = await worker.pulse()
        statuses = [i.status for i in report.intents]
        assert statuses[0] == "ambiguous"
        assert set(statuses[1:]) == {"pending"}  # nothing else placed while the first is unknown
        assert len(world.placed_ids()) == 1  # the exchange did take the first one
        ambiguous = report.intents[0].client_order_id
        unsent = [i.client_order_id for i in report.intents[1:]]
        recording.calls.clear()

        await worker.pulse()
        first_send = next(i for i, c in enumerate(recording.calls) if c[0] in ("place", "cancel"))
        looked_up = [i for i, c in enumerate(recording.calls) if c == ("fetch_order", BTC, ambiguous)]
        assert looked_up
        assert looked_up[0] < first_send
        rows = {r.client_order_id: r for r in journal.intents(BTC) if r.action == "place"}
        assert rows[ambiguous].status == "acked"
        assert [rows[cid].status for cid in unsent] == ["never_placed"] * 4

    asyncio.run(main())
    placed = world.placed_ids()
    assert len(placed) == len(set(placed))  # no client order id was sent twice
    slots = [parse_slot(PREFIX, o.client_order_id) for o in world.ours()]
    assert len(slots) == len(set(slots)) == 5  # the ambiguous order was adopted, not duplicated


def test_a_placement_that_timed_out_stays_pending_and_resolves_as_never_placed() -> None:
    world = make_world(faults=Faults())
    worker = world.worker()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)

    async def main() -> None:
        world.sim.faults.fail_next("place", "timeout")
        report = await worker.pulse()
        assert {i.status for i in report.intents} == {"pending"}
        assert len(journal.open_intents(BTC)) == 5
        assert not world.placed_ids()
        await worker.pulse()
        statuses = {r.client_order_id: r.status for r in journal.intents(BTC)}
        for intent in report.intents:
            assert statuses[intent.client_order_id] == "never_placed"
        assert not journal.open_intents(BTC)
        assert len(world.ours()) == 5  # placed again under new client ids

    asyncio.run(main())
    assert len(world.placed_ids()) == len(set(world.placed_ids()))


def test_a_failed_cancel_sends_no_placement_in_that_pulse() -> None:
    world = make_world(faults=Faults())
    recording = Recording(world.sim)
    worker = world.worker(exchange=recording)

    async def main() -> None:
        await worker.pulse()
        # the market rises 3%: the trailing grid re-prices the ladder (cancels, then places)
        for candle in falling(world.last(), 6, step=-10_000):
            world.advance_with(BTC, candle)
        world.sim.faults.fail_next("cancel", "timeout")
        recording.calls.clear()
        report = await worker.pulse()
        assert any(i.action == "cancel" for i in report.intents)
        assert not recording.sent("place")
        assert {i.status for i in report.intents if i.action == "place"} == {"pending"}
        report = await worker.pulse()  # resolves, then re-decides from the exchange's truth
        assert recording.sent("place")

    asyncio.run(main())
    slots = [parse_slot(PREFIX, o.client_order_id) for o in world.ours()]
    assert len(slots) == len(set(slots))


def test_fills_are_booked_once_by_trade_id_even_when_read_again() -> None:
    world = make_world()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    recording = Recording(world.sim)
    worker = world.worker(exchange=recording, settings=WorkerSettings(fill_overlap_ms=10**12))

    async def main() -> None:
        await worker.pulse()
        for candle in falling(world.last(), 8, step=12_000):
            world.advance_with(BTC, candle)
            await worker.pulse()
        await worker.pulse()
        await worker.pulse()

    asyncio.run(main())
    exchange_fills = [f for f in world.engine.fills if f.client_order_id.startswith(PREFIX)]
    booked = journal.fills(BTC)
    assert exchange_fills, "the falling market filled some buys"
    assert sorted(f.trade_id for f in booked) == sorted(f.trade_id for f in exchange_fills)
    # every pulse read all fills again (the overlap covers everything), none was booked twice
    assert sum(1 for c in recording.calls if c[0] == "fetch_fills") >= 10
    bought = sum(f.qty for f in exchange_fills if f.side is Side.BUY)
    sold = sum(f.qty for f in exchange_fills if f.side is Side.SELL)
    # the buys' commission was taken in base (as Binance does): the lots hold what was received
    received = sum(f.qty * BU_PER_LOT - f.fee_base for f in exchange_fills if f.side is Side.BUY)
    ledger = worker.state.ledger
    assert sum(lot.left_bu for lot in ledger.lots) + ledger.dust == received - sold * BU_PER_LOT
    assert ledger.held == sum(lot.received // BU_PER_LOT - lot.sold for lot in ledger.lots)
    fees = sum(f.fee_base for f in exchange_fills if f.side is Side.BUY)
    assert (
        world.engine.free("BTC") + world.engine.locked("BTC")
        == BTC_QTY(bought - sold) - BTC_QTY(fees) / BU_PER_LOT
    )


def BTC_QTY(lots: int) -> Decimal:  # noqa: N802 - reads like a unit
    return params_for(BTC).market.precision.lots_to_qty(lots)


def test_fills_of_orders_that_are_not_ours_are_ignored() -> None:
    world = make_world()
    worker = world.worker()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)

    async def main() -> None:
        await worker.pulse()
        from nutcracker.core.model import PlaceLimit

        price = world.last().close - 300
        world.engine.place(BTC, PlaceLimit("manual-1", Side.BUY, price, 100, "by hand"), world.sim.now_ms)
        for candle in falling(world.last(), 6, step=12_000):
            world.advance_with(BTC, candle)
            await worker.pulse()

    asyncio.run(main())
    assert any(f.client_order_id == "manual-1" for f in world.engine.fills)
    assert all(f.client_order_id.startswith(PREFIX) for f in journal.fills(BTC))
    assert "manual-1" in {o.client_order_id for o in world.engine.open_orders(BTC)} or any(
        e.client_order_id == "manual-1" and e.event == "filled" for e in world.engine.events
    )
    assert not [e for e in world.engine.events if e.client_order_id == "manual-1" and e.event == "cancelled"]


def test_a_cold_start_pages_back_enough_history_for_the_indicators() -> None:
    world = make_world(warmup=400)
    recording = Recording(world.sim)
    params = params_for(BTC)
    params = replace(params, keltner=replace(params.keltner, long_period=150))
    worker = world.worker(params, exchange=recording, settings=WorkerSettings(candles_page_limit=50))

    async def main() -> None:
        report = await worker.pulse()
        assert report.bands.ready
        assert worker.state.indicators.count >= 150
        assert worker.state.indicators.last_ts_ms == world.last().ts_ms
        assert sum(1 for c in recording.calls if c[0] == "fetch_candles") >= 4  # paged by 50
        recording.calls.clear()
        await worker.pulse()  # no candle closed since: not even asked
        assert not [c for c in recording.calls if c[0] == "fetch_candles"]
        world.advance()
        await worker.pulse()
        assert worker.state.indicators.last_ts_ms == world.last().ts_ms

    asyncio.run(main())


@pytest.mark.parametrize("bad", ["{", '{"engine": {"format": 9}, "strategy": {}}'])
def test_an_unreadable_journaled_state_halts_the_symbol(bad: str) -> None:
    # issue 11 item 4: halted with the reason (the other symbols run), no longer an error at start
    world = make_world()
    world.journal.save_state(BTC, bad, 0)
    worker = world.worker()
    run(worker.start())
    assert worker.status == PAUSED
    assert "cannot be read" in worker.status_reason
    report = run(worker.pulse())
    assert report.status == PAUSED
    assert not world.placed_ids()
    stored = world.journal.load_symbol(BTC)
    assert stored is not None
    assert stored.state_json == bad


def test_skipping_decide_inside_the_hold_region_changes_no_order_and_no_fill() -> None:
    """The same market with and without reusing hold regions: identical orders, fills and states."""

    def trade(reuse: bool) -> tuple[list[object], list[str], object, int]:
        world = make_world(n=700)
        worker = world.worker(settings=WorkerSettings(reuse_hold=reuse))
        reused = 0

        async def main() -> None:
            nonlocal reused
            for _ in range(300):
                world.advance()
                for _ in range(2):  # a second pulse on the same candle, as with short pulse intervals
                    reused += not (await worker.pulse()).decided
            for candle in falling(world.last(), 10, step=9_000):
                world.advance_with(BTC, candle)
                reused += not (await worker.pulse()).decided

        asyncio.run(main())
        events = [(e.event, e.side, e.price, e.qty, e.client_order_id) for e in world.engine.events]
        fills = [f.trade_id for f in world.engine.fills]
        return events, fills, worker.state.ledger, reused

    with_hold, without = trade(True), trade(False)
    assert with_hold[:3] == without[:3]
    assert without[3] == 0
    assert with_hold[3] > 300  # most pulses reused the last decision


def test_a_reused_decision_counts_the_warm_up_candles_as_deciding_again_would() -> None:
    """A hold region spans the warm-up; its reused reasons must not keep the first pulse's count."""

    def reasons(reuse: bool) -> tuple[list[tuple[str, ...]], int]:
        world = make_world(warmup=3)
        worker = world.worker(settings=WorkerSettings(reuse_hold=reuse))
        seen: list[tuple[str, ...]] = []
        reused = 0

        async def main() -> None:
            nonlocal reused
            for _ in range(20):
                report = await worker.pulse()
                reused += not report.decided
                seen.append(report.reasons)
                world.advance()

        asyncio.run(main())
        return seen, reused

    with_hold, reused = reasons(True)
    without, _ = reasons(False)
    assert reused > 10  # the warm-up was held, so the reused path is what this compares
    assert with_hold == without
    counts = [r for rs in with_hold for r in rs if "warming up" in r]
    assert len(set(counts)) == len(counts) > 10  # a new count on every candle


def test_each_report_carries_the_candles_it_read_and_the_standing_decisions_levels() -> None:
    """What the API's chart reads: every closed candle once, in order; the levels of the last decision,
    kept while a hold region reuses it, and the resting ones are the orders left resting."""
    world = make_world(n=400)
    worker = world.worker()
    seen: list[int] = []
    reused = 0

    async def main() -> None:
        nonlocal reused
        await worker.start()
        last_levels: tuple[object, ...] = ()
        for _ in range(120):
            world.advance()
            report = await worker.pulse()
            seen.extend(c.ts_ms for c in report.candles)
            assert report.levels, "a trading grid always plans its levels"
            if report.decided:
                last_levels = report.levels
            else:
                reused += 1
                assert report.levels is last_levels  # the standing decision's, not recomputed
            resting = {(lv.price, lv.side) for lv in report.levels if lv.outcome == "resting"}
            assert resting == {(o.price, o.side) for o in report.open_orders}
            assert report.bands.candle_ts_ms == seen[-1]  # the bands include the newest candle read
        paused = await worker.pause("test", "a look")
        assert (paused.candles, paused.levels) == ((), ())

    asyncio.run(main())
    assert seen == sorted(set(seen))  # each candle once, oldest first
    assert all(b - a == 60_000 for a, b in itertools.pairwise(seen))
    assert reused > 0  # the held path is what the identity check covers
