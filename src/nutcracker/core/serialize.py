"""Exact JSON for what the engine journals: the strategy state and the parameters of a symbol.

The strategy state must come back bit for bit after a restart, or a resumed engine would decide
differently from one that never stopped. So:

- ints are JSON ints (quote-unit amounts may exceed 2**63; Python's ``json`` keeps them exact);
- finite floats are JSON numbers written by ``repr``, which reads back to the same double
  (``-0.0`` included); non-finite floats are strings: ``"inf"``, ``"-inf"``, ``"nan"`` for the
  canonical quiet NaN and ``"nan:7ff8000000000001"`` (the IEEE-754 bits in hex) for any other NaN,
  so even a NaN's sign and payload survive;
- bools are JSON booleans, tuples JSON arrays, ``Decimal`` its exact string, enums their value.

Documents carry a format number (``"format": 1``); reading refuses an unknown format, a missing or
extra field and a value of the wrong type with ``ValueError`` naming the field. Pure functions, no
I/O: the journal stores the text as it is.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Final, TypeVar, get_args, get_origin, get_type_hints

from nutcracker.core.indicators import IndicatorState
from nutcracker.core.ledger import Ledger, Lot
from nutcracker.core.params import SymbolParams
from nutcracker.core.strategy import StrategyState
from nutcracker.core.units import BU_PER_LOT

__all__ = [
    "STATE_FORMAT",
    "dumps_params",
    "dumps_state",
    "float_from_json",
    "float_to_json",
    "loads_params",
    "loads_state",
    "params_from_dict",
    "params_to_dict",
    "state_from_dict",
    "state_to_dict",
]

STATE_FORMAT = 2  # 2: lots hold ``received`` base units, the ledger its dust (format 1 is upgraded)
PARAMS_FORMAT = 1

_CANONICAL_NAN_BITS = 0x7FF8000000000000
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<Q")

T = TypeVar("T")


# -- floats ---------------------------------------------------------------------------------------


def float_to_json(x: float) -> float | str:
    """Return ``x`` as a JSON value that reads back to the same 64 bits (see the module doc)."""
    if math.isfinite(x):
        return x
    if x != x:  # NaN: keep its sign and payload unless it is the canonical one
        bits: int = _BITS.unpack(_DOUBLE.pack(x))[0]
        return "nan" if bits == _CANONICAL_NAN_BITS else f"nan:{bits:016x}"
    return "inf" if x > 0 else "-inf"


def float_from_json(value: object, where: str = "float") -> float:
    """Return the float ``float_to_json`` wrote; raise ValueError on anything else."""
    if type(value) is float:
        return value
    if type(value) is int:  # a hand-written integer is a float value too
        return float(value)
    if isinstance(value, str):
        if value == "nan":
            return _bits_to_float(_CANONICAL_NAN_BITS)
        if value == "inf":
            return math.inf
        if value == "-inf":
            return -math.inf
        if value.startswith("nan:") and len(value) == 20:
            try:
                bits = int(value[4:], 16)
            except ValueError:
                pass
            else:
                x = _bits_to_float(bits)
                if x != x:
                    return x
    raise ValueError(
        f"{where}: expected a float (a number, 'inf', '-inf', 'nan' or 'nan:<bits>'), got {value!r}"
    )


def _bits_to_float(bits: int) -> float:
    x: float = _DOUBLE.unpack(_BITS.pack(bits))[0]
    return x


# -- the strategy state ---------------------------------------------------------------------------


def _kinds(cls: type, skip: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    hints = get_type_hints(cls)
    out = []
    for f in fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        if get_origin(hint) is Final:  # the pulse's values declare read-only fields (core.model)
            (hint,) = get_args(hint)
        if hint is bool:
            out.append((f.name, "bool"))
        elif hint is int:
            out.append((f.name, "int"))
        elif hint is float:
            out.append((f.name, "float"))
        else:  # pragma: no cover - a new field type needs a codec here
            raise TypeError(f"{cls.__name__}.{f.name}: no JSON codec for {hint!r}")
    return tuple(out)


# (field name, kind) of the flat records, in declaration order; kinds: "int", "float", "bool".
_IND_FIELDS = _kinds(IndicatorState)
_LOT_FIELDS = _kinds(Lot)
_LEDGER_SCALARS = _kinds(Ledger, skip=("lots",))  # ``lots`` is Ledger's first field
_STATE_KEYS = frozenset({"format", "indicators", "ledger", "anchor", "ladder", "next_seq"})


def _record_to_dict(obj: object, kinds: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in kinds:
        value = getattr(obj, name)
        out[name] = float_to_json(value) if kind == "float" else value
    return out


def _values_from_dict(data: object, kinds: tuple[tuple[str, str], ...], where: str) -> list[Any]:
    """Return the field values of a flat record, in declaration order."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    names = {name for name, _ in kinds}
    if set(data) != names:
        missing, extra = sorted(names - set(data)), sorted(set(data) - names)
        raise ValueError(f"{where}: fields do not match (missing {missing}, unexpected {extra})")
    values: list[Any] = []
    for name, kind in kinds:
        value = data[name]
        if kind == "float":
            values.append(float_from_json(value, f"{where}.{name}"))
        elif kind == "bool":
            if type(value) is not bool:
                raise ValueError(f"{where}.{name}: expected true or false, got {value!r}")
            values.append(value)
        else:
            values.append(_int(value, f"{where}.{name}"))
    return values


