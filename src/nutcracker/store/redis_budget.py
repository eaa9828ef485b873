"""``RedisQuoteBudget``: one quote budget shared by symbols on several workers (``QuoteBudget``).

Each quote asset with a budget has, in Redis, a hash of its symbols' commitments (``bc:ASSET``:
symbol -> exact amount of the asset, or "?" until the symbol's first ``reserve``) and a lock
(``bl:ASSET``, ``SET NX PX`` with a random token). ``hold`` takes the lock; ``allowance`` reads
every commitment on the asset, whichever worker made it; ``reserve`` inside ``hold`` is a Lua
script that writes the commitment only while the lock is still this holder's: a worker stopped
past the lock's expiry (``LOCK_TTL_MS``) wakes to a refused reservation (``StaleTokenError``),
raised before its write-ahead, so it places nothing on an allowance another worker may have spent.
A ``reserve`` outside ``hold`` (the truth after a dispatch, or a paused symbol's) is written as is.

A symbol registered again (a new owner after a takeover) keeps its former commitment until its
first ``reserve``: its resting orders still use the budget. Amounts are exact decimal strings;
the sums are made in Python, under the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Final

import redis

from nutcracker.core.records import StaleTokenError
from nutcracker.core.units import Precision

__all__ = ["LOCK_TTL_MS", "RedisQuoteBudget"]

LOCK_TTL_MS: Final = 5_000  # a budget section (allowance, decide, reserve) takes milliseconds
_EXACT = Context(prec=80)
_UNKNOWN: Final = "?"
_held: ContextVar[dict[str, str] | None] = ContextVar("nutcracker_budget_locks", default=None)

_RESERVE: Final = r"""
local lock = redis.call('GET', KEYS[1])
if lock ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
_UNLOCK: Final = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisQuoteBudget:
    """The ``QuoteBudget`` of every worker on one Redis; see the module's docstring."""

    def __init__(
        self,
        client: redis.Redis,
        budgets: Mapping[str, Decimal],
        *,
        prefix: str = "nc:",
        lock_ttl_ms: int = LOCK_TTL_MS,
    ) -> None:
        for asset, amount in budgets.items():
            if not amount.is_finite() or amount < 0:
                raise ValueError(f"portfolio budget of {asset} must be a finite amount >= 0, got {amount}")
        self._r = client
        self._budgets = dict(budgets)
        self._prefix = prefix
        self._lock_ttl_ms = lock_ttl_ms
        self._members: dict[str, tuple[str, Precision]] = {}  # symbol -> (quote asset, precision)
        self._reserve = client.register_script(_RESERVE)
        self._unlock = client.register_script(_UNLOCK)

    def register(self, symbol: str, quote: str, precision: Precision) -> None:
        """Add a symbol; its commitment stays what Redis holds (unknown for a new one)."""
        if symbol in self._members:
            raise ValueError(f"{symbol} is already registered with the portfolio")
        self._members[symbol] = (quote, precision)
        if quote in self._budgets:
            self._r.hsetnx(self._commitments(quote), symbol, _UNKNOWN)

    def has_budget(self, symbol: str) -> bool:
        return self._members[symbol][0] in self._budgets

    def hold(self, symbol: str) -> AbstractAsyncContextManager[None]:
        """Return the atomic section: the asset's Redis lock, or a no-op without a budget."""
        quote = self._members[symbol][0]
        if quote not in self._budgets:
            return contextlib.nullcontext()
        return self._locked(quote)

    def allowance(self, symbol: str, own_committed_qu: int) -> int | None:
        """Return the quote units ``symbol`` may newly commit, from every worker's commitments."""
        quote, precision = self._members[symbol]
        budget = self._budgets.get(quote)
        if budget is None:
            return None
        committed = _EXACT.multiply(Decimal(own_committed_qu), precision.quote_unit)
        for other, amount in self._r.hgetall(self._commitments(quote)).items():
            if other == symbol:
                continue
            if amount == _UNKNOWN:
                return 0  # its resting orders may already use the budget
            committed = _EXACT.add(committed, Decimal(str(amount)))
        left = _EXACT.subtract(budget, committed)
        if left <= 0:
            return 0
        return int(_EXACT.divide(left, precision.quote_unit).to_integral_value(rounding=ROUND_FLOOR))

    def reserve(self, symbol: str, committed_qu: int) -> None:
        """Record the symbol's whole commitment (quote units); inside ``hold`` only while it holds.

        Raises:
            StaleTokenError: inside ``hold``, the lock expired and may be another worker's now.
        """
        if committed_qu < 0:
            raise ValueError(f"{symbol}: a commitment cannot be negative ({committed_qu})")
        quote, precision = self._members[symbol]
        if quote not in self._budgets:
            return
        amount = str(_EXACT.multiply(Decimal(committed_qu), precision.quote_unit))
        token = (_held.get() or {}).get(quote)
        if token is None:
            self._r.hset(self._commitments(quote), symbol, amount)
            return
        keys = [self._lock(quote), self._commitments(quote)]
        if self._reserve(keys=keys, args=[token, symbol, amount]) != 1:
            raise StaleTokenError(
                f"{symbol}: the {quote} budget lock expired while this worker decided"
                f" (over {self._lock_ttl_ms} ms); nothing is placed, the next pulse decides again"
            )

    def committed_qu(self, symbol: str) -> int | None:
        quote, precision = self._members[symbol]
        if quote not in self._budgets:
            return None
        amount = self._r.hget(self._commitments(quote), symbol)
        if amount is None or amount == _UNKNOWN:
            return None
        return int(_EXACT.divide(Decimal(str(amount)), precision.quote_unit))

    def _commitments(self, quote: str) -> str:
        return f"{self._prefix}bc:{quote}"

    def _lock(self, quote: str) -> str:
        return f"{self._prefix}bl:{quote}"

    @contextlib.asynccontextmanager
    async def _locked(self, quote: str) -> AsyncIterator[None]:
        token = secrets.token_hex(8)
        wait_s = 0.001
        while not self._r.set(self._lock(quote), token, nx=True, px=self._lock_ttl_ms):
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, 0.02)
        held = dict(_held.get() or {})
        held[quote] = token
        reset = _held.set(held)
        try:
            yield
        finally:
            _held.reset(reset)
            self._unlock(keys=[self._lock(quote)], args=[token])
