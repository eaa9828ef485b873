"""SqliteJournal on real files: durability across reopen and SIGKILL, migrations, pragmas, WAL readers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from nutcracker.core.model import Fill, Side
from nutcracker.core.records import (
    ClosedCycleRecord,
    CycleRow,
    FillRow,
    IntentRecord,
    ParamsRow,
    PulseRecord,
    StoredSymbol,
)
from nutcracker.store.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    JournalDamagedError,
    JournalError,
    JournalVersionError,
    migrate,
)
from nutcracker.store.sqlite import SqliteJournal

BTC, ETH = "BTC/USDT", "ETH/USDT"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal(path) as opened:
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    """Return a plain connection to the file, the way another process would see it."""
    return sqlite3.connect(path, isolation_level=None)


def count(path: Path, table: str) -> int:
    with closing(raw(path)) as conn:
        (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(n)


def fill(trade_id: str, *, ts_ms: int = 1_000) -> Fill:
    return Fill(trade_id, "nct-B0-1", Side.BUY, 10_000, 50, 5, ts_ms)


def place(client_order_id: str, *, ts_ms: int = 1_000) -> IntentRecord:
    return IntentRecord(BTC, client_order_id, "place", "buy", 9_900, 50, "pending", "grid level 0", ts_ms)


def pulse(
    *,
    symbol: str = BTC,
    ts_ms: int = 1_000,
    state: str = '{"seq": 1}',
    fills: tuple[Fill, ...] = (),
    intents: tuple[IntentRecord, ...] = (),
) -> PulseRecord:
    return PulseRecord(symbol, ts_ms, state, fills, tuple(1 for _ in fills), (), intents, ())


# -- durability -----------------------------------------------------------------------------------


def test_everything_committed_is_there_after_reopening_the_file(path: Path) -> None:
    cycle = ClosedCycleRecord(1, 500, 505, 2, 3, 1_000, 2_000)
    with SqliteJournal(path) as journal:
        journal.commit_pulse(
            PulseRecord(
                BTC, 2_000, '{"seq": 1}', (fill("t1", ts_ms=1_500),), (1,), (cycle,), (place("a"),), ()
            )
        )
        journal.set_status(BTC, "trading", "", 2_100)
        journal.record_params(BTC, '{"levels": 5}', "owner", "first", 2_200)
        journal.audit("owner", "start", "", 2_300)
        journal.save_state(ETH, '{"ema": 1}', 2_400)  # written by close()
    with SqliteJournal(path) as journal:
        assert journal.symbols() == [
            StoredSymbol(BTC, '{"seq": 1}', 1_500, "trading", "", 2_100),
            StoredSymbol(ETH, '{"ema": 1}', -1, "idle", "", 2_400),
        ]
        assert journal.fills(BTC) == [FillRow(BTC, "t1", "nct-B0-1", Side.BUY, 10_000, 50, 5, 1_500, 1)]
        assert journal.cycles(BTC) == [CycleRow(BTC, 1, 500, 505, 2, 3, 1_000, 2_000)]
        assert journal.open_intents(BTC) == [place("a")]
        assert [p.version for p in journal.params_history(BTC)] == [1]
        assert [a.action for a in journal.audit_log(10)] == ["start"]
        assert [e.kind for e in journal.recent_events(BTC, 10)] == ["params", "status", "pulse"]


def test_a_fill_committed_twice_is_one_row_in_the_file(path: Path) -> None:
    with SqliteJournal(path) as journal:
        journal.commit_pulse(pulse(fills=(fill("t1"),)))
    with SqliteJournal(path) as journal:
        journal.commit_pulse(pulse(ts_ms=2_000, fills=(fill("t1"),)))
    assert count(path, "fills") == 1


def test_the_intent_lifecycle_survives_reopening(path: Path) -> None:
    with SqliteJournal(path) as journal:
        journal.commit_pulse(pulse(intents=(place("a"), place("b"))))
        journal.update_intents(BTC, [("a", "acked", ""), ("b", "ambiguous", "timeout")], 1_100)
    with SqliteJournal(path) as journal:
        assert [(i.client_order_id, i.status) for i in journal.open_intents(BTC)] == [("b", "ambiguous")]
        journal.update_intents(BTC, [("b", "never_placed", "unknown to the exchange")], 1_200)
    with SqliteJournal(path) as journal:
        assert journal.open_intents(BTC) == []
        assert [(i.status, i.detail) for i in journal.intents(BTC)] == [
            ("acked", ""),
            ("never_placed", "unknown to the exchange"),
        ]


def test_a_saved_state_waits_in_memory_until_the_next_durable_write_of_any_symbol(
    journal: SqliteJournal, path: Path
) -> None:
    journal.commit_pulse(pulse())
    journal.save_state(ETH, '{"ema": 1}', 1_100)
    assert count(path, "symbols") == 1
    journal.commit_pulse(pulse(ts_ms=1_200, state='{"seq": 2}'))
    with closing(raw(path)) as conn:
        assert conn.execute("SELECT state_json FROM symbols WHERE symbol = ?", (ETH,)).fetchone() == (
            '{"ema": 1}',
        )


def test_a_refused_write_keeps_the_saved_state_buffered(journal: SqliteJournal, path: Path) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    journal.save_state(ETH, '{"ema": 1}', 1_100)
    with pytest.raises(ValueError, match="no intent"):
        journal.update_intents(BTC, [("ghost", "acked", "")], 1_200)
    assert count(path, "symbols") == 1
    journal.flush()
    assert count(path, "symbols") == 2


# -- group commit ---------------------------------------------------------------------------------


def eth_place(client_order_id: str) -> IntentRecord:
    return IntentRecord(ETH, client_order_id, "place", "buy", 9_900, 50, "pending", "grid level 0", 1_000)


def test_a_batch_commits_pulses_and_outcomes_of_several_symbols_at_once(path: Path) -> None:
    with SqliteJournal(path) as journal:
        journal.commit_pulse(pulse(intents=(place("a"),)))
        answers = journal.commit_batch(
            [
                (BTC, [("a", "acked", "42")], 1_100),
                pulse(symbol=ETH, ts_ms=1_100, intents=(eth_place("e"),)),
                pulse(ts_ms=1_200, state='{"seq": 2}', fills=(fill("t1"),), intents=(place("b"),)),
            ]
        )
        assert answers == [None, None, None]
    with SqliteJournal(path) as journal:
        assert [(i.client_order_id, i.status) for i in journal.intents(BTC)] == [
            ("a", "acked"),
            ("b", "pending"),
        ]
        assert [i.client_order_id for i in journal.open_intents(ETH)] == ["e"]
        assert journal.known_trade_ids(BTC, 0) == {"t1"}
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.state_json == '{"seq": 2}'
        assert [e.kind for e in journal.recent_events(BTC, 10)] == ["pulse", "intents", "pulse"]


def test_a_refused_write_of_a_batch_keeps_nothing_of_its_own_and_lets_the_others_through(
    journal: SqliteJournal, path: Path
) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    events = count(path, "events")
    reused = IntentRecord(BTC, "a", "place", "sell", 10_100, 50, "pending", "", 1_200)
    answers = journal.commit_batch(
        [
            pulse(symbol=ETH, intents=(eth_place("e"),)),
            pulse(ts_ms=1_200, state='{"seq": 2}', fills=(fill("t1"),), intents=(place("b"), reused)),
            (BTC, [("a", "acked", ""), ("ghost", "acked", "")], 1_300),
            (BTC, [("a", "rejected", "post-only")], 1_400),
        ]
    )
    assert answers[0] is None
    assert isinstance(answers[1], ValueError)
    assert "recorded for another order" in str(answers[1])
    assert isinstance(answers[2], ValueError)
    assert "no intent 'ghost'" in str(answers[2])
    assert answers[3] is None
    assert count(path, "events") == events + 2
    assert journal.known_trade_ids(BTC, 0) == set()  # the refused pulse kept none of its rows
    assert [(i.client_order_id, i.status) for i in journal.intents(BTC)] == [("a", "rejected")]
    assert [i.client_order_id for i in journal.open_intents(ETH)] == ["e"]
    stored = journal.load_symbol(BTC)
    assert stored is not None
    assert stored.state_json == '{"seq": 1}'


def test_a_batch_of_outcomes_alone_skips_the_fsync_and_restores_full_sync(journal: SqliteJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    assert journal.commit_batch([(BTC, [("a", "acked", "")], 1_100)]) == [None]
    assert journal.pragmas()["synchronous"] == 2  # FULL again after the NORMAL commit
    assert journal.commit_batch([]) == []


def test_a_staged_batch_is_invisible_until_committed_from_another_thread_and_blocks_other_writes(
    journal: SqliteJournal, path: Path
) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    assert journal.stage_batch([pulse(ts_ms=2_000, fills=(fill("t1"),))]) == [None]
    journal.save_state(ETH, '{"ema": 1}', 2_100)  # the buffer never waits for a commit
    with closing(raw(path)) as other:
        assert other.execute("SELECT count(*) FROM fills").fetchone() == (0,)
    writer_done = threading.Event()

    def write_status() -> None:
        journal.set_status(BTC, "paused", "by hand", 2_200)
        writer_done.set()

    writer = threading.Thread(target=write_status)
    writer.start()
    assert not writer_done.wait(0.1)  # waits for the staged batch
    committer = threading.Thread(target=journal.commit_staged)
    committer.start()
    committer.join(5)
    writer.join(5)
    assert writer_done.is_set()
    assert count(path, "fills") == 1
    stored = journal.load_symbol(ETH)
    assert stored is not None
    assert stored.state_json == '{"ema": 1}'  # saved during the commit, written with the status
    with closing(raw(path)) as other:
        assert other.execute("SELECT state_json FROM symbols WHERE symbol = ?", (ETH,)).fetchone() == (
            '{"ema": 1}',
        )
    with pytest.raises(RuntimeError, match="without stage_batch"):
        journal.commit_staged()


def test_a_batch_that_cannot_commit_keeps_nothing_and_unlocks_the_journal(
    journal: SqliteJournal, path: Path
) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    journal.save_state(ETH, '{"ema": 1}', 1_100)
    with SqliteJournal(path, busy_timeout_s=0.05) as impatient, closing(raw(path)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(JournalError, match="stage a batch failed: database is locked"):
            impatient.commit_batch([pulse(ts_ms=2_000, fills=(fill("t1"),))])
        other.execute("ROLLBACK")
        assert impatient.commit_batch([pulse(ts_ms=2_000, fills=(fill("t2"),))]) == [None]
    assert journal.known_trade_ids(BTC, 0) == {"t2"}


# -- SIGKILL --------------------------------------------------------------------------------------

CHILD = """
import os, signal, sys
from nutcracker.core.model import Fill, Side
from nutcracker.core.records import IntentRecord, PulseRecord
from nutcracker.store.sqlite import SqliteJournal

