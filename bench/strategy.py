"""Benchmark the strategy's value: every example on every 1m file, against static grids and holding.

Run: ``.venv/bin/python bench/strategy.py [--examples grid,hybrid] [--config FILE ...] [--files PATTERN]
[--windows N]`` (``$NUTCRACKER_DATA_DIR`` names the data directory when it is not ``../shared/data``).
``--config`` benches your own one-symbol configs the same way (alone, or beside ``--examples``): a
variant of an example is judged on the same windows and yardsticks before it trades.

Each example (``examples/*.toml`` but the multi-symbol one) is re-aimed at each file's market: its
symbol, tick, lot and minimum notional come from the file (``sim_accounts.load_market``); money
stays in the example's quote units, scaled by ``QUOTE_IN_USDT`` when the file's quote asset is not a
dollar (ETH/BTC: 1 BTC taken as 60,000 USDT); ``max_base`` becomes twice the budget's worth of base
at the window's FIRST close, and a market maker's inventory target a quarter of it. Nothing is read
from the future of the window.

Files are cut into windows of ``WINDOW_DAYS`` (the last one kept if at least half as long): a month
is what users judge a bot on. A window is a *crash window* when the close fell more than
``CRASH_DRAWDOWN_PCT`` below its highest close of the previous 24 hours at some point in it.

Per run it prints the strategy's return on ``max_quote``, its max drawdown, cycles, cancels per fill,
the share of candles it sat *loaded* (inventory held, no buy resting), the share of its quoting
candles with both sides resting, the best of the three static
grids (0.5, 1 and 2 %, see ``backtest/baseline.py``) and buy-and-hold, all on the same matching
engine and fees.

Targets (issue "Strategy value"): the grid and hybrid examples beat the best static grid on >= 70 %
of the windows outside crashes; cancels per fill <= 1.5 (median per example); market making has a
buy and a sell resting on >= 50 % of the candles it quotes on ("2-side"); zero rail violations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from nutcracker.backtest.output import curves, symbol_summary
from nutcracker.backtest.runner import run_backtest
from nutcracker.config import NutcrackerConfig, load_config, parse_config
from nutcracker.errors import ConfigError, DataError
from nutcracker.marketdata.candles import CandleArrays
from nutcracker.simexchange.accounts import MarketSpec, load_market

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; a git worktree (../wt/NAME) names the set in NUTCRACKER_DATA_DIR
DATA = Path(os.environ.get("NUTCRACKER_DATA_DIR") or ROOT.parent / "shared" / "data")
QUOTE_IN_USDT = {"USDT": Decimal(1), "USDC": Decimal(1), "BTC": Decimal(60_000), "ETH": Decimal(3_000)}
CRASH_DRAWDOWN_PCT = 10.0
WINDOW_DAYS = 30
DAY_MS = 86_400_000
TARGET_WIN_SHARE = 0.70
TARGET_CANCELS_PER_FILL = 1.5
TARGET_TWO_SIDED = 0.50
MONEY_FIELDS = {"rails": ("max_quote", "reserve_quote"), "grid": ("order_quote",)}


@dataclass(frozen=True, slots=True)
class Row:
    example: str
    file: str
    crash: bool
    return_pct: float
    drawdown_pct: float
    cycles: int
    cancels_per_fill: float
    loaded_share: float
    two_sided_share: float
    best_grid: str
    best_grid_pct: float
    hold_pct: float
    rail_violations: int

    @property
    def beats_grid(self) -> bool:
        return self.return_pct > self.best_grid_pct


def retarget(example: Path, spec: MarketSpec, first_close: int, out_dir: Path) -> NutcrackerConfig:
    """Return the example re-aimed at the file's market, sized at the window's first close."""
    info = spec.info
    config = load_config(example)
    first = first_close * info.tick_size
    data = json.loads(config.model_dump_json())
    section = data["symbol"][0]
    scale = 1 / QUOTE_IN_USDT.get(info.quote, Decimal(1))
    for name, fields in MONEY_FIELDS.items():
        for field in fields:
            if section.get(name, {}).get(field) is not None:
                section[name][field] = str((Decimal(section[name][field]) * scale).quantize(Decimal("1e-8")))
    budget = Decimal(section["rails"]["max_quote"])
    lot = info.lot_size
    while lot > Decimal("1e-8") and budget / first / lot < 1000:  # a derived lot too coarse (ETH/BTC)
        lot /= 10
    min_notional = info.min_notional if info.min_notional > 0 else lot * first * 2
    section["market"].update(
        symbol=info.symbol,
        tick_size=str(info.tick_size),
        lot_size=str(lot),
        min_notional=str(min_notional.quantize(Decimal("1e-8"))),
    )
    max_base = (budget / first * 2).quantize(lot)
    section["rails"]["max_base"] = str(max_base)
    if "market_making" in section:
        section["market_making"]["inventory_target"] = str((max_base / 4).quantize(lot))
    retargeted = parse_config(data, source=f"{example.name} re-aimed at {info.symbol} from {first}")
    path = out_dir / f"{example.stem}-{info.symbol.replace('/', '-')}.toml"
    path.write_text(retargeted.to_toml())
    return load_config(path)


def one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines())


def config_problem(path: Path) -> str | None:
    """Return, on one line, why ``path`` cannot be benched (None when it can): a config the engine
    refuses, or one that names more or fewer than one symbol (each run re-aims one symbol)."""
    try:
        config = load_config(path)
    except ConfigError as e:
        return one_line(e)
    if len(config.symbols) != 1:
        count = len(config.symbols)
        return f"{path}: it names {count} symbols; the bench re-aims one: keep one [[symbol]] table"
    return None


def windows(candles: CandleArrays) -> list[tuple[int, int]]:
    """Return ``[start, stop)`` candle ranges of ``WINDOW_DAYS`` each; a short tail joins if long enough."""
    ts = candles.ts_ms
    out: list[tuple[int, int]] = []
    start = 0
    while start < len(ts):
        stop = int(np.searchsorted(ts, ts[start] + WINDOW_DAYS * DAY_MS))
        if stop - start < (WINDOW_DAYS * DAY_MS // candles.interval_ms) // 2:
            break
        out.append((start, stop))
        start = stop
    return out


def is_crash(candles: CandleArrays) -> bool:
    """Return whether the close ever fell more than ``CRASH_DRAWDOWN_PCT`` below its 24 h high."""
    day = DAY_MS // candles.interval_ms
    close = candles.close.astype(np.float64)
    if len(close) <= day:
        return False
    peak = np.lib.stride_tricks.sliding_window_view(close[:-1], day).max(axis=1)
    return bool(((close[day:] / peak - 1) * 100).min() < -CRASH_DRAWDOWN_PCT)


def run_one(example: Path, spec: MarketSpec, label: str, candles: CandleArrays, workdir: Path) -> Row:
    config = retarget(example, spec, int(candles.close[0]), workdir)
    symbol = spec.info.symbol
    crash = is_crash(candles)
    result = run_backtest(config, {symbol: candles})
    trace = result.traces[symbol]
    c = curves(trace)
    s = symbol_summary(result, trace, c)
    grids = {k: v for k, v in s["baselines"].items() if k.startswith("static_grid")}
    best = max(grids, key=lambda k: grids[k]["return_pct"])
    return Row(
        example.stem,
        label,
        crash,
        s["return_pct"],
        s["max_drawdown_pct"],
        s["cycles_closed"],
        s["cancels_per_fill"] or 0.0,
        s["loaded_pct"] / 100,
        s["two_sided_pct"] / 100,
        best.removeprefix("static_grid_"),
        grids[best]["return_pct"],
        s["baselines"]["buy_and_hold"]["return_pct"],
        s["rail_violations"],
    )


def bench_rows(files: list[Path], examples: list[Path], n_windows: int | None) -> list[Row]:
    """Run every example on every window of every file, printing each run's row as it ends.

    Raises:
        DataError, ConfigError: a data file it cannot read (your own: a name or a row), or a config
            valid as written but not at a file's price or lot.
    """
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for data_file in files:
            spec = load_market(data_file)
            cuts = windows(spec.candles)[:n_windows]
            for example, (start, stop) in ((e, w) for w in cuts for e in examples):
                day = time.strftime("%Y-%m-%d", time.gmtime(int(spec.candles.ts_ms[start]) / 1000))
                label = f"{spec.info.symbol} {day} +{(stop - start) * spec.candles.interval_ms // DAY_MS}d"
                row = run_one(example, spec, label, spec.candles.slice(start, stop), Path(tmp))
                rows.append(row)
                print(
                    f"{row.example:<28} {row.file:<26} {'yes' if row.crash else '':>5} "
                    f"{row.return_pct:>7.2f} {row.drawdown_pct:>6.2f} {row.cycles:>5} "
                    f"{row.cancels_per_fill:>6.2f} {row.loaded_share:>6.0%} {row.two_sided_share:>6.0%} "
                    f"{row.best_grid:>9} "
                    f"{row.best_grid_pct:>7.2f} {row.hold_pct:>7.2f} {'yes' if row.beats_grid else 'no':>3}",
                    flush=True,
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", help="comma-separated example stems (default: every example)")
    parser.add_argument(
        "--files", default="*_1m*.csv.gz", help="glob of data files in ../shared/data ($NUTCRACKER_DATA_DIR)"
    )
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a one-symbol config of your own to bench (repeat for more; alone unless --examples too)",
    )
    parser.add_argument("--windows", type=int, help="use only the first N windows of each file")
    args = parser.parse_args()
    if args.windows is not None and args.windows < 1:
        parser.error("--windows must be at least 1")
    examples = sorted(p for p in (ROOT / "examples").glob("*.toml") if p.stem != "multi-symbol")
    if args.examples:
        wanted = {name.strip() for name in args.examples.split(",")}
        examples = [p for p in examples if p.stem in wanted or p.stem.rsplit("-", 2)[0] in wanted]
    elif args.config:
        examples = []
    for path in args.config:
        problem = config_problem(path)
        if problem:
            parser.error(f"--config {problem}")
    examples += args.config
    if len({p.stem for p in examples}) < len(examples):
        parser.error("--config: two configs share a file name; the table names each run by it")
    files = sorted(DATA.glob(args.files))
    if not examples or not files:
        print("no example or no data file matched", file=sys.stderr)
        return 2
    started = time.perf_counter()
    header = (
        f"{'example':<28} {'window':<26} {'crash':>5} {'ret %':>7} {'dd %':>6} {'cyc':>5} "
        f"{'c/fill':>6} {'loaded':>6} {'2-side':>6} {'best grid':>9} {'grid %':>7} {'hold %':>7} {'win':>3}"
    )
    print(header)
    print("-" * len(header))
    try:
        rows = bench_rows(files, examples, args.windows)
    except (ConfigError, DataError) as e:
        print(f"{Path(sys.argv[0]).name}: error: {one_line(e)}", file=sys.stderr)
        return 2
    print()
    print(
        f"{'example':<28} {'wins (calm)':>11} {'share':>6} {'crash: ret-grid':>15} {'c/fill med':>10} "
        f"{'loaded med':>10} {'2-side med':>10} {'rails':>5}"
    )
    for example in examples:
        mine = [r for r in rows if r.example == example.stem]
        calm = [r for r in mine if not r.crash]
        crash = [r for r in mine if r.crash]
        wins = sum(r.beats_grid for r in calm)
        share = wins / len(calm) if calm else 0.0
        crash_gap = statistics.median(r.return_pct - r.best_grid_pct for r in crash) if crash else 0.0
        print(
            f"{example.stem:<28} {f'{wins}/{len(calm)}':>11} {share:>6.0%} {crash_gap:>15.2f} "
            f"{statistics.median(r.cancels_per_fill for r in mine):>10.2f} "
            f"{statistics.median(r.loaded_share for r in mine):>10.0%} "
            f"{statistics.median(r.two_sided_share for r in mine):>10.0%} "
            f"{sum(r.rail_violations for r in mine):>5}"
        )
    print(
        f"\ntargets: wins >= {TARGET_WIN_SHARE:.0%} of calm files (grid, hybrid), cancels per fill <= "
        f"{TARGET_CANCELS_PER_FILL}, market making two-sided >= {TARGET_TWO_SIDED:.0%} of its quoting time, "
        f"rails 0; crash window: |24h drawdown| > {CRASH_DRAWDOWN_PCT} %. "
        f"{len(rows)} runs in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
