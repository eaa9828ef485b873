"""What the routes work on: a running engine, its read models, the config in the user's units.

``ControlPlane`` is the API's view of one engine process. It reads through the ``ReadModels``
port and the engine's latest reports, and changes nothing itself: every change is a command
value sent to ``Engine.submit``, the engine's one door (applied between pulses, under the
symbol's lock, journaled). The engine is an ``EngineView``: the in-process ``Engine``, or
``app.fleet.FleetEngine`` for the symbols of scale-out workers (``serve --store``). It keeps a
short, in-memory history of each symbol's pulse reports (for ``/pulses``) and of the closed
candles they hydrated (``/candles``: the engine caches none, each pulse reads the new ones from
the exchange), and a tail of the journal's events that every SSE subscriber shares.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from nutcracker.config import NutcrackerConfig
from nutcracker.core.commands import Command, CommandOutcome
from nutcracker.core.model import Candle, OpenOrder
from nutcracker.core.params import SymbolParams
from nutcracker.core.records import ACCOUNT, EventRow
from nutcracker.core.units import Precision
from nutcracker.engine.polling import poll
from nutcracker.engine.ports import Clock, ReadModels
from nutcracker.engine.reports import PulseReport, SymbolStatus
from nutcracker.errors import JournalError

__all__ = [
    "ControlPlane",
    "EngineView",
    "EventFeed",
    "Frame",
    "StatusBody",
    "SymbolBook",
    "WorkerView",
    "frame_of",
    "symbol_slug",
]

logger = logging.getLogger("nutcracker.api")

PULSES_KEPT = 200  # per symbol: what ``/pulses`` can show
CANDLES_KEPT = 1000  # per symbol: the closed candles the pulses hydrated, what ``/candles`` can show
REFRESH_GAP_S = 0.05  # the event feed reads the journal at most this often (``EventFeed.refresh_soon``)
# How far a symbol's status view may lag its latest report (a change of state, or a command through
# the API, shows at once): a replay pulses a symbol dozens of times a second, and rebuilding a
# hundred views for every poll took more of the engine's loop than its pulses.
STATUS_MAX_AGE_S = 0.25


class WorkerView(Protocol):
    """One symbol of the engine, as the routes read it."""

    @property
    def params(self) -> SymbolParams: ...

    @property
    def status(self) -> SymbolStatus: ...

    @property
    def open_orders(self) -> tuple[OpenOrder, ...]: ...


class EngineView(Protocol):
    """What the API needs of an engine: its symbols, their latest reports, and its one door."""

    @property
    def workers(self) -> Mapping[str, Any]: ...

    def worker(self, symbol: str) -> WorkerView: ...

    def latest(self) -> dict[str, PulseReport]: ...

    def add_observer(self, observer: Callable[[PulseReport], None]) -> None: ...

    async def submit(self, command: Command) -> CommandOutcome: ...


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # refreshed outside a loop (the plane's first read)
        return float("-inf")


def symbol_slug(symbol: str) -> str:
    """Return the form a symbol takes in a URL path: ``BTC/USDT`` -> ``BTC-USDT``."""
    return symbol.replace("/", "-")


@dataclass
class SymbolBook:
    """What the plane remembers of one symbol beside the journal: recent reports and candles, fees,
    first price."""

    symbol: str
    account: str
    pulses: deque[PulseReport] = field(default_factory=lambda: deque(maxlen=PULSES_KEPT))
    candles: deque[Candle] = field(default_factory=lambda: deque(maxlen=CANDLES_KEPT))  # oldest first
    fees_qu: int = 0  # commissions paid in (or valued in) quote, booked fills only
    first_close: int = 0  # ticks: the buy-and-hold yardstick's entry (0 until a price is seen)
    status: PulseReport | None = None  # the report ``status_json`` shows (None: before the first pulse)
    status_json: bytes = b""  # the status view's JSON body, encoded once per report
    status_at: float = float("-inf")  # when it was last known to show the latest report (time.monotonic)
    status_generation: int = -1  # the plane's command count it was built after
    texts: dict[object, str] = field(default_factory=dict)  # the view's amounts and names, as written
    texts_for: Precision | None = None  # the market grid ``texts`` were written on
    units: tuple[Decimal, Decimal, Decimal] = (
        Decimal(1),
        Decimal(1),
        Decimal(1),
    )  # its tick, lot, quote unit


@dataclass(slots=True)
class StatusBody:
    """A ``GET /status`` body kept for the callers who see the same accounts."""

    at: float  # when its oldest view was last known current (time.monotonic): it expires from there
    epoch: tuple[int, int]  # the plane's (generation, state changes) then
    body: bytes
    gzipped: bytes | None = None  # compressed at the first caller who accepts it


@dataclass(frozen=True, slots=True)
class Frame:
    """One journal event as an SSE frame, encoded once for every subscriber."""

    seq: int
    symbol: str  # ACCOUNT for account-wide events
    named: str  # the symbol an account-wide audit names first ("symbol=BTC/USDT command=..."), else ""
    text: bytes  # "id: …\nevent: …\ndata: …\n\n"

    def visible_to(self, symbols: frozenset[str], everything: bool) -> bool:
        """Whether a caller seeing ``symbols`` (or, with ``everything``, every account) may see it."""
        if everything:
            return True
        if self.symbol != ACCOUNT:
            return self.symbol in symbols
        return self.named in symbols


def frame_of(row: EventRow) -> Frame:
    """Encode one event as its SSE frame (``id:`` is the journal's seq)."""
    payload = json.loads(row.payload)
    named = ""
    if row.symbol == ACCOUNT and row.kind == "audit":
        detail = str(payload.get("detail", ""))
        named = detail.split(" ", 1)[0].removeprefix("symbol=") if detail.startswith("symbol=") else ""
    data = json.dumps(
        {"seq": row.seq, "ts_ms": row.ts_ms, "symbol": row.symbol, "kind": row.kind, "payload": payload},
        separators=(",", ":"),
    )
    return Frame(row.seq, row.symbol, named, f"id: {row.seq}\nevent: {row.kind}\ndata: {data}\n\n".encode())


def _why(e: Exception) -> str:
    """A journal's error says what to check in its own words; any other is named by its type too."""
    return str(e) if isinstance(e, JournalError) else repr(e)


class EventFeed:
    """The journal's latest events, read and encoded once per engine report, shared by every subscriber.

    A subscriber whose cursor is older than the tail reads the journal itself (``events_since``),
    so a resume from any ``Last-Event-ID`` has no gap; the tail spares the journal the same read,
    and the frames the same encoding, by a hundred subscribers. Subscribers at the same cursor who
    see the same symbols also share the joined chunk they are sent (``chunk_after``).
    """

    def __init__(self, journal: ReadModels, keep: int = 5_000) -> None:
        self._journal = journal
        self._tail: deque[Frame] = deque(maxlen=keep)
        self._last_seq = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._beat: asyncio.TimerHandle | None = None  # wakes every waiter by the first one's timeout
        self._beat_at = float("inf")
        self._scheduled = False
        self._refreshed_at = float("-inf")
        self._chunks: dict[tuple[int, int, frozenset[str], bool], tuple[bytes, int]] = {}

    def refresh_soon(self) -> None:
        """Refresh at the end of this event-loop turn, or ``REFRESH_GAP_S`` after the last refresh.

        The gap batches: the symbols of an engine round pulse one after the other, and waking a
        hundred subscribers after each of them cost more than the pulses (a round of 100 symbols:
        a few refreshes, not 100); it bounds what it adds to an event's delay.
        """
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            loop.call_at(max(loop.time(), self._refreshed_at + REFRESH_GAP_S), self.refresh)

    def refresh(self) -> None:
        """Read what the journal appended since the last refresh and wake the subscribers."""
        self._scheduled = False
        self._refreshed_at = _loop_time()
        before = self._last_seq
        while True:
            rows = self._journal.events_since(self._last_seq, 1_000)
            if not rows:
                break
            self._tail.extend(frame_of(row) for row in rows)
            self._last_seq = rows[-1].seq
            if len(rows) < 1_000:
                break
        if self._last_seq == before:
            return  # nothing new: the subscribers sleep on (a wake-up would cost each a heartbeat)
        self._chunks.clear()
        self._wake_all()

    async def follow(self, stop: asyncio.Event, every_s: float = REFRESH_GAP_S) -> None:
        """Refresh every ``every_s`` until ``stop``: for a journal other processes append to.

        ``serve --store`` has no engine in its process to say when an event was journaled; its
        workers publish their reports once a second, and an event waiting for the next report
        reached subscribers up to 1.6 s late (``bench/api.py --fleet``). An empty read is one
        round trip; the events then arrive as they would in process.
        """

        async def refresh() -> None:
            self.refresh()

        await poll(stop, every_s, refresh, logger, "events", _why)

    def _wake_all(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            self._beat, self._beat_at = None, float("inf")
        waiters, self._waiters = self._waiters, []
        for woken in waiters:
            _wake(woken)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def after(self, seq: int, limit: int = 500) -> list[Frame]:
        """Return up to ``limit`` events after ``seq``, oldest first (from the tail when it covers them)."""
        tail = self._tail
        if tail and seq >= tail[-1].seq:  # a stream that has sent it all: no scan of the tail
            return []
        if tail and seq >= tail[0].seq - 1:
            start = max(0, seq - tail[0].seq + 1)  # seqs are consecutive in the tail
            if start < len(tail) and tail[start].seq == seq + 1:
                return list(itertools.islice(tail, start, start + limit))
            return [f for f in tail if f.seq > seq][:limit]
        return [frame_of(row) for row in self._journal.events_since(seq, limit)]

    def chunk_after(
        self, seq: int, symbols: frozenset[str], everything: bool, limit: int = 500
    ) -> tuple[bytes, int]:
        """Return the frames after ``seq`` a caller may see, joined, and the cursor past them (``seq``
        when there is nothing new)."""
        key = (seq, limit, symbols, everything)
        known = self._chunks.get(key)
        if known is None:
            frames = self.after(seq, limit)
            text = b"".join(f.text for f in frames if f.visible_to(symbols, everything))
            known = (text, frames[-1].seq if frames else seq)
            if len(self._chunks) < 1_000:
                self._chunks[key] = known
        return known

    def wait(self, timeout_s: float) -> asyncio.Future[None]:
        """Return a future done at the next refresh that brought events, or within ``timeout_s``.

        Each waiter has its own future (a subscriber who hangs up cancels its own only), but one
        timer serves them all, due at the earliest waiter's timeout, so a waiter may wake earlier
        than its own, never later: a timer per waiter, made and cancelled for each of a hundred
        subscribers at every refresh, was a fifth of what the stream cost the loop.
        """
        loop = asyncio.get_running_loop()
        woken = loop.create_future()
        self._waiters.append(woken)
        due = loop.time() + timeout_s
        if due < self._beat_at:
            if self._beat is not None:
                self._beat.cancel()
            self._beat, self._beat_at = loop.call_at(due, self._wake_all), due
        return woken


class ControlPlane:
    """A running engine as the API sees it (see the module docstring)."""

    def __init__(
        self,
        engine: EngineView,
        journal: ReadModels,
        config: NutcrackerConfig,
        *,
        accounts: Mapping[str, str],
        clock: Clock,
        mode: str,
        status_max_age_s: float = STATUS_MAX_AGE_S,
    ) -> None:
        """``accounts`` maps each symbol to its account, ``"{exchange}/{key name}"``;
        ``status_max_age_s`` bounds how old a status view may be (0: rebuilt from every report)."""
        self.engine = engine
        self.status_max_age_s = status_max_age_s
        self.generation = 0  # commands sent through the plane: a view older than the last is rebuilt
        self.state_changes = 0  # reports that showed a symbol in another state than its last one
        self.status_bodies: dict[frozenset[str], StatusBody] = {}  # per set of accounts a caller sees
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
        if not book.pulses or book.pulses[-1].status != report.status:
            self.state_changes += 1
        book.pulses.append(report)
        if report.candles:
            newest = book.candles[-1].ts_ms if book.candles else -1
            # a restart of the indicators (new Keltner periods) reads history again: keep each candle once
            book.candles.extend(c for c in report.candles if c.ts_ms > newest)
        book.fees_qu += sum(f.fee for f in report.fills)
        if not book.first_close and report.close:
            book.first_close = report.close
        self.ready = True
        self.feed.refresh_soon()

    async def submit(self, command: Command) -> CommandOutcome:
        """Send ``command`` through the engine's one door; the status views show its effect at once."""
        try:
            return await self.engine.submit(command)
        finally:
            self.generation += 1
            self.feed.refresh_soon()

    def account_of(self, symbol: str) -> str:
        return self.books[symbol].account

    def symbols(self) -> Sequence[str]:
        return list(self.books)
