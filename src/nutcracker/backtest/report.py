"""The backtest's HTML report: one self-contained page of plotly charts and the summary table.

Per symbol, four charts (each a ``<section class="nc-chart">`` with a stable id):

- ``price-{i}``: the candles' high/low range and close, the Keltner bands, the resting grid (the
  highest and lowest resting buy, the lowest resting sell) and the fills;
- ``equity-{i}``: the strategy's equity against buying and holding and the static grids, in quote;
- ``inventory-{i}``: the inventory (base) and the committed quote against their rails;
- ``cycles-{i}``: a histogram of the closed cycles' net PnL.

The page embeds plotly.js inline (no CDN: it opens offline) and forbids every network access with
a Content-Security-Policy. Long series are downsampled before they are written: a series over a
regular time grid keeps at most ``max_points`` points per line (min/max per time bucket, so spikes
and wicks survive), laid out with ``x0``/``dx`` instead of an x array. The size of the page is thus
bounded whatever the length of the backtest: plotly.js (~4.8 MB) plus ~110 kB per line at the
default 10,000 points.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import plotly.io as pio
from plotly.offline import get_plotlyjs

from nutcracker.backtest.headline import RETURN_LINE, cell, headline

I64: TypeAlias = npt.NDArray[np.int64]
F64: TypeAlias = npt.NDArray[np.float64]
F32: TypeAlias = npt.NDArray[np.float32]  # the yardsticks' equity: a chart needs no more
BoolArr: TypeAlias = npt.NDArray[np.bool_]

DEFAULT_MAX_POINTS: Final = 10_000
"""Points per line at most (a line over a regular grid; fills are capped per side at this count)."""

HISTOGRAM_BINS: Final = 30  # at most; the step is rounded (``nice_bins``)
CHART_KINDS: Final = ("price", "equity", "inventory", "cycles")

_CSP: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)
_BUY_COLOR, _SELL_COLOR = "#1a9850", "#d73027"
# Figures are plain plotly JSON (dicts), not ``plotly.graph_objects``: building those validates
# every property through validator modules imported on first use (about 30 MB on a one-year run).
Trace: TypeAlias = dict[str, Any]
Figure: TypeAlias = dict[str, Any]  # {"data": [Trace, ...], "layout": {...}}

# The look of plotly's "plotly_white" template, inlined (a template name is resolved in Python).
_WHITE: Final = {
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "font": {"color": "#2a3f5f"},
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880"],
}
_AXIS: Final = {
    "gridcolor": "#EBF0F8",
    "linecolor": "#EBF0F8",
    "zerolinecolor": "#EBF0F8",
    "automargin": True,
}

_BAND: Final = {"color": "#7b3294", "width": 1}
_PLOT_CONFIG: Final = {"displaylogo": False, "responsive": True, "scrollZoom": False}
_RENDERED_JS: Final = "document.getElementById('{plot_id}').closest('section').dataset.rendered = '1';"

Reducer: TypeAlias = Literal["minmax", "min", "max"]


@dataclass(frozen=True, slots=True, eq=False)
class SymbolSeries:
    """Everything the report draws for one symbol. Prices in price units, money in quote.

    The candle and Keltner arrays may instead be in ticks with ``tick`` the price of one: they
    are then scaled after downsampling, so a long run never holds float copies of them.

    Per-candle arrays all have the length of ``ts_ms`` (candle open times, epoch ms, increasing,
    on the ``interval_ms`` grid; gaps allowed). NaN means "no value here": the Keltner bands while
    warming up, the grid lines while no order of that kind rests. The fill arrays have one entry
    per fill, ``cycle_pnl_quote`` one per closed cycle.
    """

    symbol: str
    interval_ms: int
    ts_ms: I64
    close: F64 | I64
    high: F64 | I64
    low: F64 | I64
    keltner_mid: F64
    keltner_upper: F64
    keltner_lower: F64
    best_buy: F64  # the highest resting buy price
    deepest_buy: F64  # the lowest resting buy price
    best_sell: F64  # the lowest resting sell price
    equity_quote: F64
    buy_and_hold_quote: F64
    inventory_base: F64
    committed_quote: F64  # cost of the held lots plus the notional of the open buys
    max_base: float  # rails.max_base
    max_quote: float  # rails.max_quote
    fill_ts_ms: I64
    fill_is_buy: BoolArr
    fill_price: F64
    cycle_pnl_quote: F64
    tick: float = 1.0  # the price of one unit of close, high, low and the Keltner bands
    baselines: tuple[tuple[str, F32], ...] = ()  # named equity curves of the yardsticks, per candle
    # (ts_ms, state, explanation) where the reason changed: decisions.csv, on the price chart and listed
    decisions: tuple[tuple[int, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.interval_ms <= 0:
            raise ValueError(f"SymbolSeries({self.symbol}).interval_ms must be > 0, got {self.interval_ms}")
        _same_length(self, _CANDLE_FIELDS, "ts_ms")
        _same_length(self, _FILL_FIELDS, "fill_ts_ms")
        for name, curve in self.baselines:
            if np.ndim(curve) != 1 or len(curve) != len(self.ts_ms):
                raise ValueError(f"SymbolSeries({self.symbol}) baseline {name!r} must be 1-d as ts_ms")
        if np.ndim(self.cycle_pnl_quote) != 1:
            raise ValueError(f"SymbolSeries({self.symbol}).cycle_pnl_quote must be 1-d")
        ts = np.asarray(self.ts_ms)
        if len(ts) > 1 and not np.all(np.diff(ts) > 0):
            raise ValueError(f"SymbolSeries({self.symbol}).ts_ms must be strictly increasing")


_CANDLE_FIELDS: Final = (
    "ts_ms",
    "close",
    "high",
    "low",
    "keltner_mid",
    "keltner_upper",
    "keltner_lower",
    "best_buy",
    "deepest_buy",
    "best_sell",
    "equity_quote",
    "buy_and_hold_quote",
    "inventory_base",
    "committed_quote",
)
_FILL_FIELDS: Final = ("fill_ts_ms", "fill_is_buy", "fill_price")


def _same_length(series: SymbolSeries, names: tuple[str, ...], reference: str) -> None:
    n = len(getattr(series, reference))
    for name in names:
        a = getattr(series, name)
        if np.ndim(a) != 1 or len(a) != n:
            raise ValueError(
                f"SymbolSeries({series.symbol}).{name} must be 1-d of length {n} (as {reference}), "
                f"got shape {np.shape(a)}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class ReportData:
    """The whole report: a title, the run's summary (shown as a table) and the series of each symbol.

    ``summary`` is the content of ``summary.json``: scalar entries become rows of the table, a
    ``symbols`` mapping becomes one column per symbol, and ``config`` is shown as JSON.
    """

    title: str
    summary: Mapping[str, Any]
    symbols: tuple[SymbolSeries, ...] = field(default=())


# --------------------------------------------------------------------------------------------
# downsampling


@dataclass(frozen=True, slots=True, eq=False)
class Regular:
    """A line on a regular x grid: point ``k`` sits at ``x0 + k * dx`` (epoch ms); NaN = gap."""

    x0: float
    dx: float
    y: F64


def downsample(
    ts_ms: I64, values: F64 | F32 | I64, interval_ms: int, max_points: int, how: Reducer = "minmax"
) -> Regular:
    """Return ``values`` on a regular time grid of at most ``max_points`` points.

    While the series spans at most ``max_points`` candle slots, every candle keeps its point
    (missing candles become NaN gaps). Beyond that, the span is cut into equal time buckets of
    whole candles and each bucket gives two points: its minimum and maximum (``minmax``, in the
    order they make the bucket's trend: max first when the bucket falls) or its minimum / maximum
    twice (``min`` / ``max``, for the edges of a range). NaNs are ignored inside a bucket; an empty
    or all-NaN bucket gives NaN. Pure numpy, O(n).
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    ts = np.asarray(ts_ms, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if len(ts) == 0:
        return Regular(0.0, float(interval_ms), np.zeros(0))
    ts0 = int(ts[0])
    slot = (ts - ts0) // interval_ms
    n_slots = int(slot[-1]) + 1
    if n_slots <= max_points:
        y = np.full(n_slots, np.nan)
        y[slot] = v
        return Regular(float(ts0), float(interval_ms), y)
    per_bucket = math.ceil(n_slots / (max_points // 2))
    bucket = slot // per_bucket
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(v)]
    present = bucket[starts]
    lo = np.fmin.reduceat(v, starts)
    hi = np.fmax.reduceat(v, starts)
    if how == "minmax":
        falling = v[starts] > v[ends - 1]  # NaN compares False: drawn as rising
        first, second = np.where(falling, hi, lo), np.where(falling, lo, hi)
    elif how == "min":
        first = second = lo
    else:
        first = second = hi
    n_buckets = int(present[-1]) + 1
    y = np.full(2 * n_buckets, np.nan)
    y[2 * present] = first
    y[2 * present + 1] = second
    return Regular(float(ts0), per_bucket * interval_ms / 2, y)


def sample_indices(n: int, max_points: int) -> npt.NDArray[np.intp]:
    """Return at most ``max_points`` indices spread evenly over ``range(n)``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.intp))


# --------------------------------------------------------------------------------------------
# charts


def _line(
    series: SymbolSeries,
    values: F64 | F32 | I64,
    name: str,
    max_points: int,
    how: Reducer = "minmax",
    scale: float = 1.0,
    **style: Any,
) -> Trace:
    r = downsample(series.ts_ms, values, series.interval_ms, max_points, how)
    y = r.y * scale if scale != 1.0 else r.y
    return {"type": "scatter", "x0": r.x0, "dx": r.dx, "y": y, "name": name, "mode": "lines", **style}


def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        **_WHITE,
        "title": {"text": title, "x": 0.01},
        "height": height,
        "margin": {"l": 70, "r": 70, "t": 50, "b": 40},
        "legend": {"orientation": "h", "y": -0.12, "traceorder": "normal"},
        "hovermode": "x",
        "xaxis": {"type": "date"},
        "yaxis": {},
        **extra,
    }
    for axis in ("xaxis", "yaxis", "yaxis2"):
        if axis in layout:
            layout[axis] = {**_AXIS, **layout[axis]}
    return layout


def _price_figure(s: SymbolSeries, max_points: int) -> Figure:
    traces: list[Trace] = [
        _line(
            s, s.low, "low", max_points, "min", s.tick, line={"width": 0}, showlegend=False, hoverinfo="skip"
        ),
        _line(
            s,
            s.high,
            "high/low range",
            max_points,
            "max",
            s.tick,
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(120,120,120,0.18)",
            hoverinfo="skip",
        ),
        _line(s, s.keltner_upper, "Keltner upper", max_points, scale=s.tick, line=_BAND),
        _line(s, s.keltner_mid, "Keltner mid", max_points, scale=s.tick, line={**_BAND, "dash": "dot"}),
        _line(s, s.keltner_lower, "Keltner lower", max_points, scale=s.tick, line=_BAND),
        # after the bands: plotly draws in order, and the price is what the eye looks for first
        _line(s, s.close, "close", max_points, scale=s.tick, line={"color": "#111111", "width": 1.5}),
        _line(s, s.best_buy, "highest resting buy", max_points, line={"color": _BUY_COLOR, "shape": "hv"}),
        _line(
            s,
            s.deepest_buy,
            "lowest resting buy",
            max_points,
            line={"color": _BUY_COLOR, "shape": "hv", "dash": "dash", "width": 1},
        ),
        _line(s, s.best_sell, "lowest resting sell", max_points, line={"color": _SELL_COLOR, "shape": "hv"}),
    ]
    fill_ts = np.asarray(s.fill_ts_ms, dtype=np.float64)
    fill_price = np.asarray(s.fill_price, dtype=np.float64)
    is_buy = np.asarray(s.fill_is_buy, dtype=np.bool_)
    for side, mask, symbol, color in (
        ("buy", is_buy, "triangle-up", _BUY_COLOR),
        ("sell", ~is_buy, "triangle-down", _SELL_COLOR),
    ):
        where = np.flatnonzero(mask)
        keep = where[sample_indices(len(where), max_points)]
        label = f"{side} fills ({len(where):,})"
        if len(keep) < len(where):
            label = f"{side} fills ({len(keep):,} of {len(where):,} shown)"
        traces.append(
            {
                "type": "scatter",
                "x": fill_ts[keep],
                "y": fill_price[keep],
                "name": label,
                "mode": "markers",
                "marker": {
                    "symbol": symbol,
                    "color": color,
                    "size": 8,
                    "line": {"width": 0.5, "color": "#000"},
                },
            }
        )
    if s.decisions:
        traces.append(_decision_markers(s, max_points))
    return {"data": traces, "layout": _layout(f"{s.symbol}: price, Keltner bands, grid and fills", 520)}


def _decision_markers(s: SymbolSeries, max_points: int) -> Trace:
    """Mark each change of reason on the close line; hovering shows the explanation."""
    ts = np.asarray([d[0] for d in s.decisions], dtype=np.int64)
    keep = sample_indices(len(ts), max_points)
    candle = np.clip(np.searchsorted(s.ts_ms, ts[keep], side="right") - 1, 0, len(s.ts_ms) - 1)
    close = np.asarray(s.close, dtype=np.float64)[candle] * s.tick
    return {
        "type": "scatter",
        "x": ts[keep].astype(np.float64),
        "y": close,
        "name": f"decisions ({len(ts):,}; hover for why)",
        "mode": "markers",
        "text": [f"{s.decisions[k][1]}: {s.decisions[k][2]}" for k in keep],
        "hoverinfo": "x+text",
        "marker": {"symbol": "diamond-open", "color": "#7a4fb0", "size": 7},
    }


_DECISION_ROWS = 200  # the table lists the first ones; decisions.csv has all


def _decisions_html(s: SymbolSeries, i: int) -> str:
    esc = html.escape
    rows = s.decisions[:_DECISION_ROWS]
    more = len(s.decisions) - len(rows)
    out = [
        f'<table class="nc-summary nc-decisions" id="decisions-{i}">',
        f"<caption>decisions: where the state or its reason changed"
        f"{f' (first {len(rows)} of {len(s.decisions)}; all in decisions.csv)' if more else ''}</caption>",
        "<thead><tr><th>time (UTC)</th><th>state</th><th>why</th></tr></thead><tbody>",
    ]
    for ts, state, text in rows:
        when = datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        out.append(f"<tr><td>{when}</td><td>{esc(state)}</td><td>{esc(text)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _equity_figure(s: SymbolSeries, max_points: int) -> Figure:
    traces = [
        _line(s, s.equity_quote, "strategy equity", max_points, line={"color": "#2166ac"}),
        _line(s, s.buy_and_hold_quote, "buy and hold", max_points, line={"color": "#999999", "dash": "dot"}),
    ]
    for (name, curve), color in zip(s.baselines, _BASELINE_COLORS, strict=False):
        traces.append(_line(s, curve, name, max_points, line={"color": color, "dash": "dash", "width": 1}))
    title = "equity vs buy and hold and static grids" if s.baselines else "equity vs buy and hold"
    return {"data": traces, "layout": _layout(f"{s.symbol}: {title} (quote)", 360)}


_BASELINE_COLORS: Final = ("#b2df8a", "#33a02c", "#fb9a99", "#e31a1c")


def _inventory_figure(s: SymbolSeries, max_points: int) -> Figure:
    span = [float(s.ts_ms[0]), float(s.ts_ms[-1])] if len(s.ts_ms) else [0.0, 0.0]

    def rail(value: float, name: str, color: str, **extra: Any) -> Trace:
        line = {"color": color, "dash": "dash"}
        return {
            "type": "scatter",
            "x": span,
            "y": [value, value],
            "name": name,
            "mode": "lines",
            "line": line,
            **extra,
        }

    traces = [
        _line(s, s.inventory_base, "inventory (base)", max_points, line={"color": "#e08214"}),
        rail(s.max_base, "rail max_base", "#e08214"),
        _line(s, s.committed_quote, "committed quote", max_points, line={"color": "#542788"}, yaxis="y2"),
        rail(s.max_quote, "rail max_quote", "#542788", yaxis="y2"),
    ]
    layout = _layout(
        f"{s.symbol}: inventory and committed quote vs the rails",
        360,
        yaxis={"title": {"text": "base"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "quote"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return {"data": traces, "layout": layout}


def nice_bins(lo: float, hi: float, max_bins: int = HISTOGRAM_BINS) -> tuple[F64, int]:
    """Return bin edges over [lo, hi] at a round step (1, 2 or 5 times a power of ten), and its decimals.

    Round edges read at a glance ("0.60 to 0.70"), and 0 is always an edge, so a bar is either all
    profit or all loss.
    """
    # one value, or a span below float resolution at this magnitude: a bin of a round width around it
    span = max(hi - lo, abs(lo) * 1e-9, 1e-12)
    raw = span / max_bins
    exponent = math.floor(math.log10(raw))
    step = next(m * 10.0**exponent for m in (1, 2, 5, 10) if m * 10.0**exponent >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step), math.ceil(hi / step)
    if last <= first:
        last = first + 1
    first -= lo < first * step  # a product can round past the data: widen by a bin
    last += hi > last * step
    edges = np.arange(first, last + 1, dtype=np.float64) * step
    return edges, max(0, -math.floor(math.log10(step)))


def _cycles_figure(s: SymbolSeries) -> Figure:
    pnl = np.asarray(s.cycle_pnl_quote, dtype=np.float64)
    pnl = pnl[np.isfinite(pnl)]
    quote = s.symbol.rpartition("/")[2] or "quote"
    layout = _layout(
        f"{s.symbol}: net PnL per closed cycle ({len(pnl):,} cycles)",
        340,
        xaxis={"title": {"text": f"net PnL per cycle ({quote}, after fees)"}, "type": "linear"},
        yaxis={"title": {"text": "cycles"}},
        bargap=0.05,
        hovermode="closest",
    )
    if len(pnl) == 0:
        note = {"text": "no closed cycles", "showarrow": False, "xref": "paper", "yref": "paper"}
        layout["annotations"] = [{**note, "x": 0.5, "y": 0.5}]
        return {"data": [], "layout": layout}
    edges, decimals = nice_bins(float(pnl.min()), float(pnl.max()))
    counts, _ = np.histogram(pnl, bins=edges)
    used = counts > 0  # empty bins draw nothing: leave them out of the page
    left, right = edges[:-1][used], edges[1:][used]
    labels = [f"{a:,.{decimals}f} to {b:,.{decimals}f} {quote}" for a, b in zip(left, right, strict=True)]
    bar = {
        "type": "bar",
        "x": (left + right) / 2,
        "y": counts[used],
        "width": float(edges[1] - edges[0]),
        "name": "cycles",
        "marker": {"color": np.where(left >= 0, _BUY_COLOR, _SELL_COLOR).tolist()},
        "text": labels,
        "textposition": "none",
        "hovertemplate": "%{text}: %{y} cycles<extra></extra>",
    }
    layout["xaxis"]["tickformat"] = f",.{decimals}f"
    return {"data": [bar], "layout": layout}


def figures(series: SymbolSeries, max_points: int = DEFAULT_MAX_POINTS) -> dict[str, Figure]:
    """Return the four figures of one symbol by chart kind (see ``CHART_KINDS``)."""
    return {
        "price": _price_figure(series, max_points),
        "equity": _equity_figure(series, max_points),
        "inventory": _inventory_figure(series, max_points),
        "cycles": _cycles_figure(series),
    }


# --------------------------------------------------------------------------------------------
# the page


def _headline_html(symbol: str, section: Mapping[str, Any], series: SymbolSeries | None) -> str:
    """The few lines a trader reads first (``headline``), and the run's last change of state."""
    esc = html.escape
    lines = [esc(line) for line in headline(symbol, section)]
    lines[RETURN_LINE] = f"<b>{lines[RETURN_LINE]}</b>"
    if series is not None and series.decisions:
        ts, state, why = series.decisions[-1]
        when = datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(f"last change of state ({when} UTC, {esc(state)}): {esc(why)}")
    items = "".join(f"<li>{line}</li>" for line in lines)
    return (
        f'<div class="nc-headline" data-symbol="{esc(symbol)}"><h3>{esc(symbol)}</h3><ul>{items}</ul></div>'
    )


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value


def _summary_html(summary: Mapping[str, Any]) -> str:
    rows: dict[str, Any] = {}
    per_symbol: dict[str, dict[str, Any]] = {}
    for key, value in summary.items():
        if key == "config":
            continue
        if key == "symbols" and isinstance(value, Mapping):
            for symbol, section in value.items():
                flat: dict[str, Any] = {}
                # the yardsticks get a table of their own (``_yardsticks_html``)
                _flatten("", {k: v for k, v in section.items() if k != "baselines"}, flat)
                per_symbol[str(symbol)] = flat
            continue
        _flatten(str(key), value, rows)
    esc = html.escape
    parts = ['<table id="summary" class="nc-summary">', "<thead><tr><th>metric</th>"]
    symbols = list(per_symbol)
    if symbols:
        parts += [f"<th>{esc(sym)}</th>" for sym in symbols]
        parts.append("<th>total</th>")
    else:
        parts.append("<th>value</th>")
    parts.append("</tr></thead><tbody>")
    keys = list(dict.fromkeys([*(k for flat in per_symbol.values() for k in flat), *rows]))
    for key in keys:
        cells = [f"<td>{esc(cell(key, per_symbol[sym].get(key, '')))}</td>" for sym in symbols]
        total = rows.get(key, "") if symbols else rows.get(key)
        parts.append(f"<tr><th>{esc(key)}</th>{''.join(cells)}<td>{esc(cell(key, total))}</td></tr>")
    parts.append("</tbody></table>")
    parts.append(_yardsticks_html(summary))
    if "config" in summary:
        config = json.dumps(summary["config"], indent=2, default=str, sort_keys=False)
        parts.append(
            '<details id="config"><summary>effective configuration</summary>'
            f"<pre>{esc(config)}</pre></details>"
        )
    return "".join(parts)


def _yardsticks_html(summary: Mapping[str, Any]) -> str:
    """Return, per symbol, the strategy beside buy-and-hold and the static grids on the same budget."""
    esc = html.escape
    parts: list[str] = []
    symbols = summary.get("symbols")
    if not isinstance(symbols, Mapping):
        return ""
    columns = ("return_pct", "max_drawdown_pct", "fills", "cycles", "fees_quote", "final_equity_quote")
    for symbol, section in symbols.items():
        baselines = section.get("baselines") if isinstance(section, Mapping) else None
        if not isinstance(baselines, Mapping):
            continue
        mine = {**section, "cycles": section.get("cycles_closed")}
        rows = [("strategy", mine), *((name.replace("_", " "), row) for name, row in baselines.items())]
        parts.append(
            f'<table class="nc-summary nc-yardsticks" id="yardsticks-{esc(str(symbol))}">'
            f"<caption>{esc(str(symbol))}: the strategy against its yardsticks (same budget, fees "
            "and fill rule)</caption><thead><tr><th>run</th>"
        )
        parts += [f"<th>{esc(c)}</th>" for c in columns]
        parts.append("</tr></thead><tbody>")
        for name, row in rows:
            cells = "".join(f"<td>{esc(cell(c, row.get(c, '')))}</td>" for c in columns)
            parts.append(f"<tr><th>{esc(name)}</th>{cells}</tr>")
        parts.append("</tbody></table>")
    return "".join(parts)


_STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table.nc-summary { border-collapse: collapse; font-size: 0.9em; margin-bottom: 1em; }
table.nc-summary th, table.nc-summary td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
table.nc-summary th:first-child { text-align: left; font-weight: normal; font-family: monospace; }
details pre { background: #f6f6f6; padding: 0.8em; overflow: auto; max-height: 30em; }
section.nc-chart { margin: 0.5em 0 1.5em 0; }
div.nc-headline { border-left: 4px solid #2166ac; padding: 0.2em 1em; margin: 0 0 1em 0;
  background: #f7f9fc; }
div.nc-headline h3 { margin: 0.4em 0; font-size: 1.05em; }
div.nc-headline ul { margin: 0; padding-left: 1.1em; } div.nc-headline li { margin: 0.15em 0; }
"""


def render_html(data: ReportData, max_points: int = DEFAULT_MAX_POINTS) -> str:
    """Return the report page as one self-contained HTML string."""
    return "".join(_page(data, max_points))


def _page(data: ReportData, max_points: int) -> Iterator[str]:
    """Yield the page in pieces: ``write_report`` writes each as it comes, never the whole page at once."""
    esc = html.escape
    yield (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(data.title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">window.PlotlyConfig = {{MathJaxConfig: "local"}};</script>'
    )
    yield f'<script type="text/javascript">{get_plotlyjs()}</script>'
    yield f"</head><body>\n<h1>{esc(data.title)}</h1>\n"
    sections = data.summary.get("symbols")
    if isinstance(sections, Mapping):
        by_symbol = {series.symbol: series for series in data.symbols}
        for symbol, section in sections.items():
            if isinstance(section, Mapping):
                yield _headline_html(str(symbol), section, by_symbol.get(str(symbol))) + "\n"
    yield _summary_html(data.summary) + "\n"
    for i, series in enumerate(data.symbols):
        yield f'<h2 id="symbol-{i}">{esc(series.symbol)}</h2>\n'
        for kind, fig in figures(series, max_points).items():
            div = pio.to_html(
                fig,
                include_plotlyjs=False,
                full_html=False,
                div_id=f"{kind}-{i}-plot",
                config=_PLOT_CONFIG,
                post_script=_RENDERED_JS,
                validate=False,
            )
            yield (
                f'<section id="{kind}-{i}" class="nc-chart nc-{kind}" data-symbol="{esc(series.symbol)}" '
                f'data-traces="{len(fig["data"])}">{div}</section>\n'
            )
        if series.decisions:
            yield _decisions_html(series, i) + "\n"
    yield "</body></html>\n"


def write_report(path: Path, data: ReportData, *, max_points: int = DEFAULT_MAX_POINTS) -> None:
    """Write the report of ``data`` to ``path`` (HTML, self-contained), atomically, piece by piece.

    A one-year page is ~6 MB of text: joined, then encoded, it would cost its size twice more.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for piece in _page(data, max_points):
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


__all__ = [
    "CHART_KINDS",
    "DEFAULT_MAX_POINTS",
    "Regular",
    "ReportData",
    "SymbolSeries",
    "downsample",
    "figures",
    "render_html",
    "sample_indices",
    "write_report",
]
