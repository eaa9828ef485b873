"""Ports the engine needs; adapters fit them structurally and never import this module.

Besides the exchange and the journal, four ports let the engine run as more than one process
later (a Redis implementation will have to pass the same contract tests, ``tests/contract/``):

``CommandInbox``  commands (``core.commands``) for the symbols one process owns, each delivered
                  once, in order, to that owner only
``SymbolLease``   who trades a symbol: acquire, renew, release, with a fencing token that grows at
                  every acquisition, so a writer that lost its lease is refused (``check``)
``QuoteBudget``   the quote shared by symbols: allowance and reserve inside one atomic ``hold``
``ReadModels``    what views read: fills, cycles, intents, parameter history, audit, and
                  ``events_since(seq)`` as a stream cursor

The in-process implementations (``engine.inprocess``, ``engine.portfolio.PortfolioRails``) are
today's behaviour: one process, asyncio locks, dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Protocol, runtime_checkable

from nutcracker.core.commands import Command
from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit
from nutcracker.core.records import (
    INTENT_STATUSES,
    OPEN_INTENT_STATUSES,
    AuditRow,
    ClosedCycleRecord,
    CycleRow,
    EventRow,
    FillRow,
    IntentRecord,
    IntentRow,
    Lease,
    ParamsRow,
    PulseRecord,
    StoredSymbol,
)
from nutcracker.core.units import Precision

__all__ = [
    "INTENT_STATUSES",
    "OPEN_INTENT_STATUSES",
    "Clock",
    "ClosedCycleRecord",
    "CommandInbox",
    "Exchange",
    "FencedJournal",
    "GroupCommitJournal",
    "HistoryExchange",
    "IntentRecord",
    "IntentUpdates",
    "Journal",
    "JournalStore",
    "JournalWrite",
    "Lease",
    "OrderHistory",
    "PulseRecord",
    "QuoteBudget",
    "ReadModels",
    "StoredSymbol",
    "SymbolLease",
]


class Clock(Protocol):
    def now_ms(self) -> int: ...


class Exchange(Protocol):
    """One exchange account, in the integer units of each market (ticks, lots, quote units).

    Every method may raise ``ExchangeUnavailableError`` (data-stall); ``place`` may raise
    ``AmbiguousOrderError`` when the request went out but no answer came back.
    """

    async def market(self, symbol: str) -> MarketInfo: ...

    async def server_time_ms(self) -> int: ...

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        """Return closed candles with open time >= ``since_ms``, oldest first."""
        ...

    async def fetch_book(self, symbol: str) -> Book: ...

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        """Return the free (unlocked) balance of every asset."""
        ...

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]: ...

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        """Return our fills with time >= ``since_ms``, oldest first (may repeat known ones)."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        """Return the order with this client order id, or None if the exchange never took it."""
        ...

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        """Place a post-only limit order; return the exchange's order id."""
        ...

    async def cancel(self, symbol: str, client_order_id: str) -> None: ...


class OrderHistory(Protocol):
    """An exchange account's order history (``recover`` and the start-time check read it)."""

    async def fetch_orders(self, symbol: str, limit: int | None = None) -> Sequence[OrderStatus]:
        """Return the account's orders of ``symbol``, open or closed, oldest first.

        ``limit`` None: every order the exchange keeps (paged); else the ``limit`` most recent.
        """
        ...


class HistoryExchange(Exchange, OrderHistory, Protocol):
    """An exchange whose order history can be read (every adapter: ccxt, paper, simulated)."""


class Journal(Protocol):
    """Durable engine state: append-only events plus read models. Narrow, so Redis can follow."""

    def commit_pulse(self, record: PulseRecord) -> None: ...

    def update_intents(self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int) -> None:
        """Set (client_order_id, status, detail) of recorded intents."""
        ...

    def open_intents(self, symbol: str) -> list[IntentRecord]: ...

    def load_symbol(self, symbol: str) -> StoredSymbol | None: ...

    def known_trade_ids(self, symbol: str, since_ms: int) -> set[str]: ...

    def set_status(self, symbol: str, status: str, reason: str, ts_ms: int) -> None: ...

    def save_state(self, symbol: str, state_json: str, ts_ms: int) -> None:
        """Store the strategy state without a durable commit (indicator progress of idle pulses)."""
        ...

    def record_params(
        self, symbol: str, params_json: str, actor: str, why: str, ts_ms: int, config_json: str = ""
    ) -> None:
        """Append the next version of the symbol's parameters; ``config_json``: them in user units."""
        ...

    def params_history(self, symbol: str) -> list[ParamsRow]:
        """Return every parameter set recorded for ``symbol``, oldest first."""
        ...

    def audit(self, actor: str, action: str, detail: str, ts_ms: int) -> None: ...

    def command_detail(self, command_id: str) -> str | None:
        """Return the first audit detail journaled for ``command_id`` (its ``command=`` tag), or None.

        ``Engine.submit`` stays idempotent across restarts (and processes sharing a store) with it.
        """
        ...

    def symbols(self) -> list[StoredSymbol]: ...

    def flush(self) -> None:
        """Make everything written so far durable."""
        ...

    def close(self) -> None: ...


IntentUpdates = tuple[str, Sequence[tuple[str, str, str]], int]
"""The arguments of ``Journal.update_intents``: (symbol, [(client_order_id, status, detail)], ts_ms)."""

JournalWrite = PulseRecord | IntentUpdates
"""One write of a group commit: a pulse (``commit_pulse``) or intent outcomes (``update_intents``)."""


