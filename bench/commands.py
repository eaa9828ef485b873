"""Benchmark how the SQLite journal finds a command id: ``Engine.submit`` asks it for every command.

``command_detail(id)`` says whether a command id was journaled before (then it is not applied
again). It scanned the whole audit with ``LIKE '%command=ID role=%'``; since schema version 4 it is
one lookup in the ``commands`` table a trigger fills. The audit only grows (it is append-only), so
the scan grew with the journal's age. This fills a journal with ``--rows`` audit entries, each
naming a command as the engine writes them, then times lookups of ids that are there (the last
one written) and of ids that are not (a new command: the common case), both ways on the same file
in the same run: the old scan (the baseline) and ``command_detail``.

Run: ``.venv/bin/python bench/commands.py [--rows 200000] [--lookups 200]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from nutcracker.store.sqlite import SqliteJournal


def _scan(conn: sqlite3.Connection, command_id: str) -> str | None:
    """The lookup before the index: a LIKE scan of the audit (ids here have no LIKE wildcards)."""
    row = conn.execute(
        "SELECT detail FROM audit WHERE detail LIKE ? ORDER BY seq LIMIT 1",
        (f"%command={command_id} role=%",),
    ).fetchone()
    return None if row is None else str(row[0])


def _median_ms(lookup: Callable[[str], str | None], ids: list[str], found: bool) -> float:
    times = []
    for command_id in ids:
        started = time.perf_counter()
        detail = lookup(command_id)
        times.append((time.perf_counter() - started) * 1000)
        assert (detail is not None) == found, command_id
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="audit entries in the journal")
    parser.add_argument("--lookups", type=int, default=200, help="lookups timed per row of the table")
    args = parser.parse_args()
    if not 1 <= args.rows <= 10_000_000:
        parser.error("--rows: give 1 to 10000000")
    if not 1 <= args.lookups <= args.rows:
        parser.error(f"--lookups: give 1 to --rows ({args.rows}): it looks up the last ids written")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.db"
        SqliteJournal(path).close()  # the schema, its trigger included
        started = time.perf_counter()
        with closing(sqlite3.connect(path)) as conn, conn:  # one transaction: set-up, not measured
            conn.executemany(
                "INSERT INTO audit (ts_ms, actor, action, detail) VALUES (?, 'olga', 'pause', ?)",
                (
                    (i, f"symbol=BTC/USDT command=api:olga:{i:032x}:BTC/USDT role=operator why=a reason")
                    for i in range(args.rows)
                ),
            )
        fill_s = time.perf_counter() - started
        present = [f"api:olga:{args.rows - 1 - i:032x}:BTC/USDT" for i in range(args.lookups)]
        absent = [f"api:olga:new-{i}:BTC/USDT" for i in range(args.lookups)]
        print(f"{args.rows:,} audit entries written in {fill_s:.1f} s; median of {args.lookups} lookups each")
        print(f"{'lookup':<34} {'scan (before) ms':>16} {'index ms':>10} {'ratio':>8}")
        cases = (("an id not journaled (a new one)", absent, False), ("the last id journaled", present, True))
        with closing(sqlite3.connect(path)) as reader, SqliteJournal(path) as journal:
            for label, ids, found in cases:
                before = _median_ms(lambda c: _scan(reader, c), ids, found)
                now = _median_ms(journal.command_detail, ids, found)
                print(f"{label:<34} {before:>16.3f} {now:>10.4f} {before / now:>7.0f}x")


if __name__ == "__main__":
    main()