def pulse(i):
    fills = tuple(Fill(f"t{i}{leg}", f"c{i}", Side.BUY, 100, 1, 1, i) for leg in "ab")
    intent = IntentRecord("BTC/USDT", f"c{i}", "place", "buy", 100, 1, "pending", "", i)
    return PulseRecord("BTC/USDT", i, f'{{"seq": {i}}}', fills, (i, i), (), (intent,), ())

journal = SqliteJournal(sys.argv[1])
mode = sys.argv[2]
if mode == "stream":
    for i in range(1, 1_000_000):
        journal.commit_pulse(pulse(i))
        print(i, flush=True)
if mode == "batches":  # group commit: BTC's pulse, ETH's pulse and BTC's outcome in one transaction
    for i in range(1, 1_000_000):
        eth = PulseRecord("ETH/USDT", i, f'{{"seq": {i}}}', (), (), (), (), ())
        journal.commit_batch([pulse(i), eth, ("BTC/USDT", [(f"c{i}", "acked", "")], i)])
        print(i, flush=True)
journal.commit_pulse(pulse(1))
if mode in ("buffered", "flushed"):
    journal.save_state("BTC/USDT", '{"ema": 9}', 2)
if mode == "flushed":
    journal.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_child(path: Path, mode: str) -> None:
    """Run the child, which kills itself with SIGKILL right after its last journal call returns."""
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], timeout=60, check=False)
    assert child.returncode == -signal.SIGKILL


