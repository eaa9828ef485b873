"""What the journal stores and returns: pulse records, intents, symbols, rows and event payloads.

Plain values shared by the engine (which writes them through its ``Journal`` port) and the
store adapters (which must not import the engine). Quote-unit amounts are exact ints and may
exceed 2**63. Event payloads are compact JSON with sorted keys; quote-unit amounts appear as
decimal strings there, so readers in languages without big integers stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nutcracker.core.model import Fill, Side

# pending: recorded, maybe sent; acked: the exchange confirmed; rejected: refused as sent;
# ambiguous: sent, no answer; never_placed: resolved by client id, the exchange never took it;
# done: a cancel went through (or the order was already gone).
INTENT_STATUSES = ("pending", "acked", "rejected", "ambiguous", "never_placed", "done")
OPEN_INTENT_STATUSES = ("pending", "ambiguous")
INTENT_ACTIONS = ("place", "cancel")
SYMBOL_STATUSES = ("trading", "idle", "stalled", "paused", "killed")
NEW_SYMBOL_STATUS = "idle"  # the status of a symbol the journal has not seen a status for

# Kinds of the journal's append-only events; ``ACCOUNT`` is the symbol of account-wide ones (audit).
EVENT_KINDS = ("pulse", "intents", "status", "params", "audit")
ACCOUNT = ""


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """A placement or cancel the engine intends, recorded before it is sent (write-ahead)."""

    symbol: str
    client_order_id: str
    action: str  # "place" or "cancel"
    side: str  # "buy" / "sell" ("" for a cancel)
    price: int  # ticks (0 for a cancel)
    qty: int  # lots (0 for a cancel)
    status: str  # see INTENT_STATUSES
    reason: str
    ts_ms: int

    def __post_init__(self) -> None:
        if self.action not in INTENT_ACTIONS:
            raise ValueError(f"intent {self.client_order_id}: unknown action {self.action!r}")
        if self.status not in INTENT_STATUSES:
            raise ValueError(f"intent {self.client_order_id}: unknown status {self.status!r}")

    def same_order(self, other: IntentRecord) -> bool:
        """Return whether ``other`` asks for the same action on the same order (status aside)."""
        return (self.symbol, self.client_order_id, self.action, self.side, self.price, self.qty) == (
            other.symbol,
            other.client_order_id,
            other.action,
            other.side,
            other.price,
            other.qty,
        )


@dataclass(frozen=True, slots=True)
class ClosedCycleRecord:
    """A buy-to-sell cycle the ledger closed, with its exact net PnL in quote units."""

    cycle_id: int
    cost_qu: int
    proceeds_qu: int
    fees_qu: int
    pnl_qu: int
    opened_ts_ms: int
    closed_ts_ms: int


@dataclass(frozen=True, slots=True)
class PulseRecord:
    """Everything one pulse changes, committed in one durable transaction before dispatch."""

    symbol: str
    ts_ms: int
    state_json: str  # the strategy state after the pulse, opaque to the journal
    fills: tuple[Fill, ...]  # newly booked fills; idempotent by (symbol, trade_id)
    cycle_ids: tuple[int, ...]  # the cycle each of ``fills`` went to
    closed_cycles: tuple[ClosedCycleRecord, ...]
    intents: tuple[IntentRecord, ...]  # write-ahead, status "pending"
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.cycle_ids) != len(self.fills):
            raise ValueError(f"pulse {self.symbol}: {len(self.fills)} fills, {len(self.cycle_ids)} cycle ids")
        for intent in self.intents:
            if intent.symbol != self.symbol:
                raise ValueError(
                    f"{self.symbol} pulse: intent {intent.client_order_id} is for {intent.symbol}"
                )


@dataclass(frozen=True, slots=True)
class StoredSymbol:
    """The journal's view of one symbol: its strategy state, fill cursor and status."""

    symbol: str
    state_json: str  # "" until a state was stored
    last_fill_ts_ms: int  # -1 when none
    status: str  # see SYMBOL_STATUSES
    status_reason: str
    updated_ts_ms: int


@dataclass(frozen=True, slots=True)
class FillRow:
    """A booked fill and the cycle it went to."""

    symbol: str
    trade_id: str
    client_order_id: str
    side: Side
    price: int  # ticks
    qty: int  # lots
    fee: int  # qu: paid in quote or a third asset's valued (``Fill.fee``)
    ts_ms: int
    cycle_id: int
    fee_base: int = 0  # bu taken from the base a buy received (``Fill.fee_base``)
    fee_asset: str = ""  # the asset the exchange charged ("" when it did not say)


@dataclass(frozen=True, slots=True)
class IntentRow:
    """A recorded intent with its latest status and the detail that came with it."""

    symbol: str
    client_order_id: str
    action: str
    side: str
    price: int  # ticks
    qty: int  # lots
    status: str
    reason: str
    detail: str  # e.g. the exchange's rejection message
    created_ts_ms: int
    updated_ts_ms: int

    def as_record(self) -> IntentRecord:
        """Return the intent as recorded, with its current status."""
        return IntentRecord(
            self.symbol,
            self.client_order_id,
            self.action,
            self.side,
            self.price,
            self.qty,
            self.status,
            self.reason,
            self.created_ts_ms,
        )


@dataclass(frozen=True, slots=True)
class CycleRow:
    """A closed cycle of one symbol."""

    symbol: str
    cycle_id: int
    cost_qu: int
    proceeds_qu: int
    fees_qu: int
    pnl_qu: int
    opened_ts_ms: int
    closed_ts_ms: int