@runtime_checkable
class GroupCommitJournal(Journal, Protocol):
    """A journal that commits the writes of several symbols at once (optional; see ``JournalLane``).

    ``stage_batch`` applies the writes, in order, in one transaction it leaves open: each write
    applies whole or not at all, on its own, and the answer holds, in order, None for a write
    kept or the exception its single call would have raised. ``commit_staged`` then commits them
    with one commit (one fsync when a pulse is among them) and may be called from another thread
    (the lane waits for the disk there, not in the event loop); until it returns nothing staged
    is durable nor visible to readers, and the journal's other calls wait. ``stage_batch`` raises
    when no transaction could be opened and ``commit_staged`` when the commit failed: then no
    write of the batch is kept. A journal without these two methods still works: its writes go
    one by one. A journal that learns the answers only when it commits (Redis: the scripts run,
    and the server fsyncs, when the batch is sent) returns them from ``commit_staged``; they then
    replace ``stage_batch``'s, and writes a script refused are not kept, each on its own.
    """

    def stage_batch(self, writes: Sequence[JournalWrite]) -> list[Exception | None]: ...

    def commit_staged(self) -> list[Exception | None] | None: ...


class FencedJournal(Journal, Protocol):
    """A journal that refuses the writes of a process whose symbol lease was taken over.

    ``fence(symbol, token)`` (the token of a ``SymbolLease``) raises ``StaleTokenError`` when a
    greater token was fenced already; from then on every write of the symbol under an older token
    raises it too (``SqliteJournal``, across processes on one file).
    """

    def fence(self, symbol: str, token: int) -> None: ...


class ReadModels(Protocol):
    """What views (status, API, console, reports) read; every journal offers it."""

    def load_symbol(self, symbol: str) -> StoredSymbol | None: ...

    def symbols(self) -> list[StoredSymbol]: ...

    def fills(self, symbol: str) -> list[FillRow]:
        """Return the symbol's booked fills, oldest first."""
        ...

    def cycles(self, symbol: str) -> list[CycleRow]:
        """Return the symbol's closed cycles by cycle id."""
        ...

    def intents(self, symbol: str) -> list[IntentRow]:
        """Return every intent recorded for the symbol, in record order."""
        ...

    def params_history(self, symbol: str) -> list[ParamsRow]: ...

    def audit_log(self, limit: int) -> list[AuditRow]:
        """Return the latest ``limit`` audit entries, newest first."""
        ...

    def recent_events(self, symbol: str, limit: int) -> list[EventRow]:
        """Return the symbol's latest ``limit`` events, newest first."""
        ...

    def events_since(self, seq: int, limit: int = 1000) -> list[EventRow]:
        """Return up to ``limit`` events after ``seq`` (of every symbol), oldest first.

        A stream cursor: pass the last ``seq`` seen (0 at first) to get what followed it.
        """
        ...


class JournalStore(Journal, ReadModels, Protocol):
    """A journal with its read models (``SqliteJournal``, ``InMemoryJournal``)."""


class CommandInbox(Protocol):
    """Commands for the symbols each process owns.

    ``claim`` makes ``owner`` the one receiver of the commands of ``symbols`` (taking them over
    from a former owner: commands not yet received move with them); a command for a symbol
    nobody claimed waits for its owner; one for every symbol (``symbol`` None) reaches every owner.
    Each command is delivered once, in the order sent, and only to its symbol's owner.
    """

    async def claim(self, owner: str, symbols: Sequence[str]) -> None: ...

    async def send(self, command: Command) -> None: ...

    async def receive(self, owner: str, timeout_s: float | None = None) -> Command | None:
        """Return the owner's next command, waiting up to ``timeout_s`` (None: for ever)."""
        ...


class SymbolLease(Protocol):
    """Who trades each symbol, with fencing tokens; times are the caller's clock (ms)."""

    async def acquire(self, symbol: str, owner: str, ttl_ms: int, now_ms: int) -> Lease | None:
        """Return a new lease with a greater token, or None while another owner's lease runs."""
        ...

    async def renew(self, lease: Lease, ttl_ms: int, now_ms: int) -> Lease | None:
        """Extend a lease still held (same token); None when it expired or was taken over."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the symbol up now (a lease no longer held is ignored)."""
        ...

    async def check(self, symbol: str, token: int) -> bool:
        """Return whether ``token`` is the symbol's latest: a writer with an older one is stale."""
        ...


class QuoteBudget(Protocol):
    """Quote budgets shared by the symbols spending one quote asset (``PortfolioRails`` in-process).

    A worker holds ``hold(symbol)`` while it reads its ``allowance``, decides, and ``reserve``s
    its new commitment: no other holder of the same asset's budget runs in between, so two
    symbols never both spend the same rest of the budget.
    """

    def register(self, symbol: str, quote: str, precision: Precision) -> None: ...

    def has_budget(self, symbol: str) -> bool: ...

    def hold(self, symbol: str) -> AbstractAsyncContextManager[None]:
        """The atomic section for ``allowance`` then ``reserve`` (a no-op without a budget)."""
        ...

    def allowance(self, symbol: str, own_committed_qu: int) -> int | None:
        """Return the quote units ``symbol`` may newly commit (None: no budget on its asset)."""
        ...

    def reserve(self, symbol: str, committed_qu: int) -> None:
        """Record the symbol's whole commitment (held cost + open and sent buys), quote units."""
        ...

    def committed_qu(self, symbol: str) -> int | None: ...