def _int(value: object, where: str) -> int:
    if type(value) is not int:
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    return value


def state_to_dict(state: StrategyState) -> dict[str, Any]:
    """Return ``state`` as JSON-ready values (see the module doc)."""
    ledger = state.ledger
    ledger_doc = _record_to_dict(ledger, _LEDGER_SCALARS)
    ledger_doc["lots"] = [_record_to_dict(lot, _LOT_FIELDS) for lot in ledger.lots]
    return {
        "format": STATE_FORMAT,
        "indicators": _record_to_dict(state.indicators, _IND_FIELDS),
        "ledger": ledger_doc,
        "anchor": state.anchor,
        "ladder": list(state.ladder),
        "next_seq": state.next_seq,
    }


def state_from_dict(data: Mapping[str, Any]) -> StrategyState:
    """Return the state ``state_to_dict`` wrote; raise ValueError naming what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError(f"state: expected an object, got {type(data).__name__}")
    if data.get("format") == 1:
        data = _upgrade_state_1(data)
    if data.get("format") != STATE_FORMAT:
        raise ValueError(f"state: unknown format {data.get('format')!r}, expected {STATE_FORMAT}")
    if set(data) != _STATE_KEYS:
        raise ValueError(
            f"state: fields do not match (missing {sorted(_STATE_KEYS - set(data))}, "
            f"unexpected {sorted(set(data) - _STATE_KEYS)})"
        )
    ledger_doc = data["ledger"]
    if not isinstance(ledger_doc, dict) or not isinstance(ledger_doc.get("lots"), list):
        raise ValueError("state.ledger: expected an object with a 'lots' array")
    lots = tuple(
        Lot(*_values_from_dict(lot, _LOT_FIELDS, f"state.ledger.lots[{i}]"))
        for i, lot in enumerate(ledger_doc["lots"])
    )
    scalars = {k: v for k, v in ledger_doc.items() if k != "lots"}
    ladder = data["ladder"]
    if not isinstance(ladder, list):
        raise ValueError(f"state.ladder: expected an array, got {ladder!r}")
    return StrategyState(
        indicators=IndicatorState(*_values_from_dict(data["indicators"], _IND_FIELDS, "state.indicators")),
        ledger=Ledger(lots, *_values_from_dict(scalars, _LEDGER_SCALARS, "state.ledger")),
        anchor=_int(data["anchor"], "state.anchor"),
        ladder=tuple(_int(p, f"state.ladder[{i}]") for i, p in enumerate(ladder)),
        next_seq=_int(data["next_seq"], "state.next_seq"),
    )


def _upgrade_state_1(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a format-1 state as format 2: every fee was quote, so each lot received what it bought."""
    out = dict(data)
    out["format"] = 2
    ledger = data.get("ledger")
    if isinstance(ledger, dict) and isinstance(ledger.get("lots"), list) and "dust" not in ledger:
        lots = [
            {**lot, "received": lot.get("bought", 0) * BU_PER_LOT, "joined_cost": 0}
            if isinstance(lot, dict) and type(lot.get("bought")) is int and "received" not in lot
            else lot
            for lot in ledger["lots"]
        ]
        out["ledger"] = {**ledger, "lots": lots, "dust": 0, "dust_cost": 0}
    return out


