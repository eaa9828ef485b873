"""The login page: user, password and TOTP code, with the disclaimer."""

from __future__ import annotations

import streamlit as st

from nutcracker.api.client import ApiClient, ApiError
from nutcracker.console.view import DISCLAIMER

__all__ = ["login_page"]


def login_page(client: ApiClient) -> None:
    _, middle, _ = st.columns([1, 2, 1])  # a narrow form on a desktop; columns stack on a phone
    with middle:
        _login(client)


def _login(client: ApiClient) -> None:
    st.markdown("## :material/shield: Nutcracker console")
    st.caption(f"Control API: {client.base_url}")
    message = st.session_state.pop("login_message", None)
    if message:
        st.info(message)
    with st.form("login"):
        username = st.text_input("User", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        totp = st.text_input(
            "TOTP code", max_chars=6, key="login_totp", help="6 digits from your authenticator app"
        )
        sent = st.form_submit_button("Log in", type="primary", width="stretch")
    if sent:
        if not username or not password:
            st.error("Enter your user name and password.")
        else:
            try:
                client.login(username.strip(), password, totp.strip() or None)
                me = client.me()
            except ApiError as e:
                st.error(e.detail)
            else:
                st.session_state["user"] = me["user"]
                st.session_state["role"] = me["role"]
                st.rerun()
    st.warning(DISCLAIMER, icon=":material/info:")
