"""``nutcracker run --mode replay`` and ``nutcracker status`` through the CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.cli import app
from nutcracker.core.serialize import state_from_dict
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[2]
GRID = str(ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml")


def test_a_replay_journals_every_pulse_and_ends_with_the_backtest_outputs(tmp_path: Path) -> None:
    journal, out = tmp_path / "engine.db", tmp_path / "out"
    args = [
        "run",
        "--config",
        GRID,
        "--mode",
        "replay",
        "--speed",
        "0",
        "--candles",
        "400",
        "--synthetic",
        "1500",
        "--journal",
        str(journal),
        "--out",
        str(out),
        "--headless",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("symbol=BTC/USDT")]
    assert len(lines) == 400
    assert all("status=" in line and "reason=" in line for line in lines)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rail_violations"] == 0
    assert summary["pulses"] == 400
    assert (out / "report.html").exists()

    shown = CliRunner().invoke(app, ["status", "--journal", str(journal)])
    assert shown.exit_code == 0, shown.output
    assert "BTC/USDT" in shown.output
    # inventory in base and PnL in quote, the amounts the journal's ledger holds
    with SqliteJournal(journal) as store:
        stored = store.load_symbol("BTC/USDT")
        assert stored is not None
        ledger = state_from_dict(json.loads(stored.state_json)["strategy"]).ledger
    assert ledger.cycles_closed > 0
    held = Decimal(ledger.held) * Decimal("0.00001")
    pnl = (Decimal(ledger.realized_pnl) * Decimal("0.01") * Decimal("0.00001") / 10**6).normalize()
    assert f"{held} BTC" in shown.output
    assert f"{pnl:f} USDT" in shown.output
    # the buys paid their commission in base: the base left below a lot is shown, not hidden
    assert ledger.dust > 0
    dust = (Decimal(ledger.dust) * Decimal("0.00001") / 10**6).normalize()
    assert f"+ {dust:f} dust" in shown.output
    assert Decimal(summary["symbols"]["BTC/USDT"]["dust_at_end_base"]) >= dust  # and open lots' fractions


def test_live_mode_without_a_key_refuses_with_a_clear_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--config", GRID, "--mode", "live", "--journal", str(tmp_path / "j.db")]
    )
    assert result.exit_code == 2
    assert "needs --key NAME" in result.output
    assert not (tmp_path / "j.db").exists()  # nothing started


def test_status_without_a_journal_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no demo journal here: the message points at the demo when there is one
    result = CliRunner().invoke(app, ["status", "--journal", str(tmp_path / "missing.db")])
    assert result.exit_code == 2
    assert "run the engine first" in result.output
