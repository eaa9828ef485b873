"""The login's client, kept in the Streamlit session (one per browser tab, never on disk)."""

from __future__ import annotations

import os

import streamlit as st

from nutcracker.api.client import ApiClient

__all__ = ["API_ENV", "client", "forget"]

API_ENV = "NUTCRACKER_CONSOLE_API"  # `nutcracker console --api URL` hands the URL over in it
DEFAULT_API = "http://127.0.0.1:8080"


def client() -> ApiClient:
    """This session's client (made on first use, for the API the console was started for)."""
    found = st.session_state.get("client")
    if isinstance(found, ApiClient):
        return found
    made = ApiClient(os.environ.get(API_ENV, DEFAULT_API))
    st.session_state["client"] = made
    return made


def forget(message: str | None = None) -> None:
    """Log out here (the tokens are dropped) and say why on the login page."""
    found = st.session_state.get("client")
    if isinstance(found, ApiClient):
        found.logout()
    for key in list(st.session_state.keys()):
        if key != "client":
            del st.session_state[key]
    if message:
        st.session_state["login_message"] = message
