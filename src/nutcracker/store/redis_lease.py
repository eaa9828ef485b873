"""``RedisLease``: who trades each symbol, across processes and machines, with fencing tokens.

A lease is one Redis string per symbol, ``lease:S`` = "owner token expires_ms acquired_ms", set with ``PX
ttl``, so Redis drops it when its holder stops renewing (a dead or stopped process). Acquiring
is one Lua script: if no other owner's lease runs (the key is gone, or its expiry is past the
caller's ``now_ms``), ``INCR tok:S`` issues the next fencing token and the key is set (the ``SET
NX PX`` of a lock, plus the token). ``RedisJournal``'s scripts refuse every write of the symbol
under an older token, so a process that wakes up after its lease expired can no longer record an
intent, hence never place: the lease decides who *should* trade, the token who *can* write.

Times are the callers' clocks (``SymbolLease``); workers pass the Redis server's clock
(``server_ms``) so that all of them agree. The calls are short blocking round trips (a lease is
taken or renewed a few times a second, not per pulse).
"""

from __future__ import annotations

from typing import Final

import redis

from nutcracker.core.records import Lease

__all__ = ["RedisLease", "server_ms"]

_ACQUIRE: Final = r"""
local k = ARGV[1] .. 'lease:' .. ARGV[2]
local held = redis.call('GET', k)
if held then
  local owner, token, expires = string.match(held, '^(%S+) (%d+) (%d+) ')
  if owner ~= ARGV[3] and tonumber(expires) > tonumber(ARGV[5]) then return false end
end
local token = redis.call('INCR', ARGV[1] .. 'tok:' .. ARGV[2])
redis.call('SET', k, ARGV[3] .. ' ' .. token .. ' ' .. ARGV[6] .. ' ' .. ARGV[5], 'PX', ARGV[4])
return token
"""
_RENEW: Final = r"""
local k = ARGV[1] .. 'lease:' .. ARGV[2]
local held = redis.call('GET', k)
if not held then return 0 end
local owner, token, expires, acquired = string.match(held, '^(%S+) (%d+) (%d+) (%d+)$')
if token ~= ARGV[3] or tonumber(expires) <= tonumber(ARGV[5]) then return 0 end
redis.call('SET', k, owner .. ' ' .. token .. ' ' .. ARGV[6] .. ' ' .. acquired, 'PX', ARGV[4])
return 1
"""
_RELEASE: Final = r"""
local k = ARGV[1] .. 'lease:' .. ARGV[2]
local held = redis.call('GET', k)
if held and string.match(held, '^%S+ (%d+) ') == ARGV[3] then redis.call('DEL', k) end
return 1
"""


def server_ms(client: redis.Redis) -> int:
    """Return the Redis server's clock in ms (one clock for every worker's leases)."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


class RedisLease:
    """``SymbolLease`` in Redis; ``prefix`` must be the journal's, whose scripts read ``tok:``."""

    def __init__(self, client: redis.Redis, *, prefix: str = "nc:") -> None:
        self._r = client
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, symbol: str, owner: str, ttl_ms: int, now_ms: int) -> Lease | None:
        if ttl_ms <= 0:
            raise ValueError(f"a lease needs a positive ttl, got {ttl_ms} ms")
        if not owner or any(c.isspace() for c in owner):
            raise ValueError(f"a lease owner is one word, got {owner!r}")
        expires = now_ms + ttl_ms
        token = self._acquire(args=[self._prefix, symbol, owner, ttl_ms, now_ms, expires])
        return None if token is None else Lease(symbol, owner, int(token), expires)

    async def renew(self, lease: Lease, ttl_ms: int, now_ms: int) -> Lease | None:
        expires = now_ms + ttl_ms
        kept = self._renew(args=[self._prefix, lease.symbol, lease.token, ttl_ms, now_ms, expires])
        return Lease(lease.symbol, lease.owner, lease.token, expires) if kept == 1 else None

    async def release(self, lease: Lease) -> None:
        self._release(args=[self._prefix, lease.symbol, lease.token])

    async def check(self, symbol: str, token: int) -> bool:
        latest = self._r.get(f"{self._prefix}tok:{symbol}")
        return token > 0 and latest is not None and int(latest) == token

    def holder(self, symbol: str) -> tuple[str, int, int, int] | None:
        """Return (owner, token, expires_ms, acquired_ms) of the symbol's lease, or None (status views)."""
        held = self._r.get(f"{self._prefix}lease:{symbol}")
        if held is None:
            return None
        owner, token, expires, acquired = str(held).split(" ")
        return owner, int(token), int(expires), int(acquired)

    def latest_token(self, symbol: str) -> int:
        """Return the symbol's last fencing token (0: never leased)."""
        return int(self._r.get(f"{self._prefix}tok:{symbol}") or 0)
