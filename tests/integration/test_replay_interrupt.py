"""Ctrl-C (SIGINT) to ``nutcracker run --mode replay`` writes outputs for what was replayed only."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from nutcracker.core.units import Precision
from nutcracker.marketdata.candles import write_candles_csv
from nutcracker.marketdata.synthetic import synthetic_candles

ROOT = Path(__file__).resolve().parents[2]
GRID = str(ROOT / "examples" / "grid-btc-usdt.toml")
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
ROWS = 6000
PULSES_BEFORE_SIGINT = 120


def test_sigint_mid_replay_ends_candles_buy_and_hold_and_report_where_the_run_ended(tmp_path: Path) -> None:
    data = tmp_path / "binance_BTC-USDT_1m.csv"
    write_candles_csv(data, synthetic_candles(5, ROWS, Decimal(60_000), BTC, symbol="BTC/USDT"), BTC)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-c",
        "from nutcracker.cli import app; app()",
        "run",
        "--config",
        GRID,
        "--data",
        str(data),
        "--speed",
        "200",
        "--journal",
        str(tmp_path / "replay.db"),
        "--out",
        str(out),
        "--headless",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:  # wait until the replay is well under way, then press Ctrl-C
        seen += line.startswith("symbol=BTC/USDT")
        if seen == PULSES_BEFORE_SIGINT:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads((out / "summary.json").read_text())
    section = summary["symbols"]["BTC/USDT"]
    pulses = section["pulses"]
    assert PULSES_BEFORE_SIGINT <= pulses < ROWS // 2  # stopped early, not at the end of the file
    assert summary["candles"] == pulses  # one pulse per replayed candle
    replayed = section["candles"]  # warm-up + the pulsed candles, not the whole file
    assert replayed < ROWS
    with data.open() as f:
        rows = list(csv.DictReader(f))
    budget = Decimal(summary["config"]["symbol"][0]["rails"]["max_quote"])
    first, last = Decimal(rows[0]["close"]), Decimal(rows[replayed - 1]["close"])
    assert Decimal(section["buy_and_hold_equity_quote"]) == (budget / first * last).quantize(Decimal("1e-8"))
    report = (out / "report.html").read_text()  # the chart's time span ends at the last replayed candle
    assert json.dumps(float(rows[replayed - 1]["timestamp"])) in report
    assert json.dumps(float(rows[-1]["timestamp"])) not in report
