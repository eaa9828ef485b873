"""The console's pages with Streamlit's ``AppTest`` (no browser) against a real ``serve --demo``:
login, the overview, the kill switch's confirmation, pause and resume, the parameter form refusing
without step-up, the end of a session when refresh fails, the audit filter, the Symbol page's candles
and planned levels."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_stack import OPERATOR, OPERATOR_PASSWORD, WATCHER, WATCHER_PASSWORD, Stack, serve_stack
from streamlit.testing.v1 import AppTest

from nutcracker.api.client import ApiClient
from nutcracker.console.session import API_ENV

try:
    import nutcracker.api.app  # noqa: F401  (serve --demo lands with the api branch)
except ImportError:
    SKIP: str | None = "nutcracker serve is not on this branch yet (nutcracker.api.app)"
else:
    SKIP = None

pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

APP = str(Path(__file__).resolve().parents[3] / "src" / "nutcracker" / "console" / "app.py")
SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with serve_stack(tmp_path_factory.mktemp("pages"), speed=20, console=False) as running:
        yield running


@pytest.fixture
def checker(stack: Stack) -> Iterator[ApiClient]:
    with ApiClient(stack.api) as client:
        client.login(WATCHER, WATCHER_PASSWORD)
        yield client


_RUNNING: list[AppTest] = []


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    while _RUNNING:
        at = _RUNNING.pop()
        if "client" in at.session_state:
            at.session_state["client"].close()


def _app(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(API_ENV, stack.api)
    at = AppTest.from_file(APP, default_timeout=30)
    _RUNNING.append(at)
    at.run()
    return at


def _login(at: AppTest, user: str = OPERATOR, password: str = OPERATOR_PASSWORD) -> AppTest:
    at.text_input(key="login_user").input(user)
    at.text_input(key="login_password").input(password)
    next(b for b in at.button if b.label == "Log in").click()
    at.run()
    return at


def _texts(at: AppTest) -> str:
    parts = [
        e.value for kind in (at.markdown, at.caption, at.error, at.warning, at.info, at.success) for e in kind
    ]
    return "\n".join(str(p) for p in parts)


def _button(at: AppTest, key: str) -> object:
    return at.button(key=key)


def test_login_page_has_the_disclaimer_and_refuses_a_wrong_password(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(stack, monkeypatch)
    assert "non-discretionary" in _texts(at)
    _login(at, password="not the password")
    assert any("login failed" in e.value for e in at.error), _texts(at)
    assert "user" not in at.session_state


def test_overview_shows_every_symbol_with_the_kill_switch_and_footer(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _login(_app(stack, monkeypatch))
    assert not at.exception
    assert [m.label for m in at.metric] == ["Realized PnL", "Fees", "Trading"]
    table = at.dataframe[0].value
    assert list(table["Symbol"]) == [SYMBOL]
    assert table["State"][0] in ("idle", "trading", "paused", "killed", "stalled")
    assert 0.0 <= table["Committed"][0] <= 1.0
    assert at.button(key="kill").label.startswith("KILL ALL")
    assert "non-discretionary" in _texts(at)


def test_the_kill_switch_asks_first_and_cancel_kills_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, checker: ApiClient
) -> None:
    at = _login(_app(stack, monkeypatch))
    at.button(key="kill").click().run()
    assert any("Kill every symbol?" in e.value for e in at.error)
    assert checker.symbol_status(SYMBOL)["status"] != "killed", "one click killed without confirmation"
    at.button(key="kill_cancel").click().run()
    assert not any("Kill every symbol?" in e.value for e in at.error)
    assert checker.symbol_status(SYMBOL)["status"] != "killed"


def test_pause_then_resume_through_the_api(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, checker: ApiClient
) -> None:
    at = _login(_app(stack, monkeypatch))
    at.button(key="pause").click().run()
    assert checker.symbol_status(SYMBOL)["status"] == "paused"
    assert any("now paused" in s.value for s in at.success)
    at.button(key="resume").click().run()
    assert checker.symbol_status(SYMBOL)["status"] != "paused"


def test_a_parameter_change_without_step_up_changes_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, checker: ApiClient
) -> None:
    before = checker.params(SYMBOL)
    at = _login(_app(stack, monkeypatch))
    at.session_state["page"] = "Parameters"
    at.run()
    at.text_input(key=f"p_{SYMBOL}_rails.max_base").input("0.1")
    at.text_input(key="params_reason").input("smaller rail")
    next(b for b in at.button if b.label == "Apply").click()
    at.run()
    assert any("6-digit TOTP code" in e.value for e in at.error), _texts(at)
    at.text_input(key="params_totp").input("123456")  # bob has no TOTP: the API refuses the step-up
    next(b for b in at.button if b.label == "Apply").click()
    at.run()
    assert any("TOTP" in e.value for e in at.error), _texts(at)
    assert checker.params(SYMBOL) == before


def test_a_refused_refresh_logs_out_with_a_reason(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _login(_app(stack, monkeypatch))
    client = at.session_state["client"]
    assert client._tokens is not None
    client._tokens.refresh = "revoked-or-stolen"
    client._tokens.access_expires_at = 0.0  # due: the next call refreshes, and is refused
    at.run()
    assert any(b.label == "Log in" for b in at.button)
    assert any("log in again" in i.value for i in at.info), _texts(at)


def test_audit_filters_by_actor(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _login(_app(stack, monkeypatch))
    at.session_state["page"] = "Audit"
    at.run()
    at.multiselect(key="audit_actor").select(OPERATOR).run()
    rows = at.dataframe[0].value
    assert len(rows) > 0
    assert set(rows["actor"]) == {OPERATOR}


def test_the_symbol_page_draws_candles_and_lists_the_planned_levels(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, checker: ApiClient
) -> None:
    deadline = time.monotonic() + 60
    while not (checker.orders(SYMBOL) and checker.levels(SYMBOL)["levels"]):
        assert time.monotonic() < deadline, "the demo grid rested no order within 60 s"
        time.sleep(0.5)
    at = _login(_app(stack, monkeypatch))
    at.session_state["page"] = "Symbol"
    at.run()
    assert not at.exception
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (figure,) = [f for f in figures if any(t["type"] == "candlestick" for t in f["data"])]
    (candles,) = [t for t in figure["data"] if t["type"] == "candlestick"]
    assert len(candles["x"]) == len(candles["open"]) > 0
    assert {"EMA", "Keltner band", "buy fills", "sell fills"} <= {t.get("name") for t in figure["data"]}
    low, high = figure["layout"]["yaxis"]["range"]
    assert low < min(candles["low"])
    assert max(candles["high"]) < high
    (levels,) = [d.value for d in at.dataframe if "why" in d.value.columns]
    assert set(levels["state"]) <= {"resting", "held", "not placed"}
    assert "resting" in set(levels["state"])
    waiting = levels[levels["state"] == "not placed"]
    assert len(waiting) > 0
    assert all(waiting["why"].str.len() > 0)
    assert any("planned orders resting or held" in c.value for c in at.caption), _texts(at)
