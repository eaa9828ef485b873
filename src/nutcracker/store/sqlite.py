"""``SqliteJournal``: the embedded default journal, one SQLite file in WAL mode with durable commits."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from nutcracker.core.model import Side
from nutcracker.core.records import (
    ACCOUNT,
    NEW_SYMBOL_STATUS,
    OPEN_INTENT_STATUSES,
    AuditRow,
    CycleRow,
    EventRow,
    FillRow,
    IntentRecord,
    IntentRow,
    ParamsRow,
    PulseRecord,
    StaleTokenError,
    StoredSymbol,
    audit_payload,
    check_intent_updates,
    check_symbol_status,
    cycle_row,
    fill_row,
    intents_payload,
    params_payload,
    pulse_payload,
    status_payload,
)
from nutcracker.store.migrations import (
    MIN_SQLITE,
    JournalDamagedError,
    JournalError,
    check_file,
    check_integrity,
    fix_for,
    is_damage,
    migrate,
)

_log = logging.getLogger("nutcracker.journal")
CHECKPOINT_EVERY_S = 30.0
CHECKPOINT_EVERY_COMMITS = 1000
_CHECKPOINT_WAIT_S = 0.25  # how long a TRUNCATE checkpoint may hold writers back waiting for others

_WRITE_STATE = """
    INSERT INTO symbols (symbol, state_json, last_fill_ts_ms, status, status_reason, updated_ts_ms)
    VALUES (?, ?, ?, ?, '', ?)
    ON CONFLICT (symbol) DO UPDATE SET
        state_json = excluded.state_json,
        last_fill_ts_ms = max(last_fill_ts_ms, excluded.last_fill_ts_ms),
        updated_ts_ms = excluded.updated_ts_ms
"""
_WRITE_STATUS = """
    INSERT INTO symbols (symbol, state_json, last_fill_ts_ms, status, status_reason, updated_ts_ms)
    VALUES (?, '', -1, ?, ?, ?)
    ON CONFLICT (symbol) DO UPDATE SET
        status = excluded.status,
        status_reason = excluded.status_reason,
        updated_ts_ms = excluded.updated_ts_ms
