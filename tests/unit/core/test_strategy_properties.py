"""Invariants of the decision function over random strategies, markets and histories."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from factories import PREFIX, symbol_params
from nutcracker.core.ledger import min_sell_price
from nutcracker.core.model import Book, CancelOrder, Candle, Fill, OpenOrder, PlaceLimit, Side, Snapshot
from nutcracker.core.orders import is_seed, parse_slot, slot_level
from nutcracker.core.params import (
    GateParams,
    GridParams,
    KeltnerParams,
    MarketMakingParams,
    MartingaleParams,
    MeanReversionParams,
    RailParams,
    Spacing,
    SymbolParams,
)
from nutcracker.core.strategy import Decision, StrategyState, decide, initial_state
from nutcracker.core.units import BU_PER_LOT, PPM, fee_bu, notional_qu

USDT = 10**11  # quote units per USDT for tick 0.01 and lot 0.00001


@st.composite
def strategy_params(draw: st.DrawFn) -> SymbolParams:
    base = symbol_params()
    fee = draw(st.integers(0, 2000))
    spacing_atr = draw(st.booleans())
    order_usdt = draw(st.integers(5, 500))
    # rails of a few orders' worth, so that they bind often
    max_quote_usdt = int(order_usdt * draw(st.floats(0, 6)))
    max_base_lots = int(max_quote_usdt * 100_000 / draw(st.sampled_from([1_000, 10_000, 100_000])))
    return replace(
        base,
        market=replace(base.market, maker_fee_ppm=fee, min_notional_qu=draw(st.integers(1, 20)) * USDT),
        rails=RailParams(
            max_base_lots=draw(st.sampled_from([max_base_lots, 10**9])),
            max_quote_qu=draw(st.sampled_from([max_quote_usdt * USDT, 10**20])),
            reserve_base_lots=draw(st.sampled_from([0, 0, 10])),
            reserve_quote_qu=draw(st.sampled_from([0, 0, 100])) * USDT,
        ),
        min_profit_ppm=draw(st.sampled_from([0, 1_000, 10_000, 50_000, 200_000])),
        keltner=KeltnerParams(
            draw(st.booleans()),
            draw(st.integers(1, 10)),
            draw(st.integers(1, 10)),
            draw(st.floats(0.5, 3.0)),
            draw(st.integers(0, 3)),
            draw(st.integers(0, 500)),
            draw(st.integers(1, 15)),
        ),
        mean_reversion=MeanReversionParams(draw(st.booleans())),
        grid=GridParams(
            draw(st.booleans()),
            draw(st.integers(1, 8)),
            Spacing.ATR if spacing_atr else Spacing.BPS,
            draw(st.integers(100, 50_000)),
            draw(st.floats(0.2, 4.0)),
            order_usdt * USDT,
            draw(st.booleans()),
            draw(st.booleans()),
            draw(st.sampled_from([0, 0, 1, 3])),  # seed_levels
        ),
        martingale=MartingaleParams(
            draw(st.booleans()), draw(st.floats(0.5, 3.0)), draw(st.floats(0.5, 3.0)), draw(st.integers(0, 5))
        ),
        market_making=MarketMakingParams(
            draw(st.booleans()),
            draw(st.integers(0, 20_000)),
            draw(st.integers(0, 50_000)),
            draw(st.integers(0, 20_000)),
        ),
        gates=GateParams(
            draw(st.integers(0, 20_000)),
            draw(st.sampled_from([0, 2_000, 20_000])),
            draw(st.sampled_from([0, 100, 1_000])),
            draw(st.sampled_from([0, 60_000, 600_000])),
            draw(st.sampled_from([0, 60_000])),
            draw(st.integers(0, 20_000)),
            draw(st.sampled_from([0, 30_000, 300_000])),
            draw(st.sampled_from([0, 250_000, 500_000, 1_000_000])),  # requote_spacing
        ),
    )


@st.composite
def candle_series(draw: st.DrawFn) -> tuple[Candle, ...]:
    price = draw(st.integers(100_000, 10_000_000))
    moves = draw(st.lists(st.integers(-60, 60), min_size=25, max_size=60))
    candles = []
    for i, move in enumerate(moves):
        step = max(1, price * abs(move) // 10_000)
        close = max(10, price + (step if move >= 0 else -step))
        high = max(price, close) + draw(st.integers(0, step))
        low = max(1, min(price, close) - draw(st.integers(0, step)))
        candles.append(Candle(i * 60_000, price, high, low, close))
        price = close
    return tuple(candles)


@dataclass
class World:
    """Our open orders and free balances as the exchange would report them."""

    orders: dict[str, OpenOrder]
    free_base: int
    free_quote: int


def _snapshot(
    candles: tuple[Candle, ...], book: Book, world: World, fills: tuple[Fill, ...], ts: int
) -> Snapshot:
    return Snapshot(
        "BTC/USDT", ts, candles, book, world.free_base, world.free_quote, tuple(world.orders.values()), fills
    )


def _apply(world: World, decision: Decision) -> None:
    for intent in decision.intents:
        if isinstance(intent, CancelOrder):
            world.orders.pop(intent.client_order_id)
        else:
            world.orders[intent.client_order_id] = OpenOrder(
                intent.client_order_id, intent.side, intent.price, intent.qty
            )


def _check_invariants(snap: Snapshot, params: SymbolParams, d: Decision, world_after: World) -> None:
    ledger = d.state.ledger
    buys = [o for o in world_after.orders.values() if o.side is Side.BUY]
    # a. rails count every open buy as if filled
    assert ledger.held + sum(o.remaining for o in buys) <= max(params.rails.max_base_lots, ledger.held)
    assert ledger.held_cost + sum(notional_qu(o.price, o.remaining) for o in buys) <= max(
        params.rails.max_quote_qu, ledger.held_cost
    )
    for intent in d.intents:
        if not isinstance(intent, PlaceLimit):
            continue
        # c. exact units and the minimum notional
        assert intent.price > 0
        assert intent.qty > 0
        assert notional_qu(intent.price, intent.qty) >= params.market.min_notional_qu
        # d. post-only safety
        if intent.side is Side.BUY:
            assert intent.price < snap.book.best_ask
        else:
            assert intent.price > snap.book.best_bid
            # b. never below the net-of-fees minimum-profit price of the lots it closes
            slot = parse_slot(PREFIX, intent.client_order_id)
            assert slot is not None
            level = slot_level(slot)
            lots = [lot for lot in ledger.lots if lot.held and _sold_by(level, lot.level)]
            assert intent.price >= min_sell_price(lots, params.market.maker_fee_ppm, params.min_profit_ppm)
            assert intent.qty == sum(lot.held for lot in lots)


def _sold_by(exit_level: int, lot_level: int) -> bool:
    """Return whether an exit of ``exit_level`` sells a lot of ``lot_level`` (pooled: all but seeded lots)."""
    return lot_level == exit_level or (exit_level == -1 and not is_seed(lot_level))


def _fill_some(world: World, choices: list[int], ts: int, fee_ppm: int) -> tuple[Fill, ...]:
    """Fill the chosen orders fully (even choice) or half (odd choice), as the exchange would."""
    fills = []
    ids = sorted(world.orders)
    for n, choice in enumerate(choices):
        if not ids:
            break
        order = world.orders[ids[choice % len(ids)]]
        qty = order.remaining if choice % 2 == 0 else max(1, order.remaining // 2)
        if order.side is Side.SELL and qty > 0:
            world.free_quote += notional_qu(order.price, qty) - order.price * qty * fee_ppm
        else:
            world.free_base += qty
        fills.append(
            Fill(
                f"t{ts}-{n}",
                order.client_order_id,
                order.side,
                order.price,
                qty,
                order.price * qty * fee_ppm,
                ts,
            )
        )
        if qty == order.remaining:
            del world.orders[order.client_order_id]
            ids.remove(order.client_order_id)
        else:
            world.orders[order.client_order_id] = replace(order, filled=order.filled + qty)
    return tuple(fills)


@settings(max_examples=1000, deadline=None)
@given(
    params=strategy_params(),
    candles=candle_series(),
    steps=st.lists(
        st.tuples(st.integers(-2000, 500), st.integers(1, 50), st.lists(st.integers(0, 50), max_size=4)),
        min_size=1,
        max_size=3,
    ),
    free_quote=st.sampled_from([0, 1_000, 10**6, 10**6]),
)
def test_no_decision_breaks_a_rail_crosses_the_book_or_sells_below_min_profit(
    params: SymbolParams,
    candles: tuple[Candle, ...],
    steps: list[tuple[int, int, list[int]]],
    free_quote: int,
) -> None:
    world = World({}, free_base=0, free_quote=free_quote * USDT)
    state: StrategyState = initial_state()
    fills: tuple[Fill, ...] = ()
    last = candles[-1]
    for n, (offset, spread, choices) in enumerate(steps):
        ts = last.ts_ms + 60_000 * (n + 1)
        bid = max(1, last.close + offset * max(1, last.close // 10_000))
        book = Book(bid, bid + spread)
        snap = _snapshot(candles, book, world, fills, ts)
        d = decide(snap, params, state)
        assert decide(snap, params, state) == d  # e. same inputs, same outputs
        _apply(world, d)
        _check_invariants(snap, params, d, world)
        state = d.state
        fills = _fill_some(world, choices, ts + 1, params.market.maker_fee_ppm)


@settings(max_examples=300, deadline=None)
@given(
    params=strategy_params(),
    candles=candle_series(),
    steps=st.lists(
        st.tuples(st.integers(-2000, 500), st.integers(1, 50), st.lists(st.integers(0, 50), max_size=4)),
        min_size=1,
        max_size=3,
    ),
    free_quote=st.sampled_from([0, 1_000, 10**6]),
)
def test_the_planned_levels_resting_are_exactly_the_orders_left_resting(
    params: SymbolParams,
    candles: tuple[Candle, ...],
    steps: list[tuple[int, int, list[int]]],
    free_quote: int,
) -> None:
    world = World({}, free_base=0, free_quote=free_quote * USDT)
    state: StrategyState = initial_state()
    fills: tuple[Fill, ...] = ()
    last = candles[-1]
    for n, (offset, spread, choices) in enumerate(steps):
        ts = last.ts_ms + 60_000 * (n + 1)
        bid = max(1, last.close + offset * max(1, last.close // 10_000))
        snap = _snapshot(candles, Book(bid, bid + spread), world, fills, ts)
        d = decide(snap, params, state, with_hold=True, with_levels=True)
        plain = decide(snap, params, state, with_hold=True)
        assert (d.intents, d.state, d.reasons, d.hold) == (
            plain.intents,
            plain.state,
            plain.reasons,
            plain.hold,
        )
        _apply(world, d)
        resting = {(lv.slot, lv.side, lv.price) for lv in d.levels if lv.outcome == "resting"}
        left = {(parse_slot(PREFIX, o.client_order_id), o.side, o.price) for o in world.orders.values()}
        assert resting == left
        assert len({lv.slot for lv in d.levels}) == len(d.levels)  # one level a slot
        assert all(lv.price > 0 for lv in d.levels)
        state = d.state
        fills = _fill_some(world, choices, ts + 1, params.market.maker_fee_ppm)


@settings(max_examples=1000, deadline=None)
@given(params=strategy_params(), candles=candle_series())
def test_the_same_inputs_give_byte_identical_decisions(
    params: SymbolParams, candles: tuple[Candle, ...]
) -> None:
    snap = Snapshot(
        "BTC/USDT",
        candles[-1].ts_ms + 60_000,
        candles,
        Book(candles[-1].close, candles[-1].close + 1),
        0,
        10**16,
        (),
    )
    first, second = decide(snap, params, initial_state()), decide(snap, params, initial_state())
    assert repr(first) == repr(second)


# -- commissions in whatever asset they are paid (issue 11, item 1) ---------------------------

FEE_MODES = ("base", "quote", "bnb")  # Binance's default, another exchange's, an account paying in BNB


@dataclass
class Account:
    """The base the exchange holds for us, in base units (bu), free and locked in our sells."""

    orders: dict[str, OpenOrder]
    free_bu: int
    locked_bu: int


def _apply_to_account(account: Account, decision: Decision) -> None:
    for intent in decision.intents:
        if isinstance(intent, CancelOrder):
            order = account.orders.pop(intent.client_order_id)
            if order.side is Side.SELL:
                account.free_bu += order.remaining * BU_PER_LOT
                account.locked_bu -= order.remaining * BU_PER_LOT
    for intent in decision.intents:
        if isinstance(intent, PlaceLimit):
            if intent.side is Side.SELL:
                # a. the exit never asks for more base than the account holds (the exchange refuses it)
                assert intent.qty * BU_PER_LOT <= account.free_bu, (intent, account.free_bu)
                account.free_bu -= intent.qty * BU_PER_LOT
                account.locked_bu += intent.qty * BU_PER_LOT
            account.orders[intent.client_order_id] = OpenOrder(
                intent.client_order_id, intent.side, intent.price, intent.qty
            )


def _fill_account(account: Account, choices: list[int], ts: int, fee_ppm: int, mode: str) -> tuple[Fill, ...]:
    """Fill chosen orders as the exchange would, charging the commission as ``mode`` says."""
    fills = []
    ids = sorted(account.orders)
    for n, choice in enumerate(choices):
        if not ids:
            break
        order = account.orders[ids[choice % len(ids)]]
        qty = order.remaining if choice % 2 == 0 else max(1, order.remaining // 2)
        fee_qu = order.price * qty * fee_ppm
        if order.side is Side.BUY and mode == "base":
            fee, fee_base, asset = 0, fee_bu(qty, fee_ppm), "BTC"
        else:
            fee, fee_base, asset = fee_qu, 0, "BNB" if mode == "bnb" else "USDT"
        if order.side is Side.BUY:
            account.free_bu += qty * BU_PER_LOT - fee_base
        else:
            account.locked_bu -= qty * BU_PER_LOT
        fills.append(
            Fill(f"t{ts}-{n}", order.client_order_id, order.side, order.price, qty, fee, ts, fee_base, asset)
        )
        if qty == order.remaining:
            del account.orders[order.client_order_id]
            ids.remove(order.client_order_id)
        else:
            account.orders[order.client_order_id] = replace(order, filled=order.filled + qty)
    return tuple(fills)


def _check_net_min_profit(d: Decision, params: SymbolParams) -> None:
    """b. an exit filled at its price nets the minimum profit over the cost, after every fee."""
    ledger, fee_ppm = d.state.ledger, params.market.maker_fee_ppm
    for intent in d.intents:
        if not isinstance(intent, PlaceLimit) or intent.side is Side.BUY:
            continue
        slot = parse_slot(PREFIX, intent.client_order_id)
        assert slot is not None
        level = slot_level(slot)
        lots = [lot for lot in ledger.lots if lot.held and _sold_by(level, lot.level)]
        if intent.qty != sum(lot.held for lot in lots):
            continue
        # the cost of what the exit sells: the dust below a lot takes its share along to a later lot
        cost = sum(
            -(-(lot.cost + lot.joined_cost) * (lot.received // BU_PER_LOT * BU_PER_LOT) // lot.received)
            for lot in lots
        )
        proceeds = sum(lot.proceeds for lot in lots) + notional_qu(intent.price, intent.qty)
        fees = sum(lot.buy_fees + lot.sell_fees for lot in lots) + intent.price * intent.qty * fee_ppm
        assert (proceeds - cost - fees) * PPM >= cost * params.min_profit_ppm


@settings(max_examples=400, deadline=None)
@given(
    params=strategy_params(),
    candles=candle_series(),
    mode=st.sampled_from(FEE_MODES),
    steps=st.lists(
        st.tuples(st.integers(-2000, 500), st.integers(1, 50), st.lists(st.integers(0, 50), max_size=4)),
        min_size=2,
        max_size=6,
    ),
)
def test_exits_never_ask_for_more_base_than_held_and_net_min_profit_in_every_fee_mode(
    params: SymbolParams,
    candles: tuple[Candle, ...],
    mode: str,
    steps: list[tuple[int, int, list[int]]],
) -> None:
    account = Account({}, free_bu=0, locked_bu=0)
    state: StrategyState = initial_state()
    fills: tuple[Fill, ...] = ()
    last = candles[-1]
    for n, (offset, spread, choices) in enumerate(steps):
        ts = last.ts_ms + 60_000 * (n + 1)
        bid = max(1, last.close + offset * max(1, last.close // 10_000))
        snap = Snapshot(
            "BTC/USDT",
            ts,
            candles,
            Book(bid, bid + spread),
            account.free_bu // BU_PER_LOT,
            10**30,
            tuple(account.orders.values()),
            fills,
        )
        d = decide(snap, params, state)
        _apply_to_account(account, d)
        _check_net_min_profit(d, params)
        state = d.state
        ledger = state.ledger
        # the lots hold no more whole lots than the account: every exit can be filled
        assert ledger.held * BU_PER_LOT <= account.free_bu + account.locked_bu
        assert sum(lot.left_bu for lot in ledger.lots) + ledger.dust <= account.free_bu + account.locked_bu
        fills = _fill_account(account, choices, ts + 1, params.market.maker_fee_ppm, mode)
