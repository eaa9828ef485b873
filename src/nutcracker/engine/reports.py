"""What a pulse or a command did to one symbol: ``PulseReport`` and the symbol's ``SymbolStatus``.

The fields of a report are described in ``engine.runtime``. ``SymbolStatus`` is a ``StrEnum``
whose values are the strings the journal stores and ``nutcracker status`` prints
(``core.records.SYMBOL_STATUSES``), so a member compares equal to its string.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from nutcracker.core.model import Book, Candle, Fill, OpenOrder, PlannedLevel
from nutcracker.core.records import ClosedCycleRecord
from nutcracker.core.units import Precision

__all__ = ["Bands", "IntentOutcome", "PulseReport", "SymbolStatus"]


class SymbolStatus(StrEnum):
    """Where a symbol stands after a pulse or a command."""

    TRADING = "trading"  # orders of ours rest
    IDLE = "idle"  # nothing rests (the reasons say why)
    STALLED = "stalled"  # data-stall: waiting its backoff
    PAUSED = "paused"  # by a person, or halted on a broken invariant
    KILLED = "killed"  # its orders cancelled, no pulses until resumed


@dataclass(frozen=True, slots=True)
class IntentOutcome:
    """One intent of a pulse and what became of it (``status``: see ``core.records.INTENT_STATUSES``)."""

    client_order_id: str
    action: str  # "place" or "cancel"
    side: str  # "buy" / "sell" ("" for a cancel)
    price: int  # ticks (0 for a cancel)
    qty: int  # lots (0 for a cancel)
    status: str
    reason: str  # why the strategy wanted it
    detail: str  # the exchange's answer (order id, rejection message, ...)


@dataclass(frozen=True, slots=True)
class Bands:
    """The indicators after the pulse, in ticks (nan until ready)."""

    ema: float
    lower: float
    upper: float
    long: float
    atr: float
    atr_ppm: float
    ready: bool
    candle_ts_ms: int = -1  # open time of the last candle they include (-1: none yet)


@dataclass(frozen=True, slots=True)
class PulseReport:
    """What one pulse (or control action) of one symbol did; see ``engine.runtime`` for the fields."""

    symbol: str
    seq: int
    ts_ms: int
    status: SymbolStatus
    status_reason: str
    reasons: tuple[str, ...]
    intents: tuple[IntentOutcome, ...]
    fills: tuple[Fill, ...]
    closed_cycles: tuple[ClosedCycleRecord, ...]
    book: Book | None
    close: int
    bands: Bands
    held_lots: int
    max_base_lots: int
    committed_quote_qu: int
    max_quote_qu: int
    quote_allowance_qu: int | None
    realized_pnl_qu: int
    open_orders: tuple[OpenOrder, ...]
    precision: Precision
    retry_in_s: float | None = None
    decided: bool = True  # False: the market stayed inside the last decision's hold region
    candles: tuple[Candle, ...] = ()  # the closed candles this pulse hydrated, oldest first
    levels: tuple[PlannedLevel, ...] = ()  # the orders the standing decision planned (none: no decision)

    @property
    def dispatched(self) -> bool:
        """Return whether the pulse sent anything to the exchange."""
        return any(i.status != "pending" for i in self.intents)

    def price(self, ticks: int) -> Decimal:
        """Return ``ticks`` as a price of this market."""
        return self.precision.ticks_to_price(ticks)

    def qty(self, lots: int) -> Decimal:
        """Return ``lots`` as a quantity of this market."""
        return self.precision.lots_to_qty(lots)

    def quote(self, qu: int) -> Decimal:
        """Return ``qu`` quote units as an amount of the quote asset."""
        return self.precision.qu_to_quote(qu)
