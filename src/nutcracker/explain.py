"""The core's reasons in the user's units: decimal prices, percent, the config's own names.

The decision core explains itself in its exact units (ticks, lots, quote units, ppm) and its slot
names; this layer, outside the core, turns a pulse's reasons plus the position they left into one
line a trader reads, e.g. ``holding 0.00280 BTC at 28,104.50 avg; exits rest from 28,385.55 (min
profit 1.00 % net), 11.3 % above the market; no buys: base rail full (0.03000 of 0.03000 BTC,
rails.max_base)``. Reasons it does not know pass through with their units converted where labelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from nutcracker.core.indicators import warmup_candles
from nutcracker.core.model import OpenOrder, Side
from nutcracker.core.params import SymbolParams
from nutcracker.core.units import QU_PER_TICK_LOT, notional_qu

__all__ = ["Explanation", "cancel_text", "explain", "render_reason"]

_PCT_PER_PPM = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Explanation:
    state: str  # warming up | flat | idle | holding | loaded (holding, no buy resting)
    text: str
    key: tuple[str, ...]  # changes when the reason changes, not on every move of the market


class _Units:
    """Format one market's integer units as the user writes them."""

    def __init__(self, params: SymbolParams) -> None:
        self.params = params
        market = params.market
        self.p, self.base, self.quote = market.precision, market.base, market.quote
        self.price_places = max(0, -int(self.p.tick.normalize().as_tuple().exponent))
        self.qty_places = max(0, -int(self.p.lot.normalize().as_tuple().exponent))

    def price(self, ticks: int | str) -> str:
        return f"{self.p.ticks_to_price(int(ticks)):,.{self.price_places}f}"

    def qty(self, lots: int | str) -> str:
        return f"{self.p.lots_to_qty(int(lots)):.{self.qty_places}f} {self.base}"

    def money(self, qu: int | str) -> str:
        return f"{self.p.qu_to_quote(int(qu)):,.2f} {self.quote}"


def _pct(ppm: float | int | str) -> str:
    return f"{Decimal(str(ppm)) / _PCT_PER_PPM:.2f} %"


def _rails(u: _Units, m: re.Match[str]) -> str:
    held, add, top = int(m["b"]), int(m["bq"]), int(m["bm"])
    if held + add > top:
        if held >= top:
            return f"{m['slot']} not placed: base rail full ({u.qty(held)} of {u.qty(top)}, rails.max_base)"
        # room is left, but not for this order: "full" would send the user looking for inventory
        return (
            f"{m['slot']} not placed: a buy of {u.qty(add)} does not fit the base rail ({u.qty(held)} of "
            f"{u.qty(top)} used, rails.max_base)"
        )
    c, cq, cm = int(m["q"]), int(m["qq"]), int(m["qm"])
    if c + cq > cm:
        if c >= cm:
            return f"{m['slot']} not placed: quote rail full ({u.money(c)} of {u.money(cm)}, rails.max_quote)"
        return (
            f"{m['slot']} not placed: a buy of {u.money(cq)} does not fit the quote rail ({u.money(c)} of "
            f"{u.money(cm)} committed, rails.max_quote)"
        )
    return f"{m['slot']} not placed: rails"


def _purged(u: _Units, m: re.Match[str]) -> str:
    price, best = int(m["p"]), int(m["t"])
    drift = f"{Decimal(abs(best - price)) * 100 / best:.1f} %" if best > 0 else "far"
    where = "below" if m["side"] == "buy" else "above"
    return (
        f"purged: {m['side']} at {u.price(price)} drifted {drift} {where} the best {m['b']} "
        f"{u.price(best)}, beyond orders.purge_bps ({_pct(u.params.gates.purge_ppm)})"
    )


def _warmup(u: _Units, m: re.Match[str]) -> str:
    k = u.params.keltner
    needed = warmup_candles(k.ema_period, k.atr_period)  # the long average is not waited for
    return f"no buys: indicators warming up ({m['n']} of {needed} candles)"


