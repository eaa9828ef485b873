"""Two processes on one Redis: a stopped owner is fenced out; two workers never overspend one budget."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from nutcracker.core.records import IntentRecord, PulseRecord
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_lease import RedisLease, server_ms

CHILD = Path(__file__).with_name("redis_children.py")
BTC = "BTC/USDT"


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_write_of_a_stopped_owner_is_refused_after_the_new_owners_first_write(redis_url: str) -> None:
    old = child("writer", redis_url, BTC)
    try:
        assert old.stdout is not None
        for line in old.stdout:  # let it write a few pulses under its lease
            if line.strip() == "wrote 3":
                break
        os.kill(old.pid, signal.SIGSTOP)  # hung: it still believes it owns BTC
        time.sleep(0.7)  # its 500 ms lease runs out in Redis
        new = RedisJournal(redis_url)
        leases = RedisLease(new.client)
        lease = asyncio.run(leases.acquire(BTC, "new", 10_000, server_ms(new.client)))
        assert lease is not None  # taken over
        new.fence(BTC, lease.token)
        intent = IntentRecord(BTC, "new-1", "place", "buy", 100, 1, "pending", "grid", 10_000)
        new.commit_pulse(
            PulseRecord(BTC, 10_000, "{}", (), (), (), (intent,), ())
        )  # the new owner's first write
        os.kill(old.pid, signal.SIGCONT)
        out, err = old.communicate(timeout=30)
        assert old.returncode == 3, err
        refused = out.strip().splitlines()[-1]
        assert refused.startswith("refused ")
        assert "another process holds the lease now" in refused
        written = [i.client_order_id for i in new.intents(BTC)]
        assert written[-1] == "new-1"  # nothing of the old owner after the new owner's first write
        assert all(cid.startswith("old-") for cid in written[:-1])
        assert len(written) - 1 == int(refused.split()[1]) - 1  # every write before the stop, none after
        log = new.fencing_log(BTC)  # one writer at a time: the old token's writes, then the new one's
        assert [token for token, _ in log] == [lease.token - 1, lease.token]
        assert log[0][1] < log[1][1]
        new.close()
    finally:
        if old.poll() is None:
            os.kill(old.pid, signal.SIGCONT)
            old.kill()
            old.communicate()


def _race(redis_url: str, mode: str) -> tuple[Decimal, Decimal]:
    """Run two spenders on one budget; return (the largest total ever sampled, the final total)."""
    journal = RedisJournal(redis_url)
    spenders = [
        child("spender", redis_url, symbol, str(seed), mode)
        for seed, symbol in enumerate(("A/USDT", "B/USDT"))
    ]
    peak = Decimal(0)
    total = Decimal(0)
    try:
        while any(p.poll() is None for p in spenders):
            amounts = journal.client.hgetall("nc:bc:USDT")
            total = sum((Decimal(a) for a in amounts.values() if a != "?"), Decimal(0))
            peak = max(peak, total)
            time.sleep(0.001)
        for p in spenders:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert out.strip() == "done"
        amounts = journal.client.hgetall("nc:bc:USDT")
        total = sum((Decimal(a) for a in amounts.values()), Decimal(0))
    finally:
        for p in spenders:
            if p.poll() is None:
                p.kill()
                p.communicate()
        journal.close()
    return max(peak, total), total


@pytest.mark.slow
def test_two_workers_racing_on_one_quote_budget_never_overspend(redis_url: str) -> None:
    peak, _ = _race(redis_url, "locked")
    assert Decimal(900) < peak <= Decimal(1000)  # the budget was contested, and never exceeded


@pytest.mark.slow
def test_the_race_overspends_without_the_budget_section(redis_url: str) -> None:
    peak, _ = _race(redis_url, "unlocked")  # the control: the same race, no hold
    assert peak > Decimal(1000)
