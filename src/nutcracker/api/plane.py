"""What the routes work on: a running engine, its read models, the config in the user's units.

``ControlPlane`` is the API's view of one engine process. It reads through the ``ReadModels``
port and the engine's latest reports, and changes nothing itself: every change is a command
value sent to ``Engine.submit``, the engine's one door (applied between pulses, under the
symbol's lock, journaled). It keeps a short, in-memory history of each symbol's pulse reports
(for ``/pulses``) and a tail of the journal's events that every SSE subscriber shares.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nutcracker.config import NutcrackerConfig
from nutcracker.core.records import EventRow
from nutcracker.engine.ports import Clock, ReadModels
from nutcracker.engine.reports import PulseReport
from nutcracker.engine.runtime import Engine

__all__ = ["ControlPlane", "EventFeed", "SymbolBook", "symbol_slug"]

PULSES_KEPT = 200  # per symbol: what ``/pulses`` can show


def symbol_slug(symbol: str) -> str:
    """Return the form a symbol takes in a URL path: ``BTC/USDT`` -> ``BTC-USDT``."""
    return symbol.replace("/", "-")


@dataclass
class SymbolBook:
    """What the plane remembers of one symbol beside the journal: recent reports, fees, first price."""

    symbol: str
    account: str
    pulses: deque[PulseReport] = field(default_factory=lambda: deque(maxlen=PULSES_KEPT))
    fees_qu: int = 0  # commissions paid in (or valued in) quote, booked fills only
    first_close: int = 0  # ticks: the buy-and-hold yardstick's entry (0 until a price is seen)
    status: tuple[PulseReport | None, Any] | None = None  # the status view of the last report (cache)


class EventFeed:
    """The journal's latest events, read once per engine report and shared by every subscriber.

    A subscriber whose cursor is older than the tail reads the journal itself (``events_since``),
    so a resume from any ``Last-Event-ID`` has no gap; the tail only spares the journal the same
    read by a hundred subscribers.
    """

    def __init__(self, journal: ReadModels, keep: int = 5_000) -> None:
        self._journal = journal
        self._tail: deque[EventRow] = deque(maxlen=keep)
        self._last_seq = 0
        self._changed = asyncio.Event()
        self._scheduled = False

    def refresh_soon(self) -> None:
        """Refresh once at the end of this event-loop turn (a pulse of 100 symbols: one read, not 100)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.refresh)

    def refresh(self) -> None:
        """Read what the journal appended since the last refresh and wake the subscribers."""
        self._scheduled = False
        while True:
            rows = self._journal.events_since(self._last_seq, 1_000)
            if not rows:
                break
            self._tail.extend(rows)
            self._last_seq = rows[-1].seq
            if len(rows) < 1_000:
                break
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def after(self, seq: int, limit: int = 500) -> list[EventRow]:
        """Return up to ``limit`` events after ``seq``, oldest first (from the tail when it covers them)."""
        tail = self._tail
        if tail and seq >= tail[0].seq - 1:
            return [row for row in tail if row.seq > seq][:limit]
        return self._journal.events_since(seq, limit)

    async def wait(self, timeout_s: float) -> None:
        """Wait until the next refresh, or ``timeout_s``."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_s)


class ControlPlane:
    """A running engine as the API sees it (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        journal: ReadModels,
        config: NutcrackerConfig,
        *,
        accounts: Mapping[str, str],
        clock: Clock,
        mode: str,
    ) -> None:
        """``accounts`` maps each symbol to its account, ``"{exchange}/{key name}"``."""
        self.engine = engine
        self.journal = journal
        self.config = config
        self.clock = clock
        self.mode = mode
        self.params_lock = asyncio.Lock()  # one parameter change at a time: each patches the last config
        self.books: dict[str, SymbolBook] = {}
        for symbol in engine.workers:
            book = SymbolBook(symbol, accounts[symbol])
            book.fees_qu = sum(row.fee for row in journal.fills(symbol))
            self.books[symbol] = book
        self.by_slug = {symbol_slug(s): s for s in self.books}
        self.feed = EventFeed(journal)
        self.feed.refresh()
        self.ready = False  # the engine has loaded every symbol and pulses
        self.stopped = False
        engine.add_observer(self._observe)

    def _observe(self, report: PulseReport) -> None:
        book = self.books.get(report.symbol)
        if book is None:
            return
        book.pulses.append(report)
        book.fees_qu += sum(f.fee for f in report.fills)
        if not book.first_close and report.close:
            book.first_close = report.close
        self.ready = True
        self.feed.refresh_soon()

    def account_of(self, symbol: str) -> str:
        return self.books[symbol].account

    def symbols(self) -> Sequence[str]:
        return list(self.books)