"""
# ON CONFLICT DO NOTHING skips only repeats; INSERT OR IGNORE would also hide NOT NULL or CHECK failures.
_INSERT_FILL = """
    INSERT INTO fills (symbol, trade_id, client_order_id, side, price, qty, fee, ts_ms, cycle_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (symbol, trade_id) DO NOTHING
"""
_INSERT_CYCLE = """
    INSERT INTO cycles (symbol, cycle_id, cost_qu, proceeds_qu, fees_qu, pnl_qu, opened_ts_ms, closed_ts_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (symbol, cycle_id) DO NOTHING
"""
_INSERT_INTENT = """
    INSERT INTO intents
        (symbol, client_order_id, action, side, price, qty, status, reason, created_ts_ms, updated_ts_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (symbol, client_order_id, action) DO NOTHING
"""
# an update goes to the latest intent recorded for the id (a cancel is recorded after its placement)
_UPDATE_INTENT = """
    UPDATE intents SET status = ?, detail = ?, updated_ts_ms = ?
    WHERE seq = (SELECT max(seq) FROM intents WHERE symbol = ? AND client_order_id = ?)
    RETURNING action
"""
_INSERT_EVENT = "INSERT INTO events (ts_ms, symbol, kind, payload) VALUES (?, ?, ?, ?)"
_SYMBOL_COLUMNS = "symbol, state_json, last_fill_ts_ms, status, status_reason, updated_ts_ms"
_INTENT_COLUMNS = (
    "symbol, client_order_id, action, side, price, qty, status, reason, detail, created_ts_ms, updated_ts_ms"
)
BatchWrite = PulseRecord | tuple[str, Sequence[tuple[str, str, str]], int]
"""A write of ``commit_batch``: a pulse, or the arguments of ``update_intents``."""
_OPEN = ", ".join(f"'{status}'" for status in OPEN_INTENT_STATUSES)


class SqliteJournal:
    """The ``Journal`` on one SQLite file: WAL, ``synchronous=FULL``, explicit transactions.

    Every write except ``save_state`` is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction that is
    on disk when the call returns, so a crash or SIGKILL right after loses nothing. ``save_state``
    only buffers the state in memory; the buffer is written with the next durable write (of any
    symbol) or ``flush``. A crash may therefore lose buffered indicator progress of idle pulses,
    which the engine rebuilds from candles; fills, cycles, intents and the state committed with
    them are never in the buffer. Reads see buffered states.

    Group commit (``stage_batch`` then ``commit_staged``, or ``commit_batch`` for both): the
    write-ahead commits and intent outcomes of several symbols in one transaction with one fsync.

    Safe to share between threads: writes are serialised, reads go through a second connection
    (they see what was committed, and buffered states) and never wait for a commit, nor does
    ``save_state``. Other processes may open the same file to read while this one writes.
    Failures of SQLite raise ``JournalError`` and keep nothing of the failed call; a call that
    breaks an invariant raises ``ValueError`` and keeps nothing either. Every ``JournalError`` is
    one line: the file, what is wrong, what to do (``JournalDamagedError`` for a damaged file).

    Opening runs ``PRAGMA quick_check``: a damaged file is refused. The WAL is checkpointed into
    the file (and truncated) every ``checkpoint_every_s`` or ``checkpoint_every_commits`` by a
    thread of its own, and at ``close``, so a lost ``-wal`` file never takes a whole session with
    it (what it does take, ``nutcracker recover`` rebuilds from the exchange).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 5.0,
        checkpoint_every_s: float | None = CHECKPOINT_EVERY_S,
        checkpoint_every_commits: int = CHECKPOINT_EVERY_COMMITS,
    ) -> None:
        """Open (or create) the journal at ``path``.

        Args:
            checkpoint_every_s, checkpoint_every_commits: copy the WAL into the file (and truncate
                it) this often, in a thread of its own, so the WAL never holds a whole session;
                None: only at ``close``.

        Raises:
            JournalError: the file cannot be opened, is damaged (``PRAGMA quick_check``) or is
                not a journal this Nutcracker can use; one line with the file and the fix.
        """
        self._path = str(path)
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise JournalError(f"SQLite {sqlite3.sqlite_version} is too old for the journal; it needs 3.37+")
        # the connection, one call at a time; held from stage_batch to commit_staged (any thread)
        self._lock = threading.Lock()
        self._buffer_lock = threading.Lock()  # the buffered states only
        self._read_lock = threading.Lock()  # the reading connection
        self._buffered: dict[str, tuple[str, int]] = {}  # symbol -> (state_json, ts_ms), in call order
        self._staged: _Staged | None = None  # the transaction stage_batch left open
        self._closed = False
        self._busy_timeout_s = busy_timeout_s
        # checkpoints: a thread of its own copies the WAL into the file (see _checkpoint_loop)
        self._checkpoint_every_s = checkpoint_every_s
        self._checkpoint_every_commits = max(1, checkpoint_every_commits)
        self._commits = 0  # durable writes since the last checkpoint
        self._checkpoint_wake = threading.Event()
        self._checkpointer: threading.Thread | None = None
        with self._translated("open"):
            conn = sqlite3.connect(
                self._path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        try:
            with self._translated("open"):
                check_file(conn, self._path)  # before switching a stranger's file to WAL
                check_integrity(conn, self._path)
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode != "wal":
                    raise JournalError(f"{self._path}: SQLite cannot use WAL mode here (got {mode!r})")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
                migrate(conn, self._path)
            # reads go through a connection of their own: they never wait for a commit's fsync
            with self._translated("open"):
                reader = sqlite3.connect(
                    self._path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
                )
            try:
                with self._translated("open"):
                    reader.execute("PRAGMA query_only = ON")
            except BaseException:
                reader.close()
                raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._reader = reader
        self._fences: dict[str, int] = {}  # symbol -> the token this journal writes under
        # checked on every write only once a lease fenced a symbol (none in a single process)
        (fenced,) = conn.execute("SELECT count(*) FROM fences").fetchone()
        self._fencing = bool(fenced)

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------------

    def commit_pulse(self, record: PulseRecord) -> None:
        """Store what one pulse changed in one durable transaction; repeated fills, cycles and intents once.

        Raises:
            ValueError: an intent reuses a recorded (client order id, action) for a different order.
        """
        with self._lock, self._translated(f"commit pulse of {record.symbol}"), self._transaction() as conn:
            self._check_fence(conn, record.symbol)
            self._write_pulse(conn, record)

    def update_intents(self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int) -> None:
        """Set (client_order_id, status, detail) of recorded intents in one transaction.

        An update goes to the latest intent recorded for the id: a cancel is recorded after the
        placement it cancels, so resolve a placement before recording its cancel.

        This one transaction skips the fsync (``synchronous=NORMAL`` in WAL mode): it survives a
        crash of the process, and a power loss can lose only these outcomes, which the engine
        resolves again by client order id (an intent left pending is looked up before anything
        else is placed). The write-ahead ``commit_pulse`` stays fully durable.

        Raises:
            ValueError: a status is unknown or an id was never recorded; no update is kept.
        """
        if not updates:
            return
        check_intent_updates(updates)
        with (
            self._lock,
            self._translated(f"update intents of {symbol}"),
            self._transaction(durable=False) as conn,
        ):
            self._check_fence(conn, symbol)
            self._write_updates(conn, symbol, updates, ts_ms)

    def commit_batch(self, writes: Sequence[BatchWrite]) -> list[Exception | None]:
        """Apply several writes in order in one transaction: one commit, one fsync for all (group commit).

        A write is a ``PulseRecord`` (what ``commit_pulse`` takes) or a ``(symbol, updates, ts_ms)``
        tuple (what ``update_intents`` takes). Each applies whole or not at all, on its own: the
        answer holds, in the writes' order, None for a write kept or the ``ValueError`` (or
        ``JournalError``) that refused it, as its single call would have raised. When the call
        returns, every kept write is on disk as durably as its single call would have made it:
        the transaction is fsynced when it holds a ``PulseRecord``; updates alone are not (as in
        ``update_intents``).

        Raises:
            JournalError: the transaction itself failed (the file, the disk): no write is kept.
        """
        results = self.stage_batch(writes)
        self.commit_staged()
        return results

    def stage_batch(self, writes: Sequence[BatchWrite]) -> list[Exception | None]:
        """Apply the writes of ``commit_batch`` in a transaction left open; ``commit_staged`` ends it.

        Nothing staged is visible to other connections or durable before ``commit_staged``
        returns. The journal stays locked in between: ``commit_staged`` must follow (from any
        thread: an event loop stages, a thread of its own waits for the fsync), and every other
        call but ``save_state`` waits for it. Answers as ``commit_batch``.

        Raises:
            JournalError: the transaction could not be opened or written: nothing is staged.
        """
        durable = any(isinstance(write, PulseRecord) for write in writes)
        self._lock.acquire()
        try:
            with self._translated("stage a batch"):
                return self._stage(writes, durable)
        except BaseException:
            self._lock.release()
            raise

    def commit_staged(self) -> None:
        """Commit (and fsync, as ``commit_batch`` says) what ``stage_batch`` staged, then unlock.

        Raises:
            JournalError: the commit failed: nothing of the batch is kept.
        """
        staged = self._staged
        if staged is None:
            raise RuntimeError("commit_staged without stage_batch")
        self._staged = None
        try:
            with self._translated("commit a batch"):
                self._end(staged.durable, staged.written)
        finally:
            self._lock.release()

    def set_status(self, symbol: str, status: str, reason: str, ts_ms: int) -> None:
        """Durably set the symbol's status (see ``SYMBOL_STATUSES``) and why."""
        check_symbol_status(symbol, status)
        with self._lock, self._translated(f"set status of {symbol}"), self._transaction() as conn:
            self._check_fence(conn, symbol)
            conn.execute(_WRITE_STATUS, (symbol, status, reason, ts_ms))
            conn.execute(_INSERT_EVENT, (ts_ms, symbol, "status", status_payload(status, reason)))

    def save_state(self, symbol: str, state_json: str, ts_ms: int) -> None:
        """Keep the symbol's strategy state in memory until the next durable write or ``flush``."""
        with self._buffer_lock:
            self._buffered.pop(symbol, None)  # keep call order: flush writes oldest first
            self._buffered[symbol] = (state_json, ts_ms)

    def record_params(
        self, symbol: str, params_json: str, actor: str, why: str, ts_ms: int, config_json: str = ""
    ) -> None:
        """Durably append the next version of the symbol's parameters (JSON), with who and why.

        ``config_json``: the same parameters in the config's own names and units ("" if not given).
        """
        with self._lock, self._translated(f"record params of {symbol}"), self._transaction() as conn:
            self._check_fence(conn, symbol)
            (version,) = conn.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM params WHERE symbol = ?", (symbol,)
            ).fetchone()
            payload = params_payload(version, params_json, actor, why, config_json)
            conn.execute(
                "INSERT INTO params (symbol, version, params_json, actor, why, ts_ms, config_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (symbol, version, params_json, actor, why, ts_ms, config_json),
            )
            conn.execute(_INSERT_EVENT, (ts_ms, symbol, "params", payload))

    def audit(self, actor: str, action: str, detail: str, ts_ms: int) -> None:
        """Durably append an audit entry (account-wide)."""
        with self._lock, self._translated("audit"), self._transaction() as conn:
            conn.execute(
                "INSERT INTO audit (ts_ms, actor, action, detail) VALUES (?, ?, ?, ?)",
                (ts_ms, actor, action, detail),
            )
            conn.execute(_INSERT_EVENT, (ts_ms, ACCOUNT, "audit", audit_payload(actor, action, detail)))

    def fence(self, symbol: str, token: int) -> None:
        """Write ``symbol`` under a lease's fencing token from now on (``engine.ports.SymbolLease``).

        The journal keeps each symbol's greatest token. Every later write of the symbol through
        this journal (a pulse, intent outcomes, a status, parameters) is refused with
        ``StaleTokenError`` once a greater token was fenced, by any process on the same file; a
        write of a fenced symbol through a journal that never fenced it is refused too.

        Raises:
            StaleTokenError: ``token`` is older than the symbol's latest.
        """
        with self._lock, self._translated(f"fence {symbol}"), self._transaction() as conn:
            row = conn.execute("SELECT token FROM fences WHERE symbol = ?", (symbol,)).fetchone()
            if row is not None and row[0] > token:
                raise StaleTokenError(f"{symbol}: lease token {token} is stale (the latest is {row[0]})")
            conn.execute(
                "INSERT INTO fences (symbol, token) VALUES (?, ?)"
                " ON CONFLICT (symbol) DO UPDATE SET token = excluded.token",
                (symbol, token),
            )
            self._fences[symbol] = token
            self._fencing = True

    def _check_fence(self, conn: sqlite3.Connection, symbol: str) -> None:
        if not self._fencing:
            return
        row = conn.execute("SELECT token FROM fences WHERE symbol = ?", (symbol,)).fetchone()
        if row is None:
            return
        mine = self._fences.get(symbol)
        if mine is None or row[0] > mine:
            raise StaleTokenError(
                f"{symbol}: another process holds the lease now (token {row[0]}, ours "
                f"{'none' if mine is None else mine}); this process must stop writing it"
            )

    def flush(self) -> None:
        """Make buffered states durable in one transaction (everything else already is)."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush, checkpoint the WAL into the file, then close it; closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._checkpoint_wake.set()
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.join()  # outside the lock: a checkpoint under way finishes first
        with self._lock:
            try:
                self._flush_locked()
                with self._translated("checkpoint"):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                with self._read_lock:
                    self._reader.close()
                self._conn.close()

    def checkpoint(self) -> bool:
        """Copy the WAL into the file and truncate it now; return False if readers kept it busy."""
        with self._lock, self._translated("checkpoint"):
            return self._checkpoint(self._conn)

    # -- reads ----------------------------------------------------------------------------------

    def load_symbol(self, symbol: str) -> StoredSymbol | None:
        """Return what the journal holds for the symbol, or None if it never saw it."""
        with self._buffer_lock:  # before reading: a commit may write and drop it meanwhile
            buffered = self._buffered.get(symbol)
        with self._read_lock, self._translated(f"load {symbol}"):
            row = self._reader.execute(
                f"SELECT {_SYMBOL_COLUMNS} FROM symbols WHERE symbol = ?", (symbol,)
            ).fetchone()
        stored = _stored_symbol(row) if row is not None else None
        return stored if buffered is None else _with_buffered(symbol, stored, buffered)

    def symbols(self) -> list[StoredSymbol]:
        """Return every symbol the journal holds, by symbol."""
        with self._buffer_lock:  # before reading: a commit may write and drop them meanwhile
            buffered = dict(self._buffered)
        with self._read_lock, self._translated("list symbols"):
            rows = self._reader.execute(f"SELECT {_SYMBOL_COLUMNS} FROM symbols ORDER BY symbol").fetchall()
        stored = {row[0]: _stored_symbol(row) for row in rows}
        for symbol, state in buffered.items():
            stored[symbol] = _with_buffered(symbol, stored.get(symbol), state)
        return [stored[symbol] for symbol in sorted(stored)]

    def known_client_order_ids(self, symbol: str) -> set[str]:
        """Return every client order id the journal recorded for the symbol (intents and fills)."""
        with self._read_lock, self._translated(f"read client order ids of {symbol}"):
            rows = self._reader.execute(
                "SELECT client_order_id FROM intents WHERE symbol = ?"
                " UNION SELECT client_order_id FROM fills WHERE symbol = ?",
                (symbol, symbol),
            ).fetchall()
            return {str(cid) for (cid,) in rows}

    def known_trade_ids(self, symbol: str, since_ms: int) -> set[str]:
        """Return the trade ids of the symbol's booked fills at or after ``since_ms``."""
        with self._read_lock, self._translated(f"read trade ids of {symbol}"):
            rows = self._reader.execute(
                "SELECT trade_id FROM fills WHERE symbol = ? AND ts_ms >= ?", (symbol, since_ms)
            ).fetchall()
            return {str(trade_id) for (trade_id,) in rows}

    def open_intents(self, symbol: str) -> list[IntentRecord]:
        """Return the symbol's intents still pending or ambiguous, in record order."""
        with self._read_lock, self._translated(f"read open intents of {symbol}"):
            rows = self._reader.execute(
                f"SELECT {_INTENT_COLUMNS} FROM intents"
                f" WHERE symbol = ? AND status IN ({_OPEN}) ORDER BY seq",
                (symbol,),
            ).fetchall()
            return [_intent_row(row).as_record() for row in rows]

    def intents(self, symbol: str) -> list[IntentRow]:
        """Return every intent recorded for the symbol, in record order."""
        with self._read_lock, self._translated(f"read intents of {symbol}"):
            rows = self._reader.execute(
                f"SELECT {_INTENT_COLUMNS} FROM intents WHERE symbol = ? ORDER BY seq", (symbol,)
            ).fetchall()
            return [_intent_row(row) for row in rows]

    def fills(self, symbol: str) -> list[FillRow]:
        """Return the symbol's booked fills, oldest first."""
        with self._read_lock, self._translated(f"read fills of {symbol}"):
            rows = self._reader.execute(
                "SELECT symbol, trade_id, client_order_id, side, price, qty, fee, ts_ms, cycle_id"
                " FROM fills WHERE symbol = ? ORDER BY ts_ms, rowid",
                (symbol,),
            ).fetchall()
            return [
                FillRow(s, t, c, Side(side), p, q, int(fee), ts, cyc)
                for s, t, c, side, p, q, fee, ts, cyc in rows
            ]

    def cycles(self, symbol: str) -> list[CycleRow]:
        """Return the symbol's closed cycles by cycle id."""
        with self._read_lock, self._translated(f"read cycles of {symbol}"):
            rows = self._reader.execute(
                "SELECT symbol, cycle_id, cost_qu, proceeds_qu, fees_qu, pnl_qu, opened_ts_ms, closed_ts_ms"
                " FROM cycles WHERE symbol = ? ORDER BY cycle_id",
                (symbol,),
            ).fetchall()
            return [
                CycleRow(s, cid, int(cost), int(proceeds), int(fees), int(pnl), opened, closed)
                for s, cid, cost, proceeds, fees, pnl, opened, closed in rows
            ]

    def params_history(self, symbol: str) -> list[ParamsRow]:
        """Return every recorded version of the symbol's parameters, oldest first."""
        with self._read_lock, self._translated(f"read params of {symbol}"):
            rows = self._reader.execute(
                "SELECT symbol, version, params_json, actor, why, ts_ms, config_json"
                " FROM params WHERE symbol = ? ORDER BY version",
                (symbol,),
            ).fetchall()
            return [ParamsRow(*row) for row in rows]

    def command_detail(self, command_id: str) -> str | None:
        """Return the first audit detail journaled for ``command_id``, or None (``Journal``)."""
        with self._read_lock, self._translated("read the audit"):
            row = self._reader.execute(  # the commands table: filled by a trigger on the audit
                "SELECT detail FROM commands JOIN audit USING (seq) WHERE command_id = ?", (command_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def audit_log(self, limit: int) -> list[AuditRow]:
        """Return the latest ``limit`` audit entries, newest first."""
        if limit <= 0:
            return []
        with self._read_lock, self._translated("read audit"):
            rows = self._reader.execute(
                "SELECT seq, ts_ms, actor, action, detail FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
            return [AuditRow(*row) for row in rows]

    def recent_events(self, symbol: str, limit: int) -> list[EventRow]:
        """Return the symbol's latest ``limit`` events (``ACCOUNT`` for audit), newest first."""
        if limit <= 0:
            return []
        with self._read_lock, self._translated(f"read events of {symbol}"):
            rows = self._reader.execute(
                "SELECT seq, ts_ms, symbol, kind, payload"
                " FROM events WHERE symbol = ? ORDER BY seq DESC LIMIT ?",
                (symbol, limit),
            ).fetchall()
            return [EventRow(*row) for row in rows]

    def events_since(self, seq: int, limit: int = 1000) -> list[EventRow]:
        """Return up to ``limit`` events after ``seq`` (of every symbol), oldest first: a stream cursor."""
        if limit <= 0:
            return []
        with self._read_lock, self._translated("read events"):
            rows = self._reader.execute(
                "SELECT seq, ts_ms, symbol, kind, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            return [EventRow(*row) for row in rows]

    def pragmas(self) -> dict[str, str | int]:
        """Return the connection's durability settings: journal_mode, synchronous, foreign_keys."""
        with self._lock, self._translated("read pragmas"):
            return {
                name: self._conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys")
            }

    # -- internals ------------------------------------------------------------------------------

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            error = JournalDamagedError if is_damage(e) else JournalError
            raise error(f"{self._path}: {doing} failed: {e}; {fix_for(e, self._path)}") from e

    # -- checkpoints ----------------------------------------------------------------------------

    def _committed(self) -> None:
        """Count a durable write; start the checkpoint thread, or wake it after enough commits."""
        if self._checkpoint_every_s is None:
            return
        self._commits += 1
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="journal-checkpoint", daemon=True
            )
            self._checkpointer.start()
        elif self._commits >= self._checkpoint_every_commits:
            self._checkpoint_wake.set()

    def _checkpoint_loop(self) -> None:
        """Checkpoint every ``checkpoint_every_s`` (or sooner after many commits) until closed.

        Off the hot path: a thread of its own. A PASSIVE checkpoint on its own connection first
        copies what it can without blocking anyone; the TRUNCATE after it (``_truncate_wal``, a
        little left to copy) holds this process's writes back briefly and gives up after
        ``_CHECKPOINT_WAIT_S`` when a reader keeps it waiting: the next round tries again.
        """
        assert self._checkpoint_every_s is not None
        try:
            conn = sqlite3.connect(self._path, timeout=_CHECKPOINT_WAIT_S, isolation_level=None)
        except sqlite3.Error as e:
            _log.warning("journal %s: no checkpoint connection: %s", self._path, e)
            return
        try:
            while True:
                self._checkpoint_wake.wait(self._checkpoint_every_s)
                self._checkpoint_wake.clear()
                if self._closed:
                    return
                if self._commits:
                    commits, self._commits = self._commits, 0
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # blocks no one
                        done = self._truncate_wal()
                    except sqlite3.Error as e:  # the next round, or close, tries again
                        _log.info("journal %s: checkpoint deferred: %s", self._path, e)
                        done = False
                    if not done:
                        self._commits += commits
        finally:
            conn.close()

    def _truncate_wal(self) -> bool:
        """Finish the checkpoint on the writing connection, between two writes of this process.

        On another connection a TRUNCATE checkpoint can make a commit fail with "database is
        locked" at once (no busy wait); under the journal's lock, writes just wait for it, at most
        ``_CHECKPOINT_WAIT_S`` beyond the copy when a reader holds an old snapshot.
        """
        with self._lock:
            if self._closed:
                return True
            conn = self._conn
            conn.execute(f"PRAGMA busy_timeout = {int(_CHECKPOINT_WAIT_S * 1000)}")
            try:
                return self._checkpoint(conn)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")

    def _checkpoint(self, conn: sqlite3.Connection) -> bool:
        (busy, _, _) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    def _flush_locked(self) -> None:
        if self._buffered:  # a racy read is fine: a state saved meanwhile waits for the next write
            with self._translated("flush"), self._transaction():
                pass

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """Run the body in one write transaction that also writes the buffered states."""
        written = self._begin(durable)
        try:
            yield self._conn
        except BaseException:
            self._abort(durable)
            raise
        self._end(durable, written)

    def _begin(self, durable: bool) -> dict[str, tuple[str, int]]:
        """Open a write transaction and write the buffered states into it; return those written."""
        conn = self._conn
        if not durable:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            with self._buffer_lock:
                written = dict(self._buffered)
            for symbol, (state_json, ts_ms) in written.items():
                conn.execute(_WRITE_STATE, (symbol, state_json, -1, NEW_SYMBOL_STATUS, ts_ms))
        except BaseException:
            self._abort(durable)
            raise
        return written

    def _end(self, durable: bool, written: dict[str, tuple[str, int]]) -> None:
        """Commit the open transaction, then drop from the buffer the states it wrote (if not saved again)."""
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._abort(durable)
            raise
        if not durable:
            self._conn.execute("PRAGMA synchronous=FULL")
        self._committed()
        with self._buffer_lock:
            for symbol, state in written.items():
                if self._buffered.get(symbol) is state:
                    del self._buffered[symbol]

    def _abort(self, durable: bool) -> None:
        conn = self._conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")

    def _stage(self, writes: Sequence[BatchWrite], durable: bool) -> list[Exception | None]:
        """Open a transaction holding the writes (each whole or not at all) and leave it open."""
        conn = self._conn
        written = self._begin(durable)
        try:
            for i, write in enumerate(writes):
                try:
                    self._write(conn, write)
                except (ValueError, sqlite3.Error) as e:
                    if not conn.in_transaction:  # SQLite gave the whole transaction up
                        raise
                    raise _RefusedWriteError(i) from e
        except _RefusedWriteError:  # rare: again, with each write in a savepoint of its own
            self._abort(durable)
        except BaseException:
            self._abort(durable)
            raise
        else:
            self._staged = _Staged(durable, written)
            return [None] * len(writes)
        results: list[Exception | None] = [None] * len(writes)
        written = self._begin(durable)
        try:
            for i, write in enumerate(writes):
                conn.execute("SAVEPOINT write")
                try:
                    self._write(conn, write)
                except (ValueError, sqlite3.Error) as e:
                    if not conn.in_transaction:
                        raise
                    conn.execute("ROLLBACK TO write")
                    what = write.symbol if isinstance(write, PulseRecord) else write[0]
                    results[i] = (
                        e if isinstance(e, ValueError) else JournalError(f"{self._path}: {what}: {e}")
                    )
                conn.execute("RELEASE write")
        except BaseException:
            self._abort(durable)
            raise
        self._staged = _Staged(durable, written)
        return results

    def _write(self, conn: sqlite3.Connection, write: BatchWrite) -> None:
        self._check_fence(conn, write.symbol if isinstance(write, PulseRecord) else write[0])
        if isinstance(write, PulseRecord):
            self._write_pulse(conn, write)
        else:
            symbol, updates, ts_ms = write
            if updates:
                check_intent_updates(updates)
                self._write_updates(conn, symbol, updates, ts_ms)

    def _write_pulse(self, conn: sqlite3.Connection, record: PulseRecord) -> None:
        symbol = record.symbol
        last_fill_ts_ms = max((fill.ts_ms for fill in record.fills), default=-1)
        conn.execute(
            _WRITE_STATE, (symbol, record.state_json, last_fill_ts_ms, NEW_SYMBOL_STATUS, record.ts_ms)
        )
        fills = []
        for fill, cycle_id in zip(record.fills, record.cycle_ids, strict=True):
            row = fill_row(symbol, fill, cycle_id)
            values = (symbol, row.trade_id, row.client_order_id, row.side.value, row.price, row.qty)
            if conn.execute(_INSERT_FILL, (*values, str(row.fee), row.ts_ms, row.cycle_id)).rowcount:
                fills.append(row)
        cycles = []
        for cycle in record.closed_cycles:
            c = cycle_row(symbol, cycle)
            amounts = (str(c.cost_qu), str(c.proceeds_qu), str(c.fees_qu), str(c.pnl_qu))
            if conn.execute(
                _INSERT_CYCLE, (symbol, c.cycle_id, *amounts, c.opened_ts_ms, c.closed_ts_ms)
            ).rowcount:
                cycles.append(c)
        intents = [intent for intent in record.intents if self._insert_intent(conn, intent)]
        payload = pulse_payload(record, fills, cycles, intents)
        conn.execute(_INSERT_EVENT, (record.ts_ms, symbol, "pulse", payload))

    def _write_updates(
        self, conn: sqlite3.Connection, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int
    ) -> None:
        applied = []
        for client_order_id, status, detail in updates:
            found = conn.execute(_UPDATE_INTENT, (status, detail, ts_ms, symbol, client_order_id)).fetchall()
            if not found:
                raise ValueError(f"{symbol}: no intent {client_order_id!r} was recorded")
            ((action,),) = found
            applied.append((client_order_id, str(action), status, detail))
        conn.execute(_INSERT_EVENT, (ts_ms, symbol, "intents", intents_payload(applied)))

    def _insert_intent(self, conn: sqlite3.Connection, intent: IntentRecord) -> bool:
        """Record the intent and return True, or False if that very intent was recorded before."""
        values = (intent.symbol, intent.client_order_id, intent.action, intent.side, intent.price, intent.qty)
        if conn.execute(
            _INSERT_INTENT, (*values, intent.status, intent.reason, intent.ts_ms, intent.ts_ms)
        ).rowcount:
            return True
        row = conn.execute(
            f"SELECT {_INTENT_COLUMNS} FROM intents WHERE symbol = ? AND client_order_id = ? AND action = ?",
            values[:3],
        ).fetchone()
        if not _intent_row(row).as_record().same_order(intent):
            raise ValueError(
                f"{intent.symbol}: intent {intent.client_order_id} ({intent.action}) was recorded"
                " for another order"
            )
        return False


@dataclass(frozen=True, slots=True)
class _Staged:
    durable: bool  # the commit fsyncs
    written: dict[str, tuple[str, int]]  # the buffered states the transaction wrote


class _RefusedWriteError(Exception):
    """A write of a batch was refused (internal: the batch is retried with savepoints)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def _with_buffered(symbol: str, stored: StoredSymbol | None, buffered: tuple[str, int]) -> StoredSymbol:
    state_json, ts_ms = buffered
    if stored is None:
        return StoredSymbol(symbol, state_json, -1, NEW_SYMBOL_STATUS, "", ts_ms)
    return StoredSymbol(
        symbol, state_json, stored.last_fill_ts_ms, stored.status, stored.status_reason, ts_ms
    )


def _stored_symbol(row: tuple[str, str, int, str, str, int]) -> StoredSymbol:
    return StoredSymbol(*row)


def _intent_row(row: tuple[str, str, str, str, int, int, str, str, str, int, int]) -> IntentRow:
    return IntentRow(*row)
