"""Write a backtest's results: summary.json, fills.csv, orders.csv, decisions.csv and report.html.

Money and quantities in ``summary.json`` and the CSV files are exact decimal strings (the
independent checker compares them to the unit); ratios and timings are numbers. Equity is the
strategy's own account: the quote rail it was given, plus the cash flow of its fills, plus its
inventory at the close. Buy-and-hold puts the same quote rail into the base at the first close.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nutcracker.backtest.baseline import STATIC_GRID_SPACINGS_PPM, StaticGridResult, run_static_grid
from nutcracker.backtest.report import ReportData, SymbolSeries, write_report
from nutcracker.backtest.runner import BacktestResult, SymbolTrace, market_info
from nutcracker.config import NutcrackerConfig
from nutcracker.core.units import BU_PER_LOT
from nutcracker.explain import explain

F64 = npt.NDArray[np.float64]

FILLS_HEADER = (
    "ts_ms",
    "symbol",
    "side",
    "price",
    "qty",
    "fee_quote",
    "client_order_id",
    "cycle_id",
    "liquidity",
    "fee_base",
    "fee_asset",
    "commission",
)
ORDERS_HEADER = ("ts_ms", "symbol", "event", "side", "price", "qty", "client_order_id", "reason")
DECISIONS_HEADER = ("ts_ms", "symbol", "state", "explanation")


@dataclass(frozen=True, slots=True)
class Curves:
    """A symbol's per-candle curves, expanded from the step functions its pulses left."""

    equity: F64
    buy_and_hold: F64
    inventory: F64
    committed: F64
    best_buy: F64
    deepest_buy: F64
    best_sell: F64
    static_grids: tuple[StaticGridResult, ...]  # the yardsticks, one per spacing


def _steps(trace: SymbolTrace, values: list[int], n: int, before: float = 0.0) -> F64:
    """Return ``values`` (one per pulse) held from each pulse until the next, per candle."""
    out = np.full(n, before, dtype=np.float64)
    if not trace.pulse_index:
        return out
    index = np.asarray(trace.pulse_index)
    ends = np.append(index[1:], n)
    out[index[0] :] = np.repeat(np.asarray(values, dtype=np.float64), ends - index)
    return out


def curves(trace: SymbolTrace) -> Curves:
    """Return the per-candle equity, buy-and-hold, inventory, committed quote and resting prices."""
    params = trace.params
    precision = params.market.precision
    n = len(trace.candles.ts_ms)
    tick, lot, unit = float(precision.tick), float(precision.lot), float(precision.quote_unit)
    close = trace.candles.close.astype(np.float64) * tick
    budget = float(precision.qu_to_quote(params.rails.max_quote_qu))
    held = _steps(trace, trace.held_lots, n) * lot
    equity = budget + _steps(trace, trace.cash_qu, n) * unit + held * close
    buy_and_hold = budget / close[0] * close if n else close
    quote_budget = precision.qu_to_quote(params.rails.max_quote_qu)
    info = market_info(params)
    grids = tuple(run_static_grid(info, trace.candles, quote_budget, s) for s in STATIC_GRID_SPACINGS_PPM)

    def prices(values: list[int]) -> F64:
        out = _steps(trace, values, n) * tick
        out[out == 0] = np.nan
        return out

    return Curves(
        equity,
        buy_and_hold,
        held,
        _steps(trace, trace.committed_qu, n) * unit,
        prices(trace.max_buy),
        prices(trace.min_buy),
        prices(trace.min_sell),
        grids,
    )


def _max_drawdown_pct(equity: F64 | npt.NDArray[np.float32]) -> float:
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max((peak - equity) / peak) * 100)


def _return_pct(final: Decimal, budget: Decimal) -> float:
    return round(float((final - budget) / budget * 100), 4) if budget else 0.0


