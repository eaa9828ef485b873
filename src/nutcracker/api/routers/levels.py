"""A symbol's planned orders: every exit and buy level of the standing decision, resting or why not.

The decision core lists them (``core.model.PlannedLevel``) and the engine hands them over on each
pulse report; a level not placed says why in the user's units, from that pulse's own reasons where
the core gave one (``explain.render_reason``). Nothing is read from the exchange or the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from nutcracker.api.access import plane_of, visible_symbol
from nutcracker.api.deps import current_principal
from nutcracker.api.principal import Principal
from nutcracker.api.problems import problem_responses
from nutcracker.core.model import PlannedLevel
from nutcracker.core.params import SymbolParams
from nutcracker.explain import render_reason

__all__ = ["LevelOut", "LevelsOut", "level_why", "router"]

router = APIRouter(tags=["symbols"])
Caller = Annotated[Principal, Depends(current_principal)]

# what an outcome means when the pulse gave no reason of the slot's own
_WHY = {
    "rails": "rails: no room",
    "cooldown": "waits: cooldown",
    "balance": "not enough free balance",
    "above_top": "above the best bid: a post-only buy would cross",
    "purged": "farther from the market than orders.purge_bps",
    "follows": "rests once the level above it fills",
    "held": "held: its lot waits for its exit",
    "dust": "below market.min_notional: held until it grows",
    "skipped": "sized below one lot",
}
_GATES = ("no buys", "no new sequence")


class LevelOut(BaseModel):
    """One planned order: price in the quote asset, quantity in the base asset (decimal strings)."""

    slot: str  # B0 the first buy level, B1 the next below; S2 the exit of level 2's lot, SP a pooled exit
    side: str  # buy / sell
    price: str
    qty: str
    resting: bool
    why: str  # "resting", or why it is not placed, in the config's names


class LevelsOut(BaseModel):
    symbol: str
    ts_ms: int | None  # the pulse whose standing decision planned them; null before the first pulse
    status: str  # that pulse's state: paused, killed and stalled pulses plan nothing
    levels: list[LevelOut]  # highest price first


def level_why(level: PlannedLevel, reasons: Sequence[str], params: SymbolParams) -> str:
    """Return why ``level`` is not resting (or ``resting``), in the user's units."""
    outcome = level.outcome
    if outcome == "resting":
        return "resting"
    if outcome == "window":
        return f"outside the window of grid.levels = {params.grid.levels}"
    if outcome == "gated":
        general = [r for r in reasons if r.startswith(_GATES)]
        return render_reason(general[0], params) if general else "a gate holds every buy back"
    own = [r for r in reasons if r.startswith(f"{level.slot} ")]
    if own and outcome != "held":
        return render_reason(own[0], params).removeprefix(f"{level.slot} ").removeprefix("not placed: ")
    return _WHY.get(outcome, outcome)


@router.get(
    "/symbols/{symbol}/levels",
    response_model=LevelsOut,
    summary="The orders the standing decision planned: every exit and buy level, resting or why not",
    responses=problem_responses(
        {401: "No valid access token", 404: "No such symbol among yours", 503: "The engine is starting"}
    ),
)
async def levels(request: Request, symbol: str, principal: Caller) -> LevelsOut:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    params = plane.engine.worker(name).params
    pulses = plane.books[name].pulses
    if not pulses:
        return LevelsOut(symbol=name, ts_ms=None, status="idle", levels=[])
    report = pulses[-1]
    p = params.market.precision
    planned = sorted(report.levels, key=lambda lv: -lv.price)
    return LevelsOut(
        symbol=name,
        ts_ms=report.ts_ms,
        status=str(report.status),
        levels=[
            LevelOut(
                slot=lv.slot,
                side=lv.side.value,
                price=format(p.ticks_to_price(lv.price).normalize(), "f"),
                qty=format(p.lots_to_qty(lv.qty).normalize(), "f"),
                resting=lv.outcome == "resting",
                why=level_why(lv, report.reasons, params),
            )
            for lv in planned
        ],
    )
