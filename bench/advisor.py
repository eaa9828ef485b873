"""Benchmark the advisor: trials per second, model training time, and its cost to a running engine.

Run: ``.venv/bin/python bench/advisor.py [--days 30] [--symbols 100] [--rounds 30]``.

1. Trials per second on ``--days`` of real 1m BTC/USDT candles (``../shared/data``), one core: each
   trial a full backtest of the grid example through ``advisor.search.evaluate`` (target >= 20/s).
2. The excursion model's training time (targets and fit) on the same candles and on one year of
   seeded synthetic 1m candles (the shared data holds no year of 1m candles; target <= 60 s).
3. The engine's symbol-pulses/s (``bench/engine.py``'s "a task per symbol, journal calls inline"
   row, ``--symbols``, ``--rounds``) alone and with a niced (``nice -n 19``) advisor search running
   beside it in its own process (target: <= 10 % loss), ``--repeats`` times each, alternating, so
   both see the same machine; the medians are compared (a shared machine is noisy: every sample
   is printed).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
CONFIG = ROOT / "examples" / "grid-btc-usdt.toml"
TUNE = (
    '\n[advisor]\nfolds = 3\n\n[advisor.tune]\n"profit.min_net_bps" = ["5", "30"]\n"grid.levels" = [2, 6]\n'
)


def trials_per_second(days: int) -> tuple[float, int, float, float]:
    from decimal import Decimal

    from nutcracker.advisor.excursion import excursions, fit_model
    from nutcracker.advisor.search import evaluate
    from nutcracker.config import load_config
    from nutcracker.marketdata.candles import load_candles_csv
    from nutcracker.marketdata.synthetic import synthetic_candles

    config = load_config(CONFIG)
    candles = load_candles_csv(DATA, config.symbol[0].market.precision, "BTC/USDT").slice(0, days * 1440)
    started, n = time.perf_counter(), 0
    for levels in range(2, 7):
        for bps in range(5, 20, 5):  # a spread of 40 bps earns at most ~19 bps net
            evaluate(config, "BTC/USDT", {"grid.levels": levels, "profit.min_net_bps": bps}, candles)
            n += 1
    rate = n / (time.perf_counter() - started)
    keltner = config.to_params()[0].keltner
    t = time.perf_counter()
    fit_model(excursions(candles, keltner), seed=0)
    month_s = time.perf_counter() - t
    year = synthetic_candles(
        1, 365 * 1440, Decimal(60000), config.symbol[0].market.precision, symbol="BTC/USDT"
    )
    t = time.perf_counter()
    fit_model(excursions(year, keltner), seed=0)
    return rate, len(candles), month_s, time.perf_counter() - t


def engine_rate(symbols: int, rounds: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "engine.py"),
            "--symbols",
            str(symbols),
            "--rounds",
            str(rounds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^a task per symbol, journal calls inline.*?\s(\d+)\s+>=", out, re.M)
    if match is None:
        raise SystemExit(f"bench/engine.py printed no throughput row:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rate, candles, month_s, year_s = trials_per_second(args.days)
    print(f"{'measure':58} {'value':>10} {'target':>12} {'ratio':>7}")
    print(f"{f'trials/s, {candles} 1m candles, one core':58} {rate:10.1f} {'>= 20':>12} {rate / 20:7.2f}")
    label = f"excursion model (targets + fit), {candles} real candles (s)"
    print(f"{label:58} {month_s:10.1f}")
    label = "excursion model (targets + fit), one synthetic year (s)"
    print(f"{label:58} {year_s:10.1f} {'<= 60':>12} {60 / year_s:7.2f}")
    alone: list[float] = []
    beside: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "grid.toml"
        config.write_text(CONFIG.read_text() + TUNE)
        advise = [
            "nice",
            "-n",
            "19",
            sys.executable,
            "-m",
            "nutcracker.cli",
            "advise",
            "--config",
            str(config),
        ]
        advise += ["--data", f"BTC/USDT={DATA}", "--trials", "100000"]
        for _ in range(args.repeats):
            alone.append(engine_rate(args.symbols, args.rounds))
            search = subprocess.Popen(
                advise, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
            )
            try:
                time.sleep(3)  # past its imports: searching
                beside.append(engine_rate(args.symbols, args.rounds))
            finally:
                search.kill()
                search.wait()
    a, b = statistics.median(alone), statistics.median(beside)
    print(f"{'engine symbol-pulses/s alone (median)':58} {a:10.0f}   samples {[round(x) for x in alone]}")
    label = "engine symbol-pulses/s, niced search beside (median)"
    print(f"{label:58} {b:10.0f}   samples {[round(x) for x in beside]}")
    print(f"{'loss (%)':58} {(1 - b / a) * 100:10.1f} {'<= 10':>12} {b / a:7.2f}")


if __name__ == "__main__":
    main()
