"""A symbol's recent market and rails, pulse by pulse: what the console's Symbol page draws.

``/history``: each point is one kept pulse report (``ControlPlane`` keeps the last ``PULSES_KEPT``
per symbol): the close the pulse decided on, the Keltner bands, EMA and long average it saw (and
the candle they include), and the inventory and committed quote it left against the rails.
``/candles``: the closed candles the pulses hydrated (the last ``CANDLES_KEPT``), paged by time.
Nothing is read from the exchange or the journal.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from nutcracker.api.access import plane_of, visible_symbol
from nutcracker.api.deps import current_principal
from nutcracker.api.plane import CANDLES_KEPT
from nutcracker.api.principal import Principal
from nutcracker.api.problems import problem_responses
from nutcracker.core.units import Precision
from nutcracker.engine.reports import PulseReport, SymbolStatus

__all__ = ["CandleOut", "CandlesOut", "HistoryOut", "HistoryPoint", "router"]

router = APIRouter(tags=["symbols"])
# pulses that read no market (paused, killed: they only report; stalled: the read failed)
_BLIND = frozenset({SymbolStatus.PAUSED, SymbolStatus.KILLED, SymbolStatus.STALLED})
Caller = Annotated[Principal, Depends(current_principal)]
_READ = problem_responses(
    {
        401: "No valid access token",
        404: "No such symbol among yours",
        422: "A query parameter is invalid",
        503: "The engine is starting",
    }
)


class HistoryPoint(BaseModel):
    """One pulse: prices in the quote asset, amounts in their assets (decimal strings).

    The prices are null until the indicators are warm, and on the reports that read no market (of a
    paused, killed or stalled symbol, or of a command): their close is the last one seen, and drawn it
    would show a market standing still.
    """

    ts_ms: int
    candle_ts_ms: int | None  # open time of the last candle the bands include (null: none yet)
    close: str | None
    ema: str | None
    lower: str | None
    upper: str | None
    long: str | None
    inventory: str  # base held
    committed_quote: str  # cost of held lots plus open buys
    status: str


class HistoryOut(BaseModel):
    symbol: str
    base: str
    quote: str
    max_base: str
    max_quote: str
    points: list[HistoryPoint]  # oldest first


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _price(ticks: float, precision: Precision) -> str | None:
    """A band in ticks (a float: an average) as a price, to a hundredth of a tick; None while not ready."""
    if not math.isfinite(ticks) or ticks <= 0:
        return None
    return _plain(precision.ticks_to_price(1) * Decimal(round(ticks, 2)).quantize(Decimal("0.01")))


def _points(reports: list[PulseReport]) -> list[HistoryPoint]:
    points, before = [], None
    for r in reports:
        # a paused, killed or stalled symbol reads no market; nor does the report of the resume that
        # follows (it keeps the very indicators of the last pulse before): their close is a stale one
        stale = before is not None and before.status in _BLIND and r.bands is before.bands
        points.append(_point(r, seen=r.status not in _BLIND and not stale))
        before = r
    return points


def _point(r: PulseReport, *, seen: bool) -> HistoryPoint:
    p, b = r.precision, r.bands
    ready = b.ready and seen
    return HistoryPoint(
        ts_ms=r.ts_ms,
        candle_ts_ms=b.candle_ts_ms if ready else None,
        close=_plain(p.ticks_to_price(r.close)) if r.close and seen else None,
        ema=_price(b.ema, p) if ready else None,
        lower=_price(b.lower, p) if ready else None,
        upper=_price(b.upper, p) if ready else None,
        long=_price(b.long, p) if ready else None,
        inventory=_plain(p.lots_to_qty(r.held_lots)),
        committed_quote=_plain(p.qu_to_quote(r.committed_quote_qu)),
        status=str(r.status),
    )


@router.get(
    "/symbols/{symbol}/history",
    response_model=HistoryOut,
    summary="Recent pulses' price, Keltner bands and EMA, inventory and committed quote against the rails",
    responses=_READ,
)
async def history(
    request: Request, symbol: str, principal: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> HistoryOut:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    params = plane.engine.worker(name).params
    m, p = params.market, params.market.precision
    reports = list(plane.books[name].pulses)[-limit:]
    return HistoryOut(
        symbol=name,
        base=m.base,
        quote=m.quote,
        max_base=_plain(p.lots_to_qty(params.rails.max_base_lots)),
        max_quote=_plain(p.qu_to_quote(params.rails.max_quote_qu)),
        points=_points(reports),
    )


class CandleOut(BaseModel):
    """One closed candle: prices in the quote asset, volume in the base asset (decimal strings)."""

    ts_ms: int  # open time, exchange clock
    open: str
    high: str
    low: str
    close: str
    volume: str


class CandlesOut(BaseModel):
    symbol: str
    candles: list[CandleOut]  # oldest first
    next_since: int | None  # ``since`` of the next page; null: this page reaches the newest kept candle


def _volume(value: float) -> str:
    return _plain(Decimal(repr(value))) if math.isfinite(value) else "0"


@router.get(
    "/symbols/{symbol}/candles",
    response_model=CandlesOut,
    summary=f"The closed candles the pulses read (the last {CANDLES_KEPT}), oldest first, paged by time",
    responses=_READ,
)
async def candles(
    request: Request,
    symbol: str,
    principal: Caller,
    since: Annotated[
        int | None,
        Query(
            ge=0, le=2**53, description="open time, epoch ms: the first candles from it on; none: the newest"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="candles per page")] = 200,
) -> CandlesOut:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    p = plane.engine.worker(name).params.market.precision
    kept = plane.books[name].candles
    if since is None:
        page, more = list(kept)[-limit:], False
    else:
        after = [c for c in kept if c.ts_ms >= since]
        page, more = after[:limit], len(after) > limit
    return CandlesOut(
        symbol=name,
        candles=[
            CandleOut(
                ts_ms=c.ts_ms,
                open=_plain(p.ticks_to_price(c.open)),
                high=_plain(p.ticks_to_price(c.high)),
                low=_plain(p.ticks_to_price(c.low)),
                close=_plain(p.ticks_to_price(c.close)),
                volume=_volume(c.volume),
            )
            for c in page
        ],
        next_since=page[-1].ts_ms + 1 if more else None,
    )
