"""``nutcracker status`` and the replay's pulse lines explain the state in the user's units."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from nutcracker.cli import app

GRID = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml"
CORE_UNITS = re.compile(r"\bppm\b|\blots\b|\bqu\b|\bticks?\b")


def test_a_stopped_replay_shows_what_it_held_at_its_last_pulse(tmp_path: Path) -> None:
    config = tmp_path / "keep.toml"
    config.write_text(GRID.read_text().replace("cancel_on_shutdown = true", "cancel_on_shutdown = false"))
    journal = tmp_path / "replay.db"
    args = ["run", "--config", str(config), "--speed", "0", "--candles", "400", "--synthetic", "600"]
    args += ["--journal", str(journal), "--out", str(tmp_path / "out"), "--headless"]
    ran = CliRunner().invoke(app, args)
    assert ran.exit_code == 0, ran.output
    pulses = [line for line in ran.output.splitlines() if line.startswith("symbol=")]
    assert any('reason="holding ' in line or 'reason="flat; buys rest from' in line for line in pulses)
    assert not any(CORE_UNITS.search(line.split("reason=", 1)[1]) for line in pulses)
    shown = CliRunner().invoke(app, ["status", "--journal", str(journal)])
    assert shown.exit_code == 0, shown.output
    why = _column(shown.output, 3)  # the table wraps the "why" cell over several lines
    assert "at the last pulse: holding 0.00333 BTC at 99,910.42 avg" in why
    assert "min profit 0.10 % net" in why


def _column(table: str, n: int) -> str:
    cells = [line.split("│")[n].strip() for line in table.splitlines() if line.count("│") > n]
    return " ".join(cell for cell in cells if cell)
