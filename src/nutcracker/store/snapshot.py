"""A read-only snapshot of a journal file: what the advisor reads, never a writer's connection.

The file is opened with SQLite's ``mode=ro`` URI (a write fails in SQLite itself) and copied
whole into memory with the backup API, which reads one consistent state: a running engine keeps
writing its journal undisturbed, and nothing the advisor does later can reach the file through
this snapshot.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from nutcracker.core.model import Side
from nutcracker.core.records import CycleRow, FillRow, ParamsRow
from nutcracker.store.migrations import JournalError, check_file


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """Return a connection to ``path`` that SQLite refuses to write through.

    Raises:
        JournalError: the file does not exist or is not a Nutcracker journal.
    """
    file = Path(path)
    if not file.is_file():
        raise JournalError(f"{file}: no such journal file; check the path (--journal)")
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as e:
        raise JournalError(f"{file}: cannot open the journal read-only ({e}); check --journal") from e
    try:
        check_file(conn, str(file))
    except (sqlite3.DatabaseError, JournalError) as e:
        conn.close()
        if isinstance(e, JournalError):
            raise
        raise JournalError(f"{file}: not a journal ({e}); check --journal") from e
    return conn


class JournalSnapshot:
    """The fills, cycles and parameter history of a journal, as they were when it was opened."""

    def __init__(self, path: str | Path) -> None:
        self._conn = sqlite3.connect(":memory:")
        with closing(open_read_only(path)) as source:
            source.backup(self._conn)
        self._conn.execute("PRAGMA query_only = ON")

    def close(self) -> None:
        self._conn.close()

    def symbols(self) -> list[str]:
        rows = self._conn.execute("SELECT DISTINCT symbol FROM params ORDER BY symbol").fetchall()
        return [str(r[0]) for r in rows]

    def fills(self, symbol: str) -> list[FillRow]:
        rows = self._conn.execute(
            "SELECT symbol, trade_id, client_order_id, side, price, qty, fee, ts_ms, cycle_id"
            " FROM fills WHERE symbol = ? ORDER BY ts_ms, rowid",
            (symbol,),
        ).fetchall()
        return [
            FillRow(s, t, c, Side(side), p, q, int(fee), ts, cyc)
            for s, t, c, side, p, q, fee, ts, cyc in rows
        ]

    def cycles(self, symbol: str) -> list[CycleRow]:
        rows = self._conn.execute(
            "SELECT symbol, cycle_id, cost_qu, proceeds_qu, fees_qu, pnl_qu, opened_ts_ms, closed_ts_ms"
            " FROM cycles WHERE symbol = ? ORDER BY cycle_id",
            (symbol,),
        ).fetchall()
        return [CycleRow(s, c, int(a), int(b), int(f), int(p), o, x) for s, c, a, b, f, p, o, x in rows]

    def params_history(self, symbol: str) -> list[ParamsRow]:
        rows = self._conn.execute(
            "SELECT symbol, version, params_json, actor, why, ts_ms, config_json"
            " FROM params WHERE symbol = ? ORDER BY version",
            (symbol,),
        ).fetchall()
        return [ParamsRow(*row) for row in rows]

    def last_ts_ms(self) -> int:
        """Return the time of the last event the engine stamped (-1: none).

        Pulses, intents and statuses carry the engine's clock (market time in a replay); parameter
        and audit rows a person wrote from the CLI (an accepted suggestion) carry the wall clock,
        which is no part of the market's period.
        """
        (ts,) = self._conn.execute(
            "SELECT coalesce(max(ts_ms), -1) FROM events WHERE kind IN ('pulse', 'intents', 'status')"
        ).fetchone()
        return int(ts)
