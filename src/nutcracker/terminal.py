"""What a person watches while the engine runs: a live rich table per symbol, or key=value log lines."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from nutcracker.core.model import Side
from nutcracker.engine.reports import PulseReport

CENTS = Decimal("0.01")
_STATUS_STYLE = {"trading": "green", "idle": "yellow", "stalled": "red", "paused": "magenta", "killed": "red"}


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def status_table(reports: Iterable[PulseReport], title: str = "Nutcracker") -> Table:
    """Return one row per symbol: price, bands, open orders, inventory vs rails, PnL, state and why."""
    table = Table(title=title, title_justify="left", expand=True)
    for column in (
        "symbol",
        "price",
        "bands (lower / mid / upper)",
        "orders",
        "inventory / rail",
        "committed / rail",
        "realized PnL",
        "state",
    ):
        table.add_column(column, overflow="fold")
    for r in reports:
        b = r.bands
        bands = (
            " / ".join(_plain(r.price(int(x))) for x in (b.lower, b.ema, b.upper))
            if b.ready
            else "warming up"
        )
        buys = sorted((o.price for o in r.open_orders if o.side is Side.BUY), reverse=True)
        sells = sorted(o.price for o in r.open_orders if o.side is Side.SELL)
        orders = f"{len(buys)} buys" + (f" ≤ {_plain(r.price(buys[0]))}" if buys else "")
        orders += f"\n{len(sells)} sells" + (f" ≥ {_plain(r.price(sells[0]))}" if sells else "")
        style = _STATUS_STYLE.get(r.status, "white")
        why = r.status_reason  # the pulse's state in the user's units (``nutcracker.explain``)
        table.add_row(
            r.symbol,
            _plain(r.price(r.close)) if r.close else "-",
            bands,
            orders,
            f"{_plain(r.qty(r.held_lots))} / {_plain(r.qty(r.max_base_lots))}",
            f"{_plain(r.quote(r.committed_quote_qu).quantize(CENTS))} / {_plain(r.quote(r.max_quote_qu))}",
            _plain(r.quote(r.realized_pnl_qu).quantize(Decimal("0.0001"))),
            f"[{style}]{r.status}[/{style}]\n{why}",
        )
    return table


def log_line(r: PulseReport) -> str:
    """Return one structured key=value line for ``--headless`` (no secrets: reports hold none)."""
    fields = {
        "symbol": r.symbol,
        "ts_ms": r.ts_ms,
        "status": r.status,
        "price": _plain(r.price(r.close)) if r.close else "",
        "orders": len(r.open_orders),
        "placed": sum(1 for i in r.intents if i.action == "place" and i.status == "acked"),
        "cancelled": sum(1 for i in r.intents if i.action == "cancel"),
        "fills": len(r.fills),
        "inventory": _plain(r.qty(r.held_lots)),
        "committed_quote": _plain(r.quote(r.committed_quote_qu)),
        "realized_pnl": _plain(r.quote(r.realized_pnl_qu)),
        "reason": r.status_reason or (r.reasons[0] if r.reasons else ""),
    }
    return " ".join(f"{k}={_quote(str(v))}" for k, v in fields.items())


def _quote(text: str) -> str:
    return f'"{text}"' if (" " in text or "=" in text or not text) else text


def print_log(console: Console, report: PulseReport) -> None:
    console.print(log_line(report), markup=False, highlight=False, soft_wrap=True)
