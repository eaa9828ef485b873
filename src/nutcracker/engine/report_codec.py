"""A ``PulseReport`` as JSON and back: how a worker shows its symbols' last pulse to an API elsewhere.

Scale-out workers publish each symbol's latest report to Redis; ``nutcracker serve --store``
reads them back to answer status, pulses and history as it does beside an in-process engine.
Every field survives the round trip (integers exact, prices and sizes in ticks and lots, the
precision's decimals as strings, ``nan`` bands as ``NaN``): ``decode(encode(r)) == r``.
"""

from __future__ import annotations

import json
from dataclasses import astuple
from decimal import Decimal
from typing import Any, Final

from nutcracker.core.model import Book, Candle, Fill, OpenOrder, PlannedLevel, Side
from nutcracker.core.records import ClosedCycleRecord
from nutcracker.core.units import Precision
from nutcracker.engine.reports import Bands, IntentOutcome, PulseReport, SymbolStatus

__all__ = ["decode_report", "encode_report"]

VERSION: Final = 1  # bump when the layout changes: a reader refuses another version (one line)


def _order(o: OpenOrder) -> list[Any]:
    return [o.client_order_id, str(o.side), o.price, o.qty, o.filled]


def _fill(f: Fill) -> list[Any]:
    return [f.trade_id, f.client_order_id, str(f.side), f.price, f.qty, f.fee, f.ts_ms]


def encode_report(r: PulseReport) -> str:
    """Return the report as one JSON text (compact, NaN allowed for bands not ready)."""
    book = None if r.book is None else [r.book.best_bid, r.book.best_ask, r.book.bid_lots, r.book.ask_lots]
    body = [
        VERSION,
        r.symbol,
        r.seq,
        r.ts_ms,
        str(r.status),
        r.status_reason,
        list(r.reasons),
        [astuple(i) for i in r.intents],
        [[*_fill(f), f.fee_base, f.fee_asset, f.commission] for f in r.fills],
        [astuple(c) for c in r.closed_cycles],
        book,
        r.close,
        astuple(r.bands),
        r.held_lots,
        r.max_base_lots,
        r.committed_quote_qu,
        r.max_quote_qu,
        r.quote_allowance_qu,
        r.realized_pnl_qu,
        [_order(o) for o in r.open_orders],
        [str(r.precision.tick), str(r.precision.lot)],
        r.retry_in_s,
        r.decided,
        [[c.ts_ms, c.open, c.high, c.low, c.close, c.volume] for c in r.candles],
        [[v.slot, str(v.side), v.price, v.qty, v.outcome] for v in r.levels],
    ]
    return json.dumps(body, separators=(",", ":"))


def decode_report(text: str) -> PulseReport:
    """Return the report ``encode_report`` wrote.

    Raises:
        ValueError: the text is not a report of this version (a worker of another release).
    """
    body = json.loads(text)
    if not isinstance(body, list) or not body or body[0] != VERSION:
        raise ValueError(f"not a version-{VERSION} pulse report (a worker of another release wrote it)")
    (
        _,
        symbol,
        seq,
        ts_ms,
        status,
        status_reason,
        reasons,
        intents,
        fills,
        cycles,
        book,
        close,
        bands,
        held_lots,
        max_base_lots,
        committed_quote_qu,
        max_quote_qu,
        quote_allowance_qu,
        realized_pnl_qu,
        orders,
        precision,
        retry_in_s,
        decided,
        candles,
        levels,
    ) = body
    return PulseReport(
        symbol=symbol,
        seq=seq,
        ts_ms=ts_ms,
        status=SymbolStatus(status),
        status_reason=status_reason,
        reasons=tuple(reasons),
        intents=tuple(IntentOutcome(*i) for i in intents),
        fills=tuple(Fill(f[0], f[1], Side(f[2]), *f[3:]) for f in fills),
        closed_cycles=tuple(ClosedCycleRecord(*c) for c in cycles),
        book=None if book is None else Book(*book),
        close=close,
        bands=Bands(*bands),
        held_lots=held_lots,
        max_base_lots=max_base_lots,
        committed_quote_qu=committed_quote_qu,
        max_quote_qu=max_quote_qu,
        quote_allowance_qu=quote_allowance_qu,
        realized_pnl_qu=realized_pnl_qu,
        open_orders=tuple(OpenOrder(o[0], Side(o[1]), *o[2:]) for o in orders),
        precision=Precision(Decimal(precision[0]), Decimal(precision[1])),
        retry_in_s=retry_in_s,
        decided=decided,
        candles=tuple(Candle(*c) for c in candles),
        levels=tuple(PlannedLevel(v[0], Side(v[1]), *v[2:]) for v in levels),
    )
