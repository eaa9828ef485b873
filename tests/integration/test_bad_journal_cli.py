"""Bad journals, as the CLI meets them: one line (file, what is wrong, what to do), exit 3, no traceback.

``BAD_JOURNALS`` is the table of bad-journal inputs (add a row for every new way a journal can be
bad); each is tried with ``status`` and ``run --mode replay``. The lost-journal case (the exchange
knows orders the journal does not) is ``test_lost_journal.py``; an unreadable symbol state halts
only that symbol (``tests/unit/engine/test_journal_failures.py``, ``test_unreadable_state_cli.py``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.cli import EXIT_JOURNAL, app
from nutcracker.store.migrations import APPLICATION_ID
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[2]
GRID = str(ROOT / "examples" / "grid-btc-usdt.toml")
PAGE = 4096


def _journal_with_pages(path: Path) -> None:
    with SqliteJournal(path) as journal:
        for i in range(300):
            journal.audit("test", "fill pages", "x" * 500, i)


def corrupt_page(path: Path) -> None:
    """A page in the middle of a sound journal overwritten (a bad sector, a torn copy)."""
    _journal_with_pages(path)
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as f:
        f.seek(PAGE * (pages // 2))
        f.write(b"\xa5" * PAGE)


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(PAGE * 2))


def truncated_mid_page(path: Path) -> None:
    _journal_with_pages(path)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2 + 100)


def another_application(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()


def newer_schema(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 99")
        conn.commit()


def a_directory(path: Path) -> None:
    path.mkdir()


BAD_JOURNALS: list[tuple[str, Callable[[Path], None], str]] = [
    ("corrupt-page", corrupt_page, "the journal is damaged (quick_check:"),
    ("not-a-database", garbage, "file is not a database; the file is damaged"),
    ("truncated", truncated_mid_page, "damaged"),
    ("another-application", another_application, "not a Nutcracker journal"),
    ("newer-schema", newer_schema, "newer than this Nutcracker knows"),
    ("a-directory", a_directory, "unable to open database file; check that the file"),
]

COMMANDS = {
    "status": lambda journal: ["status", "--journal", str(journal)],
    "replay": lambda journal: [
        "run", "--config", GRID, "--speed", "0", "--candles", "5", "--synthetic", "300",
        "--journal", str(journal), "--out", str(journal.parent / "out"), "--headless",
    ],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in BAD_JOURNALS], ids=[c[0] for c in BAD_JOURNALS]
)
def test_a_bad_journal_is_refused_in_one_line(
    tmp_path: Path, command: str, make: Callable[[Path], None], expected: str
) -> None:
    journal = tmp_path / "journal.db"
    make(journal)
    result = CliRunner().invoke(app, COMMANDS[command](journal))
    assert result.exit_code == EXIT_JOURNAL, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"✗ {journal}: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output
    if "damaged" in expected:
        assert f"nutcracker recover --journal {journal}" in lines[0]
