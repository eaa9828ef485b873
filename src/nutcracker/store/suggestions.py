"""The advisor's suggestions, in a table of their own in the journal file.

The ``Journal`` port is not involved: this table is written by the advisor (new suggestions) and
by the user's decision (accepted, rejected), and read by ``nutcracker suggestions``. A record's
JSON never changes once filed (a trigger refuses it); only its status moves, once, from pending.
``Suggestions`` is that contract; ``store.redis_suggestions`` keeps it in Redis for scale-out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from nutcracker.store.migrations import JournalError, check_file

PENDING: Final = "pending"
ACCEPTED: Final = "accepted"
REJECTED: Final = "rejected"
EXPIRED: Final = "expired"
STATUSES: Final = (PENDING, ACCEPTED, REJECTED, EXPIRED)

_SCHEMA = (
    f"""
    CREATE TABLE IF NOT EXISTS suggestions (
        id TEXT PRIMARY KEY,
        symbol TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
        created_ts_ms INTEGER NOT NULL,
        expires_ts_ms INTEGER NOT NULL,
        decided_ts_ms INTEGER NOT NULL DEFAULT -1,
        decided_by TEXT NOT NULL DEFAULT '',
        record_json TEXT NOT NULL          -- the suggestion as filed (nutcracker.advisor.suggestion)
    ) STRICT
    """,
    """
    CREATE TRIGGER IF NOT EXISTS suggestions_are_filed_once BEFORE UPDATE OF id, symbol, record_json
    ON suggestions BEGIN SELECT RAISE(ABORT, 'a filed suggestion does not change'); END
    """,
)
_COLUMNS = "id, symbol, status, created_ts_ms, expires_ts_ms, decided_ts_ms, decided_by, record_json"


@dataclass(frozen=True, slots=True)
class StoredSuggestion:
    id: str
    symbol: str
    status: str
    created_ts_ms: int
    expires_ts_ms: int
    decided_ts_ms: int
    decided_by: str
    record_json: str


class Suggestions(Protocol):
    """Where suggestions are kept: filed once, their status moved once from pending."""

    def file(
        self, suggestion_id: str, symbol: str, record_json: str, created_ts_ms: int, expires_ts_ms: int
    ) -> bool:
        """File a pending suggestion; False if one with this id (the same content) is already filed."""
        ...

    def expire(self, now_ms: int) -> int:
        """Mark the pending suggestions whose time ran out as expired; return how many."""
        ...

    def all(self) -> list[StoredSuggestion]:
        """Return every suggestion, newest first (by id within the same millisecond)."""
        ...

    def get(self, suggestion_id: str) -> StoredSuggestion | None: ...

    def decide(self, suggestion_id: str, status: str, actor: str, ts_ms: int) -> bool:
        """Move a pending suggestion to ``status`` (accepted or rejected); False if it is not pending."""
        ...


def check_decision(status: str) -> None:
    """Refuse a status a user cannot decide (expiry is the store's own)."""
    if status not in (ACCEPTED, REJECTED):
        raise ValueError(f"a user decides accepted or rejected, not {status!r}")


class SuggestionStore:
    """The suggestions table of one journal file; every call is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        """Open the journal file's suggestions table (created if missing).

        Raises:
            JournalError: the file does not exist or is not SQLite.
        """
        self._path = Path(path)
        if not self._path.is_file():
            raise JournalError(f"{self._path}: no such journal file; check the path (--journal)")
        try:
            with self._connect() as conn:
                check_file(conn, str(self._path))  # a journal, not any SQLite file
                for statement in _SCHEMA:
                    conn.execute(statement)
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{self._path}: cannot keep suggestions in it ({e}); check --journal") from e

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self._path, timeout=5.0, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def file(
        self, suggestion_id: str, symbol: str, record_json: str, created_ts_ms: int, expires_ts_ms: int
    ) -> bool:
        """File a pending suggestion; False if one with this id (the same content) is already filed."""
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO suggestions (id, symbol, status, created_ts_ms, expires_ts_ms, record_json)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (suggestion_id, symbol, PENDING, created_ts_ms, expires_ts_ms, record_json),
            )
            return cursor.rowcount == 1

    def expire(self, now_ms: int) -> int:
        """Mark the pending suggestions whose time ran out as expired; return how many."""
        with self._connect() as conn:
            return conn.execute(
                "UPDATE suggestions SET status = ?, decided_ts_ms = ?, decided_by = 'expiry'"
                " WHERE status = ? AND expires_ts_ms <= ?",
                (EXPIRED, now_ms, PENDING, now_ms),
            ).rowcount

    def all(self) -> list[StoredSuggestion]:
        """Return every suggestion, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM suggestions ORDER BY created_ts_ms DESC, id"
            ).fetchall()
        return [StoredSuggestion(*row) for row in rows]

    def get(self, suggestion_id: str) -> StoredSuggestion | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM suggestions WHERE id = ?", (suggestion_id,)
            ).fetchone()
        return None if row is None else StoredSuggestion(*row)

    def decide(self, suggestion_id: str, status: str, actor: str, ts_ms: int) -> bool:
        """Move a pending suggestion to ``status`` (accepted or rejected); False if it is not pending."""
        check_decision(status)
        with self._connect() as conn:
            return (
                conn.execute(
                    "UPDATE suggestions SET status = ?, decided_ts_ms = ?, decided_by = ?"
                    " WHERE id = ? AND status = ?",
                    (status, ts_ms, actor, suggestion_id, PENDING),
                ).rowcount
                == 1
            )
