"""``RedisInbox``: the ``CommandInbox`` of workers on several machines, over Redis streams.

A stream per symbol (``cmd:S``) and one for commands to every symbol (``cmd:*``); entry ids come
from one counter, so merging the streams by id gives the order the commands were sent. ``claim``
names a symbol's owner (``cmdowner``); the symbol's cursor (``scur:S``, the last id delivered)
stays with the symbol, so commands not yet received move to a new owner. Each owner has its own
cursor on ``cmd:*``, starting where it first claimed. ``receive`` is one Lua script: it picks the
owner's next command across its streams and moves that cursor in the same step, which is the
acknowledgement: each command is delivered once. A command delivered to a worker that dies
before applying it is not delivered again; ``Engine.submit`` is idempotent by command id, so the
sender may send it again (the journal's audit says whether it was applied).

An idle receiver does not run its script every poll: one read of each stream's last sequence
number per poll (``_Doorbell``) serves every receiver of the inbox, and a receiver runs its script
again only when one of its streams moved. A script per symbol every 20 ms cost Redis a third of a
core, and the worker half of one, for 100 idle symbols (``bench/inbox.py``: 2 % and 7 % now); a
worker shares one inbox among its symbols.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any, Final

import redis

from nutcracker.core.commands import (
    ChangeParams,
    Command,
    DecideSuggestion,
    KillSymbol,
    PauseSymbol,
    ProposeChange,
    ResumeSymbol,
    Role,
)
from nutcracker.core.serialize import dumps_params, loads_params
from nutcracker.errors import JournalError

__all__ = ["RedisInbox"]

_ALL: Final = "*"
_POLL_S: Final = 0.02
_IDLE_CHECK_S: Final = 5.0  # an idle receiver runs its script this often anyway (a new claim moved
# commands its way without a send)

_SEND: Final = r"""
local P = ARGV[1]
local n = redis.call('INCR', P .. 'cmdseq')
redis.call('XADD', P .. 'cmd:' .. ARGV[2], n .. '-1', 'c', ARGV[3])
redis.call('HSET', P .. 'cmdlast', ARGV[2], n)
return n
"""
_CLAIM: Final = r"""
local P = ARGV[1]
local owner = ARGV[2]
if redis.call('HEXISTS', P .. 'bcur', owner) == 0 then
  redis.call('HSET', P .. 'bcur', owner, redis.call('GET', P .. 'cmdseq') or '0')
end
for i = 3, #ARGV do redis.call('HSET', P .. 'cmdowner', ARGV[i], owner) end
return 1
"""
_RECEIVE: Final = r"""
local P = ARGV[1]
local owner = ARGV[2]
local best, best_key, best_cursor = nil, nil, nil
local function consider(stream, after, key)
  local got = redis.call('XRANGE', P .. 'cmd:' .. stream, '(' .. after .. '-1', '+', 'COUNT', 1)
  if #got > 0 then
    local seq = tonumber(string.match(got[1][1], '^(%d+)-'))
    if best == nil or seq < best[1] then best = {seq, got[1][2][2]}; best_key = key; best_cursor = stream end
  end
end
local owners = redis.call('HGETALL', P .. 'cmdowner')
for i = 1, #owners, 2 do
  if owners[i + 1] == owner then
    consider(owners[i], redis.call('HGET', P .. 'scur', owners[i]) or '0', 'scur')
  end
