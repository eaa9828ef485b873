"""Ports the engine needs; adapters fit them structurally and never import this module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit
from nutcracker.core.records import (
    INTENT_STATUSES,
    OPEN_INTENT_STATUSES,
    ClosedCycleRecord,
    IntentRecord,
    ParamsRow,
    PulseRecord,
    StoredSymbol,
)

__all__ = [
    "INTENT_STATUSES",
    "OPEN_INTENT_STATUSES",
    "Clock",
    "ClosedCycleRecord",
    "Exchange",
    "GroupCommitJournal",
    "HistoryExchange",
    "IntentRecord",
    "IntentUpdates",
    "Journal",
    "JournalWrite",
    "OrderHistory",
    "PulseRecord",
    "StoredSymbol",
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

    def symbols(self) -> list[StoredSymbol]: ...

    def flush(self) -> None:
        """Make everything written so far durable."""
        ...

    def close(self) -> None: ...


IntentUpdates = tuple[str, Sequence[tuple[str, str, str]], int]
"""The arguments of ``Journal.update_intents``: (symbol, [(client_order_id, status, detail)], ts_ms)."""

JournalWrite = PulseRecord | IntentUpdates
"""One write of a group commit: a pulse (``commit_pulse``) or intent outcomes (``update_intents``)."""


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
    one by one. (Redis could follow: queue the writes' scripts in a ``MULTI``, then ``EXEC`` and
    wait for the fsync policy, with an answer per script.)
    """

    def stage_batch(self, writes: Sequence[JournalWrite]) -> list[Exception | None]: ...

    def commit_staged(self) -> None: ...
