"""``FleetEngine`` on a real Redis: what an API process sees of engines that run elsewhere.

A replay engine writes its journal to Redis and, as a scale-out worker does, publishes only some
of its reports (every seventh pulse here); the fleet reads them back. Every fill the engine booked
reaches the fleet's observers exactly once, and each report survives the codec byte for byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from nutcracker.app.fleet import FleetEngine
from nutcracker.app.kernel import build_replay, symbol_params
from nutcracker.backtest.data import load_data
from nutcracker.config import load_config
from nutcracker.core.commands import Outcome, PauseSymbol, Role
from nutcracker.core.model import Candle
from nutcracker.engine.report_codec import decode_report, encode_report
from nutcracker.engine.reports import PulseReport
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_reports import RedisReports

GRID = Path(__file__).resolve().parents[3] / "examples" / "grid-btc-usdt.toml"
SYMBOL = "BTC/USDT"


def test_the_fleet_hands_on_every_fill_once_from_sampled_reports(redis_url: str) -> None:
    config = load_config(GRID)
    data = load_data(config, {}, synthetic=1_500, seed=5)
    journal = RedisJournal(redis_url)
    board = RedisReports(journal.client)
    fleet = FleetEngine(symbol_params(config), journal)
    seen: list[PulseReport] = []
    fleet.add_observer(seen.append)
    texts: list[str] = []

    async def run() -> None:
        setup = build_replay(config, data, journal)
        await setup.engine.start()
        candles = data[SYMBOL]
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
            if i % 7 == 0:  # a worker publishes about once a second, not every pulse
                texts.append(encode_report(report))
                board.publish({SYMBOL: texts[-1]})
                fleet.refresh()
        await setup.engine.shutdown("test over")

    asyncio.run(run())
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
