"""``FleetEngine`` on a real Redis: what an API process sees of engines that run elsewhere.

A replay engine writes its journal to Redis and, as a scale-out worker does, publishes only some
of its reports (every seventh pulse here); the fleet reads them back. Every fill the engine booked
reaches the fleet's observers exactly once, and each report survives the codec byte for byte.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from tests.redis_server import RedisServer

from nutcracker.api.plane import EventFeed
from nutcracker.app.fleet import POLL_S, FleetEngine
from nutcracker.app.kernel import build_replay, symbol_params
from nutcracker.backtest.data import load_data
from nutcracker.config import NutcrackerConfig, load_config
from nutcracker.core.commands import Outcome, PauseSymbol, Role
from nutcracker.core.model import Candle
from nutcracker.core.records import FillRow
from nutcracker.engine.report_codec import decode_report, encode_report
from nutcracker.engine.reports import PulseReport
from nutcracker.errors import JournalError
from nutcracker.marketdata.candles import CandleArrays
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_inbox import RedisInbox
from nutcracker.store.redis_reports import RedisReports

GRID = Path(__file__).resolve().parents[3] / "examples" / "grid-btc-usdt.toml"
SYMBOL = "BTC/USDT"


async def _replay(
    config: NutcrackerConfig,
    data: Mapping[str, CandleArrays],
    journal: RedisJournal,
    each: Callable[[int, PulseReport], None] = lambda i, r: None,
) -> PulseReport:
    """Replay every candle of ``data`` on ``journal``, as a worker's engine; return the last report."""
    setup = build_replay(config, data, journal)
    await setup.engine.start()
    candles = data[SYMBOL]
    report = None
    for i in range(len(candles.ts_ms)):
        bar = Candle(
            int(candles.ts_ms[i]),
            int(candles.open[i]),
            int(candles.high[i]),
            int(candles.low[i]),
            int(candles.close[i]),
        )
        setup.exchange.advance(SYMBOL, bar)
        setup.clock.advance_to(setup.exchange.now_ms)
        (report,) = await setup.engine.pulse_all()
        each(i, report)
    await setup.engine.shutdown("test over")
    assert report is not None
    return report


def test_the_fleet_hands_on_every_fill_once_from_sampled_reports(redis_url: str) -> None:
    config = load_config(GRID)
    data = load_data(config, {}, synthetic=1_500, seed=5)
    journal = RedisJournal(redis_url)
    board = RedisReports(journal.client)
    fleet = FleetEngine(symbol_params(config), journal)
    seen: list[PulseReport] = []
    fleet.add_observer(seen.append)
    texts: list[str] = []

    def publish_some(i: int, report: PulseReport) -> None:
        if i % 7 == 0:  # a worker publishes about once a second, not every pulse
            texts.append(encode_report(report))
            board.publish({SYMBOL: texts[-1]})
            fleet.refresh()

    asyncio.run(_replay(config, data, journal, publish_some))
    booked = [row.trade_id for row in journal.fills(SYMBOL)]
    assert len(booked) >= 10  # the grid traded: the check below is not about nothing
    handed = [f.trade_id for r in seen for f in r.fills]
    assert sorted(handed) == sorted(booked[: len(handed)])  # each once, none invented
    assert len(handed) >= len(booked) - 5  # all but the fills after the last publication
    assert all(encode_report(decode_report(t)) == t for t in texts)  # the codec loses nothing
    assert fleet.worker(SYMBOL).status == seen[-1].status
    journal.close()


def test_a_command_for_a_symbol_nobody_holds_is_sent_not_applied(redis_url: str) -> None:
    config = load_config(GRID)
    journal = RedisJournal(redis_url)
    fleet = FleetEngine(symbol_params(config), journal, apply_timeout_s=0.3)
    command = PauseSymbol("c-1", SYMBOL, "olga", Role.OPERATOR, "no worker", 0)
    outcome = asyncio.run(fleet.submit(command))
    assert outcome.outcome == Outcome.SENT  # it waits in the symbol's inbox for its next owner
    assert "not applied yet" in outcome.detail
    assert journal.command_detail("c-1") is None  # nothing journaled: no owner applied it
    journal.close()