end
local bcur = redis.call('HGET', P .. 'bcur', owner)
if bcur then consider('*', bcur, 'bcur') end
if best == nil then return false end
redis.call('HSET', P .. best_key, best_key == 'scur' and best_cursor or owner, best[1])
return best[2]
"""


class _Doorbell:
    """Rings an owner's event when a stream it reads moved: a command may be waiting for it.

    ``cmdlast`` holds each stream's last sequence number (``_SEND`` sets it); one ``HGETALL`` of it
    every ``_POLL_S``, while any receiver waits, serves every receiver of the inbox. It is read
    once when the bell is made, before any receiver's first script, so a command sent after that
    script always moves it past what the bell knows. A move of ``*`` (a command for every symbol)
    rings everyone; so does any move for an owner whose symbols this inbox did not claim.
    """

    def __init__(self, client: redis.Redis, key: str, symbols_of: dict[str, set[str]]) -> None:
        self._client = client
        self._key = key
        self._symbols_of = symbols_of  # the inbox's claims: owner -> its symbols
        self._seen = self._read()
        self._rings: dict[str, asyncio.Event] = {}  # owner -> set when one of its streams moves
        self._waiting = 0
        self._polling: asyncio.Task[None] | None = None

    def _read(self) -> dict[str, str]:
        return dict(self._client.hgetall(self._key))  # type: ignore[arg-type]  # the client decodes

    def ring(self, owner: str) -> asyncio.Event:
        return self._rings.setdefault(owner, asyncio.Event())

    async def wait(self, ring: asyncio.Event, timeout_s: float) -> None:
        """Return when ``ring`` is set (its owner's streams moved since it was made) or after
        ``timeout_s``."""
        self._waiting += 1
        if self._polling is None or self._polling.done():
            self._polling = asyncio.create_task(self._poll(), name="inbox doorbell")
        try:
            await asyncio.wait_for(ring.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(_POLL_S)
            try:
                now = self._read()
            except redis.RedisError:  # every receiver runs its script, which says what is wrong
                now = {_ALL: "unread"}
            if now == self._seen:
                continue
            moved = {stream for stream, seq in now.items() if self._seen.get(stream) != seq}
            self._seen = now
            for owner in list(self._rings):
                symbols = self._symbols_of.get(owner)
                if _ALL in moved or symbols is None or not moved.isdisjoint(symbols):
                    self._rings.pop(owner).set()


class RedisInbox:
    """``CommandInbox`` in Redis; see the module's docstring. ``prefix`` as the journal's."""

    def __init__(self, client: redis.Redis, *, prefix: str = "nc:") -> None:
        self._client = client
        self._prefix = prefix
        self._send = client.register_script(_SEND)
        self._claim = client.register_script(_CLAIM)
        self._receive = client.register_script(_RECEIVE)
        self._bell: _Doorbell | None = None  # made on the loop of the first receive
        self._symbols_of: dict[str, set[str]] = {}  # what each owner claimed through this inbox

    async def claim(self, owner: str, symbols: Sequence[str]) -> None:
        self._claim(args=[self._prefix, owner, *symbols])
        self._symbols_of.setdefault(owner, set()).update(symbols)

    async def send(self, command: Command) -> None:
        if command.symbol == _ALL:
            raise ValueError(f"{_ALL!r} is not a symbol")
        try:
            self._send(args=[self._prefix, command.symbol or _ALL, json.dumps(_to_dict(command))])
        except redis.RedisError as e:  # the sender says so (the API: a 503)
            raise JournalError(
                f"Redis: command {command.command_id} may not have been sent ({e}); check the server, then"
                " send it again (the same command id is applied once)"
            ) from None

    async def receive(self, owner: str, timeout_s: float | None = None) -> Command | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if self._bell is None:
            self._bell = _Doorbell(self._client, f"{self._prefix}cmdlast", self._symbols_of)
        while True:
            ring = self._bell.ring(owner)  # before the script: a command sent after it rings this one
            got = self._receive(args=[self._prefix, owner])
            if got is not None:
                return _from_dict(json.loads(got))
            left = _IDLE_CHECK_S if deadline is None else min(_IDLE_CHECK_S, deadline - time.monotonic())
            if left <= 0:
                return None
            await self._bell.wait(ring, left)


_KINDS: Final = {"pause": PauseSymbol, "resume": ResumeSymbol, "kill": KillSymbol}


def _to_dict(command: Command) -> dict[str, Any]:
    common = {
        "kind": command.kind,
        "command_id": command.command_id,
        "symbol": command.symbol,
        "actor": command.actor,
        "role": command.role.value,
        "why": command.why,
        "ts_ms": command.ts_ms,
        "grant_id": command.grant_id,
    }
    if isinstance(command, ChangeParams):
        return common | {"params": dumps_params(command.params), "config_json": command.config_json}
    if isinstance(command, ProposeChange):
        return common | {"patch_json": command.patch_json}
    if isinstance(command, DecideSuggestion):
        return common | {"suggestion_id": command.suggestion_id}
    return common


def _from_dict(d: dict[str, Any]) -> Command:
    role = Role(d["role"])
    if d["kind"] == "params":
        params = loads_params(d["params"])
        return ChangeParams(
            d["command_id"], params, d["actor"], role, d["why"], d["ts_ms"], d["grant_id"], d["config_json"]
        )
    if d["kind"] == "propose":
        return ProposeChange(
            d["command_id"],
            d["symbol"],
            d["patch_json"],
            d["actor"],
            role,
            d["why"],
            d["ts_ms"],
            d["grant_id"],
        )
    if d["kind"] in ("accept_suggestion", "reject_suggestion"):
        accepted = d["kind"] == "accept_suggestion"
        return DecideSuggestion(
            d["command_id"], d["symbol"], d["suggestion_id"], accepted, d["actor"], role, d["why"], d["ts_ms"]
        )
    kind = _KINDS[d["kind"]]
    return kind(d["command_id"], d["symbol"], d["actor"], role, d["why"], d["ts_ms"], d["grant_id"])
