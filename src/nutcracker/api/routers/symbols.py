"""What a caller may read about their symbols: status, pulses, open orders, fills, cycles, parameters."""

from __future__ import annotations

import gzip
import json
import time
import tomllib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from nutcracker.api.access import plane_of, visible_symbol, visible_symbols
from nutcracker.api.deps import current_principal
from nutcracker.api.plane import ControlPlane, StatusBody, SymbolBook
from nutcracker.api.principal import Principal
from nutcracker.api.problems import problem_responses
from nutcracker.api.schemas import (
    CyclePage,
    FillPage,
    OpenOrders,
    ParamsOut,
    Pulses,
    StatusOut,
    SymbolStatusOut,
)
from nutcracker.api.views import cycle_out, fill_out, order_out, pulse_out, status_json
from nutcracker.config import NutcrackerConfig
from nutcracker.engine.reports import PulseReport

router = APIRouter(tags=["symbols"])

_READ = problem_responses(
    {
        401: "No valid access token",
        404: "No such symbol among yours",
        422: "A query parameter is invalid",
        503: "The engine is starting",
    }
)

Caller = Annotated[Principal, Depends(current_principal)]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Offset = Annotated[
    int, Query(ge=0, le=10_000_000, description="items to skip (next_offset of the last page)")
]
Since = Annotated[int, Query(ge=0, le=2**53, description="only items at or after this time, epoch ms")]


def _status(plane: ControlPlane, symbol: str, report: PulseReport | None) -> SymbolBook:
    """The symbol's book with its status view and body: rebuilt from a newer report once the view
    was last known current ``plane.status_max_age_s`` ago, or at once when it shows another state
    or predates a command sent through the plane; one build serves every client polling between."""
    book = plane.books[symbol]
    shown, now = book.status, time.monotonic()
    if book.status_json and shown is report:
        book.status_at = now  # still the latest report: current as of now
    elif (
        not book.status_json
        or shown is None
        or report is None
        or shown.status != report.status
        or book.status_generation != plane.generation
        or now - book.status_at >= plane.status_max_age_s
    ):
        book.status = report
        book.status_json = status_json(book, plane.engine.worker(symbol).params, report)
        book.status_at = now
        book.status_generation = plane.generation
    return book


@router.get(
    "/status",
    response_model=StatusOut,
    summary="Every symbol you may see: state, why, rails, PnL",
    responses=_READ,
)
async def status(request: Request, principal: Caller) -> Response:
    """The body is spliced from each symbol's view (``_status``; a test checks it equals
    ``StatusOut``'s own JSON) and kept for the callers who see the same accounts until its oldest
    view is ``status_max_age_s`` old, a command was sent or a symbol changed state (then only that
    symbol's view is rebuilt): 200 consoles polling cost a lookup each, not a hundred views
    joined. Compressed once for the clients that accept gzip (browsers, httpx, ``curl
    --compressed``): a hundred symbols are ~53 kB of JSON (~7 kB gzipped), and writing them to
    every poller cost the loop more than answering. (A poll with a valid token is answered by
    ``api.fastpath`` with the same ``status_response``, before FastAPI's routing.)"""
    return status_response(plane_of(request), principal, request.headers.get("accept-encoding", ""))


def status_response(plane: ControlPlane, principal: Principal, accept_encoding: str) -> Response:
    """The answer to ``GET /status`` for ``principal`` (see ``status``)."""
    scope = frozenset(principal.accounts)  # who sees which symbols depends on these names only
    epoch = (plane.generation, plane.state_changes)
    now = time.monotonic()
    kept = plane.status_bodies.get(scope)
    if kept is None or kept.epoch != epoch or now - kept.at >= plane.status_max_age_s:
        latest = plane.engine.latest()
        books = [_status(plane, s, latest.get(s)) for s in visible_symbols(plane, principal)]
        mode = json.dumps(plane.mode).encode()
        body = b'{"mode":%b,"symbols":[%b]}' % (mode, b",".join(b.status_json for b in books))
        # kept until its oldest view is status_max_age_s old: nothing it shows is ever older
        kept = StatusBody(min((b.status_at for b in books), default=now), epoch, body)
        if len(plane.status_bodies) >= 1_000:  # one per set of accounts in use: bounded all the same
            plane.status_bodies.clear()
        plane.status_bodies[scope] = kept
    if not accepts_gzip(accept_encoding):
        return Response(kept.body, media_type="application/json", headers=_VARY)
    if kept.gzipped is None:
        kept.gzipped = gzip.compress(kept.body, compresslevel=1, mtime=0)
    return Response(kept.gzipped, media_type="application/json", headers=_GZIPPED)


