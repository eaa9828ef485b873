"""The script Streamlit runs (``nutcracker console``): login, then the pages, the kill switch on each."""

from __future__ import annotations

import streamlit as st

from nutcracker.api.client import ApiError, SessionEndedError
from nutcracker.console.audit import audit_page
from nutcracker.console.backtest import backtest_page
from nutcracker.console.chrome import flash, footer, header, kill_switch
from nutcracker.console.login import login_page
from nutcracker.console.overview import overview_page
from nutcracker.console.params import params_page
from nutcracker.console.session import client, forget
from nutcracker.console.suggestions import suggestions_page
from nutcracker.console.symbol import symbol_page

PAGES = {
    "Overview": overview_page,
    "Symbol": symbol_page,
    "Parameters": params_page,
    "Suggestions": suggestions_page,
    "Audit": audit_page,
    "Backtest": backtest_page,
}


def main() -> None:
    st.set_page_config(page_title="Nutcracker", page_icon="🥜", layout="wide")
    api = client()
    user = st.session_state.get("user")
    if not api.logged_in or not isinstance(user, str):
        login_page(api)
        return
    header(api, user)
    kill_switch(api)
    flash()
    st.session_state.setdefault("page", "Overview")
    page = st.segmented_control("Page", list(PAGES), key="page", label_visibility="collapsed") or "Overview"
    try:
        PAGES[page](api)
    except SessionEndedError as e:
        forget(e.detail)
        st.rerun()
    except ApiError as e:
        st.error(e.detail)
    footer()


main()
