"""The API's request and response bodies (pydantic): what OpenAPI publishes and clients rely on.

Amounts are decimal strings in the market's own units (prices in quote, quantities in base), never
binary floats; times are epoch milliseconds on the engine's clock (market time in a replay).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEntry",
    "AuditPage",
    "CommandResult",
    "ControlRequest",
    "CycleOut",
    "CyclePage",
    "FillOut",
    "FillPage",
    "Health",
    "OpenOrderOut",
    "OpenOrders",
    "ParamsChange",
    "ParamsDiff",
    "ParamsOut",
    "ParamsPatch",
    "PulseOut",
    "Pulses",
    "Readiness",
    "StatusOut",
    "SymbolStatusOut",
]

_REASON = Field(
    min_length=3,
    max_length=500,
    description="Why you make this change: journaled with your name, role and address.",
    examples=["volatility spike, stepping back"],
)
_COMMAND_ID = Field(
    default=None,
    min_length=1,
    max_length=128,
    pattern=r"^[\x21-\x7e]+$",
    description="Optional idempotency key: the same id sent twice is applied once.",
)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Health(_Out):
    status: str = Field(description="ok while the process serves requests")


class Readiness(_Out):
    ready: bool = Field(description="the engine has loaded every symbol and pulses")
    mode: str
    symbols: int


class Rail(_Out):
    used: str
    limit: str
    headroom: str
    asset: str


class SymbolStatusOut(_Out):
    symbol: str
    account: str
    status: str = Field(description="trading, idle, stalled, paused or killed")
    reason: str = Field(description="why, in the config's names and units")
    stalled: bool
    retry_in_s: float | None = Field(description="while stalled: seconds until the next try")
    price: str | None = Field(description="the last close (None before the first pulse)")
    inventory: Rail = Field(description="base held against rails.max_base")
    committed_quote: Rail = Field(description="held cost + open buys against rails.max_quote")
    open_orders: int
    realized_pnl: str = Field(description="net PnL of closed cycles, quote")
    fees: str = Field(description="commissions of booked fills paid or valued in quote")
    equity_change: str | None = Field(
        description="realized PnL + held inventory at the last close - its cost, quote"
    )
    buy_and_hold_change: str | None = Field(
        description="rails.max_quote put into the base at the first price seen, valued at the last close"
    )
    updated_ts_ms: int


class StatusOut(_Out):
    mode: str
    symbols: list[SymbolStatusOut]


class IntentOut(_Out):
    client_order_id: str
    action: str
    side: str
    price: str | None
    qty: str | None
    status: str
    reason: str


class PulseOut(_Out):
    seq: int
    ts_ms: int
    status: str
    reason: str
    reasons: list[str] = Field(description="every reason the decision gave, in the user's units")
    decided: bool
    intents: list[IntentOut]
    fills: int


class Pulses(_Out):
    symbol: str
    pulses: list[PulseOut] = Field(description="newest first")


class OpenOrderOut(_Out):
    client_order_id: str
    side: str
    price: str
    qty: str
    filled: str


class OpenOrders(_Out):
    symbol: str
    orders: list[OpenOrderOut]


class FillOut(_Out):
    trade_id: str
    client_order_id: str
    side: str
    price: str
    qty: str
    fee: str
    ts_ms: int
    cycle_id: int


class _Page(_Out):
    total: int = Field(description="items matching ``since`` in all")
    next_offset: int | None = Field(description="pass as ``offset`` for the next page; None: no more")


class FillPage(_Page):
    symbol: str
    items: list[FillOut]


class CycleOut(_Out):
    cycle_id: int
    cost: str
    proceeds: str
    fees: str
    pnl: str
    opened_ts_ms: int
    closed_ts_ms: int


class CyclePage(_Page):
    symbol: str
    items: list[CycleOut]


class ParamsOut(_Out):
    symbol: str
    version: int
    params: dict[str, Any] = Field(description="the symbol's config table, as in the TOML file")


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = _REASON
    command_id: str | None = _COMMAND_ID


class ParamsPatch(ControlRequest):
    patch: dict[str, dict[str, Any]] = Field(
        min_length=1,
        description="sections of the symbol's config table and the keys to change, in the file's units",
        examples=[{"profit": {"min_net_bps": "25"}}],
    )


class CommandResult(_Out):
    symbol: str
    command_id: str
    outcome: str = Field(
        description="applied, recorded or refused; with serve --store, sent: queued for the symbol's "
        "owning worker, not applied yet"
    )
    detail: str
    status: str


class ParamsDiff(_Out):
    field: str
    before: Any
    after: Any


class ParamsChange(_Out):
    symbol: str
    command_id: str
    outcome: str
    detail: str
    version: int
    diff: list[ParamsDiff]


class AuditEntry(_Out):
    source: str = Field(description="journal (engine and commands) or auth (logins, users)")
    seq: int
    ts_ms: int
    actor: str
    action: str
    detail: str


class AuditPage(_Out):
    entries: list[AuditEntry] = Field(description="newest first")
