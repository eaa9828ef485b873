"""Symbol: price with our orders and fills, resting orders, fills, cycles, recent decisions (searchable)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from nutcracker.api.client import ApiClient

__all__ = ["symbol_page"]


def symbol_page(client: ApiClient) -> None:
    names = [s["symbol"] for s in client.status()["symbols"]]
    if not names:
        st.info("No symbols here for your user.")
        return
    symbol = st.selectbox("Symbol", names, key="symbol_pick")
    status = client.symbol_status(symbol)
    a, b, c, d = st.columns(4)
    a.metric("State", status["status"])
    b.metric("Price", status["price"] or "—")
    c.metric("Realized PnL", status["realized_pnl"])
    d.metric("Open orders", status["open_orders"])
    st.caption(f"Why: {status['reason']}")
    orders = client.orders(symbol)
    fills = client.fills(symbol)
    pulses = client.pulses(symbol, limit=200)
    if orders or fills:
        st.plotly_chart(_chart(orders, fills), width="stretch", config={"displayModeBar": False})
    else:
        st.caption("No resting orders and no fills yet: nothing to draw.")
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
        [{**c, "closed": _clock(c["closed_ts_ms"])} for c in reversed(cycles[-200:])],
        ["cycle_id", "closed", "cost", "proceeds", "fees", "pnl"],
    )
    st.markdown("**Recent decisions**")
    query = st.text_input(
        "Search the reasons", key="pulse_search", placeholder="e.g. rails, spacing, stalled"
    )
    rows = [
        {"time": _clock(p["ts_ms"]), "status": p["status"], "reason": "; ".join(p["reasons"]) or p["reason"]}
        for p in pulses
    ]
    if query:
        rows = [r for r in rows if query.lower() in (r["reason"] + r["status"]).lower()]
    st.dataframe(rows, hide_index=True, width="stretch")


def _clock(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%m-%d %H:%M:%S")


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", column_order=columns)
    else:
        st.caption("none")


def _chart(orders: list[dict[str, Any]], fills: list[dict[str, Any]]) -> go.Figure:
    """Fills marked buy/sell over time, our resting orders as levels (the API serves no candles yet,
    so the Keltner bands and the EMA are not drawn)."""
    figure = go.Figure()
    for side, colour, marker in (("buy", "#16a34a", "triangle-up"), ("sell", "#dc2626", "triangle-down")):
        mine = [f for f in fills if f["side"] == side]
        figure.add_trace(
            go.Scatter(
                x=[datetime.fromtimestamp(f["ts_ms"] / 1000, UTC) for f in mine],
                y=[float(f["price"]) for f in mine],
                mode="markers",
                name=f"{side} fills",
                marker={"color": colour, "symbol": marker, "size": 9},
            )
        )
    for order in orders:
        figure.add_hline(
            y=float(order["price"]),
            line={"color": "#16a34a" if order["side"] == "buy" else "#dc2626", "dash": "dot", "width": 1},
            annotation_text=f"{order['side']} {order['qty']}",
            annotation_position="right",
        )
    figure.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.15},
        yaxis_title="price",
    )
    return figure