def test_a_commit_survives_a_sigkill_right_after_it_returns(path: Path) -> None:
    killed_child(path, "commit")
    with SqliteJournal(path) as journal:
        assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"seq": 1}', 1, "idle", "", 1)
        assert journal.known_trade_ids(BTC, 0) == {"t1a", "t1b"}
        assert [i.client_order_id for i in journal.open_intents(BTC)] == ["c1"]


def test_a_sigkill_loses_only_the_saved_state_not_yet_written(path: Path) -> None:
    killed_child(path, "buffered")
    with SqliteJournal(path) as journal:
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.state_json == '{"seq": 1}'
        assert journal.known_trade_ids(BTC, 0) == {"t1a", "t1b"}


def test_a_flushed_state_survives_a_sigkill(path: Path) -> None:
    killed_child(path, "flushed")
    with SqliteJournal(path) as journal:
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.state_json == '{"ema": 9}'


def _kill_mid_write(path: Path, mode: str, delay_s: float) -> int:
    """Run the writing child in ``mode``; SIGKILL it ``delay_s`` after its 20th commit.

    Return the last commit it reported.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    while int(child.stdout.readline()) < 20:
        pass
    time.sleep(delay_s)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    reported = max(int(line) for line in [*child.stdout.read().splitlines(), "20"] if line.strip())
    child.stdout.close()
    return reported


@pytest.mark.parametrize("delay_s", [0.0, 0.0003, 0.001, 0.003])
def test_a_sigkill_at_any_moment_keeps_every_reported_pulse_whole(path: Path, delay_s: float) -> None:
    reported = _kill_mid_write(path, "stream", delay_s)

    with SqliteJournal(path) as journal:
        pulses = len([e for e in journal.recent_events(BTC, 10**6) if e.kind == "pulse"])
        assert pulses in (reported, reported + 1)  # the last commit may have landed unreported
        assert len(journal.fills(BTC)) == 2 * pulses
        assert len(journal.intents(BTC)) == pulses
        stored = journal.load_symbol(BTC)
        assert stored is not None
        assert stored.state_json == f'{{"seq": {pulses}}}'
    with closing(raw(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("delay_s", [0.0, 0.001, 0.003])
def test_a_sigkill_at_any_moment_keeps_every_reported_batch_and_no_part_of_another(
    path: Path, delay_s: float
) -> None:
    reported = _kill_mid_write(path, "batches", delay_s)

    with SqliteJournal(path) as journal:
        batches = len([e for e in journal.recent_events(ETH, 10**6) if e.kind == "pulse"])
        assert batches in (reported, reported + 1)  # the last batch may have landed unreported
        assert len([e for e in journal.recent_events(BTC, 10**6) if e.kind == "pulse"]) == batches
        assert len(journal.fills(BTC)) == 2 * batches
        assert [i.status for i in journal.intents(BTC)] == ["acked"] * batches
        for symbol in (BTC, ETH):
            stored = journal.load_symbol(symbol)
            assert stored is not None
            assert stored.state_json == f'{{"seq": {batches}}}'


# -- migrations -----------------------------------------------------------------------------------


def test_a_fresh_file_ends_at_the_latest_schema_version(journal: SqliteJournal, path: Path) -> None:
    with closing(raw(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # "fences" is new (issue 12: lease tokens the journal checks), "commands" newer (its audit's index)
    expected = {"events", "symbols", "fills", "intents", "cycles", "params", "audit", "fences", "commands"}
    assert tables == expected


def test_a_version_3_file_finds_its_commands_after_the_migration_and_a_reason_names_none(path: Path) -> None:
    old = [  # written with the reason before the tag, as the engine did before 2026-12-08
        "symbol=BTC/USDT why=first command=c_1% role=operator",
        "symbol=BTC/USDT why=replayed command=c_1% role=operator",
        'symbol=* why=say "command=x role=" command=k:2 role=owner grant=g-7',
    ]
    with closing(raw(path)) as conn:
        migrate(conn, str(path), MIGRATIONS[:3])
        for seq, detail in enumerate(old, 1):
            conn.execute("INSERT INTO audit VALUES (?, 1, 'olga', 'pause', ?)", (seq, detail))
    with SqliteJournal(path) as journal:
        assert journal.command_detail("c_1%") == old[0]  # the first entry
        assert journal.command_detail("k:2") == old[2]
        assert journal.command_detail("x") == old[2]  # as the LIKE scan it replaces read it
        assert journal.command_detail("c_1") is None  # whole ids only
        # written since: the tag is the first, before the reason, which names no command
        detail = "symbol=ETH/USDT command=k-3 role=operator why=see command=k-4 role=owner"
        journal.audit("erin", "kill", detail, 2)
        assert journal.command_detail("k-3") == detail
        assert journal.command_detail("k-4") is None


def test_a_version_1_file_keeps_its_params_history_after_the_migration(path: Path) -> None:
    with closing(raw(path)) as conn:
        migrate(conn, str(path), MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO params (symbol, version, params_json, actor, why, ts_ms)"
            " VALUES ('BTC/USDT', 1, '{}', 'config', 'engine start', 5)"
        )
    with SqliteJournal(path) as journal:
        assert journal.params_history("BTC/USDT") == [
            ParamsRow("BTC/USDT", 1, "{}", "config", "engine start", 5, "")
        ]


def test_reopening_a_current_file_writes_nothing(path: Path) -> None:
    SqliteJournal(path).close()
    with closing(raw(path)) as other:
        (schema_before,) = other.execute("PRAGMA schema_version").fetchone()
        other.execute("BEGIN IMMEDIATE")  # a migration would need this lock and time out
        SqliteJournal(path, busy_timeout_s=0.05).close()
        other.execute("ROLLBACK")
        assert other.execute("PRAGMA schema_version").fetchone() == (schema_before,)
        assert other.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)


def test_a_file_from_a_newer_nutcracker_is_refused_with_a_message(path: Path) -> None:
    SqliteJournal(path).close()
    with closing(raw(path)) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(
        JournalVersionError, match=f"version {LATEST_VERSION + 1} is newer than .* upgrade Nutcracker"
    ):
        SqliteJournal(path)


def test_a_file_of_another_application_is_refused_and_left_as_it_was(path: Path) -> None:
    with closing(raw(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(JournalVersionError, match="not a Nutcracker journal"):
        SqliteJournal(path)
    with closing(raw(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)


def test_a_new_step_applies_on_top_of_an_older_file_which_older_code_then_refuses(path: Path) -> None:
    SqliteJournal(path).close()
    with closing(raw(path)) as conn:
        assert (
            migrate(conn, str(path), (*MIGRATIONS, ("CREATE TABLE lots (x INTEGER) STRICT",)))
            == LATEST_VERSION + 1
        )
        assert (
            migrate(conn, str(path), (*MIGRATIONS, ("CREATE TABLE lots (x INTEGER) STRICT",)))
            == LATEST_VERSION + 1
        )
        assert conn.execute("SELECT count(*) FROM lots").fetchone() == (0,)
    with pytest.raises(JournalVersionError, match="newer"):
        SqliteJournal(path)


def test_a_failing_migration_step_leaves_the_previous_version_intact(path: Path) -> None:
    SqliteJournal(path).close()
    broken = (*MIGRATIONS, ("CREATE TABLE lots (x INTEGER) STRICT", "CREATE TABLE oops ("))
    with closing(raw(path)) as conn:
        with pytest.raises(sqlite3.OperationalError, match="incomplete input"):
            migrate(conn, str(path), broken)
        assert conn.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'lots'").fetchone() == (0,)
    SqliteJournal(path).close()


# -- pragmas, errors ------------------------------------------------------------------------------


def test_the_connection_runs_in_wal_mode_with_full_sync_and_foreign_keys(
    journal: SqliteJournal, path: Path
) -> None:
    assert journal.pragmas() == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
    with closing(raw(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # stored in the file


def test_events_and_audit_cannot_be_rewritten(journal: SqliteJournal, path: Path) -> None:
    journal.commit_pulse(pulse())
    journal.audit("owner", "start", "", 1)
    with closing(raw(path)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="events are append-only"):
            conn.execute("UPDATE events SET kind = 'forged'")
        with pytest.raises(sqlite3.IntegrityError, match="audit is append-only"):
            conn.execute("DELETE FROM audit")


def test_a_locked_file_raises_a_journal_error_and_keeps_nothing(journal: SqliteJournal, path: Path) -> None:
    with SqliteJournal(path, busy_timeout_s=0.05) as impatient:
        with closing(raw(path)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(JournalError, match="commit pulse of BTC/USDT failed: database is locked"):
                impatient.commit_pulse(pulse(fills=(fill("t1"),)))
            other.execute("ROLLBACK")
        impatient.commit_pulse(pulse(fills=(fill("t2"),)))
    assert [f.trade_id for f in journal.fills(BTC)] == ["t2"]


def test_a_closed_journal_raises_a_journal_error_and_closes_twice_quietly(path: Path) -> None:
    journal = SqliteJournal(path)
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed database"):
        journal.load_symbol(BTC)


# -- readers while writing ------------------------------------------------------------------------


def test_a_reader_is_not_blocked_by_an_open_write_and_sees_the_last_commit(
    journal: SqliteJournal, path: Path
) -> None:
    journal.commit_pulse(pulse(fills=(fill("t1"),)))
    with SqliteJournal(path, busy_timeout_s=0.05) as reader, closing(raw(path)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE symbols SET state_json = 'uncommitted'")
        stored = reader.load_symbol(BTC)
        assert stored is not None
        assert stored.state_json == '{"seq": 1}'
        writer.execute("ROLLBACK")


def test_a_writer_commits_while_a_reader_holds_a_snapshot(journal: SqliteJournal, path: Path) -> None:
    journal.commit_pulse(pulse(fills=(fill("t1"),)))
    with closing(raw(path)) as reader:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM fills").fetchone() == (1,)
        journal.commit_pulse(pulse(ts_ms=2_000, fills=(fill("t2"),)))  # no busy wait: WAL
        assert reader.execute("SELECT count(*) FROM fills").fetchone() == (1,)
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM fills").fetchone() == (2,)


def test_a_reader_thread_sees_a_growing_journal_while_a_writer_commits(
    journal: SqliteJournal, path: Path
) -> None:
    seen: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(1, 101):
                journal.commit_pulse(pulse(ts_ms=i, fills=(fill(f"t{i}", ts_ms=i),)))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    writer = threading.Thread(target=write)
    with SqliteJournal(path) as reader:
        writer.start()
        while writer.is_alive():
            seen.append(len(reader.fills(BTC)))
        writer.join()
        seen.append(len(reader.fills(BTC)))
    assert errors == []
    assert seen == sorted(seen)
    assert seen[-1] == 100


# -- checkpoints, integrity, the ids the journal knows (issue 11 items 3-4) --------------------------


def _wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _main_file_alone(path: Path, tmp: Path) -> SqliteJournal:
    """Open a copy of the main file without its WAL: what a deleted -wal file leaves."""
    copy = tmp / "main-file-only.sqlite"
    copy.write_bytes(path.read_bytes())
    return SqliteJournal(copy)


def _wait_until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_commits_reach_the_main_file_within_the_checkpoint_interval(path: Path, tmp_path: Path) -> None:
    with SqliteJournal(path, checkpoint_every_s=0.05) as journal:
        journal.commit_pulse(pulse(fills=(fill("t1"),), intents=(place("c1"),)))
        _wait_until(lambda: _wal_size(path) == 0)  # TRUNCATE: the WAL is emptied into the file
        with _main_file_alone(path, tmp_path) as copy:
            assert copy.known_trade_ids(BTC, 0) == {"t1"}
            assert copy.known_client_order_ids(BTC) == {"c1", "nct-B0-1"}


def test_many_commits_checkpoint_before_the_interval(path: Path) -> None:
    with SqliteJournal(path, checkpoint_every_s=600, checkpoint_every_commits=5) as journal:
        for i in range(5):  # the fifth wakes the checkpoint
            journal.commit_pulse(pulse(ts_ms=i, fills=(fill(f"t{i}", ts_ms=i),)))
        _wait_until(lambda: _wal_size(path) == 0)


def test_without_checkpoints_the_wal_holds_the_session_until_close(path: Path, tmp_path: Path) -> None:
    journal = SqliteJournal(path, checkpoint_every_s=None)
    journal.commit_pulse(pulse(fills=(fill("t1"),)))
    time.sleep(0.1)
    assert _wal_size(path) > 0
    with _main_file_alone(path, tmp_path) as copy:
        assert copy.known_trade_ids(BTC, 0) == set()  # what a deleted -wal file would lose
    journal.close()
    assert _wal_size(path) == 0  # a clean shutdown checkpoints


def test_a_damaged_file_is_refused_by_quick_check_in_one_line(path: Path) -> None:
    with SqliteJournal(path) as journal:
        for i in range(300):
            journal.audit("test", "fill pages", "x" * 500, i)
    pages = path.stat().st_size // 4096
    with path.open("r+b") as f:
        f.seek(4096 * (pages // 2))
        f.write(b"\xa5" * 4096)
    with pytest.raises(JournalDamagedError) as refused:
        SqliteJournal(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: the journal is damaged (quick_check: ")
    assert f"nutcracker recover --journal {path}" in message


def test_the_journal_knows_the_client_ids_of_its_intents_and_fills(journal: SqliteJournal) -> None:
    assert journal.known_client_order_ids(BTC) == set()
    journal.commit_pulse(pulse(fills=(fill("t1"),), intents=(place("c1"), place("c2"))))
    assert journal.known_client_order_ids(BTC) == {"c1", "c2", "nct-B0-1"}
    assert journal.known_client_order_ids(ETH) == set()


def test_a_reader_holding_a_snapshot_defers_the_checkpoint_without_stalling_commits(path: Path) -> None:
    with SqliteJournal(path, checkpoint_every_s=0.05) as journal:
        journal.commit_pulse(pulse(fills=(fill("t0"),)))
        _wait_until(lambda: _wal_size(path) == 0)
        with closing(raw(path)) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM fills").fetchone()  # holds its snapshot
            slowest = 0.0
            for i in range(1, 15):
                started = time.monotonic()
                journal.commit_pulse(pulse(ts_ms=i, fills=(fill(f"t{i}", ts_ms=i),)))
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.03)
            assert _wal_size(path) > 0  # the reader's snapshot kept the WAL
            reader.execute("COMMIT")
        _wait_until(lambda: _wal_size(path) == 0)  # the next round checkpointed
    assert slowest < 1.0  # a commit never waited out the journal's 5 s busy timeout
