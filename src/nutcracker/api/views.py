"""Engine reports and journal rows as the API's response bodies, in the market's decimal units."""

from __future__ import annotations

import json
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

__all__ = ["cycle_out", "fill_out", "order_out", "pulse_out", "status_json", "status_out"]


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


_QUARTER_CENT = Decimal("0.0001")
_MEMO_SIZE = 4096  # texts a memo keeps before it starts over (amounts recur: rails, fees, prices)
_STATUS_JSON = (
    '{"symbol":%s,"account":%s,"status":%s,"reason":%s,"stalled":%s,"retry_in_s":null,"price":%s,'
    '"inventory":{"used":"%s","limit":"%s","headroom":"%s","asset":%s},'
    '"committed_quote":{"used":"%s","limit":"%s","headroom":"%s","asset":%s},"open_orders":%d,'
    '"realized_pnl":"%s","fees":"%s","equity_change":%s,"buy_and_hold_change":%s,"updated_ts_ms":%d}'
)


def _memo_put(memo: dict[object, str], key: object, text: str) -> str:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = text
    return text


def _amount(memo: dict[object, str], n: int, unit: Decimal) -> str:
    """``_plain(n * unit)``, remembered: the same amounts come back pulse after pulse."""
    key = (n, id(unit))  # the unit by identity (``book.units`` holds it): no Decimal hashed
    text = memo.get(key)
    return text if text is not None else _memo_put(memo, key, _plain(n * unit))


def _change(memo: dict[object, str], n: int, unit: Decimal) -> str:
    """``n * unit`` to the hundredth of a cent, as JSON (``status_out``'s equity and buy-and-hold)."""
    key = ("change", n, id(unit))
    text = memo.get(key)
    if text is None:
        text = _memo_put(memo, key, f'"{_plain((n * unit).quantize(_QUARTER_CENT))}"')
    return text


def _json_text(memo: dict[object, str], value: str) -> str:
    """``value`` as a JSON string, as pydantic writes it (UTF-8, not escaped to ASCII), remembered."""
    text = memo.get(value)
    return text if text is not None else _memo_put(memo, value, json.dumps(value, ensure_ascii=False))


def status_json(book: SymbolBook, params: SymbolParams, report: PulseReport | None) -> bytes:
    """Return ``status_out(book, params, report).model_dump_json()``, byte for byte, written directly.

    Validating and serializing the model cost about 20 us a symbol: at every engine round a hundred
    symbols' views took milliseconds of the loop the engine shares (``bench/api.py``). Here the
    amounts are formatted as ``status_out`` does, but each distinct one once (``book.texts``), and
    the JSON is one template; a test holds both bodies equal over a replay. A stalled symbol's
    ``retry_in_s`` (a float, written pydantic's way) and the view before the first pulse take the
    model's path.
    """
    if report is None or report.retry_in_s is not None:
        return status_out(book, params, report).model_dump_json().encode()
    r, m, memo = report, params.market, book.texts
    if book.texts_for is not r.precision:  # the memo's keys name the unit, not its value: start over
        memo.clear()
        book.texts_for = r.precision
        book.units = (r.precision.tick, r.precision.lot, r.precision.quote_unit)
    tick, lot, quote_unit = book.units
    held_cost = r.committed_quote_qu - sum(
        notional_qu(o.price, o.remaining) for o in r.open_orders if o.side is Side.BUY
    )
    equity = hold = "null"
    if r.close:
        value_qu = r.held_lots * r.close * QU_PER_TICK_LOT
        equity = _change(memo, r.realized_pnl_qu + value_qu - held_cost, quote_unit)
        if book.first_close:
            key = (r.max_quote_qu, r.close, book.first_close)
            bh = memo.get(key)
            if bh is None:
                hold_qu = Decimal(r.max_quote_qu) * (Decimal(r.close) / Decimal(book.first_close) - 1)
                bh = _memo_put(memo, key, _change(memo, int(hold_qu), quote_unit))
            hold = bh
    status = str(r.status)
    text = _STATUS_JSON % (
        _json_text(memo, r.symbol),
        _json_text(memo, book.account),
        _json_text(memo, status),
        _json_text(memo, r.status_reason),
        "true" if status == "stalled" else "false",
        f'"{_amount(memo, r.close, tick)}"' if r.close else "null",
        _amount(memo, r.held_lots, lot),
        _amount(memo, r.max_base_lots, lot),
        _amount(memo, r.max_base_lots - r.held_lots, lot),
        _json_text(memo, m.base),
        _amount(memo, r.committed_quote_qu, quote_unit),
        _amount(memo, r.max_quote_qu, quote_unit),
        _amount(memo, r.max_quote_qu - r.committed_quote_qu, quote_unit),
        _json_text(memo, m.quote),
        len(r.open_orders),
        _amount(memo, r.realized_pnl_qu, quote_unit),
        _amount(memo, book.fees_qu, quote_unit),
        equity,
        hold,
        r.ts_ms,
    )
    return text.encode()


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