def baselines(c: Curves, budget: Decimal, buy_and_hold: Decimal) -> dict[str, Any]:
    """Return the yardsticks of one symbol: buy-and-hold and the static grids, same budget and fees."""
    out: dict[str, Any] = {
        "buy_and_hold": {
            "final_equity_quote": _plain(buy_and_hold),
            "return_pct": _return_pct(buy_and_hold, budget),
            "max_drawdown_pct": round(_max_drawdown_pct(c.buy_and_hold), 4),
        }
    }
    for grid in c.static_grids:
        out[f"static_grid_{grid.spacing_ppm / 10_000:g}pct"] = {
            "levels": grid.levels,
            "shape": grid.shape.value,
            "lower": _plain(grid.lower),
            "upper": _plain(grid.upper),
            "fills": grid.fills,
            "cycles": grid.cycles,
            "fees_quote": _plain(grid.fees_quote.quantize(Decimal("1e-8"))),
            "final_equity_quote": _plain(grid.final_equity_quote.quantize(Decimal("1e-8"))),
            "return_pct": _return_pct(grid.final_equity_quote, budget),
            "max_drawdown_pct": round(_max_drawdown_pct(grid.equity), 4),
        }
    return out


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def symbol_summary(result: BacktestResult, trace: SymbolTrace, c: Curves) -> dict[str, Any]:
    """Return one symbol's summary section."""
    params = trace.params
    precision = params.market.precision
    symbol = params.market.symbol
    events = [e for e in result.engine.events if e.symbol == symbol]
    n = len(trace.candles.ts_ms)
    last_close = precision.ticks_to_price(int(trace.candles.close[-1])) if n else Decimal(0)
    budget = precision.qu_to_quote(params.rails.max_quote_qu)
    held = precision.lots_to_qty(trace.held_lots[-1] if trace.held_lots else 0)
    cash = precision.qu_to_quote(trace.cash_qu[-1] if trace.cash_qu else 0)
    first_close = precision.ticks_to_price(int(trace.candles.close[0])) if n else Decimal(1)
    final_equity = budget + cash + held * last_close
    buy_and_hold = (budget / first_close * last_close).quantize(Decimal("1e-8"))
    return {
        "candles": n,
        "pulses": trace.pulses,
        "fills": sum(1 for f in result.engine.fills if f.trade_id in trace.bookings),
        "orders_placed": sum(1 for e in events if e.event == "placed"),
        "post_only_rejects": sum(1 for e in events if e.event == "rejected" and "immediately" in e.reason),
        "cycles_closed": trace.cycles_closed,
        "realized_pnl_quote": _plain(precision.qu_to_quote(trace.realized_pnl_qu)),
        "fees_quote": _plain(precision.qu_to_quote(trace.fees_qu)),
        "max_inventory_base": _plain(precision.bu_to_base(trace.peak_held_bu)),
        "max_committed_quote": _plain(precision.qu_to_quote(max(trace.committed_qu, default=0))),
        "rail_violations": trace.rail_violations,
        "final_equity_quote": _plain(final_equity),
        "return_pct": _return_pct(final_equity, budget),
        "buy_and_hold_equity_quote": _plain(buy_and_hold),
        "max_drawdown_pct": round(_max_drawdown_pct(c.equity), 4),
        "open_orders_at_end": len(result.engine.open_orders(symbol)),
        "inventory_at_end_base": _plain(held),
        # base the fills left that no exit sells yet: below whole lots, left by commissions taken
        # in base; it joins a later lot once it adds up to one
        "dust_at_end_base": _plain(
            precision.bu_to_base(
                trace.inventory_bu - BU_PER_LOT * (trace.held_lots[-1] if trace.held_lots else 0)
            )
        ),
        **time_shares(trace, c, [e.event for e in events]),
        "baselines": baselines(c, budget, buy_and_hold),
    }


AT_RAIL = 0.95  # a rail counts as reached at this share of it: the next order would not fit


