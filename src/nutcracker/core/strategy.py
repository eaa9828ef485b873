"""The decision function: ``decide(snapshot, params, state) -> Decision``.

One pulse of one symbol, pure and deterministic: it books the new fills into the ledger,
updates the indicators, computes the orders the user's strategy wants resting (an exit per
inventory group, a ladder of buys), passes every placement through the gates, and returns the
cancels and post-only placements that turn the open orders into that wanted set, with the
reasons for everything it did and did not do. No clock, no randomness, no I/O.

How the five components combine (each one the user enables adds its view; none predicts):
- the buy ladder hangs from a *top* price: the lowest of the enabled components' ceilings
  (grid: one spacing below the trailing anchor; Keltner: the mid band; mean reversion: the
  lower band, or the top of book right after a confirmed excursion/incursion; market making:
  the mean less the half spread, skewed by inventory). While a sequence holds inventory its
  ladder is frozen, so grid levels and martingale steps stay where they were.
- level k sits ``spacing x step_scale^(k-1)`` below level k-1 and buys
  ``order_quote x volume_scale^k`` (scales are 1 without the martingale);
- exits: one sell per lot (grid) or one pooled sell of the whole sequence (martingale), at the
  lowest enabled target (grid: one spacing up; mean reversion: the mean; market making: the
  mean plus the half spread, skewed) but never below the net-of-fees minimum-profit price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from nutcracker.core import indicators
from nutcracker.core.indicators import IndicatorState
from nutcracker.core.ledger import Booking, ClosedCycle, Ledger, Lot, book_fill, min_sell_price
from nutcracker.core.model import CancelOrder, Intent, OpenOrder, PlaceLimit, Side, Snapshot
from nutcracker.core.orders import POOLED_SLOT, Slot, buy_slot, exit_slot, format_order_id, parse_slot
from nutcracker.core.params import Spacing, SymbolParams
from nutcracker.core.units import PPM, QU_PER_TICK_LOT, ceil_div, notional_qu


@dataclass(frozen=True, slots=True)
class StrategyState:
    """What the strategy carries from one pulse to the next (journaled by the engine)."""

    indicators: IndicatorState
    ledger: Ledger
    anchor: int = 0  # grid anchor in ticks; 0 until the first ready pulse
    ladder: tuple[int, ...] = ()  # frozen level prices while a sequence holds inventory
    next_seq: int = 1  # the next client order id's counter


def initial_state() -> StrategyState:
    """Return the state of a symbol that has never traded."""
    return StrategyState(indicators.initial_state(), Ledger())


@dataclass(frozen=True, slots=True)
class Decision:
    intents: tuple[Intent, ...]  # cancels first, then sells, then buys
    state: StrategyState
    reasons: tuple[str, ...]  # what the pulse wants and, when idle, why
    bookings: tuple[Booking, ...]  # the cycle each new fill went to
    closed_cycles: tuple[ClosedCycle, ...]


@dataclass(frozen=True, slots=True)
class _Want:
    slot: Slot
    side: Side
    price: int
    qty: int
    reason: str
    floor: int = 0  # a sell never rests below this
    as_is: bool = False  # keep the resting order untouched (a partially filled buy)


@dataclass(frozen=True, slots=True)
class _Market:
    """The pulse's view of the market, derived once."""

    bid: int
    ask: int
    buy_top: int  # highest price a buy may rest at (post-only and depth)
    sell_bottom: int  # lowest price a sell may rest at
    ready: bool
    ema: float
    atr: float
    lower: float
    step: float  # grid spacing as a fraction of price (nan while the ATR is warming up)