@dataclass(frozen=True, slots=True)
class ParamsRow:
    """One version of a symbol's parameters, with who changed them and why."""

    symbol: str
    version: int  # 1, 2, ... per symbol
    params_json: str
    actor: str
    why: str
    ts_ms: int
    config_json: str = ""  # the same parameters in the config's names and units ("": not given)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit entry: who did what."""

    seq: int
    ts_ms: int
    actor: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """One entry of the journal's append-only event log; ``payload`` is JSON."""

    seq: int  # 1, 2, ... over the whole journal
    ts_ms: int
    symbol: str  # ACCOUNT for account-wide events
    kind: str  # see EVENT_KINDS
    payload: str


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to trade one symbol until ``expires_ms``; ``token`` fences its writes (``SymbolLease``)."""

    symbol: str
    owner: str
    token: int  # grows at every acquisition of the symbol, never reused
    expires_ms: int


class StaleTokenError(ValueError):
    """A write under a lease token older than the symbol's latest: another process owns it now."""


def check_intent_updates(updates: Sequence[tuple[str, str, str]]) -> None:
    """Raise ValueError unless every (client_order_id, status, detail) names a known status."""
    for client_order_id, status, _ in updates:
        if status not in INTENT_STATUSES:
            raise ValueError(
                f"intent {client_order_id}: unknown status {status!r}, expected one of {INTENT_STATUSES}"
            )


def check_symbol_status(symbol: str, status: str) -> None:
    """Raise ValueError unless ``status`` is one of ``SYMBOL_STATUSES``."""
    if status not in SYMBOL_STATUSES:
        raise ValueError(f"{symbol}: unknown status {status!r}, expected one of {SYMBOL_STATUSES}")


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def fill_row(symbol: str, fill: Fill, cycle_id: int) -> FillRow:
    """Return the row of ``fill`` booked into ``cycle_id``."""
    return FillRow(
        symbol,
        fill.trade_id,
        fill.client_order_id,
        fill.side,
        fill.price,
        fill.qty,
        fill.fee,
        fill.ts_ms,
        cycle_id,
        fill.fee_base,
        fill.fee_asset,
    )


def intent_row(intent: IntentRecord) -> IntentRow:
    """Return the row of a newly recorded intent."""
    return IntentRow(
        intent.symbol,
        intent.client_order_id,
        intent.action,
        intent.side,
        intent.price,
        intent.qty,
        intent.status,
        intent.reason,
        "",
        intent.ts_ms,
        intent.ts_ms,
    )


def cycle_row(symbol: str, cycle: ClosedCycleRecord) -> CycleRow:
    """Return the row of a closed cycle of ``symbol``."""
    return CycleRow(
        symbol,
        cycle.cycle_id,
        cycle.cost_qu,
        cycle.proceeds_qu,
        cycle.fees_qu,
        cycle.pnl_qu,
        cycle.opened_ts_ms,
        cycle.closed_ts_ms,
    )


def pulse_payload(
    record: PulseRecord, fills: Iterable[FillRow], cycles: Iterable[CycleRow], intents: Iterable[IntentRecord]
) -> str:
    """Return the payload of a pulse event: what the pulse newly stored (repeats left out) and why."""
    return _dumps(
        {
            "fills": [
                {
                    "trade_id": f.trade_id,
                    "client_order_id": f.client_order_id,
                    "side": f.side.value,
                    "price": f.price,
                    "qty": f.qty,
                    "fee": str(f.fee),
                    "fee_base": str(f.fee_base),
                    "fee_asset": f.fee_asset,
                    "ts_ms": f.ts_ms,
                    "cycle_id": f.cycle_id,
                }
                for f in fills
            ],
            "closed_cycles": [
                {
                    "cycle_id": c.cycle_id,
                    "cost_qu": str(c.cost_qu),
                    "proceeds_qu": str(c.proceeds_qu),
                    "fees_qu": str(c.fees_qu),
                    "pnl_qu": str(c.pnl_qu),
                    "opened_ts_ms": c.opened_ts_ms,
                    "closed_ts_ms": c.closed_ts_ms,
                }
                for c in cycles
            ],
            "intents": [
                {
                    "client_order_id": i.client_order_id,
                    "action": i.action,
                    "side": i.side,
                    "price": i.price,
                    "qty": i.qty,
                    "status": i.status,
                    "reason": i.reason,
                }
                for i in intents
            ],
            "reasons": list(record.reasons),
        }
    )


def intents_payload(updates: Sequence[tuple[str, str, str, str]]) -> str:
    """Return the payload of an intents event from (client_order_id, action, status, detail)."""
    return _dumps(
        {
            "updates": [
                {"client_order_id": cid, "action": action, "status": status, "detail": detail}
                for cid, action, status, detail in updates
            ]
        }
    )


def status_payload(status: str, reason: str) -> str:
    """Return the payload of a status event."""
    return _dumps({"status": status, "reason": reason})


def params_payload(version: int, params_json: str, actor: str, why: str, config_json: str = "") -> str:
    """Return the payload of a params event; raise ValueError if a JSON argument is not JSON."""
    payload = {"version": version, "params": json.loads(params_json), "actor": actor, "why": why}
    if config_json:
        payload["config"] = json.loads(config_json)
    return _dumps(payload)


def audit_payload(actor: str, action: str, detail: str) -> str:
    """Return the payload of an audit event."""
    return _dumps({"actor": actor, "action": action, "detail": detail})
