"""The decision function by example: what it places, keeps, cancels, and why it idles."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from factories import BTC, PREFIX, fill, flat_candles, snapshot, symbol_params
from nutcracker.core.hold import ASK, BID
from nutcracker.core.ledger import min_sell_price
from nutcracker.core.model import CancelOrder, OpenOrder, PlaceLimit, Side
from nutcracker.core.params import (
    GateParams,
    KeltnerParams,
    MarketMakingParams,
    MartingaleParams,
    MeanReversionParams,
    RailParams,
    SymbolParams,
)
from nutcracker.core.strategy import Decision, decide, initial_state
from nutcracker.core.units import notional_qu

PRICE = 10_000_000  # 100,000.00 USDT in ticks
CANDLES = flat_candles(40, PRICE)


def _places(decision_intents: tuple[object, ...]) -> list[PlaceLimit]:
    return [i for i in decision_intents if isinstance(i, PlaceLimit)]


def test_a_ready_grid_places_its_ladder_below_the_anchor() -> None:
    d = decide(snapshot(CANDLES), symbol_params(), initial_state())
    buys = _places(d.intents)
    assert [b.client_order_id for b in buys] == [f"{PREFIX}-B{k}-{k + 1}" for k in range(5)]
    assert d.state.anchor == CANDLES[-1].close
    assert buys[0].price == int(CANDLES[-1].close * (1 - 0.005))
    assert all(b.side is Side.BUY for b in buys)
    assert [b.price for b in buys] == sorted((b.price for b in buys), reverse=True)
    assert d.state.next_seq == 6


def test_warming_up_places_no_buys_and_says_why() -> None:
    d = decide(snapshot(CANDLES[:10]), symbol_params(), initial_state())
    assert d.intents == ()
    assert any("warming up" in r for r in d.reasons)


def test_the_same_ladder_resting_is_kept_without_churn() -> None:
    first = decide(snapshot(CANDLES), symbol_params(), initial_state())
    resting = tuple(OpenOrder(p.client_order_id, p.side, p.price, p.qty) for p in _places(first.intents))
    again = decide(snapshot(CANDLES, open_orders=resting), symbol_params(), first.state)
    assert again.intents == ()


def test_a_buy_fill_books_a_lot_and_places_its_exit_above_the_min_profit_price() -> None:
    params = symbol_params()
    first = decide(snapshot(CANDLES), params, initial_state())
    b0 = _places(first.intents)[0]
    others = tuple(OpenOrder(p.client_order_id, p.side, p.price, p.qty) for p in _places(first.intents)[1:])
    filled = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    snap = snapshot(CANDLES, bid=b0.price - 100, open_orders=others, free_base=b0.qty, fills=(filled,))
    d = decide(snap, params, first.state)
    (lot,) = d.state.ledger.lots
    assert (lot.level, lot.held) == (0, b0.qty)
    (sell,) = [p for p in _places(d.intents) if p.side is Side.SELL]
    assert sell.client_order_id.startswith(f"{PREFIX}-S0-")
    assert sell.qty == b0.qty
    assert sell.price >= min_sell_price(d.state.ledger.lots, 1000, params.min_profit_ppm)
    assert sell.price == -(-b0.price * 1005 // 1000)  # one grid spacing (50 bps) up
    assert d.bookings[0].cycle_id == 1
    assert d.state.ladder[0] == b0.price  # the ladder froze where it was placed


def test_the_exit_fill_closes_the_cycle_with_a_net_profit() -> None:
    params = symbol_params()
    first = decide(snapshot(CANDLES), params, initial_state())
    b0 = _places(first.intents)[0]
    ts = CANDLES[-1].ts_ms + 60_000
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=ts)
    second = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state)
    (sell,) = [p for p in _places(second.intents) if p.side is Side.SELL]
    sold = fill(sell.client_order_id, Side.SELL, sell.price, sell.qty, ts_ms=ts + 60_000)
    third = decide(snapshot(CANDLES, fills=(sold,)), params, second.state)
    (cycle,) = third.closed_cycles
    assert cycle.pnl > 0
    assert cycle.pnl * 1_000_000 >= params.min_profit_ppm * cycle.cost
    assert third.state.ledger.lots == ()
    assert third.state.ladder == ()


def test_rails_count_open_buys_as_if_filled() -> None:
    params = symbol_params(
        rails=RailParams(max_base_lots=250, max_quote_qu=10**20, reserve_base_lots=0, reserve_quote_qu=0)
    )
    d = decide(snapshot(CANDLES), params, initial_state())
    assert sum(p.qty for p in _places(d.intents)) <= 250
    assert len(_places(d.intents)) == 2
    assert any("rails" in r for r in d.reasons)


def test_the_volatility_backstop_cancels_resting_buys() -> None:
    params = symbol_params(gates=GateParams(0, 1, 0, 0, 0, 1000, 0))  # max ATR% of 1 ppm: always too wild
    resting = (OpenOrder(f"{PREFIX}-B0-1", Side.BUY, PRICE - 50_000, 100),)
    d = decide(snapshot(CANDLES, open_orders=resting), params, initial_state())
    assert d.intents == (CancelOrder(f"{PREFIX}-B0-1", "B0 is no longer wanted"),)
    assert any("volatility" in r for r in d.reasons)


def test_a_buy_cooldown_keeps_resting_orders_but_places_nothing_new() -> None:
    params = symbol_params(gates=GateParams(0, 0, 0, 3_600_000, 0, 1000, 0))
    first = decide(snapshot(CANDLES), params, initial_state())
    b0 = _places(first.intents)[0]
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    d = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state)
    assert [p.side for p in _places(d.intents)] == [Side.SELL]
    assert any("cooldown" in r for r in d.reasons)


def test_orders_not_ours_are_never_touched() -> None:
    foreign = (OpenOrder("someone-else-1", Side.BUY, PRICE - 10, 5),)
    d = decide(snapshot(CANDLES, open_orders=foreign), symbol_params(), initial_state())
    assert not [i for i in d.intents if isinstance(i, CancelOrder)]


def test_a_duplicate_order_for_one_slot_is_cancelled() -> None:
    first = decide(snapshot(CANDLES), symbol_params(), initial_state())
    resting = [OpenOrder(p.client_order_id, p.side, p.price, p.qty) for p in _places(first.intents)]
    resting.append(replace(resting[0], client_order_id=f"{PREFIX}-B0-99"))
    d = decide(snapshot(CANDLES, open_orders=tuple(resting)), symbol_params(), first.state)
    assert d.intents == (CancelOrder(f"{PREFIX}-B0-99", "duplicate order for one slot"),)


def test_martingale_steps_grow_in_size_and_distance() -> None:
    params = symbol_params(martingale=MartingaleParams(True, 2.0, 2.0, 3))
    buys = _places(decide(snapshot(CANDLES), params, initial_state()).intents)
    assert len(buys) == 4
    sizes = [b.qty for b in buys]
    assert sizes[1] >= 2 * sizes[0] - 2
    assert sizes[2] >= 2 * sizes[1] - 2
    gaps = [buys[k].price - buys[k + 1].price for k in range(3)]
    assert gaps[1] > 1.9 * gaps[0]
    assert gaps[2] > 1.9 * gaps[1]


def test_martingale_exits_the_whole_sequence_in_one_pooled_sell() -> None:
    params = symbol_params(martingale=MartingaleParams(True, 2.0, 2.0, 3))
    first = decide(snapshot(CANDLES), params, initial_state())
    b0, b1 = _places(first.intents)[:2]
    ts = CANDLES[-1].ts_ms + 60_000
    fills = (
        fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts),
        fill(b1.client_order_id, Side.BUY, b1.price, b1.qty, ts),
    )
    d = decide(snapshot(CANDLES, free_base=b0.qty + b1.qty, fills=fills), params, first.state)
    (sell,) = [p for p in _places(d.intents) if p.side is Side.SELL]
    assert sell.client_order_id.startswith(f"{PREFIX}-SP-")
    assert sell.qty == b0.qty + b1.qty
    assert sell.price >= min_sell_price(d.state.ledger.lots, 1000, params.min_profit_ppm)
    assert d.bookings[0].cycle_id == d.bookings[1].cycle_id


def test_mean_reversion_with_confirmation_waits_for_an_excursion() -> None:
    params = symbol_params(
        mean_reversion=MeanReversionParams(True), keltner=replace(symbol_params().keltner, confirm_closes=2)
    )
    d = decide(snapshot(CANDLES), params, initial_state())
    assert _places(d.intents) == []
    assert any("excursion" in r for r in d.reasons)


def test_the_portfolio_allowance_caps_new_buys() -> None:
    one_order = 100 * 1_000_000 * PRICE  # about one ladder level in quote units
    d = decide(snapshot(CANDLES, quote_allowance=one_order), symbol_params(), initial_state())
    assert len(_places(d.intents)) == 1
    assert any("portfolio" in r for r in d.reasons)


def _market_maker(**rails: int) -> SymbolParams:
    base = symbol_params()
    return symbol_params(
        grid=replace(base.grid, enabled=False),
        market_making=MarketMakingParams(True, 2500, 0, 2000),
        rails=replace(base.rails, **rails),
    )


def test_a_market_maker_holding_inventory_quotes_a_buy_below_and_a_sell_above_the_mean() -> None:
    params = _market_maker()
    first = decide(snapshot(CANDLES), params, initial_state())
    (b0,) = _places(first.intents)
    assert b0.client_order_id.startswith(f"{PREFIX}-B0-")
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    d = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state)
    (buy,) = [p for p in _places(d.intents) if p.side is Side.BUY]
    (sell,) = [p for p in _places(d.intents) if p.side is Side.SELL]
    ema = d.state.indicators.ema
    assert buy.client_order_id.startswith(f"{PREFIX}-B1-")  # level 0 is held: the quote takes level 1
    assert buy.price < ema < sell.price
    assert sell.price >= min_sell_price(d.state.ledger.lots, 1000, params.min_profit_ppm)
    assert d.state.ladder == ()  # a lone quote follows the mean: nothing frozen
    # one lot held, so the skew lowers the new buy below the flat quote
    assert buy.price < b0.price


def test_a_market_maker_at_its_quote_rail_rests_no_buy_and_says_so() -> None:
    params = _market_maker(max_quote_qu=BTC.quote_to_qu(Decimal(150)))
    first = decide(snapshot(CANDLES), params, initial_state())
    (b0,) = _places(first.intents)
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    d = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state, with_hold=True)
    assert [p.side for p in _places(d.intents)] == [Side.SELL]
    assert any(r.startswith("B1 not placed: rails") for r in d.reasons)
    assert d.hold is not None  # the rails keep refusing the quote near this price: no re-decision each candle


def test_a_quote_within_its_share_of_the_spread_is_kept_and_beyond_it_re_priced() -> None:
    # spread 2 x 25 bps; requote_spacing 0.5 keeps a quote within 25 bps, far above requote_bps (10)
    base = _market_maker()
    params = replace(base, gates=replace(base.gates, requote_spacing_ppm=500_000))
    first = decide(snapshot(CANDLES), params, initial_state())
    (b0,) = _places(first.intents)
    for moved_bps, kept in ((20, True), (30, False)):
        resting = (
            OpenOrder(b0.client_order_id, Side.BUY, b0.price * (10_000 + moved_bps) // 10_000, b0.qty),
        )
        again = decide(snapshot(CANDLES, open_orders=resting), params, first.state)
        assert (again.intents == ()) is kept
    without = replace(base, gates=replace(base.gates, requote_spacing_ppm=0))
    resting = (OpenOrder(b0.client_order_id, Side.BUY, b0.price * 10_020 // 10_000, b0.qty),)
    assert decide(snapshot(CANDLES, open_orders=resting), without, first.state).intents != ()


def _rest(places: list[PlaceLimit]) -> tuple[OpenOrder, ...]:
    return tuple(OpenOrder(p.client_order_id, p.side, p.price, p.qty) for p in places)


def _fill_all_buys(params: SymbolParams) -> tuple[object, list[PlaceLimit]]:
    """Return the decision after every buy of the first ladder filled, and those buys."""
    first = decide(snapshot(CANDLES), params, initial_state())
    buys = _places(first.intents)
    ts = CANDLES[-1].ts_ms + 60_000
    fills = tuple(fill(b.client_order_id, Side.BUY, b.price, b.qty, ts_ms=ts) for b in buys)
    held = sum(b.qty for b in buys)
    snap = snapshot(CANDLES, bid=buys[-1].price - 100, free_base=held, fills=fills)
    return decide(snap, params, first.state), buys


def test_a_grid_holding_its_whole_ladder_slides_its_buys_down_the_lattice_within_the_rails() -> None:
    params = symbol_params()  # 5 levels of 100 USDT 50 bps apart, max_quote 5000: room for 50 lots
    d, first_buys = _fill_all_buys(params)
    buys = [p for p in _places(d.intents) if p.side is Side.BUY]
    sells = [p for p in _places(d.intents) if p.side is Side.SELL]
    assert [b.client_order_id.split("-")[1] for b in buys] == ["B5", "B6", "B7", "B8", "B9"]
    assert buys[0].price == int(first_buys[-1].price * (1 - 0.005))  # the next lattice level down
    assert len(sells) == 5  # every held lot keeps its own exit
    assert all(s.price >= min_sell_price(d.state.ledger.lots, 1000, params.min_profit_ppm) for s in sells[:1])
    assert not any("loaded" in r for r in d.reasons)


def test_a_sliding_grid_stops_at_its_rails_and_says_so() -> None:
    params = symbol_params(rails=replace(symbol_params().rails, max_quote_qu=BTC.quote_to_qu(Decimal(701))))
    d, _ = _fill_all_buys(params)
    buys = [p for p in _places(d.intents) if p.side is Side.BUY]
    assert [b.client_order_id.split("-")[1] for b in buys] == ["B5", "B6"]  # 7 lots of 100 USDT fit
    assert any(r.startswith("B7 not placed: rails") for r in d.reasons)


def test_a_resting_buy_is_purged_only_a_quarter_beyond_the_purge_distance() -> None:
    # purge 1 %: a new level beyond it is skipped; a resting one stays until 1.25 %
    params = symbol_params(gates=GateParams(0, 0, 0, 0, 0, 1000, 10_000))
    d = decide(snapshot(CANDLES), params, initial_state())
    placed = {p.client_order_id.split("-")[1]: p for p in _places(d.intents)}
    assert set(placed) == {"B0", "B1"}  # B2 at -1.5 % of the anchor is beyond 1 %
    b1 = placed["B1"]
    for bid_bps, kept in ((100 + 5, True), (100 + 20, True), (100 + 30, False)):
        # the bid rises until B1 is (bid_bps - ~100) bps farther from it than the purge line
        bid = b1.price * 10_000 // (10_000 - bid_bps) + 1
        again = decide(snapshot(CANDLES, bid=bid, open_orders=_rest(list(placed.values()))), params, d.state)
        cancelled = {c.client_order_id for c in again.intents if isinstance(c, CancelOrder)}
        assert (b1.client_order_id not in cancelled) is kept, bid_bps


def test_a_market_maker_at_its_target_buys_again_only_two_spreads_below_its_cheapest_lot() -> None:
    base = _market_maker()
    params = replace(base, market_making=replace(base.market_making, inventory_target_lots=1))
    first = decide(snapshot(CANDLES), params, initial_state())
    (b0,) = _places(first.intents)
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    d = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state)
    (buy,) = [p for p in _places(d.intents) if p.side is Side.BUY]
    assert buy.price <= b0.price * (1 - 4 * 2500 / 1_000_000)
    assert [p.side for p in _places(d.intents)].count(Side.SELL) == 1  # both sides rest
    seeding = replace(base, market_making=replace(base.market_making, inventory_target_lots=5_000))
    below_target = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), seeding, first.state)
    (near,) = [p for p in _places(below_target.intents) if p.side is Side.BUY]
    assert near.price > b0.price * (1 - 4 * 2500 / 1_000_000)  # below its target it quotes near the mean


def test_a_ladder_hung_from_the_mean_rests_one_level_at_a_time_each_hung_from_the_first_fill() -> None:
    base = symbol_params()
    params = replace(
        base, keltner=replace(base.keltner, enabled=True), martingale=replace(base.martingale, enabled=True)
    )
    first = decide(snapshot(CANDLES), params, initial_state())
    (b0,) = _places(first.intents)
    assert b0.client_order_id.split("-")[1] == "B0"
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    d = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state)
    (b1,) = [p for p in _places(d.intents) if p.side is Side.BUY]  # not B1-B4 at once: each was
    assert b1.client_order_id.split("-")[1] == "B1"  # cancelled unfilled when the sequence ended
    assert b1.price == int(b0.price * (1 - 0.005))  # hung from the first level's fill
    again = fill(b1.client_order_id, Side.BUY, b1.price, b1.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    assert params.gates.cooldown_buy_ms == 0  # else the next level waits for the buy cooldown
    d2 = decide(snapshot(CANDLES, free_base=b0.qty + b1.qty, fills=(again,)), params, d.state)
    (b2,) = [p for p in _places(d2.intents) if p.side is Side.BUY]
    assert b2.client_order_id.split("-")[1] == "B2"
    scale = params.martingale.step_scale
    assert b2.price == pytest.approx(
        b1.price * (1 - 0.005 * scale), abs=1
    )  # the ladder's next step, not the market's


def _seeded(params: SymbolParams, seeds: int) -> SymbolParams:
    return replace(params, grid=replace(params.grid, seed_levels=seeds))


def test_a_seeded_grid_buys_its_sell_levels_at_the_top_of_book_first_then_its_ladder() -> None:
    params = _seeded(symbol_params(), 2)
    snap = snapshot(CANDLES)
    d = decide(snap, params, initial_state(), with_hold=True)
    buys = _places(d.intents)
    assert [b.client_order_id.split("-")[-2] for b in buys][:3] == ["B129", "B130", "B0"]
    assert buys[0].price == buys[1].price == snap.book.best_bid  # maker, at the top of book
    assert notional_qu(buys[0].price, buys[0].qty) <= params.grid.order_quote_qu  # one order size each
    assert d.hold is None  # a seed follows the book: decided again on the next pulse


def test_seeded_lots_exit_one_and_two_spacings_up_and_no_seed_is_bought_again() -> None:
    params = _seeded(symbol_params(martingale=MartingaleParams(True, 2.0, 2.0, 3)), 2)
    first = decide(snapshot(CANDLES), params, initial_state())
    s1, s2 = _places(first.intents)[:2]
    ts = CANDLES[-1].ts_ms + 60_000
    fills = (
        fill(s1.client_order_id, Side.BUY, s1.price, s1.qty, ts),
        fill(s2.client_order_id, Side.BUY, s2.price, s2.qty, ts),
    )
    d = decide(snapshot(CANDLES, free_base=s1.qty + s2.qty, fills=fills), params, first.state)
    assert d.bookings[0].cycle_id != d.bookings[1].cycle_id  # never pooled with a sequence
    sells = {p.client_order_id.split("-")[-2]: p for p in _places(d.intents) if p.side is Side.SELL}
    assert set(sells) == {"S129", "S130"}
    assert sells["S129"].price == -(-s1.price * 1005 // 1000)  # the grid's sell level 1: one spacing up
    assert sells["S130"].price == -(-s2.price * 1010 // 1000)  # level 2: two spacings up
    for p in sells.values():
        lots = [lot for lot in d.state.ledger.lots if f"S{lot.level}" == p.client_order_id.split("-")[-2]]
        assert p.price >= min_sell_price(lots, 1000, params.min_profit_ppm)
    sold = fill(sells["S129"].client_order_id, Side.SELL, sells["S129"].price, s1.qty, ts + 60_000)
    left = (OpenOrder(sells["S130"].client_order_id, Side.SELL, sells["S130"].price, s2.qty),)
    after = decide(snapshot(CANDLES, free_base=s2.qty, fills=(sold,), open_orders=left), params, d.state)
    (cycle,) = after.closed_cycles
    assert cycle.pnl * 1_000_000 >= params.min_profit_ppm * cycle.cost
    assert not any(
        "-B129-" in p.client_order_id or "-B130-" in p.client_order_id for p in _places(after.intents)
    )


def _seed_held_then_sold(params: SymbolParams) -> tuple[Decision, Decision, PlaceLimit]:
    """Return the pulse that booked seed 1's buy, the one that booked its sale, and seed 1's buy."""
    first = decide(snapshot(CANDLES), params, initial_state())
    s1 = _places(first.intents)[0]
    ts = CANDLES[-1].ts_ms - 180_000  # fills long enough ago for the cooldowns
    held = decide(
        snapshot(
            CANDLES, free_base=s1.qty, fills=(fill(s1.client_order_id, Side.BUY, s1.price, s1.qty, ts),)
        ),
        params,
        first.state,
    )
    sell = next(p for p in _places(held.intents) if p.side is Side.SELL)
    sold = fill(sell.client_order_id, Side.SELL, sell.price, s1.qty, ts + 60_000)
    after = decide(snapshot(CANDLES, fills=(sold,)), params, held.state, with_hold=True)
    return held, after, s1


def test_a_sold_seeded_level_buys_again_one_level_below_its_sell_and_exits_one_spacing_up() -> None:
    params = _seeded(symbol_params(), 1)
    _held, after, s1 = _seed_held_then_sold(params)
    (rebuy,) = [p for p in _places(after.intents) if "-B257-" in p.client_order_id]
    assert rebuy.price == after.state.anchor == s1.price  # sell level 1 sold: buy again at level 0
    assert after.hold is not None  # a re-buy at a fixed price keeps the candle-skipping hold
    ts = CANDLES[-1].ts_ms - 60_000  # long enough ago for the cooldowns
    bought = fill(rebuy.client_order_id, Side.BUY, rebuy.price, rebuy.qty, ts)
    again = decide(snapshot(CANDLES, free_base=rebuy.qty, fills=(bought,)), params, after.state)
    (exit_,) = [p for p in _places(again.intents) if p.side is Side.SELL]
    assert "-S257-" in exit_.client_order_id
    assert exit_.price == -(-rebuy.price * 1005 // 1000)  # one spacing up: the seed's sell level again
    lots = [lot for lot in again.state.ledger.lots if lot.level == 257]
    assert exit_.price >= min_sell_price(lots, 1000, params.min_profit_ppm)


def test_a_sold_seeded_level_is_not_bought_again_above_the_book() -> None:
    params = _seeded(symbol_params(), 2)
    first = decide(snapshot(CANDLES), params, initial_state())
    s1, _s2 = _places(first.intents)[:2]
    ts = CANDLES[-1].ts_ms + 60_000
    fills = (fill(s1.client_order_id, Side.BUY, s1.price, s1.qty, ts),)
    held = decide(snapshot(CANDLES, free_base=s1.qty, fills=fills), params, first.state)
    sell = next(p for p in _places(held.intents) if p.side is Side.SELL)
    sold = fill(sell.client_order_id, Side.SELL, sell.price, s1.qty, ts + 60_000)
    below = decide(snapshot(CANDLES, bid=PRICE - 500, fills=(sold,)), params, held.state, with_hold=True)
    assert not any("-B257-" in p.client_order_id for p in _places(below.intents))  # the book is below it
    assert below.hold is not None
    assert below.hold.hi[ASK] <= held.state.anchor  # decided again once the book reaches it


def test_a_flat_seeded_grid_trails_up_only_past_its_seeded_range() -> None:
    params = _seeded(symbol_params(), 1)  # one seed 0.5 % up: trails beyond 2 spacings, 1 %
    _held, after, _s1 = _seed_held_then_sold(params)
    start = after.state.anchor
    inside = decide(snapshot(CANDLES, bid=start * 1007 // 1000), params, after.state, with_hold=True)
    assert inside.state.anchor == start  # the re-buy's range: a static grid would not move either
    assert inside.hold is not None
    assert inside.hold.hi[BID] < start * 1.01  # decided again before the trailing line
    past = decide(snapshot(CANDLES, bid=start * 1011 // 1000), params, after.state)
    assert past.state.anchor == start * 1011 // 1000
    plain = symbol_params()  # a grid without seeds trails one spacing up
    first = decide(snapshot(CANDLES), plain, initial_state())
    moved = decide(snapshot(CANDLES, bid=first.state.anchor * 1007 // 1000), plain, first.state)
    assert moved.state.anchor == first.state.anchor * 1007 // 1000


def test_a_held_seed_does_not_freeze_a_floating_ladder() -> None:
    keltner = KeltnerParams(True, 20, 14, 2.0, 0, 0, 30)
    floating = _seeded(symbol_params(keltner=keltner), 1)
    held, _, _ = _seed_held_then_sold(floating)
    assert held.state.ledger.lots
    assert held.state.ladder == ()
    grid_held, _, _ = _seed_held_then_sold(_seeded(symbol_params(), 1))
    assert grid_held.state.ladder != ()  # a grid's lattice stays where the seeds' exits are


def test_the_entry_signals_hold_back_a_sequence_but_not_the_seeded_levels() -> None:
    waiting = replace(symbol_params().keltner, enabled=True, confirm_closes=2)
    params = _seeded(symbol_params(mean_reversion=MeanReversionParams(True), keltner=waiting), 1)
    first = decide(snapshot(CANDLES), params, initial_state())
    assert [b.client_order_id.split("-")[-2] for b in _places(first.intents)] == ["B129"]  # no B0
    assert any("waiting for a confirmed excursion" in r for r in first.reasons)
    _held, after, s1 = _seed_held_then_sold(params)
    (rebuy,) = [p for p in _places(after.intents) if p.side is Side.BUY]
    assert "-B257-" in rebuy.client_order_id  # still waiting for an excursion: bought again
    assert rebuy.price == s1.price
    quiet = replace(params, gates=replace(params.gates, min_atr_ppm=1_000_000))
    stopped = decide(snapshot(CANDLES), quiet, initial_state())
    assert _places(stopped.intents) == []  # the volatility gates stop every buy, seeds too
    assert any("volatility" in r for r in stopped.reasons)


def test_seeds_and_the_ladder_share_the_rails_seeds_first() -> None:
    base = symbol_params()
    rails = RailParams(
        max_base_lots=10**9,
        max_quote_qu=3 * base.grid.order_quote_qu,
        reserve_base_lots=0,
        reserve_quote_qu=0,
    )
    d = decide(snapshot(CANDLES), _seeded(replace(base, rails=rails), 2), initial_state())
    slots = [b.client_order_id.split("-")[-2] for b in _places(d.intents)]
    assert slots == ["B129", "B130", "B0"]
    assert any("not placed: rails" in r for r in d.reasons)
