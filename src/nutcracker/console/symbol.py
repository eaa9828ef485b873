"""Symbol: the price with its Keltner bands and EMA, resting orders and fills; inventory and committed
quote against the rails over time; resting orders, fills, cycles with net profit; recent decisions
(searchable). The series are the API's kept pulses (``/history``): the close each pulse decided on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from nutcracker.api.client import ApiClient
from nutcracker.console.view import grouped, money

__all__ = ["decision_rows", "symbol_page"]


def symbol_page(client: ApiClient) -> None:
    names = [s["symbol"] for s in client.status()["symbols"]]
    if not names:
        st.info("No symbols here for your user.")
        return
    symbol = st.selectbox("Symbol", names, key="symbol_pick")
    status = client.symbol_status(symbol)
    a, b, c, d = st.columns(4)
    a.metric("State", status["status"])
    quote = status["committed_quote"]["asset"]
    b.metric("Price", grouped(status["price"]))
    c.metric("Realized PnL", f"{money(status['realized_pnl'])} {quote}", help="net of fees; to the cent")
    d.metric("Open orders", status["open_orders"])
    st.caption(f"Why: {status['reason']}")
    orders = client.orders(symbol)
    fills = client.fills(symbol)
    pulses = client.pulses(symbol, limit=200)
    history = client.history(symbol)
    points = history["points"]
    if points:
        start = points[0]["ts_ms"]
        shown = [f for f in fills if f["ts_ms"] >= start]
        st.plotly_chart(_chart(points, orders, shown), width="stretch", config={"displayModeBar": False})
        older = len(fills) - len(shown)
        st.caption(
            f"The last {len(points)} pulses: the close each decided on, {_clock(start)} to "
            f"{_clock(points[-1]['ts_ms'])} UTC (gaps: paused, killed or stalled, no market read)"
            + (f"; {older} older fills are in the table." if older else ".")
        )
        st.plotly_chart(_rails_chart(history), width="stretch", config={"displayModeBar": False})
    else:
        st.caption("No pulse yet: nothing to draw.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Resting orders**")
        _table(orders, ["side", "price", "qty", "filled", "client_order_id"])
    with right:
        st.markdown("**Fills**")
        _table(
            [{**f, "time": _clock(f["ts_ms"])} for f in reversed(fills[-200:])],
            ["time", "side", "price", "qty", "fee", "cycle_id"],
        )
    st.markdown("**Closed cycles**")
    cycles = client.cycles(symbol)
    _table(
        [
            {
                **c,
                "closed": _clock(c["closed_ts_ms"]),
                **{k: money(c[k]) for k in ("cost", "proceeds", "fees")},
                f"net profit ({quote})": money(c["pnl"]),
            }
            for c in reversed(cycles[-200:])
        ],
        ["cycle_id", "closed", "cost", "proceeds", "fees", f"net profit ({quote})"],
    )
    st.markdown("**Recent decisions**")
    query = st.text_input(
        "Search the reasons", key="pulse_search", placeholder="e.g. rails, spacing, stalled"
    )
    rows = decision_rows(pulses)
    if query:
        rows = [r for r in rows if query.lower() in (r["reason"] + r["status"]).lower()]
    st.dataframe(rows, hide_index=True, width="stretch")


def decision_rows(pulses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pulses (newest first) as rows, a run of pulses with the same state and reason as one row:
    its first and last time and how many pulses (200 rows of 'killed' would hide the one that matters)."""
    rows: list[dict[str, Any]] = []
    for p in pulses:
        reason = "; ".join(p["reasons"]) or p["reason"]
        last = rows[-1] if rows else None
        if last is not None and last["status"] == p["status"] and last["reason"] == reason:
            last["from"] = _clock(p["ts_ms"])
            last["pulses"] += 1
            continue
        rows.append(
            {
                "from": _clock(p["ts_ms"]),
                "to": _clock(p["ts_ms"]),
                "pulses": 1,
                "status": p["status"],
                "reason": reason,
            }
        )
    return rows


def _clock(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%m-%d %H:%M:%S")


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", column_order=columns)
    else:
        st.caption("none")


def _times(rows: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromtimestamp(r["ts_ms"] / 1000, UTC) for r in rows]


def _values(points: list[dict[str, Any]], key: str) -> list[float | None]:
    return [None if p[key] is None else float(p[key]) for p in points]


def _chart(
    points: list[dict[str, Any]], orders: list[dict[str, Any]], fills: list[dict[str, Any]]
) -> go.Figure:
    """The close with the Keltner band (shaded), its EMA and the long average; our resting orders as
    levels; fills marked buy (up, green) and sell (down, red)."""
    figure = go.Figure()
    x = _times(points)
    band = {"color": "rgba(148,163,184,0.6)", "width": 1}
    figure.add_trace(go.Scatter(x=x, y=_values(points, "upper"), name="Keltner upper", line=band))
    figure.add_trace(
        go.Scatter(
            x=x,
            y=_values(points, "lower"),
            name="Keltner lower",
            line=band,
            fill="tonexty",
            fillcolor="rgba(148,163,184,0.12)",
        )
    )
    figure.add_trace(
        go.Scatter(x=x, y=_values(points, "ema"), name="EMA", line={"color": "#f59e0b", "width": 1.5})
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=_values(points, "long"),
            name="long average",
            line={"color": "#a78bfa", "width": 1, "dash": "dot"},
        )
    )
    figure.add_trace(
        go.Scatter(x=x, y=_values(points, "close"), name="close", line={"color": "#e5e7eb", "width": 1.5})
    )
    for side, colour, marker in (("buy", "#16a34a", "triangle-up"), ("sell", "#dc2626", "triangle-down")):
        mine = [f for f in fills if f["side"] == side]
        figure.add_trace(
            go.Scatter(
                x=_times(mine),
                y=[float(f["price"]) for f in mine],
                mode="markers",
                name=f"{side} fills",
                marker={"color": colour, "symbol": marker, "size": 11, "line": {"width": 1, "color": "#111"}},
                hovertext=[f"{side} {f['qty']} at {f['price']}" for f in mine],
            )
        )
    for order in orders:
        figure.add_hline(
            y=float(order["price"]),
            line={"color": "#16a34a" if order["side"] == "buy" else "#dc2626", "dash": "dash", "width": 1},
            annotation_text=f"{order['side']} {order['qty']} @ {order['price']}",
            annotation_position="top left",
            annotation_font_size=10,
        )
    figure.update_layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.12},
        yaxis_title="price",
        hovermode="x unified",
    )
    return figure


def _rails_chart(history: dict[str, Any]) -> go.Figure:
    """Inventory against rails.max_base and committed quote against rails.max_quote, pulse by pulse."""
    points = history["points"]
    x = _times(points)
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            f"inventory, {history['base']} (rail {history['max_base']})",
            f"committed quote, {history['quote']} (rail {history['max_quote']})",
        ),
    )
    for col, key, limit, colour in (
        (1, "inventory", history["max_base"], "#38bdf8"),
        (2, "committed_quote", history["max_quote"], "#f59e0b"),
    ):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=_values(points, key),
                name=key.replace("_", " "),
                line={"color": colour},
                fill="tozeroy",
            ),
            row=1,
            col=col,
        )
        figure.add_hline(
            y=float(limit),
            line={"color": "#ef4444", "dash": "dash", "width": 1},
            row=1,
            col=col,
        )
        figure.update_yaxes(range=[0, float(limit) * 1.08], row=1, col=col)
    figure.update_layout(height=240, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False)
    return figure
