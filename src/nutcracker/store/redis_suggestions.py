"""The advisor's suggestions in Redis: what a journal file's suggestions table keeps, for scale-out.

``nutcracker advise --store redis://…`` files them; ``nutcracker serve --store`` lists them and
records the owner's decision, while the parameter change itself goes through the owning worker as
every command does. The contract is ``store.suggestions.Suggestions``: a record never changes once
filed, and its status moves once from pending. Each write is one Lua script, so two servers
deciding the same suggestion at once cannot both win, and an expiry cannot undo a decision.

Keys, under the journal's prefix: ``sg:ID`` hash (symbol, status, created, expires, decided_ts,
decided_by, record) · ``sgi`` every id, scored by its creation time · ``sgp`` the pending ids,
scored by their expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar, cast

import redis

from nutcracker.errors import JournalError
from nutcracker.store.redis_connect import connect, describe
from nutcracker.store.suggestions import EXPIRED, PENDING, StoredSuggestion, check_decision

__all__ = ["RedisSuggestions"]

T = TypeVar("T")

_FILE: Final = r"""
local P, id = ARGV[1], ARGV[2]
local key = P .. 'sg:' .. id
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'symbol', ARGV[3], 'status', ARGV[4], 'created', ARGV[5], 'expires', ARGV[6],
  'decided_ts', '-1', 'decided_by', '', 'record', ARGV[7])
redis.call('ZADD', P .. 'sgi', ARGV[5], id)
redis.call('ZADD', P .. 'sgp', ARGV[6], id)
return 1
"""
_EXPIRE: Final = r"""
local P, now = ARGV[1], ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', P .. 'sgp', '-inf', now)
for _, id in ipairs(ids) do
  redis.call('HSET', P .. 'sg:' .. id, 'status', ARGV[3], 'decided_ts', now, 'decided_by', 'expiry')
  redis.call('ZREM', P .. 'sgp', id)
end
return #ids
"""
_DECIDE: Final = r"""
local P, id = ARGV[1], ARGV[2]
local key = P .. 'sg:' .. id
if redis.call('HGET', key, 'status') ~= ARGV[3] then return 0 end
redis.call('HSET', key, 'status', ARGV[4], 'decided_by', ARGV[5], 'decided_ts', ARGV[6])
redis.call('ZREM', P .. 'sgp', id)
return 1
"""


class RedisSuggestions:
    """The suggestions of one Redis store (``nutcracker worker --store``'s), one script per write."""

    def __init__(self, url: str, *, prefix: str = "nc:", client: redis.Redis | None = None) -> None:
        """Connect to the Redis at ``url`` (checked as the journal is: see ``redis_connect.connect``).

        Raises:
            JournalError: the URL, the server or its durability is wrong; one line with the fix.
        """
        self._r = client if client is not None else connect(url)
        self._where = describe(url)
        self._prefix = prefix
        self._file = self._r.register_script(_FILE)
        self._expire = self._r.register_script(_EXPIRE)
        self._decide = self._r.register_script(_DECIDE)

    def file(
        self, suggestion_id: str, symbol: str, record_json: str, created_ts_ms: int, expires_ts_ms: int
    ) -> bool:
        args: list[str | int] = [
            self._prefix,
            suggestion_id,
            symbol,
            PENDING,
            created_ts_ms,
            expires_ts_ms,
            record_json,
        ]
        return self._call(lambda: int(self._file(args=args))) == 1

    def expire(self, now_ms: int) -> int:
        return self._call(lambda: int(self._expire(args=[self._prefix, now_ms, EXPIRED])))

    def all(self) -> list[StoredSuggestion]:
        def read() -> list[StoredSuggestion]:
            ids = cast(list[str], self._r.zrange(f"{self._prefix}sgi", 0, -1))  # the client decodes
            with self._r.pipeline(transaction=False) as pipe:
                for suggestion_id in ids:
                    pipe.hgetall(f"{self._prefix}sg:{suggestion_id}")
                rows = pipe.execute()
            return [_stored(i, row) for i, row in zip(ids, rows, strict=True) if row]

        return sorted(self._call(read), key=lambda s: (-s.created_ts_ms, s.id))

    def get(self, suggestion_id: str) -> StoredSuggestion | None:
        row = self._call(lambda: cast(dict[str, str], self._r.hgetall(f"{self._prefix}sg:{suggestion_id}")))
        return _stored(suggestion_id, row) if row else None

    def decide(self, suggestion_id: str, status: str, actor: str, ts_ms: int) -> bool:
        check_decision(status)
        args: list[str | int] = [self._prefix, suggestion_id, PENDING, status, actor, ts_ms]
        return self._call(lambda: int(self._decide(args=args))) == 1

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except redis.RedisError as e:
            raise JournalError(
                f"Redis at {self._where}: suggestions not kept ({e}); check the server"
            ) from None


def _stored(suggestion_id: str, text: dict[str, str]) -> StoredSuggestion:
    return StoredSuggestion(
        id=suggestion_id,
        symbol=text["symbol"],
        status=text["status"],
        created_ts_ms=int(text["created"]),
        expires_ts_ms=int(text["expires"]),
        decided_ts_ms=int(text["decided_ts"]),
        decided_by=text["decided_by"],
        record_json=text["record"],
    )
