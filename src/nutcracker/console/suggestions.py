"""Suggestions: the advisor's proposals for a symbol, their out-of-sample evidence, accept or reject.

The advisor never applies anything: a suggestion changes the engine only when its account's owner
accepts it here, with a fresh TOTP step-up, through the same parameter-change path as a manual
edit (journaled as the owner's act, with the suggestion's id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from nutcracker.api.client import ApiClient, ApiError
from nutcracker.console.view import as_text

__all__ = ["suggestion_rows", "suggestions_page"]

DISCLAIMER = (
    "Suggestions come from backtests of past candles, judged out of sample; past performance does "
    "not predict future results. Nothing changes unless you accept."
)


def _when(ts_ms: int) -> str:
    return "—" if ts_ms < 0 else datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def suggestion_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per suggestion, as a person scans them: status, when, how sure, what."""
    return [
        {
            "id": s["id"],
            "status": s["status"],
            "made": _when(int(s["created_ts_ms"])),
            "expires": _when(int(s["expires_ts_ms"])),
            "won folds": f"{float(s['confidence']) * 100:.0f} %",
            "summary": s["summary"],
            "decided by": s.get("decided_by") or "—",
        }
        for s in items
    ]


def diff_rows(diff: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"field": field, "now": as_text(change.get("from")), "suggested": as_text(change.get("to"))}
        for field, change in diff.items()
        if isinstance(change, dict)
    ]


def suggestions_page(client: ApiClient) -> None:
    st.caption(DISCLAIMER)
    names = [s["symbol"] for s in client.status()["symbols"]]
    if not names:
        st.info("No symbols here for your user.")
        return
    symbol = st.selectbox("Symbol", names, key="suggestions_symbol")
    items = client.suggestions(symbol)
    if not items:
        st.info(f"No suggestions for {symbol}: run `nutcracker advise` on its journal to make some.")
        return
    st.dataframe(suggestion_rows(items), hide_index=True, width="stretch")
    pending = [s["id"] for s in items if s["status"] == "pending"]
    if not pending:
        st.info("Nothing pending: every suggestion was accepted, rejected or has expired.")
        return
    chosen = st.selectbox("Pending suggestion", pending, key="suggestions_id")
    detail = client.suggestion(symbol, chosen)
    st.markdown(f"**{detail['summary']}**")
    st.dataframe(diff_rows(detail["diff"]), hide_index=True, width="stretch")
    with st.expander("Evidence (per fold, in and out of sample)"):
        st.json(detail["record"], expanded=False)
    _decide(client, symbol, chosen)


def _decide(client: ApiClient, symbol: str, suggestion_id: str) -> None:
    with st.form(f"decide_{suggestion_id}"):
        reason = st.text_input("Reason (journaled with your name)", key="suggestion_reason")
        held = client.step_up_token("params") is not None
        code = st.text_input(
            "TOTP code (step-up, to accept)",
            max_chars=6,
            key="suggestion_totp",
            help="Your last step-up is still valid: leave empty" if held else "Only accepting needs it",
        )
        accept, reject = st.columns(2)
        yes = accept.form_submit_button("Accept", type="primary", width="stretch")
        no = reject.form_submit_button("Reject", width="stretch")
    if not (yes or no):
        return
    try:
        if no:
            client.reject_suggestion(symbol, suggestion_id, reason.strip())
            st.session_state["flash"] = ("success", f"{symbol}: suggestion {suggestion_id} rejected")
            st.rerun()
        token = client.step_up_token("params")
        if token is None and not (code.isdigit() and len(code) == 6):
            st.error("Enter the 6-digit TOTP code from your authenticator app to accept.")
            return
        token = token or client.step_up("params", code)
        result = client.accept_suggestion(symbol, suggestion_id, reason.strip(), token)
    except ApiError as e:
        st.error(e.detail)
        return
    done = (
        f"{symbol}: suggestion {suggestion_id} {result['outcome']} (parameters version {result['version']})"
    )
    st.session_state["flash"] = ("success", done)
    st.rerun()