_Rule = tuple[re.Pattern[str], Callable[[_Units, re.Match[str]], str]]
_RULES: tuple[_Rule, ...] = tuple(
    (re.compile(pattern), render)
    for pattern, render in (
        (
            r"^idle: the book is empty or crossed \(bid (?P<b>-?\d+), ask (?P<a>-?\d+)\)$",
            lambda u, m: f"idle: the book is empty or crossed (bid {u.price(m['b'])}, ask {u.price(m['a'])})",
        ),
        (r"^no buys: indicators warming up \((?P<n>\d+) candles applied\)$", _warmup),
        (
            r"^no buys: volatility (?P<x>[\d.]+) ppm above the backstop (?P<y>\d+) ppm$",
            lambda u, m: (
                f"no buys: volatility (ATR) {_pct(m['x'])} of the price is above "
                f"volatility.max_atr_pct {_pct(m['y'])}"
            ),
        ),
        (
            r"^no buys: volatility (?P<x>[\d.]+) ppm below the minimum (?P<y>\d+) ppm$",
            lambda u, m: (
                f"no buys: volatility (ATR) {_pct(m['x'])} of the price is below "
                f"volatility.min_atr_pct {_pct(m['y'])}"
            ),
        ),
        (
            r"^(?P<slot>\S+) exit of (?P<q>\d+) lots is below the minimum notional: held until it grows$",
            lambda u, m: (
                f"{m['slot']} exit of {u.qty(m['q'])} is below market.min_notional: held until it grows"
            ),
        ),
        (
            r"^(?P<slot>\S+) at (?P<p>\d+) is above the top of book \((?P<t>\d+)\): skipped$",
            lambda u, m: (
                f"{m['slot']} at {u.price(m['p'])} would cross the book (best bid {u.price(m['t'])}): skipped"
            ),
        ),
        (
            r"^(?P<slot>\S+) at (?P<p>\d+) is beyond the purge distance: skipped$",
            lambda u, m: (
                f"{m['slot']} at {u.price(m['p'])} is farther from the market than "
                f"orders.purge_bps ({_pct(u.params.gates.purge_ppm)}): skipped"
            ),
        ),
        (r"^(?P<slot>\S+) waits: sell cooldown$", lambda u, m: f"{m['slot']} waits: cooldown.sell_s"),
        (r"^(?P<slot>\S+) waits: buy cooldown$", lambda u, m: f"{m['slot']} waits: cooldown.buy_s"),
        (
            r"^(?P<slot>\S+) exit of (?P<q>\d+) lots exceeds the free base above the reserve$",
            lambda u, m: (
                f"{m['slot']} exit of {u.qty(m['q'])} exceeds the free {u.base} above rails.reserve_base"
            ),
        ),
        (
            r"^(?P<slot>\S+) not placed: rails \(base (?P<b>\d+)\+(?P<bq>\d+) of (?P<bm>\d+) lots, "
            r"quote (?P<q>\d+)\+(?P<qq>\d+) of (?P<qm>\d+) qu\)$",
            _rails,
        ),
        (
            r"^(?P<slot>\S+) not placed: free quote above the reserve is too low$",
            lambda u, m: f"{m['slot']} not placed: free {u.quote} above rails.reserve_quote is too low",
        ),
        (
            r"^(?P<slot>\S+) not placed: the portfolio quote budget is spent$",
            lambda u, m: f"{m['slot']} not placed: portfolio.{u.quote}.max_quote is spent",
        ),
        (
            r"^(?P<slot>\S+) re-priced to (?P<p>\d+)$",
            lambda u, m: f"{m['slot']} re-priced: new price {u.price(m['p'])}",
        ),
        (
            r"^volatility (?P<x>[\d.]+) ppm above the backstop (?P<y>\d+) ppm$",
            lambda u, m: (
                f"purged: volatility (ATR) {_pct(m['x'])} of the price is above "
                f"volatility.max_atr_pct {_pct(m['y'])}"
            ),
        ),
        (
            r"^(?P<side>buy|sell) at (?P<p>\d+) beyond the purge line \d+ "
            r"\(best (?P<b>bid|ask) (?P<t>\d+)\)$",
            _purged,
        ),
        (
            r"^(?P<side>buy|sell) at (?P<p>\d+) beyond the purge line (?P<line>\d+)$",
            lambda u, m: (
                f"purged: {m['side']} at {u.price(m['p'])} drifted beyond orders.purge_bps "
                f"({_pct(u.params.gates.purge_ppm)}) from the market (line {u.price(m['line'])})"
            ),
        ),
    )
)
_LABELLED = (
    (re.compile(r"(\d+(?:\.\d+)?) ppm"), lambda u, m: _pct(m[1])),
    (re.compile(r"(\d+) lots"), lambda u, m: u.qty(m[1])),
    (re.compile(r"(\d+) qu\b"), lambda u, m: u.money(m[1])),
)


def render_reason(reason: str, params: SymbolParams) -> str:
    """Return one core reason (a pulse's, a cancel's or a purge's) in the user's units."""
    u = _Units(params)
    for pattern, render in _RULES:
        m = pattern.match(reason)
        if m is not None:
            return render(u, m)
    for labelled, convert in _LABELLED:  # an unknown reason: convert what its units say
        reason = labelled.sub(lambda m, convert=convert: convert(u, m), reason)  # type: ignore[misc]
    return reason


