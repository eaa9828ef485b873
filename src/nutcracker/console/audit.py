"""Audit: every action with actor, time and detail; filter and CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from nutcracker.api.client import ApiClient, AuditEntry

__all__ = ["audit_csv", "audit_page"]


def audit_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    return [
        {
            "time": datetime.fromtimestamp(e["ts_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": e["actor"],
            "action": e["action"],
            "detail": e["detail"],
            "source": e["source"],
        }
        for e in entries
    ]


def audit_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["time", "actor", "action", "detail", "source"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def audit_page(client: ApiClient) -> None:
    rows = audit_rows(client.audit(limit=1000))
    actors = sorted({r["actor"] for r in rows})
    actions = sorted({r["action"] for r in rows})
    left, right = st.columns(2)
    who = left.multiselect("Actor", actors, key="audit_actor")
    what = right.multiselect("Action", actions, key="audit_action")
    text = st.text_input("Search", key="audit_search", placeholder="symbol, reason, address…")
    shown = [
        r
        for r in rows
        if (not who or r["actor"] in who)
        and (not what or r["action"] in what)
        and (not text or text.lower() in " ".join(map(str, r.values())).lower())
    ]
    st.caption(f"{len(shown)} of {len(rows)} entries, newest first")
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "time": st.column_config.TextColumn(width="small"),
            "actor": st.column_config.TextColumn(width="small"),
            "action": st.column_config.TextColumn(width="small"),
            "detail": st.column_config.TextColumn(width="large"),
            "source": st.column_config.TextColumn(width="small"),
        },
    )
    st.download_button(
        "Export CSV", audit_csv(shown), file_name="nutcracker-audit.csv", mime="text/csv", key="audit_csv"
    )