def decide(snap: Snapshot, params: SymbolParams, state: StrategyState) -> Decision:
    """Return the intents that move this symbol's resting orders to what its strategy wants."""
    reasons: list[str] = []
    ind = indicators.update(state.indicators, snap.candles, params.keltner)
    ledger, bookings, closed = _book_fills(state.ledger, snap, params, reasons)
    book = snap.book
    if book.best_bid <= 0 or book.best_ask <= book.best_bid:
        reasons.append(f"idle: the book is empty or crossed (bid {book.best_bid}, ask {book.best_ask})")
        new_state = replace(state, indicators=ind, ledger=ledger)
        return Decision((), new_state, tuple(reasons), bookings, closed)

    market = _market_view(snap, params, ind)
    anchor = _trail_anchor(state.anchor, ledger, market, params)
    ladder = _ladder(state, ledger, market, ind, params, anchor, snap.open_orders, reasons)
    exits = _exits(ledger, market, ind, params, reasons)
    buys = _buys(ledger, market, ind, params, ladder, snap.open_orders, reasons)
    intents, next_seq = _reconcile(snap, params, ledger, exits, buys, state.next_seq, reasons)
    new_state = StrategyState(ind, ledger, anchor, ladder if ledger.lots else (), next_seq)
    if not intents and not snap.open_orders and not reasons:
        reasons.append("idle: nothing to place")
    return Decision(tuple(intents), new_state, tuple(reasons), bookings, closed)


def _book_fills(
    ledger: Ledger, snap: Snapshot, params: SymbolParams, reasons: list[str]
) -> tuple[Ledger, tuple[Booking, ...], tuple[ClosedCycle, ...]]:
    bookings: list[Booking] = []
    closed: list[ClosedCycle] = []
    pooled = params.martingale.enabled
    for fill in snap.fills:
        slot = parse_slot(params.order_id_prefix, fill.client_order_id)
        if slot is None:
            reasons.append(f"fill {fill.trade_id} is not one of ours: ignored")
            continue
        ledger, booking, cycle = book_fill(ledger, fill, slot.level, pooled)
        bookings.append(booking)
        if cycle is not None:
            closed.append(cycle)
    return ledger, tuple(bookings), tuple(closed)


