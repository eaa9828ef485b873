"""Pure helpers that turn API values into what the console shows (no Streamlit: tested directly)."""

from __future__ import annotations

import html
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from nutcracker.api.client import Rail, SymbolStatus

__all__ = [
    "DISCLAIMER",
    "STATE_COLOURS",
    "ago",
    "as_text",
    "grouped",
    "money",
    "overview_cards",
    "overview_rows",
    "parse_value",
    "patch_of",
    "rail_use",
    "totals",
]

DISCLAIMER = (
    "Nutcracker is non-discretionary software: it places the orders your configuration describes and "
    "nothing else. It gives no investment advice; every parameter, and every gain or loss, is yours."
)

STATE_COLOURS = {  # the overview's State column
    "trading": "#22c55e",
    "idle": "#94a3b8",
    "stalled": "#f59e0b",
    "paused": "#38bdf8",
    "killed": "#ef4444",
}


def _dec(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def rail_use(rail: Rail) -> float:
    """The share of a rail in use, 0..1 (a zero limit: 1, nothing may be used)."""
    used, limit = _dec(rail["used"]) or Decimal(0), _dec(rail["limit"]) or Decimal(0)
    if limit <= 0:
        return 1.0
    return float(max(Decimal(0), min(used / limit, Decimal(1))))


def money(text: str | None) -> str:
    """An amount of quote to the cent with thousands separated (the API keeps every digit): ``-1,234.57``."""
    value = _dec(text)
    if value is None:
        return "—"
    # the rounding named: a caller's decimal context (the engine sets its own) must not change a page
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


def grouped(text: str | None) -> str:
    """A price with thousands separated and every decimal kept: ``105,741.13``, ``0.3456``."""
    value = _dec(text)
    return "—" if value is None else f"{value:,}"


def ago(now_ms: int, then_ms: int) -> str:
    seconds = max(0, (now_ms - then_ms) // 1000)
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def overview_rows(symbols: list[SymbolStatus]) -> list[dict[str, Any]]:
    """One row per symbol, in the overview table's columns."""
    rows = []
    for s in symbols:
        state = "stalled" if s["stalled"] and s["status"] not in ("paused", "killed") else s["status"]
        rows.append(
            {
                "Symbol": s["symbol"],
                "State": state,
                "Why": s["reason"],
                "Price": _dec(s["price"]),
                "PnL": float(_dec(s["realized_pnl"]) or 0),
                "Fees": float(_dec(s["fees"]) or 0),
                "Inventory": rail_use(s["inventory"]),
                "Committed": rail_use(s["committed_quote"]),
                "Orders": s["open_orders"],
                "Equity Δ": _float(s["equity_change"]),
                "Hold Δ": _float(s["buy_and_hold_change"]),
            }
        )
    return rows


def overview_cards(symbols: list[SymbolStatus]) -> str:
    """The overview as one card per symbol (HTML, every API string escaped): for a phone's width."""
    cards = []
    for row, s in zip(overview_rows(symbols), symbols, strict=True):
        state = str(row["State"])
        quote = s["committed_quote"]["asset"]
        cards.append(
            '<div style="border:1px solid rgba(148,163,184,.35);border-radius:8px;padding:8px 10px;'
            'margin-bottom:8px;overflow-wrap:anywhere">'
            f"<b>{html.escape(s['symbol'])}</b> · "
            f'<b style="color:{STATE_COLOURS.get(state, "inherit")}">{html.escape(state)}</b>'
            f" · {html.escape(grouped(s['price']))}<br>"
            f'<span style="opacity:.8">{html.escape(s["reason"])}</span><br>'
            f"PnL {html.escape(money(s['realized_pnl']))} {html.escape(quote)} · "
            f"fees {html.escape(money(s['fees']))} · "
            f"inventory {row['Inventory']:.0%} · committed {row['Committed']:.0%} · "
            f"orders {s['open_orders']}</div>"
        )
    return "".join(cards)


def _float(text: str | None) -> float | None:
    value = _dec(text)
    return None if value is None else float(value)


def totals(symbols: list[SymbolStatus]) -> dict[str, Any]:
    """The headline figures: PnL and fees summed (in each quote asset), and how many symbols per state."""
    pnl: dict[str, Decimal] = {}
    fees: dict[str, Decimal] = {}
    states: dict[str, int] = {}
    for s in symbols:
        quote = s["committed_quote"]["asset"]
        pnl[quote] = pnl.get(quote, Decimal(0)) + (_dec(s["realized_pnl"]) or Decimal(0))
        fees[quote] = fees.get(quote, Decimal(0)) + (_dec(s["fees"]) or Decimal(0))
        states[s["status"]] = states.get(s["status"], 0) + 1
    return {"pnl": pnl, "fees": fees, "states": states}


def as_text(value: Any) -> str:
    """A config value as the form shows it (booleans as in TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_value(text: str, current: Any) -> Any:
    """The form's text as the JSON value the API expects: booleans and numbers keep the current value's
    type; amounts stay decimal strings. Text that does not parse goes as typed: the API names the field."""
    text = text.strip()
    if isinstance(current, bool):
        lowered = text.lower()
        return {"true": True, "false": False}.get(lowered, text)
    for kind in (int, float):
        if isinstance(current, kind):
            try:
                return kind(text)
            except ValueError:
                return text
    return text


def patch_of(current: dict[str, Any], edited: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """The changed keys only, section by section (an empty dict: nothing changed)."""
    patch: dict[str, dict[str, Any]] = {}
    for section, keys in edited.items():
        old = current.get(section, {})
        for key, text in keys.items():
            if text.strip() != as_text(old.get(key)):
                patch.setdefault(section, {})[key] = parse_value(text, old.get(key))
    return patch
