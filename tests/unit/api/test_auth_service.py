"""The token service with an injected clock: logins, lockouts, TOTP, refresh rotation, revocation, step-up."""

from __future__ import annotations

import os
from pathlib import Path

import jwt
import pytest

from auth_factories import PASSWORD, T0, MovableClock, cheap_passwords, code, make_users
from nutcracker.api.auth import (
    ACCESS_TTL_S,
    REFRESH_TTL_S,
    SESSION_MAX_S,
    STEP_UP_TTL_S,
    AuthService,
    AuthStore,
    UserAdmin,
    UsersError,
    key_path_for,
)
from nutcracker.api.auth.service import LOGIN_FAILED
from nutcracker.api.principal import AuthError, Principal, StepUpAction
from nutcracker.core.commands import Role

HERE = "10.0.0.1"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def users(tmp_path: Path, clock: MovableClock) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "users.db"
    secrets = make_users(
        path,
        clock,
        ("alice", Role.OWNER, [], True),
        ("bob", Role.OPERATOR, ["binance/main"], False),
        ("carol", Role.VIEWER, ["binance/main", "kraken/side"], True),
    )
    return path, secrets


@pytest.fixture
def service(users: tuple[Path, dict[str, str]], clock: MovableClock) -> AuthService:
    return AuthService.open(users[0], clock=clock, passwords=cheap_passwords())


def _refused(call: object, *args: object) -> AuthError:
    assert callable(call)
    with pytest.raises(AuthError) as e:
        call(*args)
    return e.value


def _login(service: AuthService, secrets: dict[str, str], user: str, clock: MovableClock) -> Principal:
    totp = code(secrets[user], clock.now) if user in secrets else None
    return service.authenticate(service.login(user, PASSWORD, totp, HERE).access_token)


# -- opening ----------------------------------------------------------------------------------------


