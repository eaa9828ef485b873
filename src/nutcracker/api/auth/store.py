"""The auth store: users, roles per account, refresh-token families, revocations, throttles, audit.

One SQLite file (``--users FILE``, default ``nutcracker-users.db``), created with mode 0600. It keeps
no secret in the clear but the TOTP seeds, which the server needs to check a code: the file is the
server's, like the signing key beside it. Refresh tokens are stored only as SHA-256 hashes (they are
256-bit random, so a fast hash is enough); passwords only as argon2id hashes.

Every method is one short transaction under a lock: the API's worker threads and the ``users``
command (another process, through WAL) share the file, and a removed user is seen on the next request.

The two reads every API request makes (``is_revoked``, ``roles``; both at once: ``bearer``) are
answered from memory: the answers are kept until the file changes. This connection's own writes
drop them at commit, and a commit by any other connection (the ``users`` command) moves SQLite's
``PRAGMA data_version``, which each of those reads checks first (a read of the WAL index, no query
of the tables; ``bearer`` checks it once for both). So a logout, a removed user or a new password
still takes effect on the very next request.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from nutcracker.core.commands import Role
from nutcracker.errors import NutcrackerError

__all__ = [
    "AttemptRecord",
    "AuditEntry",
    "AuthStore",
    "RefreshLookup",
    "RefreshUse",
    "UserRecord",
    "UsersError",
]

_SCHEMA_VERSION: Final = 1
_REMEMBERED_MAX: Final = 10_000  # answers kept between changes (one per live access token)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    totp_last_step INTEGER NOT NULL DEFAULT -1,  -- the last accepted TOTP step: a code is good once
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    account TEXT NOT NULL,                       -- "exchange/keyname", or "*" for every account
    role TEXT NOT NULL,
    PRIMARY KEY (user, account)
);
CREATE TABLE IF NOT EXISTS refresh_families (
    family TEXT PRIMARY KEY,                     -- one login's chain of rotated refresh tokens
    user TEXT NOT NULL,
    created REAL NOT NULL,
    revoked_at REAL,
    revoked_why TEXT
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL REFERENCES refresh_families(family) ON DELETE CASCADE,
    issued REAL NOT NULL,
    expires REAL NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS login_attempts (
    key TEXT PRIMARY KEY,                        -- "user:NAME" or "client:ADDRESS"
    failures INTEGER NOT NULL,
    last_failure REAL NOT NULL,
    lockouts INTEGER NOT NULL,
    locked_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    client TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class UsersError(NutcrackerError):
    """The users file or a user change is refused; the message names the fix and never a secret."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    password_hash: str
    totp_secret: str | None
    totp_last_step: int
    created: float
    roles: Mapping[str, Role]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """Failed logins counted under one key (a user name or a client address)."""

    failures: int
    last_failure: float
    lockouts: int
    locked_until: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One auth event: who (``actor``), from where (``client``), what (``event``, ``detail``), when."""

    id: int
    ts: float
    actor: str
    client: str
    event: str
    detail: str

    # the names the API's audit view reads (the journal's audit rows use them)
    @property
    def seq(self) -> int:
        return self.id

    @property
    def ts_ms(self) -> int:
        return round(self.ts * 1000)

    @property
    def action(self) -> str:
        return self.event


class RefreshUse(StrEnum):
    """What presenting a refresh token found."""

    FRESH = "fresh"  # unused, unexpired, its family alive: it is now used
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"  # its family was revoked (logout, theft, new password)
    REUSED = "reused"  # already used once: a copy is in someone else's hands


@dataclass(frozen=True, slots=True)
class RefreshLookup:
    outcome: RefreshUse
    family: str = ""
    user: str = ""


class AuthStore:
    """The SQLite auth store; ``open`` refuses a file that is missing (unless ``create``) or not ours."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._lock = threading.Lock()
        # answers of is_revoked and roles, valid while the file is unchanged (module docstring)
        self._seen_version = -1
        self._revoked: dict[tuple[str, str], bool] = {}
        self._roles_of: dict[str, dict[str, Role] | None] = {}

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> AuthStore:
        if not path.exists():
            if not create:
                raise UsersError(
                    f"no users file at {path}: create it with `nutcracker users add NAME --role owner "
                    f"--users {path}`, or point --users at the existing one"
                )
            # created owner-only before SQLite writes a byte into it
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise UsersError(f"{path} is not a Nutcracker users file ({e}): check --users") from None
        if version > _SCHEMA_VERSION:
            db.close()
            raise UsersError(f"{path} was written by a newer Nutcracker (schema {version}): upgrade first")
        if tables and "users" not in tables:
            db.close()
            raise UsersError(f"{path} is an SQLite file but not a Nutcracker users file: check --users")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        return cls(path, db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._forget()  # our own commits do not move data_version
            self._db.execute("COMMIT")

    def _forget(self) -> None:
        self._revoked.clear()
        self._roles_of.clear()

    def _check_unchanged(self) -> None:
        """Drop the remembered answers when another connection committed since they were read (lock held)."""
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._seen_version or len(self._revoked) > _REMEMBERED_MAX:
            self._seen_version = version
            self._forget()

    # -- users -------------------------------------------------------------------------------------

    def add_user(self, name: str, password_hash: str, roles: Mapping[str, Role], now: float) -> None:
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise UsersError(
                    f"user {name!r} already exists: pick another name, or `users remove` it first"
                )
            db.execute(
                "INSERT INTO users (name, password_hash, created) VALUES (?, ?, ?)",
                (name, password_hash, now),
            )
            db.executemany(
                "INSERT INTO roles (user, account, role) VALUES (?, ?, ?)",
                [(name, account, role.value) for account, role in roles.items()],
            )

    def remove_user(self, name: str, now: float) -> bool:
        with self._transaction() as db:
            gone = db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount == 1
            self._revoke_families(db, name, "user removed", now)
        return gone

    def set_password(self, name: str, password_hash: str, now: float, *, end_sessions: bool) -> bool:
        """Store a new hash; ``end_sessions`` revokes every login of the user, so all their tokens die."""
        with self._transaction() as db:
            found = db.execute(
                "UPDATE users SET password_hash=? WHERE name=?", (password_hash, name)
            ).rowcount
            if end_sessions:  # a new password; not an argon2 parameter upgrade at login
                self._revoke_families(db, name, "password changed", now)
        return found == 1

    def set_totp_secret(self, name: str, secret: str) -> bool:
        with self._transaction() as db:
            sql = "UPDATE users SET totp_secret=?, totp_last_step=-1 WHERE name=?"
            return db.execute(sql, (secret, name)).rowcount == 1

    def claim_totp_step(self, name: str, step: int) -> bool:
        """Record ``step`` as used; False when it (or a later one) was used already: a replayed code."""
        with self._transaction() as db:
            sql = "UPDATE users SET totp_last_step=? WHERE name=? AND totp_last_step < ?"
            return db.execute(sql, (step, name, step)).rowcount == 1

    def user(self, name: str) -> UserRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, password_hash, totp_secret, totp_last_step, created FROM users WHERE name=?",
                (name,),
            ).fetchone()
            if row is None:
                return None
            name, password_hash, totp_secret, totp_last_step, created = row
            return UserRecord(name, password_hash, totp_secret, totp_last_step, created, self._roles(name))

    def users(self) -> list[UserRecord]:
        with self._lock:
            names = [r[0] for r in self._db.execute("SELECT name FROM users ORDER BY name")]
        return [u for u in (self.user(n) for n in names) if u is not None]

    def roles(self, name: str) -> dict[str, Role] | None:
        """The user's roles per account, or None when the user is gone."""
        with self._lock:
            self._check_unchanged()
            return self._known_roles(name)

    def bearer(self, jti: str, family: str, name: str) -> tuple[bool, dict[str, Role] | None]:
        """``is_revoked(jti, family)`` and ``roles(name)`` at once, as every request asks them: the
        file is checked for other connections' commits once, not twice (a fifth of a request's CPU)."""
        with self._lock:
            self._check_unchanged()
            return self._known_revoked(jti, family), self._known_roles(name)

    def _known_roles(self, name: str) -> dict[str, Role] | None:
        if name in self._roles_of:
            known = self._roles_of[name]
            return None if known is None else dict(known)
        if self._db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is None:
            found = None
        else:
            found = self._roles(name)
        self._roles_of[name] = found
        return None if found is None else dict(found)

    def _roles(self, name: str) -> dict[str, Role]:
        rows = self._db.execute("SELECT account, role FROM roles WHERE user=? ORDER BY account", (name,))
        return {account: Role(role) for account, role in rows}

    # -- refresh-token families and revocations ----------------------------------------------------

    def start_family(self, family: str, user: str, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO refresh_families (family, user, created) VALUES (?, ?, ?)", (family, user, now)
            )

    def add_refresh(self, token_hash: str, family: str, now: float, expires: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO refresh_tokens (token_hash, family, issued, expires) VALUES (?, ?, ?, ?)",
                (token_hash, family, now, expires),
            )

    def use_refresh(self, token_hash: str, now: float, *, families_since: float) -> RefreshLookup:
        """Mark a refresh token used, atomically: of two presenting the same token, one sees REUSED.

        A login (family) started before ``families_since`` has expired, however often it was refreshed.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT t.family, f.user, t.expires, t.used_at, f.revoked_at, f.created "
                "FROM refresh_tokens t JOIN refresh_families f ON f.family = t.family WHERE t.token_hash=?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return RefreshLookup(RefreshUse.UNKNOWN)
            family, user, expires, used_at, revoked_at, created = row
            if revoked_at is not None:
                outcome = RefreshUse.REVOKED
            elif used_at is not None:
                outcome = RefreshUse.REUSED
            elif now >= expires or created < families_since:
                outcome = RefreshUse.EXPIRED
            else:
                db.execute("UPDATE refresh_tokens SET used_at=? WHERE token_hash=?", (now, token_hash))
                outcome = RefreshUse.FRESH
            return RefreshLookup(outcome, family, user)

    def refresh_family(self, token_hash: str) -> RefreshLookup:
        """Which login a refresh token belongs to, without using it (logout)."""
        with self._lock:
            row = self._db.execute(
                "SELECT t.family, f.user FROM refresh_tokens t "
                "JOIN refresh_families f ON f.family = t.family WHERE t.token_hash=?",
                (token_hash,),
            ).fetchone()
        return RefreshLookup(RefreshUse.UNKNOWN) if row is None else RefreshLookup(RefreshUse.FRESH, *row)

    def revoke_family(self, family: str, why: str, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE refresh_families SET revoked_at=?, revoked_why=? "
                "WHERE family=? AND revoked_at IS NULL",
                (now, why, family),
            )

    @staticmethod
    def _revoke_families(db: sqlite3.Connection, user: str, why: str, now: float) -> None:
        db.execute(
            "UPDATE refresh_families SET revoked_at=?, revoked_why=? WHERE user=? AND revoked_at IS NULL",
            (now, why, user),
        )

    def revoke_token(self, jti: str, expires: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO revoked_tokens (jti, expires) VALUES (?, ?)", (jti, expires))

    def is_revoked(self, jti: str, family: str) -> bool:
        """True when the token itself, or the login (refresh family) it belongs to, was revoked."""
        with self._lock:
            self._check_unchanged()
            return self._known_revoked(jti, family)

    def _known_revoked(self, jti: str, family: str) -> bool:
        known = self._revoked.get((jti, family))
        if known is not None:
            return known
        row = self._db.execute(
            "SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti=?) OR "
            "EXISTS(SELECT 1 FROM refresh_families WHERE family=? AND revoked_at IS NOT NULL)",
            (jti, family),
        ).fetchone()
        self._revoked[(jti, family)] = revoked = bool(row[0])
        return revoked

    def family_alive(self, family: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM refresh_families WHERE family=? AND revoked_at IS NULL", (family,)
            ).fetchone()
            return row is not None

    def purge(self, now: float) -> None:
        """Forget revocations and refresh tokens past their expiry: they can no longer be presented."""
        with self._transaction() as db:
            db.execute("DELETE FROM revoked_tokens WHERE expires < ?", (now,))
            db.execute("DELETE FROM refresh_tokens WHERE expires < ?", (now,))
            db.execute(
                "DELETE FROM login_attempts WHERE locked_until < ? AND last_failure < ?", (now, now - 86_400)
            )

    # -- login throttles ---------------------------------------------------------------------------

    def attempts(self, key: str) -> AttemptRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT failures, last_failure, lockouts, locked_until FROM login_attempts WHERE key=?",
                (key,),
            ).fetchone()
            return None if row is None else AttemptRecord(*row)

    def update_attempts(
        self, key: str, update: Callable[[AttemptRecord | None], AttemptRecord]
    ) -> AttemptRecord:
        """Replace a key's record by ``update(record)`` atomically (concurrent failures all count)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT failures, last_failure, lockouts, locked_until FROM login_attempts WHERE key=?",
                (key,),
            ).fetchone()
            record = update(None if row is None else AttemptRecord(*row))
            db.execute(
                "INSERT OR REPLACE INTO login_attempts (key, failures, last_failure, lockouts, locked_until) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, record.failures, record.last_failure, record.lockouts, record.locked_until),
            )
        return record

    def clear_attempts(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM login_attempts WHERE key=?", (key,))

    # -- audit -------------------------------------------------------------------------------------

    def record(self, ts: float, actor: str, client: str, event: str, detail: str = "") -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO audit (ts, actor, client, event, detail) VALUES (?, ?, ?, ?, ?)",
                (ts, actor, client, event, detail),
            )

    def audit(self, limit: int) -> list[AuditEntry]:
        """The ``limit`` latest entries, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, ts, actor, client, event, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [AuditEntry(*row) for row in rows]
