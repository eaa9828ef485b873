"""``decide(..., with_levels=True)``: every order the pulse planned, and whether it rests or why not."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from factories import BTC, fill, flat_candles, snapshot, symbol_params
from nutcracker.core.model import PlaceLimit, PlannedLevel, Side
from nutcracker.core.params import GateParams, RailParams
from nutcracker.core.strategy import decide, initial_state

PRICE = 10_000_000  # 100,000.00 USDT in ticks
CANDLES = flat_candles(40, PRICE)


def _places(d: object) -> list[PlaceLimit]:
    return [i for i in d.intents if isinstance(i, PlaceLimit)]  # type: ignore[attr-defined]


def _by_outcome(levels: tuple[PlannedLevel, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for level in levels:
        out.setdefault(level.outcome, []).append(level.slot)
    return out


def test_levels_are_asked_for_only() -> None:
    assert decide(snapshot(CANDLES), symbol_params(), initial_state()).levels == ()


def test_a_flat_grid_rests_its_window_and_names_the_lattice_levels_below_it() -> None:
    d = decide(snapshot(CANDLES), symbol_params(), initial_state(), with_levels=True)
    resting = [lv for lv in d.levels if lv.outcome == "resting"]
    # the resting levels are the placements, at their prices and sizes
    assert [(lv.slot, lv.price, lv.qty) for lv in resting] == [
        (p.client_order_id.split("-")[1], p.price, p.qty) for p in _places(d)
    ]
    # a sliding grid: 5 levels rest, the next 5 of the lattice wait outside the window, lower still
    assert _by_outcome(d.levels) == {
        "resting": ["B0", "B1", "B2", "B3", "B4"],
        "window": ["B5", "B6", "B7", "B8", "B9"],
    }
    prices = [lv.price for lv in d.levels]
    assert prices == sorted(prices, reverse=True)
    assert all(lv.side is Side.BUY and lv.qty > 0 for lv in d.levels)


def test_a_level_the_rails_hold_back_is_planned_with_the_rails_as_its_outcome() -> None:
    params = symbol_params(
        rails=RailParams(max_base_lots=250, max_quote_qu=10**20, reserve_base_lots=0, reserve_quote_qu=0)
    )
    d = decide(snapshot(CANDLES), params, initial_state(), with_levels=True)
    outcomes = _by_outcome(d.levels)
    assert outcomes["resting"] == ["B0", "B1"]
    assert outcomes["rails"] == ["B2", "B3", "B4"]
    for slot in outcomes["rails"]:
        assert any(r.startswith(f"{slot} not placed: rails") for r in d.reasons)


def test_held_levels_and_their_exits_are_planned_and_a_cooldown_holds_new_buys() -> None:
    params = symbol_params(gates=GateParams(0, 0, 0, 3_600_000, 0, 1000, 0))
    first = decide(snapshot(CANDLES), params, initial_state())
    b0 = _places(first)[0]
    bought = fill(b0.client_order_id, Side.BUY, b0.price, b0.qty, ts_ms=CANDLES[-1].ts_ms + 60_000)
    d = decide(snapshot(CANDLES, free_base=b0.qty, fills=(bought,)), params, first.state, with_levels=True)
    (exit_,) = [lv for lv in d.levels if lv.side is Side.SELL]
    (sell,) = [p for p in _places(d) if p.side is Side.SELL]
    assert (exit_.slot, exit_.price, exit_.qty, exit_.outcome) == ("S0", sell.price, sell.qty, "resting")
    buys = _by_outcome(tuple(lv for lv in d.levels if lv.side is Side.BUY))
    assert buys["held"] == ["B0"]
    assert buys["cooldown"] == ["B1", "B2", "B3", "B4", "B5"]  # the window slid one level down


def test_a_gate_that_stops_every_buy_marks_the_window_gated() -> None:
    params = symbol_params(gates=GateParams(0, 1, 0, 0, 0, 1000, 0))  # max ATR% of 1 ppm: always too wild
    first = decide(snapshot(CANDLES), symbol_params(), initial_state())
    d = decide(snapshot(CANDLES), params, first.state, with_levels=True)
    assert _by_outcome(d.levels) == {"gated": ["B0", "B1", "B2", "B3", "B4"]}


def test_levels_change_nothing_the_decision_does() -> None:
    params = symbol_params(rails=replace(symbol_params().rails, max_quote_qu=BTC.quote_to_qu(Decimal(301))))
    plain = decide(snapshot(CANDLES), params, initial_state(), with_hold=True)
    both = decide(snapshot(CANDLES), params, initial_state(), with_hold=True, with_levels=True)
    assert (both.intents, both.state, both.reasons, both.hold) == (
        plain.intents,
        plain.state,
        plain.reasons,
        plain.hold,
    )
