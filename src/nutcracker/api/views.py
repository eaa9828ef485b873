"""Engine reports and journal rows as the API's response bodies, in the market's decimal units."""

from __future__ import annotations

from decimal import Decimal

from nutcracker.api.plane import SymbolBook
from nutcracker.api.schemas import (
    CycleOut,
    FillOut,
    IntentOut,
    OpenOrderOut,
    PulseOut,
    Rail,
    SymbolStatusOut,
)
from nutcracker.core.model import OpenOrder, Side
from nutcracker.core.params import SymbolParams
from nutcracker.core.records import CycleRow, FillRow
from nutcracker.core.units import QU_PER_TICK_LOT, notional_qu
from nutcracker.engine.reports import PulseReport
from nutcracker.explain import render_reason

__all__ = ["cycle_out", "fill_out", "order_out", "pulse_out", "status_out"]


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def status_out(book: SymbolBook, params: SymbolParams, report: PulseReport | None) -> SymbolStatusOut:
    """Return a symbol's status: its last report, or its starting point before the first pulse."""
    m = params.market
    p = m.precision
    if report is None:
        zero = "0"
        return SymbolStatusOut(
            symbol=book.symbol,
            account=book.account,
            status="idle",
            reason="waiting for the first pulse",
            stalled=False,
            retry_in_s=None,
            price=None,
            inventory=Rail(
                used=zero,
                limit=_plain(p.lots_to_qty(params.rails.max_base_lots)),
                headroom=zero,
                asset=m.base,
            ),
            committed_quote=Rail(
                used=zero,
                limit=_plain(p.qu_to_quote(params.rails.max_quote_qu)),
                headroom=zero,
                asset=m.quote,
            ),
            open_orders=0,
            realized_pnl=zero,
            fees=_plain(p.qu_to_quote(book.fees_qu)),
            equity_change=None,
            buy_and_hold_change=None,
            updated_ts_ms=0,
        )
    r = report
    held_cost = r.committed_quote_qu - sum(
        notional_qu(o.price, o.remaining) for o in r.open_orders if o.side is Side.BUY
    )
    equity = hold = None
    if r.close:
        value_qu = r.held_lots * r.close * QU_PER_TICK_LOT
        equity = _plain(r.quote(r.realized_pnl_qu + value_qu - held_cost).quantize(Decimal("0.0001")))
        if book.first_close:
            bh = Decimal(r.max_quote_qu) * (Decimal(r.close) / Decimal(book.first_close) - 1)
            hold = _plain(r.quote(int(bh)).quantize(Decimal("0.0001")))
    return SymbolStatusOut(
        symbol=r.symbol,
        account=book.account,
        status=str(r.status),
        reason=r.status_reason,
        stalled=r.status == "stalled",
        retry_in_s=r.retry_in_s,
        price=_plain(r.price(r.close)) if r.close else None,
        inventory=Rail(
            used=_plain(r.qty(r.held_lots)),
            limit=_plain(r.qty(r.max_base_lots)),
            headroom=_plain(r.qty(r.max_base_lots - r.held_lots)),
            asset=m.base,
        ),
        committed_quote=Rail(
            used=_plain(r.quote(r.committed_quote_qu)),
            limit=_plain(r.quote(r.max_quote_qu)),
            headroom=_plain(r.quote(r.max_quote_qu - r.committed_quote_qu)),
            asset=m.quote,
        ),
        open_orders=len(r.open_orders),
        realized_pnl=_plain(r.quote(r.realized_pnl_qu)),
        fees=_plain(r.quote(book.fees_qu)),
        equity_change=equity,
        buy_and_hold_change=hold,
        updated_ts_ms=r.ts_ms,
    )


def pulse_out(r: PulseReport, params: SymbolParams) -> PulseOut:
    intents = [
        IntentOut(
            client_order_id=i.client_order_id,
            action=i.action,
            side=i.side,
            price=_plain(r.price(i.price)) if i.action == "place" else None,
            qty=_plain(r.qty(i.qty)) if i.action == "place" else None,
            status=i.status,
            reason=render_reason(i.reason, params) if i.reason else "",
        )
        for i in r.intents
    ]
    return PulseOut(
        seq=r.seq,
        ts_ms=r.ts_ms,
        status=str(r.status),
        reason=r.status_reason,
        reasons=[render_reason(reason, params) for reason in r.reasons],
        decided=r.decided,
        intents=intents,
        fills=len(r.fills),
    )


def order_out(o: OpenOrder, params: SymbolParams) -> OpenOrderOut:
    p = params.market.precision
    return OpenOrderOut(
        client_order_id=o.client_order_id,
        side=o.side.value,
        price=_plain(p.ticks_to_price(o.price)),
        qty=_plain(p.lots_to_qty(o.qty)),
        filled=_plain(p.lots_to_qty(o.filled)),
    )


def fill_out(f: FillRow, params: SymbolParams) -> FillOut:
    p = params.market.precision
    return FillOut(
        trade_id=f.trade_id,
        client_order_id=f.client_order_id,
        side=f.side.value,
        price=_plain(p.ticks_to_price(f.price)),
        qty=_plain(p.lots_to_qty(f.qty)),
        fee=_plain(p.qu_to_quote(f.fee)),
        ts_ms=f.ts_ms,
        cycle_id=f.cycle_id,
    )


def cycle_out(c: CycleRow, params: SymbolParams) -> CycleOut:
    p = params.market.precision
    return CycleOut(
        cycle_id=c.cycle_id,
        cost=_plain(p.qu_to_quote(c.cost_qu)),
        proceeds=_plain(p.qu_to_quote(c.proceeds_qu)),
        fees=_plain(p.qu_to_quote(c.fees_qu)),
        pnl=_plain(p.qu_to_quote(c.pnl_qu)),
        opened_ts_ms=c.opened_ts_ms,
        closed_ts_ms=c.closed_ts_ms,
    )
