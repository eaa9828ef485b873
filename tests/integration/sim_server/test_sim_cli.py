"""``sim-exchange`` on the command line: it starts, serves the real ccxt client, stops on SIGTERM,
and refuses bad input with exit code 2 and a message naming what to fix."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from sim_clients import ALICE, ccxt_binance, http
from typer.testing import CliRunner

from nutcracker.simexchange.accounts import MarketSpec
from nutcracker.simexchange.cli import EXIT_CONFIG, sim_exchange
from nutcracker.simexchange.server import SimServer

ACCOUNTS = """
[[account]]
name = "alice"
api_key = "alice-key"
secret = "alice-secret"
balances = { USDT = 10000, BTC = 0.5 }
permissions = { enableReading = true, enableSpotAndMarginTrading = true, enableWithdrawals = false }

[[market]]
symbol = "BTC/USDT"
min_notional = "10"
maker_fee = "0.00075"
"""

runner = CliRunner()


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(sim_exchange)
    return app


@pytest.fixture
def accounts_file(tmp_path: Path) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(ACCOUNTS)
    return path


def test_the_command_serves_ccxt_and_stops_on_sigterm(btc_csv: Path, accounts_file: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nutcracker.simexchange.cli",
            "--port",
            "0",
            "--data",
            f"BTC/USDT={btc_csv}",
            "--accounts",
            str(accounts_file),
            "--manual",
            "--warmup",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:\d+) symbols=BTC/USDT accounts=1 clock=manual", line)
        assert match, line
        url = match.group(1)
        exchange = ccxt_binance(url, "alice-key", "alice-secret")
        market = exchange.load_markets()["BTC/USDT"]
        assert market["limits"]["cost"]["min"] == 10.0  # from [[market]]
        assert exchange.fetch_balance()["BTC"]["free"] == 0.5
        before = exchange.fetch_time()
        status, answer, _ = http(f"{url}/sim/advance?candles=3", "POST")
        assert (status, answer["time"]) == (200, before + 180_000)
        # 33 closed candles and, as on Binance, the one still forming
        assert len(exchange.fetch_ohlcv("BTC/USDT", "1m", None, 1000)) == 34
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sim-exchange: stopped" in out


def test_a_bad_accounts_file_exits_2_naming_the_field(btc_csv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[account]]\napi_key = "k"\nsecret = "s"\nbalances = { BTC = -1 }\n')
    result = runner.invoke(cli_app(), ["--data", str(btc_csv), "--accounts", str(bad), "--manual"])
    assert result.exit_code == EXIT_CONFIG
    assert "account[0].balances.BTC" in result.stderr
    assert "negative" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--speed", "2", "--manual"], "exclude each other"),
        (["--speed", "0"], "positive number"),
        (["--fault", "boom=1"], "unknown kind 'boom'"),
        (["--fault", "429=0.1@/api/v9/nothing"], "unknown endpoint"),
    ],
)
def test_bad_options_exit_2_with_the_fix(
    btc_csv: Path, accounts_file: Path, extra: list[str], message: str
) -> None:
    result = runner.invoke(cli_app(), ["--data", str(btc_csv), "--accounts", str(accounts_file), *extra])
    assert result.exit_code == EXIT_CONFIG
    assert message in result.stderr


def test_a_data_file_without_a_symbol_in_its_name_needs_one(
    btc_csv: Path, accounts_file: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "candles.csv"
    plain.write_bytes(btc_csv.read_bytes())
    result = runner.invoke(cli_app(), ["--data", str(plain), "--accounts", str(accounts_file), "--manual"])
    assert result.exit_code == EXIT_CONFIG
    assert "BASE/QUOTE=FILE" in result.stderr


def test_the_speed_clock_advances_by_itself(btc_market: MarketSpec) -> None:
    with SimServer({"BTC/USDT": btc_market}, [ALICE], speed=100, manual=False) as server:
        start, started = server.now_ms, time.monotonic()
        time.sleep(0.3)
        moved = (server.now_ms - start) // 60_000
        elapsed = time.monotonic() - started
    assert 10 <= moved <= elapsed * 100 + 1
    with pytest.raises(ValueError, match="manual=False"):
        SimServer({"BTC/USDT": btc_market}, [ALICE], speed=100)


def serve(btc_csv: Path, accounts_file: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``sim-exchange`` in a subprocess; return it and the URL it serves."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nutcracker.simexchange.cli",
            "--port",
            "0",
            "--data",
            f"BTC/USDT={btc_csv}",
            "--accounts",
            str(accounts_file),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"serving (http://127\.0\.0\.1:\d+)", line)
    if match is None:
        process.kill()
        raise AssertionError(line + process.communicate()[1])
    return process, match.group(1)


@pytest.mark.parametrize(("options", "controls"), [((), 403), (("--control",), 200)])
def test_the_command_serves_wall_clock_times_and_controls_only_when_asked(
    btc_csv: Path, accounts_file: Path, options: tuple[str, ...], controls: int
) -> None:
    """Issue 11: by default the market is re-stamped to the wall clock at start and the /sim/
    test controls are off; --control turns them on."""
    process, url = serve(btc_csv, accounts_file, "--speed", "0.5", "--warmup", "30", *options)
    try:
        now = time.time_ns() // 1_000_000
        server_time = http(f"{url}/api/v3/time")[1]["serverTime"]
        assert now - 60_000 <= server_time <= now + 5_000
        assert http(f"{url}/sim/state")[0] == controls
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)


def test_the_command_refuses_bad_rate_limits(btc_csv: Path, accounts_file: Path) -> None:
    result = runner.invoke(
        cli_app(), ["--data", str(btc_csv), "--accounts", str(accounts_file), "--weight-limit", "0"]
    )
    assert result.exit_code == EXIT_CONFIG
    assert "--weight-limit 0: give a whole number between 1 and 1000000000" in result.output
