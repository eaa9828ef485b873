"""What every page has: the kill switch, the header with who is logged in, the disclaimer footer."""

from __future__ import annotations

import streamlit as st

from nutcracker.api.client import ApiClient, ApiError, SessionEndedError
from nutcracker.console.session import forget
from nutcracker.console.view import DISCLAIMER

__all__ = ["footer", "header", "kill_switch"]

KILL_REASON = "kill switch pressed in the console"


def header(client: ApiClient, user: str) -> None:
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.markdown("### :material/shield: Nutcracker")
    with right:
        who, out = st.columns([3, 2], vertical_alignment="center")
        who.caption(f"Signed in as **{user}**")
        if out.button("Log out", key="logout", width="stretch"):
            forget("You are logged out.")
            st.rerun()


def kill_switch(client: ApiClient) -> None:
    """One click, then a confirmation: cancels every resting order and stops every symbol you operate."""
    if not st.session_state.get("kill_armed"):
        if st.button(
            "KILL ALL — cancel every order",
            key="kill",
            type="primary",
            icon=":material/dangerous:",
            width="stretch",
        ):
            st.session_state["kill_armed"] = True
            st.rerun()
        return
    with st.container(border=True):
        st.error(
            "**Kill every symbol?** Resting orders are cancelled and nothing trades until you resume.",
            icon=":material/warning:",
        )
        yes, no = st.columns(2)
        if yes.button("Yes, kill all", key="kill_confirm", type="primary", width="stretch"):
            st.session_state["kill_armed"] = False
            try:
                results = client.kill_all(KILL_REASON)
            except SessionEndedError as e:
                forget(e.detail)
                st.rerun()
            except ApiError as e:
                st.session_state["flash"] = ("error", f"Kill failed: {e.detail}")
            else:
                killed = sum(r["status"] == "killed" for r in results)
                st.session_state["flash"] = ("warning", f"Killed {killed} of {len(results)} symbols.")
            st.rerun()
        if no.button("Cancel", key="kill_cancel", width="stretch"):
            st.session_state["kill_armed"] = False
            st.rerun()


def flash() -> None:
    """The outcome of the last action, shown once."""
    message = st.session_state.pop("flash", None)
    if message is None:
        return
    kind, text = message
    {"error": st.error, "warning": st.warning}.get(kind, st.success)(text)


def footer() -> None:
    st.divider()
    st.caption(DISCLAIMER)