def cancel_text(reason: str, pulse_reasons: Sequence[str], params: SymbolParams) -> str:
    """Return a cancel's real cause: a slot no longer wanted says why, from its pulse's reasons."""
    m = re.match(r"^(?P<slot>\S+) is no longer wanted$", reason)
    if m is None:
        return render_reason(reason, params)
    slot = m["slot"]
    own = [r for r in pulse_reasons if r.startswith(f"{slot} ")]
    general = [r for r in pulse_reasons if r.startswith(("no buys", "no new sequence", "idle:"))]
    why = own or general
    if why:
        return f"{slot} no longer wanted because {render_reason(why[0], params)}"
    side = "exit" if slot.startswith(("S", "X", "E")) else "level"
    return f"{slot} no longer wanted: the strategy keeps no {side} {slot} now"


def explain(
    params: SymbolParams,
    *,
    held_lots: int,
    committed_qu: int,
    close: int,
    open_orders: Sequence[OpenOrder],
    reasons: Sequence[str],
) -> Explanation:
    """Return the state a pulse left, and why, in the user's units.

    ``committed_qu`` is the held cost plus the open buys' notional (as the rails count it); the
    held lots' average price is what remains after the open buys.
    """
    u = _Units(params)
    buys = [o for o in open_orders if o.side is Side.BUY]
    sells = [o for o in open_orders if o.side is Side.SELL]
    rendered = [render_reason(r, params) for r in reasons]
    warming = any(r.startswith("no buys: indicators warming up") for r in reasons)
    parts: list[str] = []
    if held_lots > 0:
        state = "holding" if buys else "loaded"
        cost = committed_qu - sum(notional_qu(o.price, o.remaining) for o in buys)
        avg = Decimal(cost) / (held_lots * QU_PER_TICK_LOT)
        parts.append(f"holding {u.qty(held_lots)} at {u.p.tick * avg:,.{u.price_places}f} avg")
        if sells:
            low = min(o.price for o in sells)
            profit = _pct(params.min_profit_ppm)
            parts.append(
                f"exits rest from {u.price(low)} (min profit {profit} net), "
                f"{_away(low, close)} above the market"
            )
        else:
            exit_why = [r for r in rendered if " exit " in r or "sell" in r]
            parts.append("no exit resting" + (f": {exit_why[0]}" if exit_why else ""))
    else:
        state = "flat" if buys else "idle"
        parts.append("flat")
    if buys:
        high = max(o.price for o in buys)
        levels = f"{len(buys)} level{'s' if len(buys) > 1 else ''}"
        parts.append(f"buys rest from {u.price(high)}, {_away(close, high)} below the market ({levels})")
        why = ""
    else:
        why = _no_buys(rendered)
        if why == _NOTHING_WANTED:  # the strategy asked for nothing: a full rail is the likelier why
            why = _rail_full(u, held_lots, committed_qu) or why
        parts.append(f"no buys: {why}")
    if warming:
        state = "warming up"
    key = (state, str(len(buys)), str(len(sells)), why)
    return Explanation(state, "; ".join(parts), key)


def _away(high: int, low: int) -> str:
    """Return how far ``high`` is above ``low`` (ticks), in percent of ``low``."""
    if low <= 0:
        return "n/a %"
    return f"{Decimal(high - low) * 100 / low:.1f} %"


_NOTHING_WANTED: Final = "no buy level is wanted now"


def _rail_full(u: _Units, held_lots: int, committed_qu: int) -> str:
    """Say which rail leaves no room for one more level (the grid's first size), or ""."""
    rails, step = u.params.rails, u.params.grid.order_quote_qu
    if rails.max_base_lots > 0 and held_lots >= rails.max_base_lots:
        return f"base rail full ({u.qty(held_lots)} of {u.qty(rails.max_base_lots)}, rails.max_base)"
    if rails.max_quote_qu > 0 and committed_qu + step > rails.max_quote_qu:
        return (
            f"quote rail full ({u.money(committed_qu)} of {u.money(rails.max_quote_qu)} committed, "
            "rails.max_quote)"
        )
    return ""


def _no_buys(rendered: Sequence[str]) -> str:
    for r in rendered:
        if r.startswith(("no buys: ", "no new sequence: ", "idle: ")):
            return r.split(": ", 1)[1] if r.startswith("no buys: ") else r
    for r in rendered:
        if " exit " in r or "sell" in r:
            continue
        if "not placed: " in r:
            return r.split("not placed: ", 1)[1]
        if "waits: " in r or "skipped" in r or "no longer fits" in r:
            return r
    return _NOTHING_WANTED
