"""Benchmark the backtester on 130,708 real BTC/USDT candles with the live decision code.

Run: ``.venv/bin/python bench/backtest.py`` (or ``make bench``). Prints, per example config,
candles per second of the simulation (data loading excluded, reported apart), the pulses it
needed, and the ratio to a bare Python loop that only reads the same candles, measured in the
same run; then the peak memory of a one-year (525,600 one-minute candles) synthetic backtest,
measured in a fresh process. Targets: >= 2,000,000 candles/s, <= 300 MB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nutcracker.backtest.runner import run_backtest
from nutcracker.config import load_config
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance_BTC-USDT_1m.csv.gz"
CONFIGS = ("grid-btc-usdt", "hybrid-btc-usdt", "trailing-grid-btc-usdt", "market-making-btc-usdt")
TARGET_CPS = 2_000_000
TARGET_MB = 300
REPEATS = 5


def bare_loop(candles: CandleArrays) -> float:
    """Return the seconds a Python loop takes to read every candle's low, high and close."""
    started = time.perf_counter()
    low, high, close = candles.low.tolist(), candles.high.tolist(), candles.close.tolist()
    seen = 0
    for i in range(len(close)):
        seen += low[i] + high[i] + close[i]
    return time.perf_counter() - started


def memory_of_one_year(workdir: Path, *, report: bool) -> float:
    """Return the peak MB of a fresh process that backtests one year of 1m candles from a CSV file."""
    csv = workdir / "one-year-btc-usdt-1m.csv.gz"
    config = ROOT / "examples" / "hybrid-btc-usdt.toml"
    make = (
        "import sys; from pathlib import Path\n"
        "from nutcracker.config import load_config\n"
        "from nutcracker.backtest.data import load_data\n"
        "from nutcracker.marketdata.candles import write_candles_csv\n"
        f"config = load_config(Path({str(config)!r}))\n"
        "data = load_data(config, {}, synthetic=525_600, seed=1)\n"
        "market = config.symbols[0].market\n"
        "write_candles_csv(Path(sys.argv[1]), data[market.symbol], market.precision)\n"
    )
    if not csv.exists():
        subprocess.run([sys.executable, "-c", make, str(csv)], check=True)
    run = (
        "import sys; from pathlib import Path\n"
        "from nutcracker.cli import app\n"
        "try:\n"
        f"    app(['backtest', '--config', {str(config)!r}, '--data', sys.argv[1], '--out', sys.argv[2], "
        f"'--{'' if report else 'no-'}report'])\n"
        "except SystemExit:\n"
        "    pass\n"
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child of a large
        # benchmark process would report the parent's peak
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", run, str(csv), str(workdir / "out")],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    started = time.perf_counter()
    configs = {name: load_config(ROOT / "examples" / f"{name}.toml") for name in CONFIGS}
    precision = next(iter(configs.values())).symbols[0].market.precision
    candles = load_candles_csv(DATA, precision)
    load_s = time.perf_counter() - started
    n = len(candles.ts_ms)
    bare = min(bare_loop(candles) for _ in range(REPEATS))
    print(f"data: {DATA.name}, {n:,} candles, loaded in {load_s:.2f} s (not counted below)")
    print(
        f"baseline: bare Python loop reading the candles: {bare * 1000:.1f} ms = {n / bare:,.0f} candles/s\n"
    )
    columns = ("best ms", "candles/s", "x bare loop", "vs target", "pulses", "fills")
    widths = (8, 12, 11, 9, 7, 6)
    print(f"{'config':24} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for name, config in configs.items():
        symbol = config.symbols[0].market.symbol
        run_backtest(config, {symbol: candles.slice(0, 5000)})  # warm the compiled kernels' cache
        best = None
        for _ in range(REPEATS):
            result = run_backtest(config, {symbol: candles})
            best = result if best is None or result.elapsed_s < best.elapsed_s else best
        assert best is not None
        trace = best.traces[symbol]
        cps = n / best.elapsed_s
        print(
            f"{name:24} {best.elapsed_s * 1000:8.1f} {cps:12,.0f} {bare / best.elapsed_s:11.2f} "
            f"{cps / TARGET_CPS:9.2f} {trace.pulses:7,} {len(best.engine.fills):6,}"
        )
    with tempfile.TemporaryDirectory() as workdir:
        for report in (False, True):
            mb = memory_of_one_year(Path(workdir), report=report)
            what = "summary and CSVs, plus the HTML report" if report else "summary and CSVs"
            print(
                f"one year of 1m candles (525,600 from CSV, hybrid, {what}): peak {mb:.0f} MB "
                f"= {mb / TARGET_MB:.2f} of the {TARGET_MB} MB budget"
            )


if __name__ == "__main__":
    main()
