"""The suggestions' stores (a journal file's table, Redis) and the config file edit acceptance makes."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nutcracker.config import load_config
from nutcracker.config.editing import apply_to_file, edited_text
from nutcracker.control.params_patch import patched_config
from nutcracker.errors import ConfigError
from nutcracker.store.migrations import JournalError
from nutcracker.store.redis_suggestions import RedisSuggestions
from nutcracker.store.sqlite import SqliteJournal
from nutcracker.store.suggestions import (
    ACCEPTED,
    EXPIRED,
    PENDING,
    REJECTED,
    Suggestions,
    SuggestionStore,
)

ROOT = Path(__file__).resolve().parents[3]
GRID = ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml"


@pytest.fixture(params=["journal file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Suggestions:
    if request.param == "redis":
        return RedisSuggestions(request.getfixturevalue("redis_url"), prefix="t:")
    path = tmp_path / "journal.db"
    SqliteJournal(path).close()
    return SuggestionStore(path)


def test_a_suggestion_is_filed_once(store: Suggestions) -> None:
    assert store.file("s1", "BTC/USDT", '{"a": 1}', 1000, 2000)
    assert not store.file("s1", "BTC/USDT", '{"b": 2}', 1500, 2500)  # the same id: already filed
    found = store.get("s1")
    assert found is not None
    assert (found.status, found.created_ts_ms, found.expires_ts_ms, found.record_json) == (
        PENDING,
        1000,
        2000,
        '{"a": 1}',
    )
    assert (found.decided_ts_ms, found.decided_by) == (-1, "")
    assert store.get("s2") is None


def test_a_filed_record_never_changes_in_a_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    SqliteJournal(path).close()
    SuggestionStore(path).file("s1", "BTC/USDT", '{"a": 1}', 1000, 2000)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="does not change"):
        conn.execute("UPDATE suggestions SET record_json = '{}' WHERE id = 's1'")
    conn.close()


def test_suggestions_are_listed_newest_first_then_by_id(store: Suggestions) -> None:
    for sid, created in (("b", 1000), ("c", 3000), ("a", 1000), ("d", 2000)):
        store.file(sid, "BTC/USDT", "{}", created, created + 10_000)
    assert [s.id for s in store.all()] == ["c", "d", "a", "b"]


def test_an_expiry_never_undoes_a_decision(store: Suggestions) -> None:
    store.file("s1", "BTC/USDT", "{}", 1000, 2000)
    assert store.decide("s1", ACCEPTED, "olga", 1500)
    assert store.expire(5000) == 0
    found = store.get("s1")
    assert found is not None
    assert (found.status, found.decided_by, found.decided_ts_ms) == (ACCEPTED, "olga", 1500)
    assert not store.decide("nope", ACCEPTED, "olga", 1500)  # unknown: nothing to decide


def test_of_many_deciding_one_suggestion_at_once_exactly_one_wins(store: Suggestions) -> None:
    store.file("s1", "BTC/USDT", "{}", 1000, 9000)
    deciders = [(ACCEPTED if i % 2 else REJECTED, f"user{i}") for i in range(8)]
    with ThreadPoolExecutor(len(deciders)) as pool:
        won = list(pool.map(lambda d: store.decide("s1", d[0], d[1], 1500), deciders))
    assert won.count(True) == 1
    found = store.get("s1")
    assert found is not None
    assert (found.status, found.decided_by) == deciders[won.index(True)]


def test_only_a_pending_suggestion_can_be_decided(store: Suggestions) -> None:
    store.file("s1", "BTC/USDT", "{}", 1000, 2000)
    store.file("s2", "BTC/USDT", "{}", 1000, 2000)
    store.file("s3", "BTC/USDT", "{}", 1000, 9000)
    assert store.decide("s1", REJECTED, "user:bob", 1100)
    assert not store.decide("s1", ACCEPTED, "user:bob", 1200)  # a rejected one cannot be accepted
    assert store.expire(2000) == 1  # s2 ran out; s1 was decided, s3 still runs
    assert not store.decide("s2", ACCEPTED, "user:bob", 2100)  # nor an expired one
    assert [(s.id, s.status) for s in sorted(store.all(), key=lambda s: s.id)] == [
        ("s1", REJECTED),
        ("s2", EXPIRED),
        ("s3", PENDING),
    ]
    with pytest.raises(ValueError, match="accepted or rejected"):
        store.decide("s3", EXPIRED, "user:bob", 2200)


def test_a_file_that_is_not_a_journal_keeps_no_suggestions(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such journal file"):
        SuggestionStore(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (y)")
    conn.close()
    with pytest.raises(JournalError, match="not a Nutcracker journal"):
        SuggestionStore(other)


def test_accepting_edits_only_the_patched_lines_and_keeps_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    original = GRID.read_text()
    path.write_text(original)
    patch = {"profit": {"min_net_bps": "12"}, "grid": {"levels": 4}, "cooldown": {"buy_s": 60}}
    expected = patched_config(load_config(path), "BTC/USDT", patch)
    backup = apply_to_file(path, 0, patch, expected, note="suggestion s1")
    assert backup.read_text() == original
    assert load_config(path) == expected
    text = path.read_text()
    assert 'min_net_bps = "12"  # suggestion s1' in text
    assert "[symbol.cooldown]\nbuy_s = 60  # suggestion s1" in text
    changed = [line for line in text.splitlines() if line not in original.splitlines()]
    assert len(changed) == 4  # three values and one new table header
    assert "# An unseeded ladder on BTC/USDT" in text  # the user's comments stay


def test_an_edit_that_would_not_load_to_the_validated_config_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text(GRID.read_text())
    other = patched_config(load_config(path), "BTC/USDT", {"grid": {"levels": 3}})
    with pytest.raises(ConfigError, match="edit it by hand"):
        apply_to_file(path, 0, {"grid": {"levels": 4}}, other)
    assert path.read_text() == GRID.read_text()
    assert not path.with_name("grid.toml.bak").exists()


def test_the_second_symbol_of_a_file_is_edited_in_its_own_tables() -> None:
    text = (ROOT / "examples" / "multi-symbol.toml").read_text()
    edited = edited_text(text, 1, {"profit": {"min_net_bps": "33"}})
    first, second = edited.split("[[symbol]]")[1:3]
    assert 'min_net_bps = "33"' not in first
    assert 'min_net_bps = "33"' in second