def time_shares(trace: SymbolTrace, c: Curves, events: list[str]) -> dict[str, Any]:
    """Return what a trader reads first: the dates, how often it traded, held, sat loaded or at a rail.

    *In market*: inventory held. *Loaded*: inventory held and no buy resting (the ladder is not
    working). *At a rail*: the inventory at >= 95 % of ``max_base`` or the committed quote at >= 95 %
    of ``max_quote``. *Two-sided*: a buy and a sell both resting, as a share of the candles on which
    any order rests (a market maker's quoting time). Other shares are of all the candles.
    """
    candles, params = trace.candles, trace.params
    n = len(candles.ts_ms)
    if n == 0:
        return {}
    precision = params.market.precision
    days = n * candles.interval_ms / 86_400_000
    max_base = float(precision.lots_to_qty(params.rails.max_base_lots))
    max_quote = float(precision.qu_to_quote(params.rails.max_quote_qu))
    held = c.inventory > 0
    at_rail = (c.inventory >= AT_RAIL * max_base) | (c.committed >= AT_RAIL * max_quote)
    buying, selling = ~np.isnan(c.best_buy), ~np.isnan(c.best_sell)
    quoting = int((buying | selling).sum())
    fills = sum(1 for e in events if e in ("filled", "partially_filled"))
    cancels = events.count("cancelled")
    return {
        "first_candle": _iso(int(candles.ts_ms[0])),
        "last_candle": _iso(int(candles.ts_ms[-1])),
        "days": round(days, 3),
        "cycles_per_day": round(trace.cycles_closed / days, 4) if days else 0.0,
        "cancels_per_fill": round(cancels / fills, 4) if fills else None,
        "in_market_pct": round(float(held.mean()) * 100, 2),
        "loaded_pct": round(float((held & np.isnan(c.best_buy)).mean()) * 100, 2),
        "at_rail_pct": round(float(at_rail.mean()) * 100, 2),
        "two_sided_pct": round(float((buying & selling).sum()) / quoting * 100, 2) if quoting else 0.0,
    }


def summary(
    result: BacktestResult, config: NutcrackerConfig, all_curves: dict[str, Curves]
) -> dict[str, Any]:
    """Return summary.json: the totals, each symbol's section, and the effective config."""
    sections = {s: symbol_summary(result, t, all_curves[s]) for s, t in result.traces.items()}
    candles = result.candles
    out: dict[str, Any] = {
        "candles": candles,
        "elapsed_s": round(result.elapsed_s, 6),
        "candles_per_s": round(candles / result.elapsed_s) if result.elapsed_s > 0 else None,
        "pulses": sum(s["pulses"] for s in sections.values()),
        "fills": sum(s["fills"] for s in sections.values()),
        "orders_placed": sum(s["orders_placed"] for s in sections.values()),
        "post_only_rejects": sum(s["post_only_rejects"] for s in sections.values()),
        "cycles_closed": sum(s["cycles_closed"] for s in sections.values()),
        "rail_violations": sum(s["rail_violations"] for s in sections.values()),
    }
    for key in ("realized_pnl_quote", "fees_quote", "final_equity_quote", "buy_and_hold_equity_quote"):
        quotes = {result.traces[s].params.market.quote for s in sections}
        if len(quotes) == 1:  # totals only add up within one quote asset
            out[key] = _plain(sum((Decimal(s[key]) for s in sections.values()), Decimal(0)))
    if len(sections) == 1:
        only = next(iter(sections.values()))
        for key in ("max_inventory_base", "max_committed_quote", "max_drawdown_pct"):
            out[key] = only[key]
    else:
        out["max_drawdown_pct"] = max(s["max_drawdown_pct"] for s in sections.values())
    out["symbols"] = sections
    out["starting_balances"] = {asset: _plain(v) for asset, v in result.starting_balances.items()}
    out["config"] = json.loads(config.model_dump_json())
    return out


def decision_rows(result: BacktestResult) -> list[tuple[int, str, str, str]]:
    """Return (pulse ts, symbol, state, explanation) wherever a symbol's reason changed, in time order.

    The explanation is in the user's units (``nutcracker.explain``); a row is written when the state
    or its reason changes, not when the market merely moves.
    """
    rows: list[tuple[int, str, str, str]] = []
    for symbol, trace in result.traces.items():
        c, last = trace.candles, None
        for i, reasons, held, committed, orders in trace.moments:
            if i >= len(c.ts_ms):
                break  # an interrupted replay's outputs end at the last candle replayed
            shown = explain(
                trace.params,
                held_lots=held,
                committed_qu=committed,
                close=int(c.close[i]),
                open_orders=orders,
                reasons=reasons,
            )
            if shown.key != last:
                last = shown.key
                rows.append((int(c.ts_ms[i]) + c.interval_ms - 1, symbol, shown.state, shown.text))
    rows.sort(key=lambda row: row[0])  # stable: symbols keep their config order within a pulse
    return rows