_VARY = {"Vary": "Accept-Encoding"}
_GZIPPED = {**_VARY, "Content-Encoding": "gzip"}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip: its own weight, else ``*``'s, above 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        params = params.strip()
        try:
            weights[name.strip()] = float(params[2:]) if params.startswith("q=") else 1.0
        except ValueError:
            weights[name.strip()] = 0.0  # a weight we cannot read: not accepted
    return weights.get("gzip", weights.get("*", 0.0)) > 0


@router.get(
    "/symbols/{symbol}/status", response_model=SymbolStatusOut, summary="One symbol's status", responses=_READ
)
async def symbol_status(request: Request, symbol: str, principal: Caller) -> Response:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    body = _status(plane, name, plane.engine.latest().get(name)).status_json
    return Response(body, media_type="application/json")


@router.get(
    "/symbols/{symbol}/pulses",
    response_model=Pulses,
    summary="Recent pulses and their reasons",
    responses=_READ,
)
async def pulses(
    request: Request, symbol: str, principal: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> Pulses:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    params = plane.engine.worker(name).params
    recent = list(plane.books[name].pulses)[-limit:]
    return Pulses(symbol=name, pulses=[pulse_out(r, params) for r in reversed(recent)])


@router.get(
    "/symbols/{symbol}/orders", response_model=OpenOrders, summary="Our orders resting now", responses=_READ
)
async def open_orders(request: Request, symbol: str, principal: Caller) -> OpenOrders:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    worker = plane.engine.worker(name)
    return OpenOrders(symbol=name, orders=[order_out(o, worker.params) for o in worker.open_orders])


@router.get(
    "/symbols/{symbol}/fills",
    response_model=FillPage,
    summary="Booked fills, oldest first, paged",
    responses=_READ,
)
async def fills(
    request: Request, symbol: str, principal: Caller, since: Since = 0, offset: Offset = 0, limit: Limit = 100
) -> FillPage:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    params = plane.engine.worker(name).params
    rows = [f for f in plane.journal.fills(name) if f.ts_ms >= since]
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return FillPage(
        symbol=name,
        total=len(rows),
        next_offset=offset + limit if more else None,
        items=[fill_out(f, params) for f in page],
    )


@router.get(
    "/symbols/{symbol}/cycles",
    response_model=CyclePage,
    summary="Closed cycles, oldest first, paged",
    responses=_READ,
)
async def cycles(
    request: Request, symbol: str, principal: Caller, since: Since = 0, offset: Offset = 0, limit: Limit = 100
) -> CyclePage:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    params = plane.engine.worker(name).params
    rows = [c for c in plane.journal.cycles(name) if c.closed_ts_ms >= since]
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return CyclePage(
        symbol=name,
        total=len(rows),
        next_offset=offset + limit if more else None,
        items=[cycle_out(c, params) for c in page],
    )


def config_table(config: NutcrackerConfig, symbol: str) -> dict[str, Any]:
    """Return the symbol's config table in the user's names and units (as in the TOML file)."""
    data = tomllib.loads(config.to_toml())
    for table in data["symbol"]:
        if table["market"]["symbol"] == symbol:
            return dict(table)
    raise KeyError(symbol)


@router.get(
    "/symbols/{symbol}/params",
    response_model=ParamsOut,
    summary="Parameters in the config's units",
    responses=_READ,
)
async def params(request: Request, symbol: str, principal: Caller) -> ParamsOut:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    history = plane.journal.params_history(name)
    return ParamsOut(
        symbol=name, version=history[-1].version if history else 0, params=config_table(plane.config, name)
    )