def dumps_state(state: StrategyState) -> str:
    """Return ``state`` as compact JSON text that ``loads_state`` reads back exactly."""
    return json.dumps(state_to_dict(state), separators=(",", ":"), allow_nan=False)


def loads_state(text: str) -> StrategyState:
    """Return the state in ``text``; raise ValueError if it is not a state document."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"state: not JSON: {e}") from e
    return state_from_dict(data)


# -- parameters (for the audit trail of parameter changes) ----------------------------------------


def _value_to_json(value: object) -> Any:
    if isinstance(value, bool | int | str) and not isinstance(value, Enum):
        return value
    if isinstance(value, float):
        return float_to_json(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _value_to_json(getattr(value, f.name)) for f in fields(value)}
    raise TypeError(f"no JSON codec for {type(value).__name__}")  # pragma: no cover


def _value_from_json(hint: Any, value: object, where: str) -> Any:
    if hint is bool:
        if type(value) is not bool:
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        return _int(value, where)
    if hint is float:
        return float_from_json(value, where)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if hint is Decimal:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a decimal string, got {value!r}")
        try:
            return Decimal(value)
        except InvalidOperation as e:
            raise ValueError(f"{where}: {value!r} is not a decimal") from e
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError as e:
            raise ValueError(f"{where}: {value!r} is not one of {[m.value for m in hint]}") from e
    if isinstance(hint, type) and is_dataclass(hint):
        return _dataclass_from_json(hint, value, where)
    raise TypeError(f"{where}: no JSON codec for {hint!r}")  # pragma: no cover


def _dataclass_from_json(cls: type[T], data: object, where: str) -> T:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    if set(data) != set(names):
        raise ValueError(
            f"{where}: fields do not match (missing {sorted(set(names) - set(data))}, "
            f"unexpected {sorted(set(data) - set(names))})"
        )
    return cls(**{name: _value_from_json(hints[name], data[name], f"{where}.{name}") for name in names})


def params_to_dict(params: SymbolParams) -> dict[str, Any]:
    """Return ``params`` as JSON-ready values: Decimals as exact strings, enums as their values."""
    doc: dict[str, Any] = {"format": PARAMS_FORMAT}
    doc.update(_value_to_json(params))
    return doc


def params_from_dict(data: Mapping[str, Any]) -> SymbolParams:
    """Return the params ``params_to_dict`` wrote; raise ValueError naming what is wrong."""
    if not isinstance(data, Mapping) or data.get("format") != PARAMS_FORMAT:
        raise ValueError(f"params: unknown format, expected {{'format': {PARAMS_FORMAT}, ...}}")
    body = {k: v for k, v in data.items() if k != "format"}
    return _dataclass_from_json(SymbolParams, body, "params")


def dumps_params(params: SymbolParams) -> str:
    """Return ``params`` as JSON text with sorted keys (for the journal's parameter history)."""
    return json.dumps(params_to_dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)


def loads_params(text: str) -> SymbolParams:
    """Return the params in ``text``; raise ValueError if it is not a params document."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"params: not JSON: {e}") from e
    return params_from_dict(data)
