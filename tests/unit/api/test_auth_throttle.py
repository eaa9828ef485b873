"""Lockouts: after a run of failures a key waits, twice as long each time, up to a cap."""

from __future__ import annotations

from nutcracker.api.auth.store import AttemptRecord
from nutcracker.api.auth.throttle import ThrottlePolicy, after_failure, retry_after_s

POLICY = ThrottlePolicy(threshold=5, first_lockout_s=30, max_lockout_s=900, forget_after_s=86_400)
T0 = 1_000_000.0


def _fail(record: AttemptRecord | None, now: float, times: int) -> AttemptRecord:
    for _ in range(times):
        record = after_failure(record, now, POLICY)
    assert record is not None
    return record


def test_four_failures_lock_nothing_and_the_fifth_locks_for_thirty_seconds() -> None:
    record = _fail(None, T0, 4)
    assert retry_after_s(record, T0) is None
    record = after_failure(record, T0, POLICY)
    assert retry_after_s(record, T0) == 30
    assert retry_after_s(record, T0 + 29.5) == 1  # rounded up: never "try again in 0 s"
    assert retry_after_s(record, T0 + 30) is None


def test_each_lockout_doubles_up_to_the_cap() -> None:
    record: AttemptRecord | None = None
    waits = []
    now = T0
    for _ in range(8):
        record = _fail(record, now, 5)
        wait = retry_after_s(record, now)
        assert wait is not None
        waits.append(wait)
        now += wait
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]


def test_a_quiet_day_forgets_failures_and_past_lockouts() -> None:
    record = _fail(None, T0, 5)
    record = _fail(record, T0 + 100, 5)
    assert retry_after_s(record, T0 + 100) == 60
    later = T0 + 100 + POLICY.forget_after_s + 1
    record = _fail(record, later, 5)
    assert retry_after_s(record, later) == 30
