"""The max_base fit warning: one line on stderr at ``config check --data`` and at backtest start."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nutcracker.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def tight_config(tmp_path: Path) -> Path:
    """The shipped grid with a 0.03 BTC base rail: at 28,000 its 5 seeds alone need 0.0357 BTC."""
    text = (EXAMPLES / "grid-btc-usdt.toml").read_text(encoding="utf-8")
    path = tmp_path / "tight.toml"
    path.write_text(text.replace('max_base = "0.15"', 'max_base = "0.03"'), encoding="utf-8")
    return path


def candles_at(tmp_path: Path, price: str, count: int = 300) -> Path:
    rows = [f"{1_699_999_980_000 + i * 60_000},{price},{price},{price},{price},1" for i in range(count)]
    path = tmp_path / "BTC-USDT.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_config_check_with_data_warns_when_max_base_cuts_the_ladder(tmp_path: Path) -> None:
    config, data = tight_config(tmp_path), candles_at(tmp_path, "28000")
    result = runner.invoke(app, ["config", "check", str(config), "--data", str(data)])
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "only 0 of 5 levels (after 4 of 5 seeds)" in warnings[0]
    assert "rails.max_base" in warnings[0]


def test_config_check_with_data_is_silent_when_the_ladder_fits(tmp_path: Path) -> None:
    data = candles_at(tmp_path, "28000")
    result = runner.invoke(
        app, ["config", "check", str(EXAMPLES / "grid-btc-usdt.toml"), "--data", str(data)]
    )
    assert result.exit_code == 0
    assert "warning" not in result.stderr


def test_config_check_with_a_missing_data_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["config", "check", str(EXAMPLES / "grid-btc-usdt.toml"), "--data", str(tmp_path / "no.csv")]
    )
    assert result.exit_code == 2
    assert "no.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_backtest_warns_at_start_when_max_base_cuts_the_ladder(tmp_path: Path) -> None:
    config, data = tight_config(tmp_path), candles_at(tmp_path, "28000")
    args = ["backtest", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--no-report"])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("warning:") for line in result.stderr.splitlines()) == 1
