"""The auth store on a real SQLite file: what it refuses, what it keeps, and that its updates are atomic."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from auth_factories import T0
from nutcracker.api.auth import AuthStore, UsersError
from nutcracker.api.auth.store import AttemptRecord, RefreshUse
from nutcracker.core.commands import Role


@pytest.fixture
def store(tmp_path: Path) -> AuthStore:
    s = AuthStore.open(tmp_path / "users.db", create=True)
    s.add_user("alice", "$argon2id$fake", {"*": Role.OWNER}, T0)
    return s


def test_a_missing_users_file_is_refused_with_the_command_that_creates_it(tmp_path: Path) -> None:
    with pytest.raises(UsersError, match=r"no users file at .*nutcracker users add NAME --role owner"):
        AuthStore.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_a_new_users_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    AuthStore.open(tmp_path / "users.db", create=True).close()
    assert stat.S_IMODE((tmp_path / "users.db").stat().st_mode) == 0o600


def test_a_file_that_is_not_sqlite_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    path.write_text("name,password\nalice,secret\n" * 100)
    with pytest.raises(UsersError, match="is not a Nutcracker users file") as e:
        AuthStore.open(path)
    assert "\n" not in str(e.value)


def test_an_sqlite_file_of_something_else_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (seq INTEGER)")
    with pytest.raises(UsersError, match="not a Nutcracker users file"):
        AuthStore.open(path)
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"events"}


def test_a_duplicate_user_is_refused_and_the_first_is_kept(store: AuthStore) -> None:
    with pytest.raises(UsersError, match="already exists"):
        store.add_user("alice", "$argon2id$other", {"binance/main": Role.VIEWER}, T0)
    alice = store.user("alice")
    assert alice is not None
    assert (alice.password_hash, dict(alice.roles)) == ("$argon2id$fake", {"*": Role.OWNER})


def test_roles_per_account_round_trip_and_go_with_the_user(store: AuthStore) -> None:
    store.add_user("bob", "h", {"binance/main": Role.OPERATOR, "kraken/x": Role.VIEWER}, T0)
    assert store.roles("bob") == {"binance/main": Role.OPERATOR, "kraken/x": Role.VIEWER}
    assert store.remove_user("bob", T0)
    assert store.roles("bob") is None
    assert not store.remove_user("bob", T0)


def test_a_totp_step_is_accepted_once_and_never_an_earlier_one(store: AuthStore) -> None:
    assert store.claim_totp_step("alice", 100)
    assert not store.claim_totp_step("alice", 100)
    assert not store.claim_totp_step("alice", 99)
    assert store.claim_totp_step("alice", 101)


def test_a_refresh_token_is_fresh_once_then_reused(store: AuthStore) -> None:
    store.start_family("f1", "alice", T0)
    store.add_refresh("h1", "f1", T0, T0 + 100)
    assert store.use_refresh("h1", T0 + 1, families_since=0).outcome is RefreshUse.FRESH
    again = store.use_refresh("h1", T0 + 2, families_since=0)
    assert (again.outcome, again.family, again.user) == (RefreshUse.REUSED, "f1", "alice")
    assert store.use_refresh("nope", T0, families_since=0).outcome is RefreshUse.UNKNOWN


def test_an_expired_or_revoked_refresh_token_is_not_fresh(store: AuthStore) -> None:
    store.start_family("f1", "alice", T0)
    store.add_refresh("old", "f1", T0, T0 + 100)
    assert store.use_refresh("old", T0 + 100, families_since=0).outcome is RefreshUse.EXPIRED
    store.add_refresh("h2", "f1", T0, T0 + 100)
    store.revoke_family("f1", "logout", T0)
    assert store.use_refresh("h2", T0 + 1, families_since=0).outcome is RefreshUse.REVOKED


def test_revocations_persist_across_a_reopen(tmp_path: Path, store: AuthStore) -> None:
    store.start_family("f1", "alice", T0)
    store.revoke_token("jti-1", T0 + 300)
    store.revoke_family("f1", "logout", T0)
    store.close()
    reopened = AuthStore.open(tmp_path / "users.db")
    assert reopened.is_revoked("jti-1", "other-family")
    assert reopened.is_revoked("other-jti", "f1")
    assert not reopened.is_revoked("other-jti", "other-family")


def test_purge_forgets_only_revocations_that_can_no_longer_be_presented(store: AuthStore) -> None:
    store.revoke_token("short", T0 + 10)
    store.revoke_token("long", T0 + 1000)
    store.purge(T0 + 100)
    assert not store.is_revoked("short", "")
    assert store.is_revoked("long", "")


def test_concurrent_failure_counts_are_never_lost(store: AuthStore) -> None:
    def count(record: AttemptRecord | None) -> AttemptRecord:
        failures = 0 if record is None else record.failures
        return AttemptRecord(failures + 1, T0, 0, 0.0)

    def worker() -> None:
        for _ in range(25):
            store.update_attempts("user:alice", count)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = store.attempts("user:alice")
    assert record is not None
    assert record.failures == 200


def test_the_audit_lists_newest_first_up_to_the_limit(store: AuthStore) -> None:
    for i in range(5):
        store.record(T0 + i, "alice", "127.0.0.1", "login", f"n{i}")
    entries = store.audit(3)
    assert [e.detail for e in entries] == ["n4", "n3", "n2"]
    assert entries[0].client == "127.0.0.1"


def test_audit_entries_carry_the_names_the_api_audit_view_reads(store: AuthStore) -> None:
    store.record(T0 + 0.25, "alice", "127.0.0.1", "lockout", "user:alice locked for 30 s")
    entry = store.audit(1)[0]
    assert (entry.seq, entry.ts_ms, entry.action) == (entry.id, round((T0 + 0.25) * 1000), "lockout")


def test_remembered_answers_follow_this_stores_own_writes(store: AuthStore) -> None:
    store.start_family("f1", "alice", T0)
    assert not store.is_revoked("jti-1", "f1")  # read once, then answered from memory
    assert store.roles("alice") == {"*": Role.OWNER}
    store.revoke_token("jti-1", T0 + 300)
    assert store.is_revoked("jti-1", "f1")
    store.revoke_family("f1", "logout", T0)
    assert store.is_revoked("jti-2", "f1")
    store.remove_user("alice", T0)
    assert store.roles("alice") is None


def test_remembered_answers_follow_another_processs_writes(tmp_path: Path, store: AuthStore) -> None:
    """The server remembers; the `users` command (another connection) writes: seen on the next read."""
    store.start_family("f1", "alice", T0)
    store.add_user("bob", "$argon2id$fake", {"binance/main": Role.VIEWER}, T0)
    assert not store.is_revoked("jti-1", "f1")
    assert store.roles("bob") == {"binance/main": Role.VIEWER}
    other = AuthStore.open(tmp_path / "users.db")
    try:
        other.revoke_family("f1", "password changed", T0)
        assert store.is_revoked("jti-1", "f1")
        other.remove_user("bob", T0)
        assert store.roles("bob") is None
        other.add_user("bob", "$argon2id$fake", {"kraken/x": Role.OPERATOR}, T0)
        assert store.roles("bob") == {"kraken/x": Role.OPERATOR}
    finally:
        other.close()


def test_the_roles_a_caller_gets_are_a_copy(store: AuthStore) -> None:
    roles = store.roles("alice")
    assert roles is not None
    roles["binance/other"] = Role.VIEWER
    assert store.roles("alice") == {"*": Role.OWNER}


def test_bearer_answers_both_reads_and_sees_another_processs_writes(tmp_path: Path, store: AuthStore) -> None:
    """What every request asks, at once: is its token revoked, and what may its user do."""
    store.start_family("f1", "alice", T0)
    assert store.bearer("jti-1", "f1", "alice") == (False, {"*": Role.OWNER})
    other = AuthStore.open(tmp_path / "users.db")
    try:
        other.revoke_token("jti-1", T0 + 300)
        assert store.bearer("jti-1", "f1", "alice") == (True, {"*": Role.OWNER})
        other.remove_user("alice", T0)  # revokes her logins too
        assert store.bearer("jti-2", "f1", "alice") == (True, None)
    finally:
        other.close()