def write_csvs(result: BacktestResult, out_dir: Path) -> None:
    """Write fills.csv, orders.csv and decisions.csv: deterministic, exact decimal strings."""
    precisions = {s: t.params.market.precision for s, t in result.traces.items()}
    cycles = {trade: cycle for t in result.traces.values() for trade, cycle in t.bookings.items()}
    with (out_dir / "fills.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(FILLS_HEADER)
        for fill in result.engine.fills:
            symbol = (
                next(s for s, t in result.traces.items() if fill.trade_id in t.bookings)
                if len(result.traces) > 1
                else next(iter(result.traces))
            )
            p = precisions[symbol]
            writer.writerow(
                (
                    fill.ts_ms,
                    symbol,
                    fill.side.value,
                    _plain(p.ticks_to_price(fill.price)),
                    _plain(p.lots_to_qty(fill.qty)),
                    _plain(p.qu_to_quote(fill.fee)),
                    fill.client_order_id,
                    cycles.get(fill.trade_id, ""),
                    "maker",
                    _plain(p.bu_to_base(fill.fee_base)),
                    fill.fee_asset,
                    fill.commission,
                )
            )
    with (out_dir / "orders.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ORDERS_HEADER)
        for e in result.engine.events:
            p = precisions[e.symbol]
            writer.writerow(
                (
                    e.ts_ms,
                    e.symbol,
                    e.event,
                    e.side.value,
                    _plain(p.ticks_to_price(e.price)),
                    _plain(p.lots_to_qty(e.qty)),
                    e.client_order_id,
                    e.reason,
                )
            )
    with (out_dir / "decisions.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(DECISIONS_HEADER)
        writer.writerows(decision_rows(result))


def report_data(
    result: BacktestResult, summary_: dict[str, Any], all_curves: dict[str, Curves], title: str
) -> ReportData:
    series = []
    decided: dict[str, list[tuple[int, str, str]]] = {symbol: [] for symbol in result.traces}
    for ts, symbol, state, text in decision_rows(result):
        decided[symbol].append((ts, state, text))
    for symbol, trace in result.traces.items():
        c, tick = all_curves[symbol], float(trace.params.market.precision.tick)
        fills = [f for f in result.engine.fills if f.trade_id in trace.bookings]
        s = trace.bands
        series.append(
            SymbolSeries(
                symbol=symbol,
                interval_ms=trace.candles.interval_ms,
                ts_ms=trace.candles.ts_ms,
                close=trace.candles.close,  # in ticks, as the bands: scaled after downsampling
                high=trace.candles.high,
                low=trace.candles.low,
                keltner_mid=s.ema,
                keltner_upper=s.upper,
                keltner_lower=s.lower,
                best_buy=c.best_buy,
                deepest_buy=c.deepest_buy,
                best_sell=c.best_sell,
                equity_quote=c.equity,
                buy_and_hold_quote=c.buy_and_hold,
                baselines=tuple((g.label, g.equity) for g in c.static_grids),
                inventory_base=c.inventory,
                committed_quote=c.committed,
                max_base=float(trace.params.market.precision.lots_to_qty(trace.params.rails.max_base_lots)),
                max_quote=float(trace.params.market.precision.qu_to_quote(trace.params.rails.max_quote_qu)),
                fill_ts_ms=np.asarray([f.ts_ms for f in fills], dtype=np.int64),
                fill_is_buy=np.asarray([f.side.value == "buy" for f in fills], dtype=np.bool_),
                fill_price=np.asarray([f.price * tick for f in fills], dtype=np.float64),
                cycle_pnl_quote=np.asarray(trace.cycle_pnl_qu, dtype=np.float64)
                * float(trace.params.market.precision.quote_unit),
                tick=tick,
                decisions=tuple(decided[symbol]),
            )
        )
    return ReportData(title, summary_, tuple(series))


def write_outputs(
    result: BacktestResult,
    config: NutcrackerConfig,
    out_dir: Path,
    *,
    report: bool = True,
    title: str = "Nutcracker backtest",
) -> dict[str, Any]:
    """Write every output file into ``out_dir`` and return the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    all_curves = {s: curves(t) for s, t in result.traces.items()}
    summary_ = summary(result, config, all_curves)
    (out_dir / "summary.json").write_text(json.dumps(summary_, indent=2) + "\n")
    write_csvs(result, out_dir)
    if report:
        write_report(out_dir / "report.html", report_data(result, summary_, all_curves, title))
    return summary_