def _market_view(snap: Snapshot, params: SymbolParams, ind: IndicatorState) -> _Market:
    bid, ask, depth = snap.book.best_bid, snap.book.best_ask, params.gates.depth_ppm
    buy_top = min(ask - 1, bid * (PPM - depth) // PPM)
    sell_bottom = max(bid + 1, ceil_div(ask * (PPM + depth), PPM))
    grid = params.grid
    if grid.spacing is Spacing.BPS:
        step = grid.spacing_ppm / PPM
    else:
        step = grid.spacing_atr * ind.atr / ind.ema if ind.ready else math.nan
    return _Market(bid, ask, buy_top, sell_bottom, ind.ready, ind.ema, ind.atr, ind.lower, step)


def _trail_anchor(anchor: int, ledger: Ledger, market: _Market, params: SymbolParams) -> int:
    """Return the grid anchor: set on the first ready pulse, trailed while no inventory is at stake."""
    grid = params.grid
    if not grid.enabled or not market.ready:
        return anchor
    if anchor == 0:
        return market.bid
    if ledger.lots:
        return anchor
    if grid.trailing_up and market.bid > anchor * (1 + market.step):
        return market.bid
    if grid.trailing_down and market.ask < anchor * (1 - market.step * (grid.levels + 1)):
        return market.ask
    return anchor


def _ladder(
    state: StrategyState,
    ledger: Ledger,
    market: _Market,
    ind: IndicatorState,
    params: SymbolParams,
    anchor: int,
    open_orders: tuple[OpenOrder, ...],
    reasons: list[str],
) -> tuple[int, ...]:
    """Return the buy levels' prices: frozen while holding inventory, else hung from the top.

    A ladder freezes on the pulse that books its first fill: each level keeps the price of its
    lot or resting order, so grid levels and martingale steps stay where they were placed.
    """
    if ledger.lots and state.ladder:
        return state.ladder
    if not market.ready:
        return ()
    top = _ladder_top(market, ind, params, anchor, _inventory_deviation(ledger, params))
    if top <= 0:
        reasons.append("idle: no ladder top (a component has no price yet)")
        return ()
    prices = [top]
    scale = params.martingale.step_scale if params.martingale.enabled else 1.0
    distance = market.step
    for _ in range(1, params.ladder_levels):
        prices.append(math.floor(prices[-1] * (1 - distance)))
        distance *= scale
    if ledger.lots:
        for order in open_orders:
            slot = parse_slot(params.order_id_prefix, order.client_order_id)
            if slot is not None and slot.kind == "B" and 0 <= slot.level < len(prices):
                prices[slot.level] = order.price
        for lot in ledger.lots:
            if 0 <= lot.level < len(prices):
                prices[lot.level] = lot.price
    return tuple(prices)


def _ladder_top(
    market: _Market, ind: IndicatorState, params: SymbolParams, anchor: int, deviation: float
) -> int:
    floating: list[float] = []
    if params.keltner.enabled:
        floating.append(ind.ema)
    if params.mean_reversion.enabled:
        armed = params.keltner.confirm_closes > 0 and ind.buy_armed
        floating.append(market.buy_top if armed else ind.lower)
    if params.market_making.enabled:
        mm = params.market_making
        floating.append(ind.ema * (1 - mm.half_spread_ppm / PPM - mm.skew_ppm / PPM * deviation))
    if not floating and not params.grid.enabled:
        floating.append(market.buy_top)  # martingale alone: start the sequence at the top of book
    top = math.inf
    if floating:
        top = min(min(floating), market.buy_top)  # a floating ladder never starts above the book
    if params.grid.enabled:
        top = min(top, anchor * (1 - market.step))  # grid levels above the book are skipped, not moved
    return math.floor(top) if math.isfinite(top) else 0


def _inventory_deviation(ledger: Ledger, params: SymbolParams) -> float:
    """Return (held - target) / max_base: positive when long of the market-making target."""
    rail = params.rails.max_base_lots
    return (ledger.held - params.market_making.inventory_target_lots) / rail if rail else 0.0


def _exits(
    ledger: Ledger, market: _Market, ind: IndicatorState, params: SymbolParams, reasons: list[str]
) -> list[_Want]:
    if not ledger.lots:
        return []
    pooled = params.martingale.enabled
    groups: list[tuple[Slot, list[Lot]]]
    if pooled:
        groups = [(POOLED_SLOT, [lot for lot in ledger.lots if lot.held > 0])]
    else:
        groups = [(exit_slot(lot.level), [lot]) for lot in ledger.lots if lot.held > 0]
    wants: list[_Want] = []
    deviation = _inventory_deviation(ledger, params)
    fee, min_profit = params.market.maker_fee_ppm, params.min_profit_ppm
    for slot, lots in groups:
        if not lots:
            continue
        held = sum(lot.held for lot in lots)
        floor = min_sell_price(lots, fee, min_profit)
        target = _exit_target(lots, market, ind, params, deviation)
        price = max(floor, target, market.sell_bottom)
        purge = params.gates.purge_ppm
        if purge and price > market.ask * (PPM + purge) // PPM:
            reasons.append(f"{slot} exit waits: its price {price} is beyond the purge distance")
            continue
        if notional_qu(price, held) < params.market.min_notional_qu:
            reasons.append(f"{slot} exit of {held} lots is below the minimum notional: held until it grows")
            continue
        why = "exit at the minimum-profit price" if price == floor else "exit at its target"
        wants.append(_Want(slot, Side.SELL, price, held, why, floor=floor))
    return wants


def _exit_target(
    lots: list[Lot], market: _Market, ind: IndicatorState, params: SymbolParams, deviation: float
) -> int:
    targets: list[float] = []
    if params.grid.enabled and not math.isnan(market.step):
        bought = sum(lot.bought for lot in lots)
        average = sum(lot.cost for lot in lots) / (bought * QU_PER_TICK_LOT)
        targets.append(average * (1 + market.step))
    if market.ready:
        if params.mean_reversion.enabled:
            targets.append(ind.ema)
        if params.market_making.enabled:
            mm = params.market_making
            targets.append(ind.ema * (1 + mm.half_spread_ppm / PPM - mm.skew_ppm / PPM * deviation))
        if params.keltner.enabled and ind.sell_armed:
            targets.append(market.sell_bottom)  # a confirmed incursion from above: exit now
    return math.ceil(min(targets)) if targets else 0


def _buys(
    ledger: Ledger,
    market: _Market,
    ind: IndicatorState,
    params: SymbolParams,
    ladder: tuple[int, ...],
    open_orders: tuple[OpenOrder, ...],
    reasons: list[str],
) -> list[_Want]:
    if not market.ready:
        reasons.append(f"no buys: indicators warming up ({ind.count} candles applied)")
        return []
    gates = params.gates
    atr_ppm = ind.atr_ppm
    if gates.max_atr_ppm and atr_ppm > gates.max_atr_ppm:
        reasons.append(f"no buys: volatility {atr_ppm:.0f} ppm above the backstop {gates.max_atr_ppm} ppm")
        return []
    if gates.min_atr_ppm and atr_ppm < gates.min_atr_ppm:
        reasons.append(f"no buys: volatility {atr_ppm:.0f} ppm below the minimum {gates.min_atr_ppm} ppm")
        return []
    if not ledger.lots:
        if params.keltner.enabled and ind.above_run > 0:
            reasons.append(f"no new sequence: {ind.above_run} closes above the upper Keltner band")
            return []
        if params.mean_reversion.enabled and params.keltner.confirm_closes > 0 and not ind.buy_armed:
            reasons.append("no new sequence: waiting for a confirmed excursion below the lower band")
            return []
    partial = {parse_slot(params.order_id_prefix, o.client_order_id): o for o in open_orders if o.filled}
    pooled = params.martingale.enabled
    held_levels = {lot.level for lot in ledger.lots if lot.held > 0}
    deepest = max(held_levels, default=-1)
    wants: list[_Want] = []
    for level, price in enumerate(ladder):
        slot = buy_slot(level)
        resting = partial.get(slot)
        if resting is not None and resting.side is Side.BUY:
            wants.append(
                _Want(slot, Side.BUY, resting.price, resting.remaining, "partially filled", as_is=True)
            )
            continue
        if level in held_levels or (pooled and level <= deepest):
            continue
        if price > market.buy_top:
            reasons.append(f"{slot} at {price} is above the top of book ({market.buy_top}): skipped")
            continue
        if gates.purge_ppm and price < market.bid * (PPM - gates.purge_ppm) // PPM:
            reasons.append(f"{slot} at {price} is beyond the purge distance: skipped")
            continue
        if price <= 0:
            continue
        wants.append(_Want(slot, Side.BUY, price, _level_qty(level, price, params), f"ladder level {level}"))
    return wants


def _level_qty(level: int, price: int, params: SymbolParams) -> int:
    """Return the lots level ``level`` buys at ``price``, at least the minimum notional."""
    size = params.grid.order_quote_qu
    if params.martingale.enabled:
        size = int(size * params.martingale.volume_scale**level)
    per_lot = price * QU_PER_TICK_LOT
    return max(size // per_lot, ceil_div(params.market.min_notional_qu, per_lot))


def _reconcile(
    snap: Snapshot,
    params: SymbolParams,
    ledger: Ledger,
    exits: list[_Want],
    buys: list[_Want],
    next_seq: int,
    reasons: list[str],
) -> tuple[list[Intent], int]:
    """Return cancels then placements turning our open orders into the wanted ones, within the rails."""
    prefix, gates, rails = params.order_id_prefix, params.gates, params.rails
    resting: dict[Slot, OpenOrder] = {}
    cancels: list[CancelOrder] = []
    for order in snap.open_orders:
        slot = parse_slot(prefix, order.client_order_id)
        if slot is None:
            continue  # not ours: never touched
        if slot in resting:
            cancels.append(CancelOrder(order.client_order_id, "duplicate order for one slot"))
        else:
            resting[slot] = order
    wanted = {w.slot: w for w in (*exits, *buys)}
    for slot, order in resting.items():
        if slot not in wanted:
            cancels.append(CancelOrder(order.client_order_id, f"{slot} is no longer wanted"))
    buy_cooling = (
        ledger.last_buy_fill_ts_ms >= 0 and snap.ts_ms < ledger.last_buy_fill_ts_ms + gates.cooldown_buy_ms
    )
    sell_cooling = (
        ledger.last_sell_fill_ts_ms >= 0 and snap.ts_ms < ledger.last_sell_fill_ts_ms + gates.cooldown_sell_ms
    )

    placements: list[PlaceLimit] = []
    free_base = snap.free_base - rails.reserve_base_lots
    free_quote = snap.free_quote - rails.reserve_quote_qu
    for c in cancels:  # what the cancels release can fund this pulse's placements
        order = next(o for o in snap.open_orders if o.client_order_id == c.client_order_id)
        if order.side is Side.BUY:
            free_quote += notional_qu(order.price, order.remaining)
        else:
            free_base += order.remaining

    def keep(want: _Want, order: OpenOrder | None, cooling: bool) -> bool:
        if order is None or order.side is not want.side:
            return False
        if want.as_is:
            return True
        if cooling and (want.side is Side.BUY or order.price >= want.floor):
            return True  # during a cooldown resting orders stay where they are
        tolerance = want.price * gates.requote_ppm // PPM
        same_size = order.remaining == want.qty if want.side is Side.SELL else order.qty == want.qty
        return same_size and abs(order.price - want.price) <= tolerance and order.price >= want.floor

    def replace_or_place(want: _Want, cooling: bool) -> bool:
        """Return True when a new order should be placed for ``want``."""
        order = resting.get(want.slot)
        if keep(want, order, cooling):
            return False
        if order is not None:
            cancels.append(CancelOrder(order.client_order_id, f"{want.slot} re-priced to {want.price}"))
            if order.side is Side.BUY:
                nonlocal free_quote
                free_quote += notional_qu(order.price, order.remaining)
            else:
                nonlocal free_base
                free_base += order.remaining
        if cooling:
            reasons.append(f"{want.slot} waits: {want.side.value} cooldown")
            return False
        return True

    for want in exits:
        if not replace_or_place(want, sell_cooling):
            continue
        if want.qty > free_base:
            reasons.append(f"{want.slot} exit of {want.qty} lots exceeds the free base above the reserve")
            continue
        free_base -= want.qty
        placements.append(_place(prefix, want, next_seq + len(placements)))

    committed_base = ledger.held
    committed_quote = ledger.held_cost
    allowance = snap.quote_allowance

    def fits_rails(qty: int, notional: int) -> bool:
        """Count open buys as if filled: inventory and deployed quote stay within the rails."""
        return (
            committed_base + qty <= rails.max_base_lots and committed_quote + notional <= rails.max_quote_qu
        )

    for want in buys:
        current = resting.get(want.slot)
        if current is not None and keep(want, current, buy_cooling):
            notional = notional_qu(current.price, current.remaining)
            if fits_rails(current.remaining, notional):
                committed_base += current.remaining
                committed_quote += notional
                continue
            reasons.append(f"{want.slot} cancelled: it no longer fits the rails")
            cancels.append(CancelOrder(current.client_order_id, f"{want.slot} no longer fits the rails"))
            free_quote += notional_qu(current.price, current.remaining)
            continue
        if not replace_or_place(want, buy_cooling):
            continue
        notional = notional_qu(want.price, want.qty)
        if not fits_rails(want.qty, notional):
            reasons.append(
                f"{want.slot} not placed: rails (base {committed_base}+{want.qty} of "
                f"{rails.max_base_lots} lots, quote {committed_quote}+{notional} of {rails.max_quote_qu} qu)"
            )
            continue
        cost = notional + notional * params.market.maker_fee_ppm // PPM
        if cost > free_quote:
            reasons.append(f"{want.slot} not placed: free quote above the reserve is too low")
            continue
        if allowance is not None and notional > allowance:
            reasons.append(f"{want.slot} not placed: the portfolio quote budget is spent")
            continue
        if allowance is not None:
            allowance -= notional
        free_quote -= cost
        committed_base += want.qty
        committed_quote += notional
        placements.append(_place(prefix, want, next_seq + len(placements)))
    return [*cancels, *placements], next_seq + len(placements)


def _place(prefix: str, want: _Want, seq: int) -> PlaceLimit:
    return PlaceLimit(format_order_id(prefix, want.slot, seq), want.side, want.price, want.qty, want.reason)
