"""The Symbol page's price chart, built from API values (no Streamlit: tested directly).

Candles as the pulses read them, the Keltner band and its EMA drawn on the candle they include, our
resting orders as dashed lines, the levels the strategy planned but did not place as dotted grey
lines (the table beside the chart says why), and fills marked buy (up, green) or sell (down, red).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

__all__ = ["BUY", "SELL", "level_rows", "price_chart", "price_range", "unplaced"]

BUY, SELL = "#22c55e", "#ef4444"
_UNPLACED = "rgba(148,163,184,0.75)"


def _time(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


def unplaced(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned levels not resting, less held ones (their buy is a fill on the chart already)."""
    return [lv for lv in levels if not lv["resting"] and not lv["why"].startswith("held")]


def level_rows(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned levels as table rows, highest price first: where each rests, or why it does not."""
    return [
        {
            "level": lv["slot"],
            "side": lv["side"],
            "price": lv["price"],
            "qty": lv["qty"],
            "state": "resting" if lv["resting"] else "held" if lv["why"].startswith("held") else "not placed",
            "why": "" if lv["resting"] else lv["why"],
        }
        for lv in levels
    ]


def price_range(candles: list[dict[str, Any]], prices: list[float]) -> tuple[float, float] | None:
    """The y range: the candles, and the order and level prices within half their range of them (a
    level far below would squash the candles into a line; the table lists it)."""
    if not candles:
        return None
    low = min(float(c["low"]) for c in candles)
    high = max(float(c["high"]) for c in candles)
    span = max(high - low, high * 0.001) / 2
    near = [p for p in prices if low - span <= p <= high + span]
    low, high = min([low, *near]), max([high, *near])
    pad = (high - low) * 0.04
    return low - pad, high + pad


def price_chart(
    candles: list[dict[str, Any]],
    points: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    fills: list[dict[str, Any]],
    levels: list[dict[str, Any]],
) -> go.Figure:
    """Return the candlestick chart with the band, EMA, long average, orders, planned levels and fills."""
    figure = go.Figure()
    warm = [p for p in points if p.get("candle_ts_ms") is not None and p["ema"] is not None]
    x = [_time(p["candle_ts_ms"]) for p in warm]
    band = {"color": "rgba(148,163,184,0.55)", "width": 1}
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[_float(p["upper"]) for p in warm],
            name="Keltner upper",
            line=band,
            mode="lines",
            hoverinfo="skip",
            showlegend=False,
        )
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[_float(p["lower"]) for p in warm],
            name="Keltner band",
            line=band,
            mode="lines",
            fill="tonexty",
            fillcolor="rgba(148,163,184,0.10)",
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[_float(p["ema"]) for p in warm],
            name="EMA",
            mode="lines",
            line={"color": "#f59e0b", "width": 1.5},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[_float(p["long"]) for p in warm],
            name="long average",
            mode="lines",
            line={"color": "#a78bfa", "width": 1, "dash": "dot"},
        )
    )
    figure.add_trace(
        go.Candlestick(
            x=[_time(c["ts_ms"]) for c in candles],
            open=[float(c["open"]) for c in candles],
            high=[float(c["high"]) for c in candles],
            low=[float(c["low"]) for c in candles],
            close=[float(c["close"]) for c in candles],
            name="candles",
            increasing={"line": {"color": BUY, "width": 1}, "fillcolor": BUY},
            decreasing={"line": {"color": SELL, "width": 1}, "fillcolor": SELL},
        )
    )
    for side, colour, marker in (("buy", BUY, "triangle-up"), ("sell", SELL, "triangle-down")):
        mine = [f for f in fills if f["side"] == side]
        figure.add_trace(
            go.Scatter(
                x=[_time(f["ts_ms"]) for f in mine],
                y=[float(f["price"]) for f in mine],
                mode="markers",
                name=f"{side} fills",
                marker={
                    "color": colour,
                    "symbol": marker,
                    "size": 11,
                    "line": {"width": 1, "color": "#0f172a"},
                },
                hovertext=[f"{side} {f['qty']} at {f['price']}" for f in mine],
                hoverinfo="text",
            )
        )
    for order in orders:
        colour = BUY if order["side"] == "buy" else SELL
        figure.add_hline(
            y=float(order["price"]),
            line={"color": colour, "dash": "dash", "width": 1.2},
            annotation_text=f"{order['side']} {order['price']}",
            annotation_position="top left",
            annotation_font={"size": 10, "color": colour},
        )
    hidden = unplaced(levels)
    for level in hidden:
        figure.add_hline(
            y=float(level["price"]),
            line={"color": _UNPLACED, "dash": "dot", "width": 1},
            annotation_text=level["slot"],
            annotation_position="top right",
            annotation_font={"size": 9, "color": _UNPLACED},
        )
    prices = [float(o["price"]) for o in orders] + [float(lv["price"]) for lv in hidden]
    shown = price_range(candles, prices)
    figure.update_layout(
        height=440,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0, "font": {"size": 10}},
        yaxis={"title": None, "side": "right", "tickformat": ",", "range": list(shown) if shown else None},
        xaxis={"rangeslider": {"visible": False}},
        hovermode="x unified",
    )
    return figure
