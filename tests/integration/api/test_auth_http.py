"""The auth router on a real uvicorn, driven by httpx: the JWT attack cases, refresh theft, step-up,
brute force, and that no response or log line carries a password, a hash, a TOTP secret or a
token other than the one the response issues."""

from __future__ import annotations

import base64
import json
import secrets
import statistics
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from auth_server import AuthServer, serve_auth
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.warnings import InsecureKeyLengthWarning

from auth_factories import PASSWORD, cheap_passwords, code
from nutcracker.api.auth import ACCESS_TTL_S, STEP_UP_TTL_S, AuthStore, Passwords, UserAdmin

PROBLEM = "application/problem+json"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AuthServer]:
    with serve_auth(tmp_path, cheap_passwords()) as running:
        yield running


@pytest.fixture
def http(server: AuthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def _login(http: httpx.Client, server: AuthServer, user: str, password: str = PASSWORD) -> dict[str, Any]:
    body: dict[str, Any] = {"username": user, "password": password}
    if user in server.totp:
        body["totp_code"] = code(server.totp[user], server.clock.now)
    answer = http.post("/api/v1/auth/login", json=body)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _protected(http: httpx.Client, token: str) -> httpx.Response:
    return http.get("/api/v1/protected", headers=_bearer(token))


def _assert_401(answer: httpx.Response, fragment: str = "") -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["www-authenticate"] == "Bearer"
    assert fragment in answer.json()["detail"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- the JWT attack cases ---------------------------------------------------------------------------


def test_a_token_forged_with_the_real_key_and_right_claims_passes(
    server: AuthServer, http: httpx.Client
) -> None:
    """The control for the forgeries below: the forging helper makes tokens the server would accept."""
    claims = _claims(_login(http, server, "bob")["access_token"])
    claims["jti"] = "forged-but-valid"
    assert _protected(http, jwt.encode(claims, server.key, algorithm="HS256")).json() == {"user": "bob"}


def test_alg_none_is_refused(server: AuthServer, http: httpx.Client) -> None:
    claims = _claims(_login(http, server, "bob")["access_token"])
    for alg in ("none", "None", "NONE"):
        unsigned = (
            f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."
        )
        _assert_401(_protected(http, unsigned), "invalid access token")


def test_other_algorithms_are_refused_even_with_the_real_key(server: AuthServer, http: httpx.Client) -> None:
    claims = _claims(_login(http, server, "bob")["access_token"])
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with (
        warnings.catch_warnings()
    ):  # PyJWT warns that 32 bytes are short for HS384/512: the attacker won't care
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        longer_hmacs = [jwt.encode(claims, server.key, algorithm=alg) for alg in ("HS384", "HS512")]
    forged = [
        *longer_hmacs,
        jwt.encode(claims, rsa_key, algorithm="RS256"),
        jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256"),  # the right alg, another key
    ]
    for token in forged:
        _assert_401(_protected(http, token), "invalid access token")


def test_a_tampered_payload_is_refused(server: AuthServer, http: httpx.Client) -> None:
    token = _login(http, server, "carol")["access_token"]
    header, _, signature = token.split(".")
    claims = _claims(token)
    claims.update(sub="alice", role="owner", roles={"*": "owner"})
    _assert_401(_protected(http, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"))


def test_an_expired_token_is_refused_with_the_way_to_refresh(server: AuthServer, http: httpx.Client) -> None:
    token = _login(http, server, "bob")["access_token"]
    server.clock.advance(ACCESS_TTL_S)
    _assert_401(_protected(http, token), "expired: get a new one at POST /api/v1/auth/refresh")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"nbf_ahead": 60}, "not yet valid"),
        ({"aud": "another-api"}, "invalid access token"),
        ({"iss": "someone-else"}, "invalid access token"),
        ({"aud": "nutcracker-step-up"}, "invalid access token"),
        ({"typ": "step-up"}, "invalid access token"),
    ],
    ids=["not-yet-valid", "wrong-aud", "wrong-iss", "step-up-aud", "step-up-typ"],
)
def test_a_token_signed_with_the_real_key_but_wrong_claims_is_refused(
    server: AuthServer, http: httpx.Client, change: dict[str, Any], fragment: str
) -> None:
    claims = _claims(_login(http, server, "bob")["access_token"])
    if "nbf_ahead" in change:
        claims["nbf"] = claims["iat"] = claims["iat"] + change.pop("nbf_ahead")
    claims.update(change)
    _assert_401(_protected(http, jwt.encode(claims, server.key, algorithm="HS256")), fragment)


def test_a_missing_or_non_bearer_authorization_is_refused(http: httpx.Client) -> None:
    _assert_401(http.get("/api/v1/protected"), "missing access token")
    _assert_401(
        http.get("/api/v1/protected", headers={"Authorization": "Basic YWxpY2U6cHc="}), "missing access token"
    )


# -- revocation -------------------------------------------------------------------------------------


