"""``nutcracker config check``: valid files print the effective config (exit 0), bad ones the fix (exit 2)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from nutcracker.cli import EXIT_CONFIG, app
from nutcracker.config import load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))

runner = CliRunner()


def test_config_check_accepts_every_example() -> None:
    result = runner.invoke(app, ["config", "check", *map(str, EXAMPLE_FILES)])
    assert result.exit_code == 0, result.stderr
    assert len(EXAMPLE_FILES) >= 7
    for path in EXAMPLE_FILES:
        assert f"✓ {path}: valid" in result.stdout
    assert result.stderr == ""


def test_config_check_prints_the_effective_config_with_defaults_filled_in() -> None:
    path = EXAMPLES / "grid-btc-usdt.toml"
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0
    toml_text = result.stdout[result.stdout.index("[engine]") :]
    assert parse_config(tomllib.loads(toml_text)) == load_config(path)
    for default in ("[symbol.keltner]", "ema_period = 20", 'purge_bps = "300"', "[symbol.cooldown]"):
        assert default in result.stdout


def test_config_check_shows_a_summary_row_per_symbol() -> None:
    result = runner.invoke(app, ["config", "check", str(EXAMPLES / "multi-symbol.toml")])
    assert result.exit_code == 0
    assert "2 symbols" in result.stdout
    assert "BTC/USDT" in result.stdout
    assert "ETH/USDT" in result.stdout
    assert "= 1999.2 USDT" in result.stdout  # 6 levels × order_fraction 0.1666 × max_quote 2000


def test_config_check_on_a_bad_file_prints_the_fix_to_stderr_and_exits_2(tmp_path: Path) -> None:
    text = (EXAMPLES / "grid-btc-usdt.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    text = re.sub(r"order_fraction = .*", 'order_quote = "200"', text)  # a fixed size the rail can't hold
    bad.write_text(text.replace('max_quote = "2000"', 'max_quote = "900"'), encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == EXIT_CONFIG == 2
    assert "symbol[0].rails.max_quote" in result.stderr
    assert "raise rails.max_quote to at least 1000" in result.stderr
    assert result.stdout == ""


def test_config_check_reports_every_bad_file_and_still_checks_the_good_ones(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    broken = tmp_path / "broken.toml"
    broken.write_text("[engine\n", encoding="utf-8")
    good = EXAMPLES / "grid-btc-usdt.toml"
    result = runner.invoke(app, ["config", "check", str(missing), str(good), str(broken)])
    assert result.exit_code == 2
    assert f"{missing}: no such file" in result.stderr
    assert f"{broken}: invalid TOML" in result.stderr
    assert "line 1, column" in result.stderr
    assert f"✓ {good}: valid" in result.stdout


def test_config_check_without_files_is_a_usage_error() -> None:
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr
