"""Brute-force throttles: after a run of failures a key is locked out, each lockout twice as long.

Keys are a user name (as typed: unknown names are counted like real ones, so a lockout tells nothing
about who exists) and a client address (higher threshold: many people may share one address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from nutcracker.api.auth.store import AttemptRecord

__all__ = ["CLIENT_POLICY", "USER_POLICY", "ThrottlePolicy", "after_failure", "retry_after_s"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    threshold: int  # failures in a row that lock the key
    first_lockout_s: float
    max_lockout_s: float
    forget_after_s: float  # a quiet spell this long forgets failures and past lockouts


USER_POLICY: Final = ThrottlePolicy(threshold=5, first_lockout_s=30, max_lockout_s=900, forget_after_s=86_400)
CLIENT_POLICY: Final = ThrottlePolicy(
    threshold=20, first_lockout_s=30, max_lockout_s=900, forget_after_s=86_400
)


def retry_after_s(record: AttemptRecord | None, now: float) -> int | None:
    """Whole seconds until a locked key may try again (rounded up), or None when it is not locked."""
    if record is None or record.locked_until <= now:
        return None
    return max(1, int(-(-(record.locked_until - now) // 1)))


def after_failure(record: AttemptRecord | None, now: float, policy: ThrottlePolicy) -> AttemptRecord:
    """Count one more failure; the one that reaches the threshold starts a lockout."""
    if record is None or now - record.last_failure > policy.forget_after_s:
        record = AttemptRecord(failures=0, last_failure=now, lockouts=0, locked_until=0.0)
    failures = record.failures + 1
    if failures < policy.threshold:
        return AttemptRecord(failures, now, record.lockouts, record.locked_until)
    lockout_s = min(policy.first_lockout_s * 2**record.lockouts, policy.max_lockout_s)
    return AttemptRecord(
        failures=0, last_failure=now, lockouts=record.lockouts + 1, locked_until=now + lockout_s
    )
