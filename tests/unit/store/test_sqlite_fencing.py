"""Fencing: a process whose symbol lease was taken over can no longer write that symbol."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nutcracker.core.records import IntentRecord, PulseRecord, StaleTokenError
from nutcracker.engine.inprocess import InProcessLease
from nutcracker.engine.ports import FencedJournal
from nutcracker.store.sqlite import SqliteJournal

BTC, ETH = "BTC/USDT", "ETH/USDT"


def pulse(symbol: str = BTC, cid: str = "nct-B0-1", ts_ms: int = 1) -> PulseRecord:
    intent = IntentRecord(symbol, cid, "place", "buy", 100, 1, "pending", "grid", ts_ms)
    return PulseRecord(symbol, ts_ms, '{"s": 1}', (), (), (), (intent,), ("why",))


def _fits(journal: SqliteJournal) -> FencedJournal:
    return journal


def test_the_old_owner_is_refused_once_a_newer_lease_fenced_the_symbol(tmp_path: Path) -> None:
    leases = InProcessLease()
    path = tmp_path / "j.sqlite"
    with SqliteJournal(path) as a, SqliteJournal(path) as b:
        first = asyncio.run(leases.acquire(BTC, "a", 1000, now_ms=0))
        assert first is not None
        a.fence(BTC, first.token)
        a.commit_pulse(pulse(cid="nct-B0-1"))  # a holds the lease: fine
        second = asyncio.run(leases.acquire(BTC, "b", 1000, now_ms=2000))  # a's lease ran out
        assert second is not None
        b.fence(BTC, second.token)
        with pytest.raises(StaleTokenError, match="another process holds the lease"):
            a.commit_pulse(pulse(cid="nct-B0-2", ts_ms=2))
        with pytest.raises(StaleTokenError):
            a.update_intents(BTC, [("nct-B0-1", "acked", "")], 3)
        with pytest.raises(StaleTokenError):
            a.set_status(BTC, "paused", "x", 3)
        assert a.commit_batch([pulse(cid="nct-B0-3"), pulse(ETH, "nct-B0-4")])[0].__class__ is StaleTokenError
        with pytest.raises(StaleTokenError, match="is stale"):
            a.fence(BTC, first.token)  # it cannot take the symbol back with its old token
        b.commit_pulse(pulse(cid="nct-B0-5", ts_ms=4))
        assert [i.client_order_id for i in b.intents(BTC)] == ["nct-B0-1", "nct-B0-5"]
        assert [i.client_order_id for i in b.intents(ETH)] == ["nct-B0-4"]  # unfenced symbols write freely


def test_a_journal_that_never_fenced_a_fenced_symbol_is_refused_and_a_plain_one_pays_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    with SqliteJournal(path) as plain:
        plain.commit_pulse(pulse())  # no lease anywhere: today's single process
    with SqliteJournal(path) as owner:
        owner.fence(BTC, 1)
        with SqliteJournal(path) as stranger:
            with pytest.raises(StaleTokenError, match="ours none"):
                stranger.commit_pulse(pulse(cid="nct-B0-9"))
            stranger.commit_pulse(pulse(ETH, "nct-B0-8"))
