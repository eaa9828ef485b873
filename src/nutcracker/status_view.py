"""What ``nutcracker status`` shows for each symbol, read from the journal's events.

At shutdown the engine journals two account-wide audit entries (actor ``engine``): a
``reconciliation`` (each symbol's open orders of ours as the exchange listed them after the
shutdown's cancels, or as the last pulse saw them when the exchange could not answer) and a
``stop`` (why: a signal, ``--pulses`` reached, the end of a replay, an error; and which clock
stamped it). A symbol with no event after the last stop is shown ``stopped``, with when and why,
whatever status its last pulse journaled; one with later events belongs to a running (or
restarted) engine and shows its journaled status. Open-order counts come from each symbol's
last reconciliation: while running, the engine journals one (``source: last pulse``) whenever a
pulse changes the count. Every journal stamp comes from the engine's clock (the wall clock in paper and
live, market time in a replay), which labels the "updated" column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from nutcracker.core.records import ACCOUNT, EventRow, StoredSymbol

_SCAN = 500  # account-wide events searched for the last stop (audits are rare: controls, stops)


class EventReader(Protocol):
    def recent_events(self, symbol: str, limit: int) -> list[EventRow]: ...


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """A symbol's open-order count as last journaled."""

    ts_ms: int
    count: int
    source: str  # "exchange" (asked at stop), "last pulse" (the pulse's view, journaled on change)


@dataclass(frozen=True, slots=True)
class EngineStop:
    seq: int  # the stop's event seq: a symbol's later event means the engine ran again
    ts_ms: int
    reason: str
    clock: str  # "wall" (paper, live) or "replay market"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    stop: EngineStop | None
    reconciled: dict[str, Reconciliation]  # the last reconciliation of each symbol

    @property
    def clock_label(self) -> str:
        return f"{self.stop.clock} clock" if self.stop is not None else "engine clock"


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    status: str
    why: str
    open_orders: str
    updated: str


_HELD = ("paused", "killed")  # states a restart does not lift


def utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def read_lifecycle(journal: EventReader) -> Lifecycle:
    """Return the last engine stop journaled (None: none) and each symbol's last reconciliation."""
    stop: EngineStop | None = None
    reconciled: dict[str, Reconciliation] = {}
    for event in journal.recent_events(ACCOUNT, _SCAN):  # newest first
        if event.kind != "audit":
            continue
        payload = json.loads(event.payload)
        if payload.get("actor") != "engine":
            continue
        try:
            detail = json.loads(payload.get("detail", ""))
        except ValueError:
            continue
        if payload.get("action") == "stop" and stop is None:
            stop = EngineStop(
                event.seq, event.ts_ms, str(detail.get("reason", "")), str(detail.get("clock", "engine"))
            )
        elif payload.get("action") == "reconciliation":
            for symbol, v in detail.items():
                if symbol not in reconciled:
                    count, source = int(v.get("open_orders", 0)), str(v.get("source", ""))
                    reconciled[str(symbol)] = Reconciliation(event.ts_ms, count, source)
    return Lifecycle(stop, reconciled)


def symbol_status(journal: EventReader, row: StoredSymbol, life: Lifecycle) -> SymbolStatus:
    """Return the status, why, open orders and update time to show for one journaled symbol."""
    latest = journal.recent_events(row.symbol, 1)
    last_seq = latest[0].seq if latest else 0
    stop = life.stop
    stopped = stop is not None and stop.seq > last_seq
    orders = "-"
    recon = life.reconciled.get(row.symbol)
    if recon is not None:
        when = "at stop" if stopped else f"at {utc(recon.ts_ms)}"
        orders = f"{recon.count} {when}" + ("" if recon.source == "exchange" else f" ({recon.source})")
    if stop is not None and stopped and row.status in _HELD:
        # a pause, a kill or a halt outlives the process: it still holds at the next start
        why = f"{row.status_reason}; engine stopped: {stop.reason}, {utc(stop.ts_ms)} UTC"
        return SymbolStatus(row.status, why, orders, utc(stop.ts_ms))
    if stop is not None and stopped:
        why = f"{stop.reason}, {utc(stop.ts_ms)} UTC"
        if row.status in ("trading", "idle") and row.status_reason:  # what it held or waited for then
            why += f"; at the last pulse: {row.status_reason}"
        return SymbolStatus("stopped", why, orders, utc(stop.ts_ms))
    return SymbolStatus(row.status, row.status_reason, orders, utc(row.updated_ts_ms))
