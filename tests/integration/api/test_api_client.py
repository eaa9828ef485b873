"""``nutcracker.api.client`` against the real auth router on a real uvicorn (the test moves both
clocks): one login's tokens kept fresh silently, the session ended when refresh is refused, a step-up
token reused while valid, and every failure one ``ApiError`` with the API's own words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auth_server import AuthServer, serve_auth

from auth_factories import PASSWORD, cheap_passwords, code
from nutcracker.api.auth import ACCESS_TTL_S, STEP_UP_TTL_S
from nutcracker.api.client import ApiClient, ApiError, SessionEndedError


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AuthServer]:
    with serve_auth(tmp_path, cheap_passwords()) as running:
        yield running


_OPEN: list[ApiClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def _client(server: AuthServer) -> ApiClient:
    client = ApiClient(server.url, clock=server.clock)
    _OPEN.append(client)
    return client


def _login(server: AuthServer, user: str = "alice") -> ApiClient:
    client = _client(server)
    client.login(user, PASSWORD, code(server.totp[user], server.clock.now) if user in server.totp else None)
    return client


def test_a_refused_login_is_the_apis_message_and_no_session(server: AuthServer) -> None:
    client = _client(server)
    with pytest.raises(ApiError) as refused:
        client.login("alice", "not the password", code(server.totp["alice"], server.clock.now))
    assert refused.value.status == 401
    assert "login failed" in refused.value.detail
    assert not client.logged_in
    with pytest.raises(SessionEndedError):
        client.me()


def test_a_login_reads_who_it_is(server: AuthServer) -> None:
    me = _login(server).me()
    assert me["user"] == "alice"
    assert me["totp_enabled"] is True


def test_an_access_token_about_to_expire_is_refreshed_before_the_call(server: AuthServer) -> None:
    client = _login(server, "bob")
    first = client._tokens
    server.clock.now += ACCESS_TTL_S - 10  # inside the refresh margin: the old token still works
    assert client.me()["user"] == "bob"
    assert client._tokens is not None
    assert first is not None
    assert client._tokens.refresh != first.refresh, "the refresh token was not rotated"


def test_a_401_is_refreshed_once_and_the_call_retried(server: AuthServer) -> None:
    frozen = [server.clock.now]
    client = ApiClient(server.url, clock=lambda: frozen[0])  # believes its token is fresh
    _OPEN.append(client)
    client.login("bob", PASSWORD)
    server.clock.now += ACCESS_TTL_S + 1  # the server says it expired
    assert client.me()["user"] == "bob"


def test_a_refused_refresh_ends_the_session(server: AuthServer) -> None:
    client = _login(server, "bob")
    assert client._tokens is not None
    stolen = client._tokens.refresh
    answer = httpx.post(f"{server.url}/api/v1/auth/refresh", json={"refresh_token": stolen}, timeout=10)
    assert answer.status_code == 200  # someone else used it first: the family is revoked on reuse
    server.clock.now += ACCESS_TTL_S + 1
    with pytest.raises(SessionEndedError) as ended:
        client.me()
    assert "log in again" in ended.value.detail
    assert not client.logged_in


def test_a_step_up_token_is_kept_while_valid(server: AuthServer) -> None:
    client = _login(server)
    assert client.step_up_token("params") is None
    server.clock.now += 30  # a fresh TOTP step: a code is accepted once
    token = client.step_up("params", code(server.totp["alice"], server.clock.now))
    assert client.step_up_token("params") == token
    assert client.step_up_token("resume_killed") is None, "a step-up is scoped to its action"
    server.clock.now += STEP_UP_TTL_S
    assert client.step_up_token("params") is None


def test_a_wrong_step_up_code_is_the_apis_message(server: AuthServer) -> None:
    client = _login(server)
    with pytest.raises(ApiError) as refused:
        client.step_up("params", "000000")
    assert refused.value.status == 403
    assert client.step_up_token("params") is None


def test_logout_revokes_the_session_on_the_server(server: AuthServer) -> None:
    client = _login(server, "bob")
    assert client._tokens is not None
    refresh = client._tokens.refresh
    client.logout()
    assert not client.logged_in
    answer = httpx.post(f"{server.url}/api/v1/auth/refresh", json={"refresh_token": refresh}, timeout=10)
    assert answer.status_code == 401


def test_an_api_that_does_not_answer_is_one_clear_message() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ApiClient(f"http://127.0.0.1:{port}", timeout_s=2) as client, pytest.raises(ApiError) as unreachable:
        client.login("alice", "x")
    assert unreachable.value.status == 0
    assert "nothing answers there" in unreachable.value.detail
    assert "Traceback" not in unreachable.value.detail
