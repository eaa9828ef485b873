"""The monitor purges orders outside decide's own thresholds, and the next pulse does not put them back."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from engine_world import BTC, Recording, falling, make_world, params_for

from nutcracker.core.model import Book, OpenOrder, Side
from nutcracker.core.orders import parse_slot
from nutcracker.core.strategy import purge_keep_ppm
from nutcracker.core.units import PPM
from nutcracker.engine.monitor import Monitor, purge_reasons
from nutcracker.store.memory import InMemoryJournal

PURGE_PPM = 15_000  # 1.5% from the top of book


def static_grid(**gates: int) -> object:
    params = params_for(BTC)
    return replace(
        params,
        grid=replace(params.grid, trailing_up=False, trailing_down=False),
        gates=replace(params.gates, **gates),
    )


def test_orders_beyond_the_purge_distance_are_cancelled_and_not_placed_again() -> None:
    world = make_world()
    journal = world.journal
    assert isinstance(journal, InMemoryJournal)
    worker = world.worker(static_grid(purge_ppm=PURGE_PPM))  # type: ignore[arg-type]
    reader = Recording(world.sim)
    monitor = Monitor([worker], reader)

    async def main() -> None:
        first = await worker.pulse()
        ladder = {i.client_order_id: i.price for i in first.intents}
        assert len(ladder) == 3  # levels 3 and 4 (-2%, -2.5%) already lie beyond the purge distance
        assert sum("beyond the purge distance" in r for r in first.reasons) == 2
        assert not any(r for r in (await monitor.sweep())[0].purged)  # all within 1.5% for now
        for candle in falling(world.last(), 4, step=-5_000):  # +0.4%: the deepest levels fall behind
            world.advance_with(BTC, candle)
        (report,) = await monitor.sweep()
        bid = world.engine.book(BTC).best_bid  # type: ignore[union-attr]
        line = bid * (PPM - purge_keep_ppm(PURGE_PPM)) // PPM  # decide keeps a resting buy until here
        purged = {cid for cid, _ in report.purged}
        assert purged == {cid for cid, price in ladder.items() if price < line}
        assert purged
        assert len(purged) < 3
        assert not purged & {o.client_order_id for o in world.ours()}
        # the monitor only read; its cancels went through the journal like any intent
        assert {m for m, _, _ in reader.calls} <= {"fetch_open_orders", "fetch_book", "fetch_candles"}
        assert {r.client_order_id for r in journal.intents(BTC) if r.action == "cancel"} == purged
        for _, why in report.purged:  # the user's units: prices, percent and the config's names
            assert why.startswith("purged: buy at ")
            assert "% below the best bid" in why
            assert "orders.purge_bps" in why

        again = await worker.pulse()
        placed = [i for i in again.intents if i.action == "place"]
        assert all(i.price >= line for i in placed)
        purged_slots = {parse_slot(worker.params.order_id_prefix, cid) for cid in purged}
        assert not purged_slots & {
            parse_slot(worker.params.order_id_prefix, i.client_order_id) for i in placed
        }
        assert any("beyond the purge distance" in r for r in again.reasons)
        (report,) = await monitor.sweep()  # and the two now agree: nothing to purge
        assert not report.purged

    asyncio.run(main())


def test_buys_are_purged_while_volatility_is_above_the_backstop_and_the_next_pulse_places_none() -> None:
    world = make_world()
    params = static_grid()
    worker = world.worker(params)  # type: ignore[arg-type]

    async def main() -> None:
        await worker.pulse()
        atr_ppm = worker.state.indicators.atr_ppm
        wild = replace(params, gates=replace(params.gates, max_atr_ppm=int(atr_ppm * 0.5)))  # type: ignore[attr-defined]
        await worker.apply_params(wild, "test", "tighter backstop")
        world.advance()
        (report,) = await Monitor([worker], world.sim).sweep()
        assert len(report.purged) == 5
        assert all("volatility" in why for _, why in report.purged)
        assert not world.ours()
        again = await worker.pulse()
        assert not [i for i in again.intents if i.action == "place"]
        assert any("above the backstop" in r for r in again.reasons)

    asyncio.run(main())


def test_purge_reasons_use_decides_bounds_exactly() -> None:
    gates = params_for(BTC).gates
    gates = replace(gates, purge_ppm=10_000, max_atr_ppm=0)
    book = Book(1_000_000, 1_000_001)
    buy_line = 1_000_000 * (PPM - 12_500) // PPM  # 987_500: a resting buy stays a quarter beyond 1 %
    sell_line = 1_000_001 * (PPM + 10_000) // PPM  # 1_010_001
    orders = [
        OpenOrder("p-B0-1", Side.BUY, buy_line, 1),
        OpenOrder("p-B1-2", Side.BUY, buy_line - 1, 1),
        OpenOrder("p-S0-3", Side.SELL, sell_line, 1),
        OpenOrder("p-S1-4", Side.SELL, sell_line + 1, 1),
    ]
    assert [cid for cid, _ in purge_reasons(orders, book, 5.0, gates)] == ["p-B1-2", "p-S1-4"]
    wild = replace(gates, purge_ppm=0, max_atr_ppm=100)
    assert [cid for cid, _ in purge_reasons(orders, book, 100.0, wild)] == []
    assert [cid for cid, _ in purge_reasons(orders, book, 100.5, wild)] == ["p-B0-1", "p-B1-2"]
    assert purge_reasons(orders, book, float("nan"), wild) == []


def test_the_monitor_leaves_paused_symbols_alone() -> None:
    world = make_world()
    worker = world.worker(static_grid(purge_ppm=PURGE_PPM))  # type: ignore[arg-type]

    async def main() -> None:
        await worker.pulse()
        resting = world.ours()
        await worker.pause("erin", "hands off")
        for candle in falling(world.last(), 4, step=-5_000):
            world.advance_with(BTC, candle)
        assert await Monitor([worker], world.sim).sweep() == ()
        assert world.ours() == resting

    asyncio.run(main())