def test_a_token_is_revoked_by_logout(server: AuthServer, http: httpx.Client) -> None:
    tokens = _login(http, server, "bob")
    assert _protected(http, tokens["access_token"]).status_code == 200
    assert http.post("/api/v1/auth/logout", headers=_bearer(tokens["access_token"])).status_code == 204
    _assert_401(_protected(http, tokens["access_token"]), "revoked")
    _assert_401(http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}))


def test_logout_with_the_refresh_token_in_the_body(server: AuthServer, http: httpx.Client) -> None:
    tokens = _login(http, server, "bob")
    assert (
        http.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    )
    _assert_401(_protected(http, tokens["access_token"]), "revoked")
    _assert_401(http.post("/api/v1/auth/logout"), "nothing to log out")


def test_refresh_token_reuse_revokes_the_family_the_rotated_token_too(
    server: AuthServer, http: httpx.Client
) -> None:
    stolen = _login(http, server, "bob")
    rotated = http.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert rotated.status_code == 200
    assert _protected(http, rotated.json()["access_token"]).status_code == 200
    reuse = http.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    _assert_401(reuse, "already used")
    _assert_401(http.post("/api/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}))
    _assert_401(_protected(http, rotated.json()["access_token"]), "revoked")
    assert server.service.audit(1)[0].event == "refresh_reuse"


def test_a_user_deleted_after_login_is_refused_at_once(server: AuthServer, http: httpx.Client) -> None:
    tokens = _login(http, server, "bob")
    store = AuthStore.open(server.users)  # as `nutcracker users remove` does, from another connection
    UserAdmin(store, actor="cli:root").remove("bob")
    store.close()
    _assert_401(_protected(http, tokens["access_token"]))
    _assert_401(http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}))


def test_me_reports_the_roles_the_store_has_now(server: AuthServer, http: httpx.Client) -> None:
    tokens = _login(http, server, "carol")
    me = http.get("/api/v1/auth/me", headers=_bearer(tokens["access_token"]))
    assert me.json() == {
        "user": "carol",
        "role": "viewer",
        "accounts": {"binance/main": "viewer"},
        "totp_enabled": True,
    }


# -- step-up ----------------------------------------------------------------------------------------


def _step_up(http: httpx.Client, server: AuthServer, access: str, user: str, action: str) -> httpx.Response:
    body = {"action": action, "totp_code": code(server.totp[user], server.clock.now)}
    return http.post("/api/v1/auth/step-up", json=body, headers=_bearer(access))


def _change_params(http: httpx.Client, access: str, step_up: str | None) -> httpx.Response:
    headers = _bearer(access) | ({"X-Step-Up-Token": step_up} if step_up else {})
    return http.put("/api/v1/params", headers=headers)


def _assert_403(answer: httpx.Response, fragment: str) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert fragment in answer.json()["detail"]


def test_a_step_up_route_needs_a_fresh_step_up_for_its_action_and_user(
    server: AuthServer, http: httpx.Client
) -> None:
    alice = _login(http, server, "alice")["access_token"]
    carol = _login(http, server, "carol")["access_token"]
    _assert_403(_change_params(http, alice, None), "POST /api/v1/auth/step-up")
    server.clock.advance(30)  # the login used this step's code
    granted = _step_up(http, server, alice, "alice", "params")
    assert granted.status_code == 200, granted.text
    assert (granted.json()["action"], granted.json()["expires_in"]) == ("params", STEP_UP_TTL_S)
    token = granted.json()["step_up_token"]
    assert _change_params(http, alice, token).json() == {"changed_by": "alice"}
    _assert_403(_change_params(http, carol, token), "another user")
    _assert_401(_protected(http, token), "invalid access token")  # a step-up token is no access token
    _assert_403(_change_params(http, alice, alice), "invalid step-up token")  # nor the reverse
    server.clock.advance(30)
    users_token = _step_up(http, server, alice, "alice", "users").json()["step_up_token"]
    _assert_403(_change_params(http, alice, users_token), "is for 'users'")
    server.clock.advance(STEP_UP_TTL_S)
    alice = _login(http, server, "alice")["access_token"]
    _assert_403(_change_params(http, alice, token), "expired")


def test_a_user_without_totp_is_told_how_to_enable_it(server: AuthServer, http: httpx.Client) -> None:
    bob = _login(http, server, "bob")["access_token"]
    answer = http.post(
        "/api/v1/auth/step-up", json={"action": "params", "totp_code": "123456"}, headers=_bearer(bob)
    )
    _assert_403(answer, "nutcracker users totp enable bob")


def test_a_replayed_totp_code_is_refused_at_login_and_at_step_up(
    server: AuthServer, http: httpx.Client
) -> None:
    used = code(server.totp["alice"], server.clock.now)
    first = http.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD, "totp_code": used}
    )
    assert first.status_code == 200
    again = http.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD, "totp_code": used}
    )
    _assert_401(again, "login failed")
    answer = http.post(
        "/api/v1/auth/step-up",
        json={"action": "params", "totp_code": used},
        headers=_bearer(first.json()["access_token"]),
    )
    _assert_403(answer, "wrong or already used")


