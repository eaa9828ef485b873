"""Benchmark the advisor: trials per second, model training time, and its cost to a running engine.

Run: ``.venv/bin/python bench/advisor.py [--days 30] [--symbols 100] [--rounds 30]`` (the shared-study
rows alone: ``--shared-only [--storage redis]``).

1. Trials per second on ``--days`` of real 1m BTC/USDT candles (``../shared/data``), one core: each
   trial a full backtest of the grid example through ``advisor.search.evaluate`` (target >= 20/s).
2. The excursion model's training time (targets and fit) on the same candles and on one year of
   seeded synthetic 1m candles (the shared data holds no year of 1m candles; target <= 60 s).
3. Trials per second of ``nutcracker advise worker`` on one shared study, one process and two
   processes (same trial set, same seed, in the same run), on a local study file or, with
   ``--storage redis``, on a ``redis-server`` the bench starts. A shared-study trial backtests its
   candidate on every window (2 x folds + 1 backtests), so its rate is not item 1's; the two-process
   ratio is the speed-up (at most 2 on 2 cores; wall time includes each process's start).
4. The engine's symbol-pulses/s (``bench/engine.py``'s "a task per symbol, journal calls inline"
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

# the shared-study rows: bounds where every candidate is valid (a refused one costs no backtest)
SHARED_TUNE = (
    '\n[advisor]\nfolds = 3\n\n[advisor.tune]\n"profit.min_net_bps" = ["5", "19"]\n'
    '"grid.spacing_bps" = ["40", "80"]\n"grid.levels" = [2, 6]\n'
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


def shared_rate(days: int, trials: int, workers: int, storage: str, tmp: Path) -> float:
    """Return trials/s of ``workers`` ``advise worker`` processes on one fresh study (wall time)."""
    import gzip

    data = tmp / f"btc-{days}d.csv"
    if not data.exists():
        with gzip.open(DATA, "rt") as f:
            data.write_text("".join(line for _, line in zip(range(days * 1440 + 1), f, strict=False)))
    config = tmp / "grid.toml"
    config.write_text(CONFIG.read_text() + SHARED_TUNE)
    study = f"bench-{workers}-{time.monotonic_ns()}"
    url = storage if storage.startswith("redis://") else str(tmp / f"{study}.log")
    args = [sys.executable, "-m", "nutcracker.cli", "advise", "worker", "--config", str(config)]
    args += ["--data", f"BTC/USDT={data}", "--study", study, "--storage", url, "--trials", str(trials)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    ran = 0
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"advise worker failed:\n{err}")
        match = re.search(r"this worker ran (\d+) trials", out)
        ran += int(match.group(1)) if match else 0
    elapsed = time.perf_counter() - started
    if ran != trials:
        raise SystemExit(f"the workers ran {ran} trials of {trials}")
    return trials / elapsed


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a throw-away ``redis-server`` on a free loopback port; return it and its URL."""
    import shutil
    import socket

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--storage redis: redis-server is not installed (apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return server, f"redis://127.0.0.1:{port}/0"


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
    parser.add_argument("--shared-days", type=int, default=7, help="candles of the shared-study rows")
    parser.add_argument("--shared-trials", type=int, default=120)
    parser.add_argument("--storage", choices=["file", "redis"], default="file", help="the shared study's")
    parser.add_argument("--skip-engine", action="store_true", help="leave out the engine-beside rows")
    parser.add_argument("--shared-only", action="store_true", help="only the shared-study rows")
    args = parser.parse_args()
    print(f"{'measure':58} {'value':>10} {'target':>12} {'ratio':>7}")
    if not args.shared_only:
        rate, candles, month_s, year_s = trials_per_second(args.days)
        print(f"{f'trials/s, {candles} 1m candles, one core':58} {rate:10.1f} {'>= 20':>12} {rate / 20:7.2f}")
        label = f"excursion model (targets + fit), {candles} real candles (s)"
        print(f"{label:58} {month_s:10.1f}")
        label = "excursion model (targets + fit), one synthetic year (s)"
        print(f"{label:58} {year_s:10.1f} {'<= 60':>12} {60 / year_s:7.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_redis(Path(tmp)) if args.storage == "redis" else (None, "file")
        try:
            one = shared_rate(args.shared_days, args.shared_trials, 1, url, Path(tmp))
            two = shared_rate(args.shared_days, args.shared_trials, 2, url, Path(tmp))
        finally:
            if server is not None:
                server.terminate()
                server.wait()
    what = f"{args.shared_days * 1440} candles, {args.storage}"
    print(f"{f'shared-study trials/s, 1 process, {what}':58} {one:10.2f}")
    label = f"shared-study trials/s, 2 processes, {what}"
    print(f"{label:58} {two:10.2f} {'vs 1':>12} {two / one:7.2f}")
    if args.skip_engine or args.shared_only:
        return
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
