"""``nutcracker status`` tells the truth about a stopped engine, its open orders and its clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.cli import app
from nutcracker.core.model import MarketInfo
from nutcracker.core.records import ACCOUNT
from nutcracker.core.units import Precision
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))


@pytest.fixture
def server() -> Iterator[SimServer]:
    candles = synthetic_candles(11, 800, Decimal(100_000), BTC, symbol="BTC/USDT")
    info = MarketInfo("BTC/USDT", "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    account = SimAccount("status-key", "status-secret", {"USDT": Decimal(10_000)})
    sim = SimServer({"BTC/USDT": MarketSpec(info, candles)}, [account], manual=True)
    sim.start()
    sim.advance(400)
    yield sim
    sim.stop()


def _status(journal: Path) -> str:
    shown = CliRunner().invoke(app, ["status", "--journal", str(journal)])
    assert shown.exit_code == 0, shown.output
    return shown.output


def _replay(tmp_path: Path, config: Path, candles: int) -> Path:
    journal = tmp_path / "replay.db"
    args = ["run", "--config", str(config), "--speed", "0", "--candles", str(candles), "--synthetic", "600"]
    args += ["--journal", str(journal), "--out", str(tmp_path / "out"), "--headless"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return journal


def test_a_stopped_paper_engine_shows_stopped_with_when_and_why_on_one_clock(
    server: SimServer, tmp_path: Path
) -> None:
    journal = tmp_path / "paper.db"
    started_ms = time.time_ns() // 1_000_000
    args = ["run", "--config", str(GRID), "--mode", "paper", "--exchange-url", server.url]
    args += ["--pulse-interval", "0.05", "--pulses", "3", "--journal", str(journal)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "orders=6" in result.output  # it traded: six orders rested, then were cancelled at stop
    ended_ms = time.time_ns() // 1_000_000
    with SqliteJournal(journal) as store:  # one clock: the engine's (the wall clock in paper mode)
        events = store.recent_events("BTC/USDT", 1000) + store.recent_events(ACCOUNT, 1000)
        assert events
        assert all(started_ms <= e.ts_ms <= ended_ms for e in events), sorted(e.ts_ms for e in events)
        (row,) = store.symbols()
        assert started_ms <= row.updated_ts_ms <= ended_ms
        audits = [(a.action, json.loads(a.detail)) for a in reversed(store.audit_log(10))]
    assert audits == [  # while running: the pulse's count when it changed; at stop: the exchange's
        ("reconciliation", {"BTC/USDT": {"open_orders": 6, "source": "last pulse"}}),
        ("reconciliation", {"BTC/USDT": {"open_orders": 0, "source": "exchange"}}),
        ("stop", {"clock": "wall", "open_orders": 0, "reason": "--pulses 3 reached"}),
    ]
    shown = _status(journal)
    assert "stopped" in shown
    assert "--pulses 3 reached" in shown
    assert "trading" not in shown
    assert "orders resting" not in shown
    assert "wall clock" in shown
    assert "0 at stop" in shown  # the reconciliation after the shutdown's cancels
    assert "no stop journaled" not in shown


def test_a_replay_stopped_with_orders_resting_shows_the_reconciled_count(tmp_path: Path) -> None:
    config = tmp_path / "keep.toml"
    config.write_text(GRID.read_text().replace("cancel_on_shutdown = true", "cancel_on_shutdown = false"))
    journal = _replay(tmp_path, config, 300)
    shown = _status(journal)
    assert "stopped" in shown
    assert "--candles 300 reached" in shown
    assert "6 at stop" in shown  # nothing was cancelled: the exchange still lists six of ours


def test_a_restarted_engine_is_no_longer_shown_stopped(tmp_path: Path) -> None:
    journal = _replay(tmp_path, GRID, 30)
    assert "stopped" in _status(journal)
    with SqliteJournal(journal) as store:  # the next run's first status change, after the stop
        store.set_status("BTC/USDT", "paused", "paused by ops: maintenance", 1)
    shown = _status(journal)
    assert "paused by ops: maintenance" in shown
    assert "stopped" not in shown
    assert "no stop journaled after the last activity" in shown  # running, or killed: it cannot tell


def test_the_demo_prints_the_exact_status_command_that_finds_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--speed", "0", "--candles", "40"])
    assert result.exit_code == 0, result.output
    command = f"nutcracker status --journal {out / 'demo.db'}"
    assert command in result.output
    shown = _status(out / "demo.db")
    assert "stopped" in shown
    assert "--candles 40 reached" in shown