def test_the_signing_key_is_made_at_first_start_owner_only_and_kept(
    users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    key = key_path_for(users[0])
    assert not key.exists()
    AuthService.open(users[0], clock=clock).close()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    first = key.read_bytes()
    AuthService.open(users[0], clock=clock).close()
    assert key.read_bytes() == first
    assert len(first) == 32


def test_a_signing_key_others_can_read_is_refused(
    users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    AuthService.open(users[0], clock=clock).close()
    os.chmod(key_path_for(users[0]), 0o640)
    with pytest.raises(UsersError, match=r"readable by others \(mode 0640\): run `chmod 600"):
        AuthService.open(users[0], clock=clock)


def test_a_users_file_without_users_is_refused(tmp_path: Path, clock: MovableClock) -> None:
    AuthStore.open(tmp_path / "empty.db", create=True).close()
    with pytest.raises(UsersError, match="holds no user: add one with `nutcracker users add"):
        AuthService.open(tmp_path / "empty.db", clock=clock)
    assert not key_path_for(tmp_path / "empty.db").exists()


# -- login ------------------------------------------------------------------------------------------


def test_a_login_issues_an_hs256_access_token_with_every_claim(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    pair = service.login("carol", PASSWORD, code(users[1]["carol"], clock.now), HERE)
    key = key_path_for(users[0]).read_bytes()
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"
    wall_clock_off = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}  # the token lives at T0
    claims = jwt.decode(
        pair.access_token, key, algorithms=["HS256"], audience="nutcracker-api", options=wall_clock_off
    )
    assert claims["sub"] == "carol"
    assert claims["role"] == "viewer"
    assert claims["roles"] == {"binance/main": "viewer", "kraken/side": "viewer"}
    assert claims["iss"] == "nutcracker"
    assert claims["iat"] == claims["nbf"] == int(T0)
    assert claims["exp"] - claims["iat"] == ACCESS_TTL_S <= 600
    assert len(claims["jti"]) >= 16
    assert pair.refresh_token not in pair.access_token
    principal = service.authenticate(pair.access_token)
    assert principal.user == "carol"
    assert principal.may("kraken/side", Role.VIEWER)
    assert not principal.may("kraken/side", Role.OPERATOR)
    assert principal.role_for("binance/other") is None


def test_the_role_claim_is_the_highest_of_the_users_roles(tmp_path: Path, clock: MovableClock) -> None:
    path = tmp_path / "users.db"
    make_users(path, clock, ("dave", Role.VIEWER, ["binance/a"], False))
    store = AuthStore.open(path)
    store.add_user(
        "erin", "x", {"binance/a": Role.VIEWER, "binance/b": Role.OWNER, "binance/c": Role.OPERATOR}, T0
    )
    store.close()
    service = AuthService.open(path, clock=clock, passwords=cheap_passwords())
    store = service.store
    store.set_password("erin", cheap_passwords().hash(PASSWORD), T0, end_sessions=False)
    pair = service.login("erin", PASSWORD, None, HERE)
    assert jwt.decode(pair.access_token, options={"verify_signature": False})["role"] == "owner"


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(service: AuthService) -> None:
    unknown = _refused(service.login, "mallory", PASSWORD, None, HERE)
    wrong = _refused(service.login, "bob", "not the password at all", None, HERE)
    assert (unknown.status, unknown.detail) == (wrong.status, wrong.detail) == (401, LOGIN_FAILED)


def test_a_user_with_totp_needs_a_valid_code(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    assert _refused(service.login, "alice", PASSWORD, None, HERE).detail == LOGIN_FAILED
    assert _refused(service.login, "alice", PASSWORD, "000000", HERE).detail == LOGIN_FAILED
    assert service.login("alice", PASSWORD, code(users[1]["alice"], clock.now), HERE).access_token


def test_a_totp_code_is_refused_the_second_time_within_its_window(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    used = code(users[1]["alice"], clock.now)
    service.login("alice", PASSWORD, used, HERE)
    clock.advance(10)  # same step: the code still matches, but it was used
    assert _refused(service.login, "alice", PASSWORD, used, HERE).status == 401
    clock.advance(30)  # the previous step is still inside the drift window: still refused
    assert _refused(service.login, "alice", PASSWORD, used, HERE).status == 401
    assert service.login("alice", PASSWORD, code(users[1]["alice"], clock.now), HERE).access_token
    failures = [e.detail for e in service.audit(10) if e.event == "login_failed"]
    assert failures == ["TOTP code reused", "TOTP code reused"]


def test_five_failures_lock_the_user_out_even_for_the_right_password(
    service: AuthService, clock: MovableClock
) -> None:
    for _ in range(5):
        assert _refused(service.login, "bob", "wrong password!!", None, HERE).status == 401
    locked = _refused(service.login, "bob", PASSWORD, None, "10.9.9.9")  # another address too
    assert (locked.status, locked.retry_after_s) == (429, 30)
    assert "try again in 30 s" in locked.detail
    clock.advance(30)
    assert service.login("bob", PASSWORD, None, HERE).access_token
    lockouts = [e for e in service.audit(20) if e.event == "lockout"]
    assert [(e.actor, e.detail) for e in lockouts] == [("bob", "user:bob locked for 30 s")]


def test_the_second_lockout_lasts_twice_as_long(service: AuthService, clock: MovableClock) -> None:
    for wait in (30, 60):
        for _ in range(5):
            _refused(service.login, "bob", "wrong password!!", None, HERE)
        assert _refused(service.login, "bob", PASSWORD, None, HERE).retry_after_s == wait
        clock.advance(wait)


def test_an_unknown_user_is_locked_out_exactly_like_a_real_one(service: AuthService) -> None:
    answers = {}
    for name in ("bob", "mallory"):
        seen = [_refused(service.login, name, "wrong password!!", None, HERE) for _ in range(6)]
        answers[name] = [(e.status, e.detail, e.retry_after_s) for e in seen]
    assert answers["bob"] == answers["mallory"]
    assert answers["bob"][-1][0] == 429


def test_many_failures_from_one_address_lock_that_address_only(
    service: AuthService, clock: MovableClock
) -> None:
    for i in range(20):  # four guesses each at five names: no user reaches its own threshold
        _refused(service.login, f"guess{i % 5}", "wrong password!!", None, "192.0.2.7")
    assert _refused(service.login, "bob", PASSWORD, None, "192.0.2.7").status == 429
    assert service.login("bob", PASSWORD, None, HERE).access_token


# -- refresh, logout, revocation --------------------------------------------------------------------


def test_a_refresh_rotates_both_tokens(service: AuthService) -> None:
    first = service.login("bob", PASSWORD, None, HERE)
    second = service.refresh(first.refresh_token, HERE)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert service.authenticate(second.access_token).user == "bob"


def test_reusing_a_refresh_token_revokes_the_whole_family_and_is_audited(service: AuthService) -> None:
    stolen = service.login("bob", PASSWORD, None, HERE)
    rotated = service.refresh(stolen.refresh_token, HERE)
    reuse = _refused(service.refresh, stolen.refresh_token, "203.0.113.5")
    assert (reuse.status, "already used" in reuse.detail) == (401, True)
    assert _refused(service.refresh, rotated.refresh_token, HERE).status == 401
    assert _refused(service.authenticate, rotated.access_token).status == 401
    assert _refused(service.authenticate, stolen.access_token).status == 401
    entry = service.audit(1)[0]
    assert (entry.event, entry.actor, entry.client) == ("refresh_reuse", "bob", "203.0.113.5")


def test_another_login_of_the_same_user_survives_a_theft_in_one_family(service: AuthService) -> None:
    phone = service.login("bob", PASSWORD, None, HERE)
    laptop = service.login("bob", PASSWORD, None, HERE)
    service.refresh(phone.refresh_token, HERE)
    _refused(service.refresh, phone.refresh_token, HERE)
    assert service.authenticate(laptop.access_token).user == "bob"


def test_an_unused_refresh_token_dies_after_its_lifetime(service: AuthService, clock: MovableClock) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    clock.advance(REFRESH_TTL_S)
    assert _refused(service.refresh, pair.refresh_token, HERE).status == 401


def test_a_login_refreshed_in_time_still_ends_after_the_session_maximum(
    service: AuthService, clock: MovableClock
) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    for _ in range(SESSION_MAX_S // (REFRESH_TTL_S - 60)):
        clock.advance(REFRESH_TTL_S - 60)
        pair = service.refresh(pair.refresh_token, HERE)
    clock.advance(REFRESH_TTL_S - 60)
    assert clock.now - T0 >= SESSION_MAX_S
    assert _refused(service.refresh, pair.refresh_token, HERE).status == 401


def test_a_users_file_others_can_read_is_refused(
    users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    os.chmod(users[0], 0o644)
    with pytest.raises(
        UsersError, match=r"users file .* is readable by others \(mode 0644\): run `chmod 600"
    ):
        AuthService.open(users[0], clock=clock)


def test_an_access_token_expires_and_is_not_valid_before_it_was_issued(
    service: AuthService, clock: MovableClock
) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    clock.advance(ACCESS_TTL_S - 1)
    assert service.authenticate(pair.access_token).user == "bob"
    clock.advance(1)
    assert "expired" in _refused(service.authenticate, pair.access_token).detail
    clock.now = T0 - 1
    assert "not yet valid" in _refused(service.authenticate, pair.access_token).detail


def test_logout_with_the_access_token_ends_the_session(service: AuthService) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    service.logout(pair.access_token, HERE)
    assert "revoked" in _refused(service.authenticate, pair.access_token).detail
    assert _refused(service.refresh, pair.refresh_token, HERE).status == 401


def test_logout_with_the_refresh_token_kills_the_sessions_access_tokens(service: AuthService) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    service.logout(pair.refresh_token, HERE)
    assert _refused(service.authenticate, pair.access_token).status == 401
    assert _refused(service.logout, "not-a-token", HERE).status == 401


def test_a_logout_survives_a_restart(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    service.logout(pair.access_token, HERE)
    service.close()
    restarted = AuthService.open(users[0], clock=clock, passwords=cheap_passwords())
    assert _refused(restarted.authenticate, pair.access_token).status == 401


def test_a_removed_user_is_refused_at_the_next_request(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    other = AuthStore.open(users[0])  # the `users remove` command: another connection
    UserAdmin(other, actor="cli:root", clock=clock).remove("bob")
    other.close()
    assert _refused(service.authenticate, pair.access_token).status == 401
    assert _refused(service.refresh, pair.refresh_token, HERE).status == 401


def test_a_new_password_ends_every_session_of_the_user(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    pair = service.login("bob", PASSWORD, None, HERE)
    UserAdmin(service.store, actor="cli:root", clock=clock, passwords=cheap_passwords()).passwd(
        "bob", "a brand new passphrase"
    )
    assert _refused(service.authenticate, pair.access_token).status == 401
    assert _refused(service.login, "bob", PASSWORD, None, HERE).status == 401
    assert service.login("bob", "a brand new passphrase", None, HERE).access_token


# -- step-up ----------------------------------------------------------------------------------------


def test_a_step_up_token_is_good_for_its_action_its_user_and_two_minutes(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    alice = _login(service, users[1], "alice", clock)
    clock.advance(30)
    token = service.step_up(alice, code(users[1]["alice"], clock.now), StepUpAction.PARAMS)
    service.check_step_up(alice, token, StepUpAction.PARAMS)
    other_action = _refused(service.check_step_up, alice, token, StepUpAction.RESUME_KILLED)
    assert (other_action.status, "is for 'params'" in other_action.detail) == (403, True)
    carol = _login(service, users[1], "carol", clock)
    assert "another user" in _refused(service.check_step_up, carol, token, StepUpAction.PARAMS).detail
    clock.advance(STEP_UP_TTL_S)
    assert "expired" in _refused(service.check_step_up, alice, token, StepUpAction.PARAMS).detail
    assert [e.detail for e in service.audit(5) if e.event == "step_up"] == ["params"]


def test_step_up_and_access_tokens_are_never_taken_for_each_other(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    pair = service.login("alice", PASSWORD, code(users[1]["alice"], clock.now), HERE)
    alice = service.authenticate(pair.access_token)
    clock.advance(30)
    step_up = service.step_up(alice, code(users[1]["alice"], clock.now), StepUpAction.USERS)
    assert _refused(service.authenticate, step_up).status == 401
    assert _refused(service.check_step_up, alice, pair.access_token, StepUpAction.USERS).status == 403


def test_a_user_without_totp_can_log_in_but_never_step_up(service: AuthService, clock: MovableClock) -> None:
    bob = service.authenticate(service.login("bob", PASSWORD, None, HERE).access_token)
    refused = _refused(service.step_up, bob, "123456", StepUpAction.PARAMS)
    assert refused.status == 403
    assert "nutcracker users totp enable bob" in refused.detail


def test_a_step_up_code_cannot_be_replayed_and_wrong_codes_count_toward_a_lockout(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    alice = _login(service, users[1], "alice", clock)
    login_code = code(users[1]["alice"], clock.now)
    assert _refused(service.step_up, alice, login_code, StepUpAction.PARAMS).status == 403  # used at login
    for _ in range(4):
        _refused(service.step_up, alice, "000000", StepUpAction.PARAMS)
    clock.advance(29)  # the fifth failure locked alice for 30 s: a fresh code must wait too
    fresh = code(users[1]["alice"], clock.now + 1)
    locked = _refused(service.step_up, alice, fresh, StepUpAction.PARAMS)
    assert (locked.status, locked.retry_after_s) == (429, 1)
    assert _refused(service.login, "alice", PASSWORD, fresh, HERE).status == 429
    clock.advance(1)
    service.check_step_up(alice, service.step_up(alice, fresh, StepUpAction.PARAMS), StepUpAction.PARAMS)


def test_the_audit_holds_no_password_hash_or_totp_secret(
    service: AuthService, users: tuple[Path, dict[str, str]], clock: MovableClock
) -> None:
    _login(service, users[1], "alice", clock)
    _refused(service.login, "bob", "my wrong password", None, HERE)
    _refused(service.login, "alice", PASSWORD, "111111", HERE)
    record = service.store.user("alice")
    assert record is not None
    text = repr(service.audit(100))
    for secret in (PASSWORD, "my wrong password", record.password_hash, users[1]["alice"]):
        assert secret not in text
