"""``core.serialize``: the journaled strategy state and params come back bit for bit."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import flat_candles, snapshot, symbol_params
from nutcracker.core.indicators import IndicatorState
from nutcracker.core.ledger import Ledger, Lot
from nutcracker.core.params import Spacing
from nutcracker.core.serialize import (
    dumps_params,
    dumps_state,
    float_from_json,
    float_to_json,
    loads_params,
    loads_state,
)
from nutcracker.core.strategy import StrategyState, decide, initial_state
from nutcracker.core.units import BU_PER_LOT


def bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def same(a: object, b: object) -> bool:
    """Compare two states field by field, floats by their 64 bits (NaN included)."""
    if isinstance(a, float):
        return isinstance(b, float) and bits(a) == bits(b)
    if isinstance(a, tuple):
        return (
            isinstance(b, tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))  # type: ignore[arg-type]
    return type(a) is type(b) and a == b


any_float = st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**64 - 1).map(
    lambda n: float(struct.unpack("<d", struct.pack("<Q", n))[0])
)  # every bit pattern, signalling and negative NaNs included
big_int = st.integers(-(2**100), 2**100)

indicator_states = st.builds(
    IndicatorState,
    count=big_int,
    last_ts_ms=big_int,
    prev_close=any_float,
    ema=any_float,
    ema_sum=any_float,
    atr=any_float,
    atr_sum=any_float,
    long=any_float,
    long_sum=any_float,
    lower=any_float,
    upper=any_float,
    below_run=big_int,
    above_run=big_int,
    buy_armed=st.booleans(),
    sell_armed=st.booleans(),
)
lots = st.builds(
    Lot,
    level=big_int,
    cycle_id=big_int,
    price=big_int,
    bought=big_int,
    received=big_int,
    sold=big_int,
    cost=big_int,
    joined_cost=big_int,
    buy_fees=big_int,
    proceeds=big_int,
    sell_fees=big_int,
    opened_ts_ms=big_int,
)
ledgers = st.builds(
    Ledger,
    lots=st.lists(lots, max_size=6).map(tuple),
    next_cycle_id=big_int,
    sequence_cycle_id=big_int,
    cycles_closed=big_int,
    realized_pnl=big_int,
    fees_paid=big_int,
    last_buy_fill_ts_ms=big_int,
    last_sell_fill_ts_ms=big_int,
    dust=big_int,
    dust_cost=big_int,
)
states = st.builds(
    StrategyState,
    indicators=indicator_states,
    ledger=ledgers,
    anchor=big_int,
    ladder=st.lists(big_int, max_size=8).map(tuple),
    next_seq=big_int,
)


@given(states)
def test_every_state_round_trips_bit_for_bit(state: StrategyState) -> None:
    text = dumps_state(state)
    assert same(loads_state(text), state)
    assert dumps_state(loads_state(text)) == text
    json.loads(text)  # strict JSON: no NaN/Infinity literals


@given(any_float)
def test_every_float_round_trips_through_json_text(x: float) -> None:
    assert bits(float_from_json(json.loads(json.dumps(float_to_json(x))))) == bits(x)


def test_a_format_1_state_is_read_as_lots_that_received_all_they_bought() -> None:
    lot = Lot(2, 7, 10_000, 50, 50 * BU_PER_LOT, 10, 5 * 10**11, 0, 5 * 10**8, 0, 0, 1_000)
    state = replace(initial_state(), ledger=Ledger((lot,), 8, 0, 6, 123, 456, 1_000, 900, 0, 0))
    doc = json.loads(dumps_state(state))
    doc["format"] = 1  # written before commissions were booked in their asset
    del doc["ledger"]["dust"]
    del doc["ledger"]["dust_cost"]
    del doc["ledger"]["lots"][0]["received"]
    del doc["ledger"]["lots"][0]["joined_cost"]

    assert same(loads_state(json.dumps(doc)), state)


def test_a_real_decided_state_round_trips() -> None:
    params = symbol_params()
    state = initial_state()
    for i in range(3):
        state = decide(snapshot(flat_candles(40 + i, 5_000_000)), params, state).state
    assert state.indicators.ready
    assert same(loads_state(dumps_state(state)), state)
    assert same(loads_state(dumps_state(initial_state())), initial_state())  # NaNs before warm-up


def test_ints_stay_ints_and_floats_are_readable() -> None:
    state = replace(initial_state(), anchor=2**70, next_seq=7)
    doc = json.loads(dumps_state(state))
    assert doc["anchor"] == 2**70
    assert doc["next_seq"] == 7
    assert doc["indicators"]["ema"] == "nan"
    assert doc["indicators"]["ema_sum"] == 0.0
    assert float_to_json(-0.0) == -0.0
    assert math.copysign(1, float_from_json(-0.0)) == -1
    assert float_to_json(math.inf) == "inf"
    assert float_to_json(-math.inf) == "-inf"
    odd_nan = float(struct.unpack("<d", struct.pack("<Q", 0xFFF0000000000001))[0])
    assert float_to_json(odd_nan) == "nan:fff0000000000001"


def corrupt(doc: dict[str, Any], path: tuple[str, ...], value: object) -> str:
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("format",), 3, "unknown format"),
        (("anchor",), 1.5, "state.anchor: expected an integer"),
        (("anchor",), True, "state.anchor: expected an integer"),
        (("indicators", "buy_armed"), 1, "buy_armed: expected true or false"),
        (("indicators", "ema"), "NaN", "state.indicators.ema: expected a float"),
        (("indicators", "ema"), KeyError, "missing \\['ema'\\]"),
        (("ledger", "lots"), {}, "'lots' array"),
        (("ladder",), "1,2", "state.ladder: expected an array"),
        (("next_seq",), KeyError, "fields do not match"),
    ],
)
def test_a_damaged_state_is_refused_naming_the_field(
    path: tuple[str, ...], value: object, message: str
) -> None:
    doc = json.loads(dumps_state(initial_state()))
    with pytest.raises(ValueError, match=message):
        loads_state(corrupt(doc, path, value))


def test_state_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        loads_state("{")


def test_params_round_trip_with_decimals_enums_and_floats() -> None:
    params = symbol_params()
    params = replace(params, grid=replace(params.grid, spacing=Spacing.ATR, spacing_atr=0.1 + 0.2))
    text = dumps_params(params)
    assert loads_params(text) == params
    doc = json.loads(text)
    assert doc["market"]["precision"] == {"lot": "0.00001", "tick": "0.01"}
    assert doc["grid"]["spacing"] == "atr"
    assert doc["grid"]["spacing_atr"] == 0.30000000000000004


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["grid"].update(spacing="ppm"), "params.grid.spacing"),
        (lambda d: d["market"]["precision"].update(tick="x"), "not a decimal"),
        (lambda d: d["market"].update(symbol=5), "expected a string"),
        (lambda d: d.update(format=0), "unknown format"),
        (lambda d: d["rails"].pop("max_base_lots"), "missing \\['max_base_lots'\\]"),
    ],
)
def test_damaged_params_are_refused(change: Any, message: str) -> None:
    doc = json.loads(dumps_params(symbol_params()))
    change(doc)
    with pytest.raises(ValueError, match=message):
        loads_params(json.dumps(doc))
