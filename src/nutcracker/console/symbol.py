"""Symbol: candles with the Keltner band and EMA, resting orders, the planned levels not placed (and
why) and fills (``chart.py``); inventory and committed quote against the rails over time; resting
orders, fills, cycles with net profit; recent decisions (searchable). The candles are the ones the
pulses read (``/candles``), the bands the kept pulses' (``/history``), the levels the standing
decision's (``/levels``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from nutcracker.api.client import ApiClient
from nutcracker.console.chart import level_rows, price_chart, unplaced
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
    candles = client.candles(symbol, limit=_CANDLES)["candles"]
    levels = client.levels(symbol)["levels"]
    if candles:
        start = candles[0]["ts_ms"]
        shown = [f for f in fills if f["ts_ms"] >= start]
        st.plotly_chart(
            price_chart(candles, points, orders, shown, levels),
            width="stretch",
            config={"displayModeBar": False},
            key="price_chart",
        )
        older = len(fills) - len(shown)
        st.caption(
            f"The last {len(candles)} candles the engine read, {_clock(start)} to "
            f"{_clock(candles[-1]['ts_ms'])} UTC (open times); the band and EMA of its last "
            f"{len(points)} pulses. Dashed: our resting orders; dotted grey: levels planned but not placed."
            + (f" {older} older fills are in the table." if older else "")
        )
    else:
        st.caption("No candle read yet: nothing to draw.")
    if points:
        st.plotly_chart(_rails_chart(history), width="stretch", config={"displayModeBar": False})
    st.markdown("**Grid levels** (the last decision's: resting, or why not)")
    if levels:
        rows = level_rows(levels)
        st.dataframe(
            rows,
            hide_index=True,
            width="stretch",
            column_order=["level", "price", "state", "why", "side", "qty"],  # a phone sees the why
        )
        waiting = len(unplaced(levels))
        st.caption(f"{len(levels) - waiting} planned orders resting or held, {waiting} not placed.")
    else:
        st.caption("No levels: the symbol is warming up, paused, killed or stalled, or plans no order.")
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


_CANDLES = 200  # the chart's candles: a pulse's worth each, as many as the kept pulses


def _times(rows: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromtimestamp(r["ts_ms"] / 1000, UTC) for r in rows]


def _values(points: list[dict[str, Any]], key: str) -> list[float | None]:
    return [None if p[key] is None else float(p[key]) for p in points]


def _rails_chart(history: dict[str, Any]) -> go.Figure:
    """Inventory against rails.max_base and committed quote against rails.max_quote, pulse by pulse."""
    points = history["points"]
    x = _times(points)
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(  # short: at phone width the two titles share 390 px
            f"inventory {history['base']} · rail {history['max_base']}",
            f"committed {history['quote']} · rail {history['max_quote']}",
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
    figure.update_annotations(font_size=12)
    figure.update_layout(height=240, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False)
    return figure
