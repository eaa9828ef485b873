"""``status_json``: the status view written without the model, byte for byte the model's JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nutcracker.api.plane import SymbolBook
from nutcracker.api.views import status_json, status_out
from nutcracker.app.kernel import build_replay
from nutcracker.backtest.data import load_data
from nutcracker.config import load_config
from nutcracker.core.commands import KillSymbol, PauseSymbol, ResumeSymbol, Role
from nutcracker.core.model import Candle
from nutcracker.engine.reports import PulseReport
from nutcracker.marketdata.candles import CandleArrays
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[3]


def _candle(c: CandleArrays, i: int) -> Candle:
    return Candle(
        int(c.ts_ms[i]), int(c.open[i]), int(c.high[i]), int(c.low[i]), int(c.close[i]), float(c.volume[i])
    )


def test_status_json_is_the_models_json_for_every_report_of_a_replay(tmp_path: Path) -> None:
    config = load_config(ROOT / "examples" / "multi-symbol.toml")
    data = load_data(config, {}, synthetic=700, seed=11)
    journal = SqliteJournal(tmp_path / "journal.db")
    setup = build_replay(config, data, journal, warmup=300)
    engine = setup.engine
    books = {s: SymbolBook(s, "binance/replay") for s in engine.workers}
    reports: list[PulseReport] = []

    def same(book: SymbolBook, report: PulseReport | None) -> None:
        params = engine.worker(book.symbol).params
        assert (
            status_json(book, params, report) == status_out(book, params, report).model_dump_json().encode()
        )

    def observe(report: PulseReport) -> None:
        book = books[report.symbol]
        book.fees_qu += sum(f.fee for f in report.fills)
        book.first_close = book.first_close or report.close
        same(book, report)
        reports.append(report)

    engine.add_observer(observe)
    first = next(iter(engine.workers))

    async def run() -> None:
        for i in range(len(next(iter(data.values())).ts_ms)):
            for symbol, c in data.items():
                setup.exchange.advance(symbol, _candle(c, i))
            setup.clock.advance_to(setup.exchange.now_ms)
            if i >= setup.warmup:
                await engine.pulse_all()
            if i == 450:
                await engine.submit(PauseSymbol("p", first, "erin", Role.OWNER, "a pause, «why»", 1))
            if i == 500:
                await engine.submit(ResumeSymbol("r", first, "erin", Role.OWNER, "back", 2))
            if i == 650:
                await engine.submit(KillSymbol("k", None, "erin", Role.OWNER, "the end", 3))
        await engine.shutdown("test over")

    for book in books.values():  # before the first pulse
        same(book, None)
    asyncio.run(run())
    journal.close()
    assert {"trading", "paused", "killed"} <= {str(r.status) for r in reports}  # the states compared
    assert any(r.fills for r in reports)  # and fills booked: fees, realized PnL, equity moved
    assert len({r.status_reason for r in reports}) > 10


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip, deflate, br", True),  # httpx, browsers
        ("gzip", True),
        ("GZIP;q=0.5", True),
        ("*", True),
        ("", False),  # no header: identity
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),  # gzip's own weight wins over *
        ("*;q=0, gzip", True),
        ("gzip;q=nonsense", False),
    ],
)
def test_accepts_gzip_reads_the_accept_encoding_weights(header: str, accepted: bool) -> None:
    from nutcracker.api.routers.symbols import accepts_gzip

    assert accepts_gzip(header) is accepted
