"""Overview: every symbol's state and why, PnL, fees, rails in use; live; pause and resume."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from nutcracker.api.client import ApiClient, ApiError, CommandResult, SessionEndedError
from nutcracker.console.session import forget
from nutcracker.console.view import STATE_COLOURS, ago, overview_cards, overview_rows, totals

__all__ = ["REFRESH_S", "overview_page"]

REFRESH_S = 2.0
PHONE_PX = 640  # at or below: the cards; above: the table
PHONE_CSS = (
    f"<style>@media (max-width: {PHONE_PX}px) {{ .st-key-overview_table {{ display: none; }} }}"
    f"@media (min-width: {PHONE_PX + 1}px) {{ .st-key-overview_cards {{ display: none; }} }}</style>"
)


def overview_page(client: ApiClient) -> None:
    _live(client)
    _steer(client)


@st.fragment(run_every=REFRESH_S)
def _live(client: ApiClient) -> None:
    try:
        status = client.status()
    except SessionEndedError as e:
        forget(e.detail)
        st.rerun(scope="app")
    except ApiError as e:
        st.error(e.detail)
        return
    symbols = status["symbols"]
    st.session_state["symbols"] = [s["symbol"] for s in symbols]
    st.session_state["statuses"] = {s["symbol"]: s["status"] for s in symbols}
    sums = totals(symbols)
    pnl = ", ".join(f"{v:,.2f} {k}" for k, v in sums["pnl"].items()) or "0"
    fees = ", ".join(f"{v:,.2f} {k}" for k, v in sums["fees"].items()) or "0"
    states = sums["states"]
    a, b, c = st.columns(3)
    a.metric("Realized PnL", pnl)
    b.metric("Fees", fees)
    c.metric(
        "Trading",
        f"{states.get('trading', 0)} / {len(symbols)}",
        help=", ".join(f"{n} {s}" for s, n in sorted(states.items())),
    )
    if not symbols:
        st.info("No symbols here for your user.")
        return
    rows = overview_rows(symbols)
    st.html(PHONE_CSS)
    with st.container(key="overview_cards"):  # a phone: one card per symbol, nothing to scroll sideways
        st.html(overview_cards(symbols))
    table = pd.DataFrame(rows)
    st.container(key="overview_table").dataframe(
        table.style.map(_state_colour, subset=["State"]),
        hide_index=True,
        width="stretch",
        column_config={
            "Symbol": st.column_config.TextColumn(pinned=True),
            "Why": st.column_config.TextColumn(width="large"),
            "Price": st.column_config.NumberColumn(format="%.2f"),
            "PnL": st.column_config.NumberColumn(
                format="%.2f", help="realized net PnL of closed cycles, quote"
            ),
            "Fees": st.column_config.NumberColumn(format="%.2f", help="fees paid, quote"),
            "Inventory": st.column_config.ProgressColumn(
                min_value=0.0, max_value=1.0, format="percent", help="base held against rails.max_base"
            ),
            "Committed": st.column_config.ProgressColumn(
                min_value=0.0,
                max_value=1.0,
                format="percent",
                help="cost + open buys against rails.max_quote",
            ),
            "Equity Δ": st.column_config.NumberColumn(
                format="%.2f", help="PnL + held inventory at market - cost"
            ),
            "Hold Δ": st.column_config.NumberColumn(
                format="%.2f", help="buy-and-hold of max_quote, same period"
            ),
        },
    )
    newest = max(s["updated_ts_ms"] for s in symbols)
    fetched = datetime.now(UTC).strftime("%H:%M:%S UTC")
    # in replay the engine's clock is market time: "how long ago" only means something live
    freshness = "" if status["mode"] == "replay" else f" ({ago(int(time.time() * 1000), newest)})"
    st.caption(
        f"{status['mode']} mode · last update {_clock(newest)}{freshness} · fetched {fetched}"
        f" · refreshes every {REFRESH_S:g} s"
    )


def _state_colour(state: str) -> str:
    return f"color: {STATE_COLOURS.get(state, 'inherit')}; font-weight: 600"


def _clock(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _steer(client: ApiClient) -> None:
    names: list[str] = st.session_state.get("symbols", [])
    if not names:
        return
    with st.container(border=True):
        st.markdown("**Pause or resume a symbol**")
        symbol = st.selectbox("Symbol", names, key="steer_symbol")
        reason = st.text_input("Reason (journaled)", value="from the console", key="steer_reason")
        killed = st.session_state.get("statuses", {}).get(symbol) == "killed"
        code = ""
        if killed:
            code = st.text_input("TOTP code (resuming a killed symbol)", max_chars=6, key="steer_totp")
        pause, resume = st.columns(2)
        if pause.button("Pause", icon=":material/pause:", key="pause", width="stretch"):
            _act(lambda: client.pause(symbol, reason), symbol)
        if resume.button("Resume", icon=":material/play_arrow:", key="resume", width="stretch"):
            _act(
                lambda: client.resume(
                    symbol, reason, client.step_up("resume_killed", code) if killed else None
                ),
                symbol,
            )


def _act(action: Callable[[], CommandResult], symbol: str) -> None:
    try:
        result = action()
    except SessionEndedError as e:
        forget(e.detail)
        st.rerun()
    except ApiError as e:
        st.error(e.detail)
        return
    st.session_state["flash"] = ("success", f"{symbol}: {result['outcome']} — now {result['status']}")
    st.rerun()