def test_a_command_to_a_redis_that_went_away_is_a_journal_error_saying_to_send_it_again(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")  # its own: this test stops it
    journal = RedisJournal(server.url)
    fleet = FleetEngine(symbol_params(load_config(GRID)), journal, apply_timeout_s=0.3)
    command = PauseSymbol("c-1", SYMBOL, "olga", Role.OPERATOR, "no redis", 0)
    server.stop()
    try:
        with pytest.raises(JournalError, match="read failed"):  # has it been applied? Unknown: a 503
            asyncio.run(fleet.submit(command))
        with pytest.raises(JournalError, match=r"may not have been sent .*send it again"):
            asyncio.run(RedisInbox(journal.client).send(command))
    finally:
        journal.close()


def test_a_running_fleet_reads_redis_off_the_loop_and_tells_its_observers_on_it(redis_url: str) -> None:
    config = load_config(GRID)
    data = load_data(config, {}, synthetic=600, seed=5)
    journal = RedisJournal(redis_url)
    board = RedisReports(journal.client)
    fleet = FleetEngine(symbol_params(config), journal)
    told: list[tuple[PulseReport, bool]] = []  # each report, and whether it came on the loop's thread
    read_on: list[int] = []  # the threads the journal's new fills were read on
    read_each = journal.fills_booked_after_each

    def recorded(cursors: Mapping[str, int]) -> dict[str, list[FillRow]]:
        read_on.append(threading.get_ident())
        return read_each(cursors)

    async def run() -> None:
        loop_thread = threading.get_ident()
        fleet.add_observer(lambda r: told.append((r, threading.get_ident() == loop_thread)))
        journal.fills_booked_after_each = recorded  # type: ignore[method-assign]
        report = await _replay(config, data, journal)
        board.publish({SYMBOL: encode_report(report)})
        stop = asyncio.Event()
        polling = asyncio.create_task(fleet.run(stop))
        for _ in range(100):  # the first poll is at once; a few seconds at most on a busy machine
            if told:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await polling
        assert read_on
        assert loop_thread not in read_on  # Redis round trips never hold the API's loop

    asyncio.run(run())
    booked = [row.trade_id for row in journal.fills(SYMBOL)]
    assert booked  # the grid traded: every fill booked so far comes with the one report published
    assert len(told) == 1
    report, on_loop = told[0]
    assert on_loop
    assert [f.trade_id for f in report.fills] == booked
    journal.close()


def test_new_fills_of_many_symbols_are_read_at_once_as_one_by_one(redis_url: str) -> None:
    config = load_config(GRID)
    data = load_data(config, {}, synthetic=1_500, seed=5)
    journal = RedisJournal(redis_url)

    asyncio.run(_replay(config, data, journal))
    total = len(journal.fills(SYMBOL))
    assert total >= 4
    for count in (0, 1, total // 2, total - 1, total, total + 3):
        each = journal.fills_booked_after_each({SYMBOL: count, "NONE/USDT": 0})
        assert each == {SYMBOL: journal.fills_booked_after(SYMBOL, count), "NONE/USDT": []}
    assert journal.fills_booked_after_each({}) == {}
    journal.close()


def test_serve_follows_the_journals_events_without_waiting_for_a_report(redis_url: str) -> None:
    config = load_config(GRID)
    data = load_data(config, {}, synthetic=300, seed=5)
    writer, reader = RedisJournal(redis_url), RedisJournal(redis_url)  # a worker's, serve's
    feed = EventFeed(reader)
    last = 0

    async def run() -> None:
        nonlocal last
        stop = asyncio.Event()
        following = asyncio.create_task(feed.follow(stop, every_s=0.01))
        woken = feed.wait(60.0)
        await _replay(config, data, writer)  # no report is published
        last = writer.events_since(0, 100_000)[-1].seq
        for _ in range(500):
            if feed.last_seq == last:
                break
            await asyncio.sleep(0.01)
        assert woken.done()  # a subscriber was woken by the events, not by its timeout
        stop.set()
        await following

    asyncio.run(run())
    assert last > 0
    assert feed.last_seq == last
    assert [f.seq for f in feed.after(0, 100_000)] == list(range(1, last + 1))  # every event, in order
    writer.close()
    reader.close()


def test_serve_that_loses_its_store_says_so_once_and_catches_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis")  # its own: this test stops it
    config = load_config(GRID)
    data = load_data(config, {}, synthetic=300, seed=5)
    writer, reader = RedisJournal(server.url), RedisJournal(server.url)
    feed = EventFeed(reader)
    fleet = FleetEngine(symbol_params(config), reader)
    last = 0

    async def run() -> None:
        nonlocal last
        stop = asyncio.Event()
        following = asyncio.gather(feed.follow(stop, every_s=0.01), fleet.run(stop))
        server.stop()
        await asyncio.sleep(1.2)  # the feed's reads fail a hundred times, the fleet's twice or more
        server.start()
        await _replay(config, data, writer)
        last = writer.events_since(0, 100_000)[-1].seq
        for _ in range(500):
            if feed.last_seq == last:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(POLL_S * 2)  # the fleet's next poll, which reads again
        stop.set()
        await following

    try:
        with caplog.at_level(logging.WARNING):
            asyncio.run(run())
    finally:
        writer.close()
        reader.close()
        server.stop()

    def said(logger: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == logger]

    feed_said, fleet_said = said("nutcracker.api"), said("nutcracker.fleet")
    assert len(feed_said) == 2, feed_said  # once when the store went away, once when it came back
    assert feed_said[0].startswith("events not read, retrying every 0.01 s: ")
    assert feed_said[1] == "events read again"
    assert len(fleet_said) == 2, fleet_said
    assert fleet_said[0].startswith("reports not read, retrying every 0.5 s: ")
    assert fleet_said[1] == "reports read again"
    assert feed.last_seq == last > 0  # nothing lost across the outage
