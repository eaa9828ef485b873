"""Parameters: a form of the symbol's config table, the diff before applying, TOTP step-up, history.

The API validates a change with the same config model as the TOML file; its message (which names
the field and the fix) is shown under that field, and nothing is changed.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from nutcracker.api.client import ApiClient, ApiError
from nutcracker.console.view import as_text, patch_of

__all__ = ["field_help", "params_page"]

READ_ONLY = {"market"}  # the market's identity and filters are the exchange's, not a parameter


def params_page(client: ApiClient) -> None:
    names = [s["symbol"] for s in client.status()["symbols"]]
    if not names:
        st.info("No symbols here for your user.")
        return
    symbol = st.selectbox("Symbol", names, key="params_symbol")
    current = client.params(symbol)
    table = current["params"]
    reference = client.config_reference()
    st.caption(f"Version {current['version']} · values in the config file's units")
    problems: list[str] = st.session_state.get("params_problems", {}).get(symbol, [])
    fields = [f"{s}.{k}" for s, keys in table.items() if isinstance(keys, dict) for k in keys]
    for message in problems:  # those that name no field of the form, above it
        if not any(_names(message, f) for f in fields):
            st.error(message)
    edited: dict[str, dict[str, str]] = {}
    with st.form(f"params_{symbol}"):
        for section, keys in table.items():
            if not isinstance(keys, dict) or section in READ_ONLY:
                continue
            st.markdown(f"**{section}**")
            items = list(keys.items())
            for i, (key, value) in enumerate(items):
                if i % 2 == 0:  # a row per pair: a message under one field never shifts the next row
                    columns = st.columns(2)
                name = f"{section}.{key}"
                with columns[i % 2]:
                    edited.setdefault(section, {})[key] = st.text_input(
                        name,
                        value=as_text(value),
                        key=f"p_{symbol}_{name}",
                        help=field_help(reference, section, key),
                    )
                    for message in problems:
                        if _names(message, name):
                            st.error(message)
        reason = st.text_input("Reason (journaled with your name)", key="params_reason")
        held = client.step_up_token("params") is not None
        code = st.text_input(
            "TOTP code (step-up)",
            max_chars=6,
            key="params_totp",
            help="Not needed again for two minutes after a change"
            if not held
            else "Your last step-up is still valid: leave empty",
        )
        preview, apply = st.columns(2)
        show = preview.form_submit_button("Preview diff", width="stretch")
        send = apply.form_submit_button("Apply", type="primary", width="stretch")
    patch = patch_of(table, edited)
    if show or send:
        if not patch:
            st.info("Nothing changed.")
            return
        st.markdown("**Changes**")
        st.dataframe(
            [
                {"field": f"{s}.{k}", "before": as_text(table[s].get(k)), "after": as_text(v)}
                for s, keys in patch.items()
                for k, v in keys.items()
            ],
            hide_index=True,
            width="stretch",
        )
    if send and patch:
        _apply(client, symbol, patch, reason, code)
    _history(client, symbol)


def _apply(client: ApiClient, symbol: str, patch: dict[str, dict[str, Any]], reason: str, code: str) -> None:
    if len(reason.strip()) < 3:
        st.error("Give a reason (3 characters at least): it is journaled with the change.")
        return
    token = client.step_up_token("params")
    if token is None and not (code.isdigit() and len(code) == 6):
        st.error("Enter the 6-digit TOTP code from your authenticator app to apply a change.")
        return
    try:
        token = token or client.step_up("params", code)
        result = client.change_params(symbol, patch, reason.strip(), token)
    except ApiError as e:
        st.session_state.setdefault("params_problems", {})[symbol] = problem_lines(e)
        st.rerun()
    st.session_state.setdefault("params_problems", {}).pop(symbol, None)
    changed = ", ".join(f"{d['field']} {d['before']} → {d['after']}" for d in result["diff"])
    done = f"{symbol}: {result['outcome']} (version {result['version']}): {changed}"
    st.session_state["flash"] = ("success", done)
    st.rerun()


def field_help(reference: dict[str, dict[str, dict[str, str]]], section: str, key: str) -> str:
    """The field's help: its meaning, type and default from the configuration reference."""
    where = f"`{key}` of `[symbol.{section}]` in the config file"
    found = reference.get(f"symbol.{section}", {}).get(key)
    if found is None:
        return f"{where} (docs/configuration.md); the API checks it as it checks the file"
    return f"{found['meaning']}\n\n**Type:** {found['type']} · **default:** {found['default']} · {where}"


def problem_lines(error: ApiError) -> list[str]:
    """The API's refusal as one message per problem: its ``- symbol[0].rails.max_base: ...`` lines
    (each shown on its field), else its field errors, else its detail."""
    texts = [e["message"] for e in error.errors] or [error.detail]
    lines = [
        re.sub(r"^symbol\[\d+\]\.", "", line.strip()[2:])
        for text in texts
        for line in text.splitlines()
        if line.strip().startswith("- ")
    ]
    return list(dict.fromkeys(lines or texts))


def _names(message: str, name: str) -> bool:
    """The API's message is about this field: it names it (``rails.max_base``) as a word."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message) is not None


def _history(client: ApiClient, symbol: str) -> None:
    entries = [e for e in client.audit(limit=500) if "param" in e["action"].lower() and symbol in e["detail"]]
    with st.expander(f"History of changes ({len(entries)})"):
        st.dataframe(
            [{"actor": e["actor"], "action": e["action"], "detail": e["detail"]} for e in entries],
            hide_index=True,
            width="stretch",
        )
