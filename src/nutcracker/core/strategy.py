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
  ladder is frozen, so grid levels and martingale steps stay where they were; a market maker's
  lone quote is never frozen: it keeps a buy below the mean while it holds, within the rails.
- level k sits ``spacing x step_scale^(k-1)`` below level k-1 and buys
  ``order_quote x volume_scale^k`` (scales are 1 without the martingale);
- exits: one sell per lot (grid) or one pooled sell of the whole sequence (martingale), at the
  lowest enabled target (grid: one spacing up; mean reversion: the mean; market making: the
  mean plus the half spread, skewed) but never below the net-of-fees minimum-profit price.
- seeding (``grid.seed_levels`` = k): at the start, before any lot is bought, k more buys rest at
  the top of book, one order size each, as an exchange grid bot buys the base its sell levels
  above the price need when it starts (maker here, within the rails). Seeded lot j exits j
  spacings above its buy (the grid's sell level j), never below its minimum-profit price, and is
  never pooled with a sequence. Once sold, level j buys again one level below its sell and exits
  one spacing up (``_rebuys``), as a static grid trades the range above its start. The seeded
  levels are no sequence: the entry signals (Keltner's upper band, mean reversion's wait for an
  excursion) do not hold them back (they kept a hybrid's seeds unbought and its sold levels
  unbought again for days); the volatility gates do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from nutcracker.core import indicators
from nutcracker.core.hold import ASK, ATR_PPM, BID, EMA, LOWER, STEP, Hold, HoldBuilder
from nutcracker.core.indicators import IndicatorState
from nutcracker.core.ledger import Booking, ClosedCycle, Ledger, Lot, book_fill, min_sell_price
from nutcracker.core.model import CancelOrder, Intent, OpenOrder, PlaceLimit, PlannedLevel, Side, Snapshot
from nutcracker.core.orders import (
    POOLED_SLOT,
    REBUY_LEVEL,
    SEED_LEVEL,
    buy_slot,
    exit_slot,
    format_order_id,
    is_seed,
    parse_slot,
    seed_distance,
    slot_level,
)
from nutcracker.core.params import Spacing, SymbolParams
from nutcracker.core.units import PPM, QU_PER_TICK_LOT, Precision, ceil_div, commission_round_qu, notional_qu


@dataclass(slots=True, init=False, unsafe_hash=True)
class StrategyState:
    """What the strategy carries from one pulse to the next (journaled by the engine)."""

    indicators: Final[IndicatorState]
    ledger: Final[Ledger]
    anchor: Final[int]  # grid anchor in ticks; 0 until the first ready pulse
    ladder: Final[tuple[int, ...]]  # frozen level prices while a sequence holds inventory
    next_seq: Final[int]  # the next client order id's counter

    def __init__(
        self,
        indicators: IndicatorState,
        ledger: Ledger,
        anchor: int = 0,
        ladder: tuple[int, ...] = (),
        next_seq: int = 1,
    ) -> None:
        self.indicators = indicators
        self.ledger = ledger
        self.anchor = anchor
        self.ladder = ladder
        self.next_seq = next_seq

    def with_indicators(self, ind: IndicatorState) -> StrategyState:
        """Return this state with other indicators (cheaper than ``dataclasses.replace``)."""
        return StrategyState(ind, self.ledger, self.anchor, self.ladder, self.next_seq)


def initial_state() -> StrategyState:
    """Return the state of a symbol that has never traded."""
    return StrategyState(indicators.initial_state(), Ledger())


@dataclass(slots=True, init=False, unsafe_hash=True)
class Decision:
    intents: Final[tuple[Intent, ...]]  # cancels first, then sells, then buys
    state: Final[StrategyState]
    reasons: Final[tuple[str, ...]]  # what the pulse wants and, when idle, why
    bookings: Final[tuple[Booking, ...]]  # the cycle each new fill went to
    closed_cycles: Final[tuple[ClosedCycle, ...]]
    hold: Final[Hold | None]  # asked for with ``with_hold``; None: decide again on the next pulse
    levels: Final[tuple[PlannedLevel, ...]]  # asked for with ``with_levels``: exits, then buys by depth

    def __init__(
        self,
        intents: tuple[Intent, ...],
        state: StrategyState,
        reasons: tuple[str, ...],
        bookings: tuple[Booking, ...],
        closed_cycles: tuple[ClosedCycle, ...],
        hold: Hold | None = None,
        levels: tuple[PlannedLevel, ...] = (),
    ) -> None:
        self.intents = intents
        self.state = state
        self.reasons = reasons
        self.bookings = bookings
        self.closed_cycles = closed_cycles
        self.hold = hold
        self.levels = levels


# The pulse's working values never leave ``decide``: plain classes with an explicit __init__, which
# mypyc builds natively; they need none of the repr, equality or hash of ``core.model``'s values.


class _Want:
    """An order the strategy wants resting in one slot."""

    __slots__ = ("as_is", "floor", "price", "qty", "reason", "side", "slot", "terms")

    def __init__(
        self,
        slot: str,
        side: Side,
        price: int,
        qty: int,
        reason: str,
        floor: int = 0,  # a sell never rests below this
        as_is: bool = False,  # keep the resting order untouched (a partially filled buy)
        terms: tuple[_Term, ...] = (),  # what a moving price was computed from (for the hold)
    ) -> None:
        self.slot = slot
        self.side = side
        self.price = price
        self.qty = qty
        self.reason = reason
        self.floor = floor
        self.as_is = as_is
        self.terms = terms


class _Market:
    """The pulse's view of the market, derived once."""

    __slots__ = ("ask", "atr", "bid", "buy_top", "ema", "lower", "ready", "sell_bottom", "step")

    def __init__(
        self,
        bid: int,
        ask: int,
        buy_top: int,  # highest price a buy may rest at (post-only and depth)
        sell_bottom: int,  # lowest price a sell may rest at
        ready: bool,
        ema: float,
        atr: float,
        lower: float,
        step: float,  # grid spacing as a fraction of price (nan while the ATR is warming up)
    ) -> None:
        self.bid = bid
        self.ask = ask
        self.buy_top = buy_top
        self.sell_bottom = sell_bottom
        self.ready = ready
        self.ema = ema
        self.atr = atr
        self.lower = lower
        self.step = step


class _Term:
    """One candidate price, ``coef * variable`` or ``base * (1 + coef * step)`` or a book price."""

    __slots__ = ("base", "coef", "kind", "value", "var")

    def __init__(self, kind: str, var: int, coef: float, base: float, value: float) -> None:
        self.kind = kind  # "var", "step", "buy_top", "sell_bottom", "const"
        self.var = var
        self.coef = coef
        self.base = base
        self.value = value


def _var_term(var: int, coef: float, x: float) -> _Term:
    return _Term("var", var, coef, 0.0, coef * x if coef != 1.0 else x)


def _step_term(base: float, sign: float, step: float) -> _Term:
    return _Term("step", STEP, sign, base, base * (1 + sign * step))


class _Outcomes:
    """What happened to each wanted order, for the hold (only filled in when a hold is asked for)."""

    __slots__ = (
        "blocked",
        "cooling_kept",
        "gated",
        "levels",
        "placed_or_kept",
        "rails_room",
        "rebuys",
        "rebuys_above",
        "seeds",
        "unvisited",
    )

    def __init__(self) -> None:
        self.levels: list[tuple[int, str, int, str]] = []  # (position below the top, outcome, price, slot)
        self.unvisited: list[tuple[int, str, int, str]] = []  # the same, for held and out-of-window levels
        self.gated = False  # a gate stopped the ladder before it was walked (seeded levels may rest)
        self.placed_or_kept: dict[str, int] = {}  # slot -> resting price after this pulse
        self.blocked: list[tuple[_Want, str]] = []  # wants not placed, and why
        self.rails_room: dict[str, tuple[int, int]] = {}  # slot -> (base, quote) committed before it
        self.cooling_kept = False  # a cooldown kept an order that would otherwise be re-priced
        self.seeds: list[_Want] = []  # the seeded levels' buys wanted this pulse
        self.rebuys: list[_Want] = []  # the sold seeded levels' re-buys wanted this pulse
        self.rebuys_above: list[int] = []  # re-buy prices of sold seeded levels skipped: above the book


def decide(
    snap: Snapshot,
    params: SymbolParams,
    state: StrategyState,
    *,
    with_hold: bool = False,
    with_levels: bool = False,
) -> Decision:
    """Return the intents that move this symbol's resting orders to what its strategy wants.

    With ``with_hold`` the decision also says where it would stay the same (see ``core.hold``);
    with ``with_levels``, every order it planned and whether it rests (``PlannedLevel``).
    """
    reasons: list[str] = []
    ind = indicators.update(state.indicators, snap.candles, params.keltner)
    ledger, bookings, closed = _book_fills(state.ledger, snap, params, reasons)
    book = snap.book
    if book.best_bid <= 0 or book.best_ask <= book.best_bid:
        reasons.append(f"idle: the book is empty or crossed (bid {book.best_bid}, ask {book.best_ask})")
        new_state = StrategyState(ind, ledger, state.anchor, state.ladder, state.next_seq)
        return Decision((), new_state, tuple(reasons), bookings, closed)

    outcomes = _Outcomes() if with_hold or with_levels else None
    resting, duplicates = _our_orders(snap.open_orders, params.order_id_prefix)
    market = _market_view(snap, params, ind)
    anchor = _trail_anchor(state.anchor, ledger, market, params)
    ladder, top_terms = _ladder(state, ledger, market, ind, params, anchor, resting, reasons)
    exits = _exits(ledger, market, ind, params, reasons)
    buys = _buys(ledger, market, ind, params, anchor, ladder, resting, reasons, outcomes)
    requote = _requote_ppm(params, market.step)
    intents, next_seq = _reconcile(
        snap, params, ledger, resting, duplicates, exits, buys, state.next_seq, reasons, outcomes, requote
    )
    frozen = ladder if _in_sequence(ledger, params) and not _keeps_quoting(params) else ()
    new_state = StrategyState(ind, ledger, anchor, frozen, next_seq)
    if not intents and not snap.open_orders and not reasons:
        reasons.append("idle: nothing to place")
    hold = None
    if with_hold and outcomes is not None:
        hold = _hold(snap, params, new_state, market, top_terms, exits, outcomes, requote)
    levels: tuple[PlannedLevel, ...] = ()
    if with_levels and outcomes is not None:
        levels = _planned_levels(ladder, exits, buys, ledger, params, outcomes)
    return Decision(tuple(intents), new_state, tuple(reasons), bookings, closed, hold, levels)


def _requote_ppm(params: SymbolParams, step: float) -> int:
    """Return the churn hysteresis: a resting order stays while its wanted price moved less than this.

    The larger of ``requote_bps`` and ``requote_spacing`` of the level spacing: the grid's step for
    a ladder of several levels, the spread between the buy and the sell for a lone market-making
    quote. An ATR-spaced step is rounded down to a quarter octave (``_step_floor``), so the
    hysteresis does not move on every ATR tick and the hold can bound it.
    """
    gates = params.gates
    fraction = gates.requote_spacing_ppm
    if not fraction:
        return gates.requote_ppm
    if params.ladder_levels > 1:
        spacing = _step_floor(step) if params.grid.spacing is Spacing.ATR else step
    elif params.market_making.enabled:
        spacing = 2 * params.market_making.half_spread_ppm / PPM
    else:
        return gates.requote_ppm
    if not (spacing > 0 and math.isfinite(spacing)):
        return gates.requote_ppm
    return max(gates.requote_ppm, min(PPM // 2, int(fraction * spacing)))


def _step_floor(step: float) -> float:
    """Return ``step`` rounded down to a power of 2^(1/4) (nan and non-positive steps as they are)."""
    if not (step > 0 and math.isfinite(step)):
        return step
    return float(2.0 ** (math.floor(4 * math.log2(step)) / 4))


def _our_orders(orders: tuple[OpenOrder, ...], prefix: str) -> tuple[dict[str, OpenOrder], list[OpenOrder]]:
    """Return our resting orders by slot, and the extra orders found for an already taken slot."""
    resting: dict[str, OpenOrder] = {}
    duplicates: list[OpenOrder] = []
    for order in orders:
        slot = parse_slot(prefix, order.client_order_id)
        if slot is None:
            continue  # not ours: never touched
        if slot in resting:
            duplicates.append(order)
        else:
            resting[slot] = order
    return resting, duplicates


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
        ledger, booking, cycle = book_fill(ledger, fill, slot_level(slot), pooled)
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
    if _in_sequence(ledger, params):  # a floating ladder's seeded levels do not pin its anchor
        return anchor
    if grid.trailing_up and market.bid > anchor * (1 + market.step * _trail_up_steps(params)):
        return market.bid
    if grid.trailing_down and market.ask < anchor * (1 - market.step * (grid.levels + 1)):
        return market.ask
    return anchor


def _trail_up_steps(params: SymbolParams) -> int:
    """Return how many spacings above its anchor the bid must be for a flat grid to trail up.

    One for a plain grid. A seeded grid trails only once the price has left its seeded range by a
    level (``seed_levels + 1``), as a static grid re-centres only when the price has left its range:
    trailing as soon as the last seed sold re-hung the ladder and the re-buys at the tops of ranging
    months (bench/strategy.py: 2 -> 3 of 5 calm windows, crash median unchanged).
    """
    return params.grid.seed_levels + 1 if params.grid.seed_levels else 1


def _ladder(
    state: StrategyState,
    ledger: Ledger,
    market: _Market,
    ind: IndicatorState,
    params: SymbolParams,
    anchor: int,
    resting: dict[str, OpenOrder],
    reasons: list[str],
) -> tuple[tuple[int, ...], tuple[_Term, ...]]:
    """Return the buy levels' prices (frozen while holding inventory, else hung from the top) and its terms.

    A ladder freezes on the pulse that books its first fill: each level keeps the price of its
    lot or resting order, so grid levels and martingale steps stay where they were placed.
    """
    sequence = _in_sequence(ledger, params)
    if sequence and state.ladder:
        return state.ladder, ()
    if not market.ready:
        return (), ()
    terms = _ladder_top_terms(market, ind, params, anchor, _inventory_deviation(ledger, params))
    if _keeps_quoting(params):
        terms = terms + _quote_spacing_terms(ledger, params)
    top_value = min(term.value for term in terms)
    top = math.floor(top_value) if math.isfinite(top_value) else 0
    if top <= 0:
        reasons.append("idle: no ladder top (a component has no price yet)")
        return (), terms
    if sequence and _enters_one_level(params):
        first = [lot.price for lot in ledger.lots if lot.level == 0]
        if first:
            top = first[0]  # the sequence's deeper levels hang from the first level's fill
    prices = [top]
    scale = params.martingale.step_scale if params.martingale.enabled else 1.0
    distance = market.step
    for _ in range(1, _lattice_depth(params)):
        prices.append(math.floor(prices[-1] * (1 - distance)))
        distance *= scale
    if sequence and not _keeps_quoting(params):
        for slot, order in resting.items():
            level = slot_level(slot)
            if slot[0] == "B" and 0 <= level < len(prices):
                prices[level] = order.price
        for lot in ledger.lots:
            if 0 <= lot.level < len(prices):
                prices[lot.level] = lot.price
    return tuple(prices), terms


_MAX_LATTICE = 128  # a sliding grid's deepest level: bounds the work per pulse and the frozen state


def _slides(params: SymbolParams) -> bool:
    """Return whether the buy ladder is a window sliding over a lattice of grid levels.

    A plain grid (no martingale, whose steps are bounded by ``max_steps``) keeps ``grid.levels``
    buys resting below the market while it holds inventory: the levels its held lots occupy and
    the levels above the book do not count, so the window moves down with the price, over the
    frozen lattice, until the rails stop it; each held lot keeps its own exit.
    """
    return params.grid.enabled and not params.martingale.enabled


def _lattice_depth(params: SymbolParams) -> int:
    """Return how many level prices the ladder computes: the window plus every lot the rails allow."""
    levels = params.ladder_levels
    if not _slides(params):
        return levels
    size = max(1, params.grid.order_quote_qu)
    return min(_MAX_LATTICE, levels + params.rails.max_quote_qu // size)


def _in_sequence(ledger: Ledger, params: SymbolParams) -> bool:
    """Return whether the ladder holds a sequence: lots that freeze it and stop the entry gates.

    A grid's lattice (a sliding ladder) freezes on any held lot, seeded ones included, so its levels
    stay where the seeds' exits are. A floating ladder (``_enters_one_level``) counts only its own
    lots: the seeded levels above its start trade on their own, and holding them must neither pin
    the ladder and its anchor to their first price nor lift the entry gates (seeding then starved
    the hybrid).
    """
    if not ledger.lots:
        return False
    if not _enters_one_level(params):
        return True
    return any(lot.held > 0 and not is_seed(lot.level) for lot in ledger.lots)


def _enters_one_level(params: SymbolParams) -> bool:
    """Return whether a ladder rests one level at a time: its top floats with the market.

    A ladder hung from the Keltner mean, the lower band or the top of book after an excursion moves
    and comes and goes with those signals; resting all its levels cancels the unfilled ones each time
    the signal or the sequence ends (about six cancels per fill while flat, 1.6 in a sequence on the
    hybrid example). Its first level rests alone; once a sequence has started, the next level below
    the held ones rests, hung from the first level's fill.
    """
    floating = params.keltner.enabled or params.mean_reversion.enabled or params.market_making.enabled
    return floating and params.ladder_levels > 1 and not _keeps_quoting(params)


def _keeps_quoting(params: SymbolParams) -> bool:
    """Return whether the ladder is a market maker's lone quote, which keeps its buy while holding.

    Its price follows the mean, skewed by the inventory, so it is never frozen; the rails and the
    skew, not the held lots, decide how much it buys (a grid's or a martingale's held level waits
    for its exit instead).
    """
    return params.market_making.enabled and not params.grid.enabled and not params.martingale.enabled


def _quote_level(held_levels: set[int], resting: dict[str, OpenOrder]) -> int:
    """Return the level a market maker's buy quote serves: its resting buy's, else the lowest free one.

    A partially filled buy keeps its level (it rests as it is); a resting buy keeps its level while
    its lot is not held, so a sold lot does not move the quote to another slot (a needless cancel).
    """
    free = -1
    for slot, order in resting.items():
        if slot[0] == "B" and order.side is Side.BUY:
            level = slot_level(slot)
            if order.filled:
                return level
            if level not in held_levels and (free < 0 or level < free):
                free = level
    if free >= 0:
        return free
    level = 0
    while level in held_levels:
        level += 1
    return level


def _ladder_top_terms(
    market: _Market, ind: IndicatorState, params: SymbolParams, anchor: int, deviation: float
) -> tuple[_Term, ...]:
    """Return the candidate tops of the ladder; the top is the lowest, rounded down to a tick."""
    floating: list[_Term] = []
    if params.keltner.enabled:
        floating.append(_var_term(EMA, 1.0, ind.ema))
    if params.mean_reversion.enabled:
        if params.keltner.confirm_closes > 0 and ind.buy_armed:
            floating.append(_Term("buy_top", -1, 0.0, 0.0, market.buy_top))
        else:
            floating.append(_var_term(LOWER, 1.0, ind.lower))
    if params.market_making.enabled:
        mm = params.market_making
        floating.append(_var_term(EMA, 1 - mm.half_spread_ppm / PPM - mm.skew_ppm / PPM * deviation, ind.ema))
    terms = list(floating)
    if floating or not params.grid.enabled:
        # a floating ladder never starts above the book; martingale alone starts at the top of book
        terms.append(_Term("buy_top", -1, 0.0, 0.0, market.buy_top))
    if params.grid.enabled:
        terms.append(_step_term(anchor, -1.0, market.step))  # grid levels above the book are skipped
    return tuple(terms)


def _quote_spacing_terms(ledger: Ledger, params: SymbolParams) -> tuple[_Term, ...]:
    """Return a market maker's cap on its buy quote once it holds its inventory target.

    At or above the target it buys again only two full spreads (4 x ``half_spread``) below its
    cheapest held lot, so a falling market spreads the rest of the budget over a range instead of
    filling the rails within a few spreads, and a buy keeps resting beside the exits.
    """
    mm = params.market_making
    if not ledger.lots or ledger.held < max(1, mm.inventory_target_lots):
        return ()
    cheapest = min(lot.price for lot in ledger.lots if lot.held > 0)
    return (_Term("const", -1, 0.0, 0.0, cheapest * (1 - 4 * mm.half_spread_ppm / PPM)),)


def _inventory_deviation(ledger: Ledger, params: SymbolParams) -> float:
    """Return (held - target) / max_base: positive when long of the market-making target."""
    rail = params.rails.max_base_lots
    return (ledger.held - params.market_making.inventory_target_lots) / rail if rail else 0.0


def _exits(
    ledger: Ledger, market: _Market, ind: IndicatorState, params: SymbolParams, reasons: list[str]
) -> list[_Want]:
    if not ledger.lots:
        return []
    groups: list[tuple[str, list[Lot]]]
    if params.martingale.enabled:
        groups = [(POOLED_SLOT, [lot for lot in ledger.lots if lot.held > 0 and not is_seed(lot.level)])]
        groups.extend(
            (exit_slot(lot.level), [lot]) for lot in ledger.lots if lot.held > 0 and is_seed(lot.level)
        )
    else:
        groups = [(exit_slot(lot.level), [lot]) for lot in ledger.lots if lot.held > 0]
    wants: list[_Want] = []
    deviation = _inventory_deviation(ledger, params)
    fee, min_profit = params.market.maker_fee_ppm, params.min_profit_ppm
    fee_round = _fee_round_qu(params.market.precision)
    for slot, lots in groups:
        if not lots:
            continue
        held = lots[0].held if len(lots) == 1 else sum(lot.held for lot in lots)
        floor = min_sell_price(lots, fee, min_profit, fee_round)
        terms = _exit_terms(lots, market, ind, params, deviation)
        target = 0
        if terms:
            target = math.ceil(terms[0].value if len(terms) == 1 else min(term.value for term in terms))
        price = max(floor, target, market.sell_bottom)
        if notional_qu(price, held) < params.market.min_notional_qu:
            reasons.append(f"{slot} exit of {held} lots is below the minimum notional: held until it grows")
            wants.append(_Want(slot, Side.SELL, price, 0, "dust", floor, terms=terms))
            continue
        why = "exit at the minimum-profit price" if price == floor else "exit at its target"
        wants.append(_Want(slot, Side.SELL, price, held, why, floor, terms=terms))
    return wants


_FEE_ROUND_QU: dict[Precision, int] = {}  # a pure function's memo: no Decimal on the pulse path


def _fee_round_qu(precision: Precision) -> int:
    """Return what rounding a sell's commission up to the exchange's precision may add, in qu."""
    qu = _FEE_ROUND_QU.get(precision)
    if qu is None:
        qu = _FEE_ROUND_QU[precision] = commission_round_qu(precision)
    return qu


def _exit_terms(
    lots: list[Lot], market: _Market, ind: IndicatorState, params: SymbolParams, deviation: float
) -> tuple[_Term, ...]:
    """Return the enabled components' exit targets; the exit goes to the lowest, never below min profit."""
    terms: list[_Term] = []
    if len(lots) == 1 and is_seed(lots[0].level):  # the grid's sell level j: j spacings above its buy
        if not math.isnan(market.step):
            average = lots[0].cost / (lots[0].bought * QU_PER_TICK_LOT)
            terms.append(_step_term(average, float(seed_distance(lots[0].level)), market.step))
        return tuple(terms)
    if params.grid.enabled and not math.isnan(market.step):
        if len(lots) == 1:
            bought, cost = lots[0].bought, lots[0].cost
        else:
            bought, cost = sum(lot.bought for lot in lots), sum(lot.cost for lot in lots)
        average = cost / (bought * QU_PER_TICK_LOT)
        terms.append(_step_term(average, 1.0, market.step))
    if market.ready:
        if params.mean_reversion.enabled:
            terms.append(_var_term(EMA, 1.0, ind.ema))
        if params.market_making.enabled:
            mm = params.market_making
            terms.append(
                _var_term(EMA, 1 + mm.half_spread_ppm / PPM - mm.skew_ppm / PPM * deviation, ind.ema)
            )
        if params.keltner.enabled and ind.sell_armed:  # a confirmed incursion from above: exit now
            terms.append(_Term("sell_bottom", -1, 0.0, 0.0, market.sell_bottom))
    return tuple(terms)


_WARMUP = "no buys: indicators warming up ("


def _warmup_reason(count: int) -> str:
    return f"{_WARMUP}{count} candles applied)"


def held_reasons(reasons: tuple[str, ...], ind: IndicatorState) -> tuple[str, ...]:
    """Return a held decision's reasons as of ``ind``.

    Inside a hold region nothing a reason names moves, except the warm-up's candle count: a
    reused decision must not keep saying "1 candle applied" for the whole warm-up.
    """
    if ind.ready:
        return reasons
    return tuple(_warmup_reason(ind.count) if r.startswith(_WARMUP) else r for r in reasons)


def _buys(
    ledger: Ledger,
    market: _Market,
    ind: IndicatorState,
    params: SymbolParams,
    anchor: int,
    ladder: tuple[int, ...],
    resting: dict[str, OpenOrder],
    reasons: list[str],
    outcomes: _Outcomes | None,
) -> list[_Want]:
    if not market.ready:
        reasons.append(_warmup_reason(ind.count))
        return []
    gates = params.gates
    volatility = _volatility_gate(ind.atr_ppm, gates.max_atr_ppm, gates.min_atr_ppm)
    if volatility:
        reasons.append(volatility)
        if outcomes is not None:
            outcomes.gated = True
        return []
    # The seeded levels are the grid's static range above its start, not a sequence: the entry
    # signals below hold back new sequences only, the volatility gates above every buy.
    wants = _seeds(ledger, market, params, resting)
    if outcomes is not None:
        outcomes.seeds.extend(wants)
    wants.extend(_rebuys(ledger, market, params, anchor, resting, outcomes))
    entry = None if _in_sequence(ledger, params) else _entry_gate(ind, params)
    if entry:
        reasons.append(entry)
        if outcomes is not None:
            outcomes.gated = True
        return wants
    pooled = params.martingale.enabled
    held_levels = {lot.level for lot in ledger.lots if lot.held > 0}
    deepest = max((level for level in held_levels if not is_seed(level)), default=-1)
    purge_line = market.bid * (PPM - gates.purge_ppm) // PPM if gates.purge_ppm else 0
    keep_line = market.bid * (PPM - purge_keep_ppm(gates.purge_ppm)) // PPM if gates.purge_ppm else 0
    quoting = _keeps_quoting(params) and len(ladder) == 1
    window = params.grid.levels if _slides(params) else len(ladder)
    if _enters_one_level(params):
        window = 1  # flat: the first level alone; in a sequence, the next level below the held ones
    taken = 0  # levels of the window used: wanted, purged or not positive
    for position, price in enumerate(ladder):
        if taken >= window:
            if outcomes is not None:  # the levels the window would move to next (or a floating ladder's)
                outside = "window" if _slides(params) else "follows"
                for deeper in range(position, min(len(ladder), position + params.ladder_levels)):
                    outcomes.unvisited.append((deeper, outside, ladder[deeper], buy_slot(deeper)))
            break
        level = _quote_level(held_levels, resting) if quoting else position
        slot = buy_slot(level)
        partial = resting.get(slot)
        if partial is not None and partial.filled and partial.side is Side.BUY:
            wants.append(
                _Want(slot, Side.BUY, partial.price, partial.remaining, "partially filled", as_is=True)
            )
            if outcomes is not None:  # not a level of the hold's ladder: it rests as it is
                outcomes.unvisited.append((position, "wanted", partial.price, slot))
            taken += 1
            continue
        if level in held_levels or (pooled and level <= deepest):
            if outcomes is not None:
                outcomes.unvisited.append((position, "held", price, slot))
            continue
        if price > market.buy_top:
            if window == len(ladder):  # a sliding window just starts lower: nothing skipped
                reasons.append(f"{slot} at {price} is above the top of book ({market.buy_top}): skipped")
            if outcomes is not None:
                outcomes.levels.append((position, "above_top", price, slot))
            continue
        taken += 1
        kept = partial is not None and partial.side is Side.BUY and price >= keep_line
        if price < purge_line and not kept:  # a resting buy stays a little beyond: no flip-flop at the line
            reasons.append(f"{slot} at {price} is beyond the purge distance: skipped")
            if outcomes is not None:
                outcomes.levels.append((position, "purged", price, slot))
            continue
        if price <= 0:
            if outcomes is not None:
                outcomes.levels.append((position, "nonpositive", price, slot))
            continue
        if outcomes is not None:
            outcomes.levels.append((position, "wanted", price, slot))
        reason = _LEVEL_REASONS[level] if level < len(_LEVEL_REASONS) else f"ladder level {level}"
        wants.append(_Want(slot, Side.BUY, price, _level_qty(level, price, params), reason))
    return wants


def _volatility_gate(atr_ppm: float, max_ppm: int, min_ppm: int) -> str | None:
    """Return why the volatility backstop holds back every buy, or None when it does not."""
    if max_ppm and atr_ppm > max_ppm:
        return f"no buys: volatility {atr_ppm:.0f} ppm above the backstop {max_ppm} ppm"
    if min_ppm and atr_ppm < min_ppm:
        return f"no buys: volatility {atr_ppm:.0f} ppm below the minimum {min_ppm} ppm"
    return None


def _entry_gate(ind: IndicatorState, params: SymbolParams) -> str | None:
    """Return why the entry signals hold back a new sequence, or None when they let one start."""
    if params.keltner.enabled and ind.above_run > 0:
        return f"no new sequence: {ind.above_run} closes above the upper Keltner band"
    if params.mean_reversion.enabled and params.keltner.confirm_closes > 0 and not ind.buy_armed:
        return "no new sequence: waiting for a confirmed excursion below the lower band"
    return None


def _seeds(
    ledger: Ledger, market: _Market, params: SymbolParams, resting: dict[str, OpenOrder]
) -> list[_Want]:
    """Return the seeded levels' buys: at the start, one order size each at the top of book.

    Wanted until the first lot is bought, as a grid bot buys its base once, when it starts (seeding
    again each time the grid sold out and trailed up bought the tops of ranging months). They come
    first, so the rails fund them before the ladder; a partially filled seed buy rests as it is.
    """
    grid = params.grid
    if not (grid.enabled and grid.seed_levels):
        return []
    wants: list[_Want] = []
    fresh = not ledger.lots and ledger.next_cycle_id == 1  # no lot bought yet: the grid's start
    price = market.buy_top
    for j in range(1, grid.seed_levels + 1):
        slot = buy_slot(SEED_LEVEL + j)
        partial = resting.get(slot)
        if partial is not None and partial.filled and partial.side is Side.BUY:
            wants.append(
                _Want(slot, Side.BUY, partial.price, partial.remaining, "partially filled", as_is=True)
            )
        elif fresh and price > 0:
            wants.append(
                _Want(slot, Side.BUY, price, _level_qty(0, price, params), f"seed for sell level {j}")
            )
    return wants


def _rebuys(
    ledger: Ledger,
    market: _Market,
    params: SymbolParams,
    anchor: int,
    resting: dict[str, OpenOrder],
    outcomes: _Outcomes | None,
) -> list[_Want]:
    """Return the buys of sold seeded levels: seeded level j, once sold, buys again one level below.

    A static grid re-buys one level below each sell, so it keeps trading the range above its start;
    without this a seeded grid held only quote there and waited for the price to come back below
    its start. Level j's re-buy rests at ``anchor x (1 + (j - 1) x spacing)`` while the market is
    above it and exits one spacing up (``seed_distance``); from the grid's first lot on.
    """
    grid = params.grid
    if not (grid.enabled and grid.seed_levels) or ledger.next_cycle_id == 1 or anchor <= 0:
        return []
    if not (market.step > 0 and math.isfinite(market.step)):
        return []
    held = {lot.level for lot in ledger.lots if lot.held > 0}
    wants: list[_Want] = []
    for j in range(1, grid.seed_levels + 1):
        level = REBUY_LEVEL + j
        slot = buy_slot(level)
        partial = resting.get(slot)
        if partial is not None and partial.filled and partial.side is Side.BUY:
            wants.append(
                _Want(slot, Side.BUY, partial.price, partial.remaining, "partially filled", as_is=True)
            )
            continue
        if SEED_LEVEL + j in held or level in held:
            continue
        price = math.floor(anchor * (1 + (j - 1) * market.step))
        if price > market.buy_top:
            if outcomes is not None:
                outcomes.rebuys_above.append(price)
            continue
        reason = f"re-buy of seeded level {j}"
        wants.append(_Want(slot, Side.BUY, price, _level_qty(0, price, params), reason))
    if outcomes is not None:
        outcomes.rebuys.extend(wants)
    return wants


def _planned_levels(
    ladder: tuple[int, ...],
    exits: list[_Want],
    buys: list[_Want],
    ledger: Ledger,
    params: SymbolParams,
    outcomes: _Outcomes,
) -> tuple[PlannedLevel, ...]:
    """Return every order planned this pulse, exits first, then the buy levels by depth, and its outcome."""
    why = {want.slot: reason for want, reason in outcomes.blocked}
    resting = outcomes.placed_or_kept
    levels: list[PlannedLevel] = []
    for want in exits:  # a kept order rests at its own price, within the requote tolerance of the want's
        outcome = (
            "dust" if want.qty == 0 else "resting" if want.slot in resting else why.get(want.slot, "skipped")
        )
        price = resting.get(want.slot, want.price)
        levels.append(PlannedLevel(want.slot, Side.SELL, price, want.qty, outcome))
    planned = outcomes.levels + outcomes.unvisited
    if outcomes.gated:  # no level was walked: the gate holds back the levels the window would rest
        held = {lot.level for lot in ledger.lots if lot.held > 0}
        planned = [
            (position, "held" if position in held else "gated", price, buy_slot(position))
            for position, price in enumerate(ladder[: params.ladder_levels])
        ]
    wanted = {want.slot: want for want in buys}
    for seed in outcomes.seeds + outcomes.rebuys:
        outcome = "resting" if seed.slot in resting else why.get(seed.slot, "skipped")
        levels.append(
            PlannedLevel(seed.slot, Side.BUY, resting.get(seed.slot, seed.price), seed.qty, outcome)
        )
    for position, outcome, price, slot in sorted(planned):
        chosen = wanted.get(slot) if outcome == "wanted" else None
        if chosen is not None:
            outcome = "resting" if slot in resting else why.get(slot, "skipped")
            price = resting.get(slot, chosen.price)
            levels.append(PlannedLevel(slot, Side.BUY, price, chosen.qty, outcome))
        elif price > 0:
            levels.append(PlannedLevel(slot, Side.BUY, price, _level_qty(position, price, params), outcome))
    return tuple(levels)


def purge_keep_ppm(purge_ppm: int) -> int:
    """Return how far below the bid a resting buy stays: the purge distance plus a quarter of it.

    A buy is placed only within ``purge_ppm`` of the bid but cancelled only beyond this, so a level
    near the purge line is not cancelled and placed again on every small move of the bid.
    """
    return min(PPM - 1, purge_ppm + purge_ppm // 4)


_LEVEL_REASONS = tuple(f"ladder level {level}" for level in range(128))  # built once, not every pulse


def _level_qty(level: int, price: int, params: SymbolParams) -> int:
    """Return the lots level ``level`` buys at ``price``, at least the minimum notional."""
    size = params.grid.order_quote_qu
    if params.martingale.enabled:
        size = int(size * params.martingale.volume_scale**level)
    per_lot = price * QU_PER_TICK_LOT
    return max(size // per_lot, ceil_div(params.market.min_notional_qu, per_lot))


def _keep(want: _Want, order: OpenOrder | None, requote_ppm: int) -> bool:
    """Return whether a resting order already serves ``want`` closely enough to stay."""
    if order is None or order.side is not want.side:
        return False
    if want.as_is:
        return True
    tolerance = order.price * requote_ppm // PPM
    if abs(order.price - want.price) > tolerance or order.price < want.floor:
        return False
    if want.side is Side.SELL:
        return order.remaining == want.qty
    # a buy's size follows its price: allow what the price tolerance implies
    return order.filled == 0 and abs(order.qty - want.qty) <= 2 + order.qty * 2 * requote_ppm // PPM


def _cooling_keep(want: _Want, order: OpenOrder | None, outcomes: _Outcomes | None) -> bool:
    """Return whether a cooldown keeps ``order``, which ``want`` would re-price (noted for the hold).

    During a cooldown resting orders stay where they are; a sell never below its floor.
    """
    keep = (
        order is not None and order.side is want.side and (want.side is Side.BUY or order.price >= want.floor)
    )
    if keep and outcomes is not None:
        outcomes.cooling_kept = True  # the cooldown's end changes this decision
    return keep


def _reconcile(
    snap: Snapshot,
    params: SymbolParams,
    ledger: Ledger,
    resting: dict[str, OpenOrder],
    duplicates: list[OpenOrder],
    exits: list[_Want],
    buys: list[_Want],
    next_seq: int,
    reasons: list[str],
    outcomes: _Outcomes | None,
    requote: int,
) -> tuple[list[Intent], int]:
    """Return cancels then placements turning our open orders into the wanted ones, within the rails."""
    prefix, gates, rails = params.order_id_prefix, params.gates, params.rails
    cancels = [CancelOrder(o.client_order_id, "duplicate order for one slot") for o in duplicates]
    released = list(duplicates)
    wanted = {w.slot for w in exits if w.qty > 0}
    wanted.update(w.slot for w in buys if w.qty > 0)
    for slot, order in resting.items():
        if slot not in wanted:
            cancels.append(CancelOrder(order.client_order_id, f"{slot} is no longer wanted"))
            released.append(order)
    buy_cooling = (
        ledger.last_buy_fill_ts_ms >= 0 and snap.ts_ms < ledger.last_buy_fill_ts_ms + gates.cooldown_buy_ms
    )
    sell_cooling = (
        ledger.last_sell_fill_ts_ms >= 0 and snap.ts_ms < ledger.last_sell_fill_ts_ms + gates.cooldown_sell_ms
    )
    # what each slot rests at after this pulse, and the wants left unplaced with why (for the hold)
    kept: dict[str, int] = outcomes.placed_or_kept if outcomes is not None else {}
    blocked: list[tuple[_Want, str]] = outcomes.blocked if outcomes is not None else []

    placements: list[PlaceLimit] = []
    free_base = snap.free_base - rails.reserve_base_lots
    free_quote = snap.free_quote - rails.reserve_quote_qu
    for order in released:  # what the cancels release can fund this pulse's placements
        if order.side is Side.BUY:
            free_quote += notional_qu(order.price, order.remaining)
        else:
            free_base += order.remaining

    for want in exits:
        if want.qty == 0:
            continue  # skipped (purge distance or dust); any resting order was cancelled above
        current = resting.get(want.slot)
        if _keep(want, current, requote) or (sell_cooling and _cooling_keep(want, current, outcomes)):
            kept[want.slot] = current.price if current else want.price
            continue
        if current is not None:  # re-priced: what the cancel releases funds the new order
            cancels.append(CancelOrder(current.client_order_id, f"{want.slot} re-priced to {want.price}"))
            if current.side is Side.BUY:
                free_quote += notional_qu(current.price, current.remaining)
            else:
                free_base += current.remaining
        if sell_cooling:
            reasons.append(f"{want.slot} waits: sell cooldown")
            blocked.append((want, "cooldown"))
            continue
        if want.qty > free_base:
            reasons.append(f"{want.slot} exit of {want.qty} lots exceeds the free base above the reserve")
            blocked.append((want, "balance"))
            continue
        free_base -= want.qty
        placements.append(_place(prefix, want, next_seq + len(placements)))
        kept[want.slot] = want.price

    # open buys count as filled: inventory and deployed quote stay within the rails
    committed_base, max_base = ledger.held, rails.max_base_lots
    committed_quote, max_quote = ledger.held_cost, rails.max_quote_qu
    allowance = snap.quote_allowance
    fee = params.market.maker_fee_ppm
    for want in buys:
        current = resting.get(want.slot)
        if current is not None and (
            _keep(want, current, requote) or (buy_cooling and _cooling_keep(want, current, outcomes))
        ):
            remaining = current.qty - current.filled
            notional = current.price * remaining * QU_PER_TICK_LOT
            if committed_base + remaining <= max_base and committed_quote + notional <= max_quote:
                committed_base += remaining
                committed_quote += notional
                kept[want.slot] = current.price
                continue
            reasons.append(f"{want.slot} cancelled: it no longer fits the rails")
            cancels.append(CancelOrder(current.client_order_id, f"{want.slot} no longer fits the rails"))
            free_quote += notional
            blocked.append((want, "rails"))
            continue
        if current is not None:  # re-priced: what the cancel releases funds the new order
            cancels.append(CancelOrder(current.client_order_id, f"{want.slot} re-priced to {want.price}"))
            if current.side is Side.BUY:
                free_quote += notional_qu(current.price, current.remaining)
            else:
                free_base += current.remaining
        if buy_cooling:
            reasons.append(f"{want.slot} waits: buy cooldown")
            blocked.append((want, "cooldown"))
            continue
        notional = notional_qu(want.price, want.qty)
        if committed_base + want.qty > max_base or committed_quote + notional > max_quote:
            reasons.append(
                f"{want.slot} not placed: rails (base {committed_base}+{want.qty} of "
                f"{max_base} lots, quote {committed_quote}+{notional} of {max_quote} qu)"
            )
            blocked.append((want, "rails"))
            if outcomes is not None:
                outcomes.rails_room[want.slot] = (committed_base, committed_quote)
            continue
        cost = notional + notional * fee // PPM
        if cost > free_quote:
            reasons.append(f"{want.slot} not placed: free quote above the reserve is too low")
            blocked.append((want, "balance"))
            continue
        if allowance is not None and notional > allowance:
            reasons.append(f"{want.slot} not placed: the portfolio quote budget is spent")
            blocked.append((want, "balance"))
            continue
        if allowance is not None:
            allowance -= notional
        free_quote -= cost
        committed_base += want.qty
        committed_quote += notional
        placements.append(_place(prefix, want, next_seq + len(placements)))
        kept[want.slot] = want.price
    return [*cancels, *placements], next_seq + len(placements)


def _place(prefix: str, want: _Want, seq: int) -> PlaceLimit:
    return PlaceLimit(format_order_id(prefix, want.slot, seq), want.side, want.price, want.qty, want.reason)


def _hold(
    snap: Snapshot,
    params: SymbolParams,
    state: StrategyState,
    market: _Market,
    top_terms: tuple[_Term, ...],
    exits: list[_Want],
    outcomes: _Outcomes,
    requote: int,
) -> Hold | None:
    """Return the region of markets on which the next pulse, with ``state``, would change nothing."""
    ind, ledger, gates = state.indicators, state.ledger, params.gates
    if any(why == "balance" for _, why in outcomes.blocked):
        return None  # outcomes that hang on balances: decide again next pulse
    if any(not seed.as_is for seed in outcomes.seeds):
        return None  # seeding follows the top of book until it fills (a few pulses): decide again
    hb = HoldBuilder()
    depth = params.gates.depth_ppm
    rebuys = [w for w in outcomes.rebuys if not w.as_is]
    if (rebuys or outcomes.rebuys_above) and params.grid.spacing is Spacing.ATR:
        return None  # a re-buy's price follows the ATR step: decide again
    for want in rebuys:  # wanted while the book stays above it, skipped once it is below
        hb.buy_top_at_least(want.price, depth)
    for above in outcomes.rebuys_above:
        hb.buy_top_at_most(above - 1, depth, market.bid, market.ask)
    if outcomes.cooling_kept or any(why == "cooldown" for _, why in outcomes.blocked):
        # a cooldown shaped this decision: its end may change it (else the region covers its end)
        for last_fill, cooldown in (
            (ledger.last_buy_fill_ts_ms, gates.cooldown_buy_ms),
            (ledger.last_sell_fill_ts_ms, gates.cooldown_sell_ms),
        ):
            if last_fill >= 0 and last_fill + cooldown > snap.ts_ms:
                hb.until(last_fill + cooldown)
    if ind.ready:
        _hold_volatility(hb, ind.atr_ppm, gates.max_atr_ppm, gates.min_atr_ppm)
    if requote > gates.requote_ppm and params.grid.spacing is Spacing.ATR and params.ladder_levels > 1:
        hb.at_least(STEP, _step_floor(market.step))  # a narrower step would narrow the hysteresis
    _hold_ladder(hb, params, state, market, top_terms, outcomes, requote)
    if params.grid.enabled and market.ready and not _in_sequence(ledger, params):
        _hold_trailing(hb, params, state.anchor, market)
    keltner = params.keltner
    exits_read_arming = False  # whether an exit's price hangs on the sell-armed flag
    for want in exits:
        price = outcomes.placed_or_kept.get(want.slot)
        if price is not None:
            _hold_exit(hb, params, market, want, price, requote)
            if keltner.enabled and not _hold_exit_arming(
                hb, params, market, want, price, ind.sell_armed, requote
            ):
                exits_read_arming = True
        elif want.qty == 0:
            _hold_skipped_exit(hb, params, want)
    flat = not _in_sequence(ledger, params)
    waits_for_arming = params.mean_reversion.enabled and keltner.confirm_closes > 0 and flat
    vetoed_anyway = waits_for_arming and not ind.buy_armed  # closes above the band change nothing then
    return hb.build(
        (
            ind.ready,
            ind.above_run > 0 if keltner.enabled and flat and not vetoed_anyway else None,
            ind.buy_armed if waits_for_arming else None,
            ind.sell_armed if exits_read_arming else None,
        )
    )


def _hold_skipped_exit(hb: HoldBuilder, params: SymbolParams, want: _Want) -> None:
    """Keep a dust exit skipped: only while its price cannot rise enough to meet the minimum notional."""
    hb.void = True


def _hold_volatility(hb: HoldBuilder, atr_ppm: float, max_ppm: int, min_ppm: int) -> bool:
    """Bound the volatility gates where they are; return whether buys pass them."""
    if max_ppm:
        if atr_ppm > max_ppm:
            hb.at_least(ATR_PPM, max_ppm)
            return False
        hb.at_most(ATR_PPM, max_ppm)
    if min_ppm:
        if atr_ppm < min_ppm:
            hb.at_most(ATR_PPM, min_ppm)
            return False
        hb.at_least(ATR_PPM, min_ppm)
    return True


def _hold_ladder(
    hb: HoldBuilder,
    params: SymbolParams,
    state: StrategyState,
    market: _Market,
    top_terms: tuple[_Term, ...],
    outcomes: _Outcomes,
    requote: int,
) -> None:
    """Bound the buy levels' outcomes (``requote``: the pulse's hysteresis, in ppm)."""
    depth, purge = params.gates.depth_ppm, params.gates.purge_ppm
    atr_spacing = params.grid.spacing is Spacing.ATR
    moving = not state.ladder and (atr_spacing or any(t.kind != "step" for t in top_terms))
    if not outcomes.levels:
        return
    if not moving:
        spread = 0
    else:
        slack = math.inf
        rails_blocked = ""  # the lone quote's slot, when the rails keep it from resting
        for position, outcome, price, slot in outcomes.levels:
            if outcome == "nonpositive":
                hb.void = True
                return
            if outcome != "wanted":
                continue
            resting = outcomes.placed_or_kept.get(slot)
            if resting is None:
                if any(w.slot == slot and why == "rails" for w, why in outcomes.blocked):
                    if params.ladder_levels > 1 or slot not in outcomes.rails_room:
                        hb.void = True  # a moving level's size decides the rails: no room to move
                        return
                    rails_blocked = slot
                continue  # cooling down: nothing is placed either way until the cooldown ends
            tolerance = resting * requote // PPM
            slack = min(slack, float(tolerance - abs(price - resting) - (position + 1)))
        if slack == math.inf:
            slack = float(max(1, outcomes.levels[0][2] * requote // PPM))
        if slack < 0:
            hb.void = True
            return
        top = outcomes.levels[0][2] if outcomes.levels[0][0] == 0 else max(lv[2] for lv in outcomes.levels)
        top_room = int(slack // 2) if atr_spacing else int(slack)
        if rails_blocked and not _rails_block_below(
            params, outcomes.rails_room[rails_blocked], top + top_room + 1
        ):
            hb.void = True
            return
        if atr_spacing:
            scale = params.martingale.step_scale if params.martingale.enabled else 1.0
            deepest = max(position for position, _, _, _ in outcomes.levels)
            reach = sum(scale**j for j in range(max(params.ladder_levels, deepest + 1)))
            room = (slack - top_room) / (top * 1.01 * reach)
            hb.at_least(STEP, market.step - room)
            hb.at_most(STEP, market.step + room)
        current_top = min(top_terms, key=lambda t: t.value)
        top_now = math.floor(current_top.value)
        for term in top_terms:
            _term_at_least(hb, term, top_now - top_room, depth, market)
        _term_at_most(hb, current_top, top_now + top_room, depth, market)
        spread = int(slack) + params.ladder_levels + 1
    sliding = _slides(params) and not _tail_blocked(params, state, outcomes)
    # a moving ladder hung below the top of book can never rise above it: no bound needed then
    capped = moving and any(t.kind == "buy_top" for t in top_terms)
    for _, outcome, price, slot in outcomes.levels:
        if outcome == "wanted" and slot in outcomes.placed_or_kept:
            if not capped:
                hb.buy_top_at_least(price + spread, depth)
            if purge:  # it rests on the next pulse: the looser line applies
                keep = purge_keep_ppm(purge)
                hb.at_most(BID, ceil_div((price - spread + 1) * PPM, PPM - keep) - 1)
        elif outcome == "wanted" and sliding and not capped:
            hb.buy_top_at_least(price + spread, depth)  # above the book, the window would slide
        elif outcome == "above_top":
            hb.buy_top_at_most(price - spread - 1, depth, market.bid, market.ask)
        elif outcome == "purged":
            hb.at_least(BID, ceil_div((price + spread + 1) * PPM, PPM - purge))


def _tail_blocked(params: SymbolParams, state: StrategyState, outcomes: _Outcomes) -> bool:
    """Return whether a frozen sliding window ends in a level the rails refuse, as they refuse the next.

    Then a refused level that rises above the book only lets the window take a deeper level the
    rails refuse as well: the outcome cannot change, so the refused levels need no bound (a window
    at its rails would otherwise re-decide on every candle).
    """
    if not state.ladder or not outcomes.levels:
        return False
    position, outcome, _, slot = outcomes.levels[-1]
    room = outcomes.rails_room.get(slot)
    if outcome != "wanted" or room is None or slot in outcomes.placed_or_kept:
        return False
    held = {lot.level for lot in state.ledger.lots if lot.held > 0}
    base, quote = room
    rails = params.rails
    checked = 0
    for level in range(position + 1, len(state.ladder)):
        if checked >= params.grid.levels:
            return True
        if level in held:
            continue
        price = state.ladder[level]
        qty = _level_qty(level, price, params)
        if base + qty <= rails.max_base_lots and quote + notional_qu(price, qty) <= rails.max_quote_qu:
            return False
        checked += 1
    return True  # the lattice ends: no deeper level to take


def _rails_block_below(params: SymbolParams, committed: tuple[int, int], price_hi: int) -> bool:
    """Return whether the rails refuse the lone quote at every price up to ``price_hi``.

    A lower price buys more lots (the base rail binds harder) and a notional that falls short of
    the order size by less than one lot's price (so the quote rail binds too).
    """
    rails = params.rails
    base, quote = committed
    if base + _level_qty(0, price_hi, params) > rails.max_base_lots:
        return True
    return quote + params.grid.order_quote_qu - price_hi * QU_PER_TICK_LOT >= rails.max_quote_qu


def _hold_trailing(hb: HoldBuilder, params: SymbolParams, anchor: int, market: _Market) -> None:
    """Keep the grid anchor where it is: no trailing up or down on the next pulse."""
    grid = params.grid
    if not (grid.trailing_up or grid.trailing_down):
        return
    step = market.step
    if grid.spacing is Spacing.ATR:  # the step moves with the ATR: bound it, then assume its lowest value
        if not math.isfinite(hb.lo[STEP]):
            # a wider step never trails: only a narrower one, so bound it from below, halfway
            # between the step now and the one at which the book now would trail
            room = step
            if grid.trailing_up:
                room = min(room, step - (market.bid / anchor - 1) / _trail_up_steps(params))
            if grid.trailing_down:
                room = min(room, step - (1 - market.ask / anchor) / (grid.levels + 1))
            hb.at_least(STEP, step - max(0.0, room) / 2)
        step_lo = hb.lo[STEP]
    else:
        step_lo = step
    if grid.trailing_up:
        limit = anchor * (1 + step_lo * _trail_up_steps(params))
        hb.at_most(BID, math.floor(limit - abs(limit) * 1e-9))
    if grid.trailing_down:
        limit = anchor * (1 - step_lo * (grid.levels + 1))
        hb.at_least(ASK, math.ceil(limit + abs(limit) * 1e-9))


def _hold_exit(
    hb: HoldBuilder, params: SymbolParams, market: _Market, want: _Want, resting: int, requote: int
) -> None:
    """Keep an exit's wanted price within the requote tolerance of the order resting at ``resting``."""
    depth = params.gates.depth_ppm
    tolerance = resting * requote // PPM
    hi, lo = resting + tolerance, resting - tolerance
    terms = want.terms
    if terms:
        _term_at_most(hb, min(terms, key=lambda t: t.value), hi, depth, market)
    hb.sell_bottom_at_most(hi, depth)
    target = math.ceil(min(t.value for t in terms)) if terms else 0
    if want.floor >= lo:
        pass
    elif target >= lo:
        for term in terms:
            _term_at_least(hb, term, lo - 1 + 1e-6, depth, market)
    elif market.sell_bottom >= lo:
        hb.sell_bottom_at_least(lo, depth, market.bid, market.ask)
    else:
        hb.void = True
    if notional_qu(lo, want.qty) < params.market.min_notional_qu:
        hb.void = True


def _hold_exit_arming(
    hb: HoldBuilder,
    params: SymbolParams,
    market: _Market,
    want: _Want,
    resting: int,
    armed: bool,
    requote: int,
) -> bool:
    """Keep an exit where it is whichever way the sell-armed flag turns; False when it cannot.

    Armed, the exit is max(floor, sell bottom): disarming drops the sell-bottom term, which only
    raises the price, so the other terms must stay under the tolerance. Unarmed, arming pulls
    the price down to max(floor, sell bottom): the floor or the sell bottom must stay above it.
    """
    depth = params.gates.depth_ppm
    tolerance = resting * requote // PPM
    if armed:
        others = [t for t in want.terms if t.kind != "sell_bottom"]
        if others:
            _term_at_most(hb, min(others, key=lambda t: t.value), resting + tolerance, depth, market)
        return True
    low = resting - tolerance
    if want.floor >= low:
        return True
    if market.sell_bottom >= low:
        hb.sell_bottom_at_least(low, depth, market.bid, market.ask)
        return True
    return False


def _term_at_least(hb: HoldBuilder, term: _Term, x: float, depth: int, market: _Market) -> None:
    """Require the term's value to stay >= x."""
    if term.kind == "const":
        if term.value < x:
            hb.void = True
    elif term.kind == "var":
        if term.coef <= 0:
            hb.void = True
        else:
            hb.at_least(term.var, x / term.coef)
    elif term.kind == "step":
        if term.base <= 0:
            hb.void = True
        elif term.coef > 0:
            hb.at_least(STEP, (x / term.base - 1) / term.coef)
        else:
            hb.at_most(STEP, (1 - x / term.base) / -term.coef)
    elif term.kind == "buy_top":
        hb.buy_top_at_least(math.ceil(x), depth)
    else:
        hb.sell_bottom_at_least(math.ceil(x), depth, market.bid, market.ask)


def _term_at_most(hb: HoldBuilder, term: _Term, y: float, depth: int, market: _Market) -> None:
    """Require the term's value to stay <= y."""
    if term.kind == "const":
        if term.value > y:
            hb.void = True
    elif term.kind == "var":
        if term.coef <= 0:
            hb.void = True
        else:
            hb.at_most(term.var, y / term.coef)
    elif term.kind == "step":
        if term.base <= 0:
            hb.void = True
        elif term.coef > 0:
            hb.at_most(STEP, (y / term.base - 1) / term.coef)
        else:
            hb.at_least(STEP, (1 - y / term.base) / -term.coef)
    elif term.kind == "buy_top":
        hb.buy_top_at_most(math.floor(y), depth, market.bid, market.ask)
    else:
        hb.sell_bottom_at_most(math.floor(y), depth)
