"""The Suggestions page with Streamlit's ``AppTest`` against a real ``serve --demo``: the owner sees
the advisor's pending suggestions, rejects one, and accepts another with a TOTP step-up; the engine
then runs the suggested parameters. Nothing changes without the owner's click and code."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_stack import OWNER, OWNER_PASSWORD, WATCHER, WATCHER_PASSWORD, Stack, serve_stack
from streamlit.testing.v1 import AppTest

from nutcracker.advisor.suggestion import symbol_table_hash
from nutcracker.api.client import ApiClient
from nutcracker.config import load_config
from nutcracker.console.session import API_ENV
from nutcracker.store.suggestions import SuggestionStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
APP = str(ROOT / "src" / "nutcracker" / "console" / "app.py")
DEMO_CONFIG = ROOT / "examples" / "grid-btc-usdt.toml"  # what serve --demo runs
SYMBOL = "BTC/USDT"
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with serve_stack(tmp_path_factory.mktemp("suggestions"), speed=20, console=False) as running:
        yield running


def _file(stack: Stack, sid: str, levels: int) -> None:
    """File a pending suggestion made against the demo's running config (the advisor's record shape)."""
    record = {
        "id": sid,
        "symbol": SYMBOL,
        "summary": f"grid.levels 5 -> {levels}: won 3 of 4 folds out of sample",
        "confidence": 0.75,
        "patch": {"grid": {"levels": levels}},
        "diff": {"grid.levels": {"from": 5, "to": levels}},
        "base_config_hash": symbol_table_hash(load_config(DEMO_CONFIG), SYMBOL),
    }
    now = time.time_ns() // 1_000_000
    journal = stack.tmp / "out" / "serve-demo" / "demo.db"
    SuggestionStore(journal).file(sid, SYMBOL, json.dumps(record), now - 1_000, now + DAY_MS)


def _page(stack: Stack, monkeypatch: pytest.MonkeyPatch, user: str, password: str, code: str = "") -> AppTest:
    monkeypatch.setenv(API_ENV, stack.api)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.text_input(key="login_user").input(user)
    at.text_input(key="login_password").input(password)
    if code:
        at.text_input(key="login_totp").input(code)
    next(b for b in at.button if b.label == "Log in").click()
    at.run()
    at.session_state["page"] = "Suggestions"
    at.run()
    return at


def _status(checker: ApiClient, sid: str) -> str:
    return str(checker.suggestion(SYMBOL, sid)["status"])


def test_the_owner_rejects_one_and_accepts_another_with_step_up(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    _file(stack, "s-reject", 2)
    _file(stack, "s-accept", 3)
    with ApiClient(stack.api) as checker:
        checker.login(WATCHER, WATCHER_PASSWORD)
        assert checker.params(SYMBOL)["params"]["grid"]["levels"] == 5
        at = _page(stack, monkeypatch, OWNER, OWNER_PASSWORD, stack.fresh_code())
        try:
            table = at.dataframe[0].value
            assert set(table["id"]) == {"s-reject", "s-accept"}
            assert set(table["status"]) == {"pending"}
            assert any("past performance does not predict" in c.value for c in at.caption)

            at.selectbox(key="suggestions_id").select("s-reject").run()
            next(b for b in at.button if b.label == "Reject").click()
            at.run()
            assert _status(checker, "s-reject") == "rejected"

            at.selectbox(key="suggestions_id").select("s-accept").run()
            next(b for b in at.button if b.label == "Accept").click()
            at.run()
            assert any("6-digit TOTP code" in e.value for e in at.error)
            assert checker.params(SYMBOL)["params"]["grid"]["levels"] == 5  # no code, no change

            at.text_input(key="suggestion_totp").input(stack.fresh_code())
            next(b for b in at.button if b.label == "Accept").click()
            at.run()
            assert _status(checker, "s-accept") == "accepted"
            assert checker.params(SYMBOL)["params"]["grid"]["levels"] == 3
            assert any("s-accept applied" in s.value for s in at.success), [e.value for e in at.error]
        finally:
            at.session_state["client"].close()


def test_a_viewer_sees_suggestions_but_cannot_decide(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    _file(stack, "s-viewer", 4)
    at = _page(stack, monkeypatch, WATCHER, WATCHER_PASSWORD)
    try:
        at.selectbox(key="suggestions_id").select("s-viewer").run()
        next(b for b in at.button if b.label == "Reject").click()
        at.run()
        assert any("needs owner" in e.value for e in at.error), [e.value for e in at.error]
    finally:
        at.session_state["client"].close()
    with ApiClient(stack.api) as checker:
        checker.login(WATCHER, WATCHER_PASSWORD)
        assert _status(checker, "s-viewer") == "pending"
