"""The SQLite journal's schema as ordered migration steps, tracked by ``PRAGMA user_version``.

Step ``n`` (1-based) takes a file from version ``n - 1`` to ``n``; each runs in its own
transaction together with the version bump, so a crash mid-migration leaves the previous
version intact. Never edit a released step: append a new one. A file whose version is newer
than ``LATEST_VERSION`` was written by a newer Nutcracker and is refused.

Quote-unit amounts (``*_qu``, ``fee``) are TEXT holding decimal integers: they can exceed
SQLite's 64-bit INTEGER. Tables are STRICT (SQLite >= 3.37), so a wrong type fails loudly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from nutcracker.errors import JournalError

__all__ = [
    "APPLICATION_ID",
    "LATEST_VERSION",
    "MIGRATIONS",
    "MIN_SQLITE",
    "JournalDamagedError",
    "JournalError",
    "JournalVersionError",
    "check_file",
    "check_integrity",
    "fix_for",
    "is_damage",
    "migrate",
    "schema_version",
]

# "NUTC": marks a SQLite file as a Nutcracker journal, so another application's file is refused.
APPLICATION_ID = 0x4E555443
MIN_SQLITE = (3, 37, 0)  # STRICT tables


class JournalDamagedError(JournalError):
    """The journal file is damaged (not a database, or ``PRAGMA quick_check`` failed)."""


class JournalVersionError(JournalError):
    """The journal file was written by a newer Nutcracker, or is not a Nutcracker journal."""


Migration = tuple[str, ...]  # the statements of one step, run in one transaction

# ``core.commands.tagged_command_id`` in SQL, on a detail ``{d}``: the id between its first
# ``command=`` and the `` role=`` after it, when there is one.
_REST = "substr({d}, instr({d}, 'command=') + 8)"
_TAGGED = "instr({d}, 'command=') > 0 AND instr(" + _REST + ", ' role=') > 1"
_TAGGED_ID = "substr(" + _REST + ", 1, instr(" + _REST + ", ' role=') - 1)"

MIGRATIONS: tuple[Migration, ...] = (
    # 1: events log and read models.
    (
        f"PRAGMA application_id = {APPLICATION_ID}",
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            ts_ms INTEGER NOT NULL,
            symbol TEXT NOT NULL,          -- '' for account-wide events (audit)
            kind TEXT NOT NULL,            -- pulse, intents, status, params, audit
            payload TEXT NOT NULL          -- JSON, see nutcracker.core.records
        ) STRICT
        """,
        "CREATE INDEX events_by_symbol ON events (symbol, seq)",
        """
        CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
        """,
        """
        CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
        """,
        """
        CREATE TABLE symbols (
            symbol TEXT PRIMARY KEY,
            state_json TEXT NOT NULL,      -- opaque strategy state; '' until one was stored
            last_fill_ts_ms INTEGER NOT NULL DEFAULT -1,
            status TEXT NOT NULL,
            status_reason TEXT NOT NULL DEFAULT '',
            updated_ts_ms INTEGER NOT NULL
        ) STRICT
        """,
        """
        CREATE TABLE fills (
            symbol TEXT NOT NULL REFERENCES symbols (symbol),
            trade_id TEXT NOT NULL,
            client_order_id TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            price INTEGER NOT NULL,        -- ticks
            qty INTEGER NOT NULL,          -- lots
            fee TEXT NOT NULL,             -- qu
            ts_ms INTEGER NOT NULL,
            cycle_id INTEGER NOT NULL,
            PRIMARY KEY (symbol, trade_id)
        ) STRICT
        """,
        "CREATE INDEX fills_by_time ON fills (symbol, ts_ms)",
        """
        CREATE TABLE intents (
            seq INTEGER PRIMARY KEY,       -- record order: an update goes to the latest intent of an id
            symbol TEXT NOT NULL REFERENCES symbols (symbol),
            client_order_id TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('place', 'cancel')),
            side TEXT NOT NULL,            -- '' for a cancel
            price INTEGER NOT NULL,        -- ticks, 0 for a cancel
            qty INTEGER NOT NULL,          -- lots, 0 for a cancel
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            created_ts_ms INTEGER NOT NULL,
            updated_ts_ms INTEGER NOT NULL,
            UNIQUE (symbol, client_order_id, action)
        ) STRICT
        """,
        "CREATE INDEX intents_by_status ON intents (symbol, status)",
        """
        CREATE TABLE cycles (
            symbol TEXT NOT NULL REFERENCES symbols (symbol),
            cycle_id INTEGER NOT NULL,
            cost_qu TEXT NOT NULL,
            proceeds_qu TEXT NOT NULL,
            fees_qu TEXT NOT NULL,
            pnl_qu TEXT NOT NULL,
            opened_ts_ms INTEGER NOT NULL,
            closed_ts_ms INTEGER NOT NULL,
            PRIMARY KEY (symbol, cycle_id)
        ) STRICT
        """,
        """
        CREATE TABLE params (
            symbol TEXT NOT NULL,          -- no foreign key: params may precede the first pulse
            version INTEGER NOT NULL,
            params_json TEXT NOT NULL,
            actor TEXT NOT NULL,
            why TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            PRIMARY KEY (symbol, version)
        ) STRICT
        """,
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            ts_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL
        ) STRICT
        """,
        """
        CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END
        """,
        """
        CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END
        """,
    ),
    # 2: a parameter change also keeps the user's own config (names and units), '' when none was given.
    ("ALTER TABLE params ADD COLUMN config_json TEXT NOT NULL DEFAULT ''",),
    # 3: the fencing token of each symbol's latest lease (engine.ports.SymbolLease): stale writes refused.
    ("CREATE TABLE fences (symbol TEXT PRIMARY KEY, token INTEGER NOT NULL) STRICT",),
    # 4: each command id's first audit entry, by the tag its detail names first
    # (``core.commands.tagged_command_id``): ``command_detail`` scanned the whole audit with LIKE
    # (29 ms a miss at 200,000 entries, on every command: bench/commands.py) and matched a reason too.
    (
        "CREATE TABLE commands (command_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT",
        f"""
        CREATE TRIGGER audit_indexes_its_command AFTER INSERT ON audit WHEN {_TAGGED.format(d="NEW.detail")}
        BEGIN INSERT OR IGNORE INTO commands VALUES ({_TAGGED_ID.format(d="NEW.detail")}, NEW.seq); END
        """,
        # the entries written before: every ``command=ID role=`` in a detail, as the scan matched them
        """
        WITH RECURSIVE tags(seq, rest) AS (
            SELECT seq, substr(detail, instr(detail, 'command=') + 8) FROM audit
            WHERE instr(detail, 'command=') > 0
            UNION ALL
            SELECT seq, substr(rest, instr(rest, 'command=') + 8) FROM tags WHERE instr(rest, 'command=') > 0
        )
        INSERT OR IGNORE INTO commands
        SELECT substr(rest, 1, instr(rest, ' role=') - 1), seq FROM tags WHERE instr(rest, ' role=') > 1
        ORDER BY seq
        """,
    ),
)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the schema version (``PRAGMA user_version``) of the open file."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def check_file(conn: sqlite3.Connection, path: str, latest: int = LATEST_VERSION) -> int:
    """Return the file's schema version; raise JournalVersionError if this code cannot use the file."""
    version = schema_version(conn)
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if app_id != APPLICATION_ID and (app_id != 0 or version > 0 or tables > 0):
        raise JournalVersionError(
            f"{path}: not a Nutcracker journal (application_id {app_id}, user_version {version}, "
            f"{tables} schema objects); point the journal at a new file or an existing journal"
        )
    if version > latest:
        raise JournalVersionError(
            f"{path}: journal schema version {version} is newer than this Nutcracker knows ({latest}); "
            f"upgrade Nutcracker, or point the journal at another file"
        )
    return version