# -- brute force ------------------------------------------------------------------------------------


def _failed_login(http: httpx.Client, user: str) -> httpx.Response:
    return http.post(
        "/api/v1/auth/login", json={"username": user, "password": "guess-" + secrets.token_hex(4)}
    )


def test_a_lockout_answers_429_with_retry_after(server: AuthServer, http: httpx.Client) -> None:
    for _ in range(5):
        _assert_401(_failed_login(http, "bob"))
    locked = http.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "30"
    assert locked.headers["content-type"] == PROBLEM
    assert locked.json()["detail"] == "too many failed attempts: try again in 30 s"
    server.clock.advance(30)
    assert _login(http, server, "bob")["access_token"]


def _answer(response: httpx.Response) -> tuple[int, str, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "content-length")}
    return response.status_code, response.text, headers


def test_an_unknown_user_gets_the_same_answers_as_a_wrong_password(
    server: AuthServer, http: httpx.Client
) -> None:
    known = [_answer(_failed_login(http, "bob")) for _ in range(6)]
    unknown = [_answer(_failed_login(http, "mallory")) for _ in range(6)]
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 5 + [429]


@pytest.mark.slow
def test_an_unknown_user_takes_as_long_as_a_wrong_password(tmp_path: Path) -> None:
    """Real-cost argon2 (64 MiB, the default): without the dummy hash an unknown user answers ~100x faster."""
    with (
        serve_auth(tmp_path, Passwords(PasswordHasher())) as server,
        httpx.Client(base_url=server.url) as http,
    ):

        def timed(user: str) -> float:
            start = time.perf_counter()
            assert _failed_login(http, user).status_code == 401
            return time.perf_counter() - start

        # four tries per name stay under the user lockout, 16 in all under the address lockout;
        # interleaved, so a burst of load on a shared machine slows both kinds alike
        known: list[float] = []
        unknown: list[float] = []
        for i in range(8):
            known.append(timed(("bob", "carol")[i % 2]))
            unknown.append(timed(f"nobody{i}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    # the leak this guards against is a ~100x gap: a wide band still catches it, and load does not
    assert 0.25 < ratio < 4.0, (
        f"unknown {statistics.median(unknown):.4f} s vs known {statistics.median(known):.4f} s"
    )


# -- nothing secret leaks ---------------------------------------------------------------------------


def test_no_response_or_log_line_carries_a_secret_or_a_token_it_did_not_issue(
    server: AuthServer, http: httpx.Client
) -> None:
    answers: list[httpx.Response] = []
    issued: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        answers.append(response)
        if response.status_code == 200 and response.headers["content-type"] == "application/json":
            body = response.json()
            issued.extend(
                str(body[k]) for k in ("access_token", "refresh_token", "step_up_token") if k in body
            )

    http.event_hooks["response"] = [keep]
    tokens = _login(http, server, "alice")
    _failed_login(http, "alice")
    http.post("/api/v1/auth/login", json={"username": "alice", "password": "x" * 2000})  # 422: too long
    http.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD, "totp_code": "12"}
    )  # 422
    rotated = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
    http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})  # reuse
    http.get("/api/v1/auth/me", headers=_bearer(rotated["access_token"]))
    server.clock.advance(30)
    fresh = _login(http, server, "alice")
    server.clock.advance(30)
    _step_up(http, server, fresh["access_token"], "alice", "params")
    _change_params(http, fresh["access_token"], fresh["refresh_token"])  # wrong token in the header
    http.post("/api/v1/auth/logout", headers=_bearer(fresh["access_token"]))
    _protected(http, fresh["access_token"])
    assert len(answers) == 12

    record = server.service.store.user("alice")
    assert record is not None
    forbidden = [PASSWORD, "x" * 2000, record.password_hash, server.totp["alice"]]
    for response in answers:
        text = response.text + json.dumps(dict(response.headers))
        assert not [s for s in forbidden if s in text], response.request.url
        own = set()
        if response.status_code == 200 and response.headers["content-type"] == "application/json":
            own = {str(v) for v in response.json().values()}
        assert not [t for t in issued if t in text and t not in own], (
            response.request.url,
            response.status_code,
        )
    logged = "\n".join(server.logs.lines)
    assert "POST /api/v1/auth/login" in logged  # the access log was captured
    for secret in [*forbidden, *issued]:
        assert secret not in logged


def test_the_published_openapi_declares_every_auth_error_as_problem_json(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    declared = {}
    for path, operations in spec["paths"].items():
        if path.startswith("/api/v1/auth/"):
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    if status.startswith("4"):
                        declared[(path, status)] = sorted(response["content"])
    assert declared[("/api/v1/auth/login", "429")] == [PROBLEM]
    assert declared[("/api/v1/auth/step-up", "403")] == [PROBLEM]
    assert set(map(tuple, declared.values())) == {(PROBLEM,)}
    invalid = http.post("/api/v1/auth/login", json={"username": "", "password": "pw", "extra": 1})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == PROBLEM
    assert {e["field"] for e in invalid.json()["errors"]} == {"username", "extra"}
