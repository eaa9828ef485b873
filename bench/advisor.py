"""Benchmark the advisor: trials per second, model training time, and its cost to a running engine.

Run: ``.venv/bin/python bench/advisor.py [--days 30] [--symbols 100] [--rounds 30]``.

1. Trials per second on ``--days`` of real 1m BTC/USDT candles (``../shared/data``), one core: each
   trial a full backtest of the grid example through ``advisor.search.evaluate`` (target >= 20/s).
2. The excursion model's training time on the same candles (the issue's target: <= 60 s on a year).
3. The engine's symbol-pulses/s (``bench/engine.py``'s throughput passes, ``--symbols``, ``--rounds``)
   alone, then with a niced (``nice -n 19``) advisor search running beside it in its own process
   (target: <= 10 % loss). Both runs are in this one command: the ratio is against the same machine.
"""

from __future__ import annotations

import argparse
import os
import re
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


def trials_per_second(days: int) -> tuple[float, int, float]:
    from nutcracker.advisor.excursion import excursions, fit_model
    from nutcracker.advisor.search import evaluate
    from nutcracker.config import load_config
    from nutcracker.marketdata.candles import load_candles_csv

    config = load_config(CONFIG)
    candles = load_candles_csv(DATA, config.symbol[0].market.precision, "BTC/USDT").slice(0, days * 1440)
    started, n = time.perf_counter(), 0
    for levels in range(2, 7):
        for bps in range(5, 20, 5):  # a spread of 40 bps earns at most ~19 bps net
            evaluate(config, "BTC/USDT", {"grid.levels": levels, "profit.min_net_bps": bps}, candles)
            n += 1
    rate = n / (time.perf_counter() - started)
    t = time.perf_counter()
    fit_model(excursions(candles, config.to_params()[0].keltner), seed=0)
    return rate, len(candles), time.perf_counter() - t


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
    args = parser.parse_args()
    rate, candles, train_s = trials_per_second(args.days)
    print(f"{'measure':58} {'value':>10} {'target':>10} {'ratio':>7}")
    print(f"{f'trials/s, {candles} 1m candles, one core':58} {rate:10.1f} {'>= 20':>10} {rate / 20:7.2f}")
    label = f"excursion model training, {candles} candles (s)"
    print(f"{label:58} {train_s:10.1f} {'<= 60':>10} {60 / train_s:7.2f}")
    alone = engine_rate(args.symbols, args.rounds)
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
        beside = subprocess.Popen(
            advise, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
        )
        try:
            time.sleep(3)  # past its imports: searching
            loaded = engine_rate(args.symbols, args.rounds)
        finally:
            beside.kill()
            beside.wait()
    loss = (1 - loaded / alone) * 100
    print(f"{'engine symbol-pulses/s alone':58} {alone:10.0f}")
    label = "engine symbol-pulses/s, niced advisor search beside"
    print(f"{label:58} {loaded:10.0f} {'<= 10 % loss':>10} {loaded / alone:7.2f}")
    print(f"{'loss (%)':58} {loss:10.1f}")


if __name__ == "__main__":
    main()