RECOVER_HINT = "nutcracker recover --journal {path} --config FILE --key NAME"


def check_integrity(conn: sqlite3.Connection, path: str) -> None:
    """Raise JournalError when ``PRAGMA quick_check`` finds the file damaged (pages, indexes, rows)."""
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    problem = " ".join(str(rows[0][0]).replace("*** in database main ***", "").split()) if rows else "?"
    if problem != "ok":
        raise JournalDamagedError(
            f"{path}: the journal is damaged (quick_check: {problem}); restore a backup, or rebuild it "
            f"from the exchange with `{RECOVER_HINT.format(path=path)}` (it moves the damaged file aside)"
        )


def is_damage(error: sqlite3.Error) -> bool:
    """Return whether SQLite says the file itself is damaged (rather than busy, full or unwritable)."""
    text = str(error).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def fix_for(error: sqlite3.Error, path: str) -> str:
    """Return what a user can do about a SQLite error on the journal at ``path`` (one clause)."""
    text = str(error).lower()
    if is_damage(error):
        # not SQLite at all: as likely a wrong --journal as a journal whose first page was lost
        wrong_path = " (or --journal names a file that is no journal: check the path first)"
        return (
            f"the file is damaged{wrong_path if 'not a database' in text else ''}: restore a backup, or "
            f"rebuild it from the exchange with `{RECOVER_HINT.format(path=path)}` (it moves the damaged "
            "file aside)"
        )
    if "locked" in text or "busy" in text:
        return "another process holds the journal: stop it, or point --journal at another file"
    if "full" in text:
        return "the disk is full: free space, then start again"
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return "check that the file and its directory exist and are writable"
    return "check the file and its disk, then start again"


def migrate(conn: sqlite3.Connection, path: str, steps: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the file up to the latest schema version and return it; a current file is left untouched.

    ``conn`` must be in autocommit mode (``isolation_level=None``).

    Raises:
        JournalVersionError: the file is newer than ``steps`` or belongs to another application.
    """
    latest = len(steps)
    version = check_file(conn, path, latest)
    while version < latest:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = check_file(conn, path, latest)
            if version < latest:
                for statement in steps[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return version
