"""In-process implementations of the ports for more than one process (``engine.ports``).

One process owns everything, as today: an ``asyncio`` queue per owner for commands, a dict of
leases with a counter per symbol for the fencing tokens. ``PortfolioRails`` (``portfolio.py``) is
the in-process ``QuoteBudget``. They pass the contract tests a Redis implementation will pass too.
Use them from one event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from nutcracker.core.commands import Command
from nutcracker.engine.ports import Lease

__all__ = ["InProcessInbox", "InProcessLease"]


class InProcessInbox:
    """``CommandInbox`` in one process: a FIFO per owner, a FIFO per unclaimed symbol."""

    def __init__(self) -> None:
        self._owner_of: dict[str, str] = {}  # symbol -> owner
        self._queues: dict[str, deque[Command]] = {}  # owner -> its commands, in order
        self._waiting: dict[str, deque[Command]] = {}  # symbol nobody claimed -> its commands
        self._arrived: dict[str, asyncio.Event] = {}  # owner -> set while its queue holds something

    def _queue(self, owner: str) -> deque[Command]:
        if owner not in self._queues:
            self._queues[owner] = deque()
            self._arrived[owner] = asyncio.Event()
        return self._queues[owner]

    def _push(self, owner: str, command: Command) -> None:
        self._queue(owner).append(command)
        self._arrived[owner].set()

    async def claim(self, owner: str, symbols: Sequence[str]) -> None:
        self._queue(owner)
        for symbol in symbols:
            former = self._owner_of.get(symbol)
            self._owner_of[symbol] = owner
            if former is not None and former != owner:  # its pending commands move with the symbol
                kept = deque(c for c in self._queues[former] if c.symbol != symbol)
                moved = [c for c in self._queues[former] if c.symbol == symbol]
                self._queues[former] = kept
                for command in moved:
                    self._push(owner, command)
            for command in self._waiting.pop(symbol, ()):
                self._push(owner, command)

    async def send(self, command: Command) -> None:
        if command.symbol is None:
            for owner in sorted(self._queues):
                self._push(owner, command)
            return
        holder = self._owner_of.get(command.symbol)
        if holder is None:
            self._waiting.setdefault(command.symbol, deque()).append(command)
        else:
            self._push(holder, command)

    async def receive(self, owner: str, timeout_s: float | None = None) -> Command | None:
        queue = self._queue(owner)
        arrived = self._arrived[owner]
        while not queue:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), timeout_s)
            except TimeoutError:
                return None
            queue = self._queues[owner]
        return queue.popleft()


class InProcessLease:
    """``SymbolLease`` in one process: the holder of each symbol and a token counter per symbol."""

    def __init__(self) -> None:
        self._held: dict[str, Lease] = {}
        self._tokens: dict[str, int] = {}  # the last token issued per symbol

    async def acquire(self, symbol: str, owner: str, ttl_ms: int, now_ms: int) -> Lease | None:
        if ttl_ms <= 0:
            raise ValueError(f"a lease needs a positive ttl, got {ttl_ms} ms")
        held = self._held.get(symbol)
        if held is not None and held.expires_ms > now_ms and held.owner != owner:
            return None
        token = self._tokens.get(symbol, 0) + 1  # even the same owner's new lease fences its old one
        self._tokens[symbol] = token
        lease = self._held[symbol] = Lease(symbol, owner, token, now_ms + ttl_ms)
        return lease

    async def renew(self, lease: Lease, ttl_ms: int, now_ms: int) -> Lease | None:
        held = self._held.get(lease.symbol)
        if held is None or held.token != lease.token or held.expires_ms <= now_ms:
            return None
        renewed = self._held[lease.symbol] = Lease(lease.symbol, lease.owner, lease.token, now_ms + ttl_ms)
        return renewed

    async def release(self, lease: Lease) -> None:
        held = self._held.get(lease.symbol)
        if held is not None and held.token == lease.token:
            del self._held[lease.symbol]

    async def check(self, symbol: str, token: int) -> bool:
        return token == self._tokens.get(symbol, 0) and token > 0
