"""How the config reports problems: collected per validator, raised together, numbers shown plainly."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Any, Final

_CENT: Final = Decimal("0.01")


class _BrokenRulesError(ValueError):
    """Cross-field problems, each as (field path relative to the validated model, problem and fix)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {text}" for field, text in problems))
        self.problems = problems


class _Problems:
    """Collect the problems a validator finds, then raise them together."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, text: str) -> None:
        self.items.append((field, text))

    def raise_any(self) -> None:
        if self.items:
            raise _BrokenRulesError(self.items)


def _fmt(value: Decimal) -> str:
    """Return ``value`` in plain notation without trailing zeros (``1E+3`` -> ``1000``)."""
    return f"{value.normalize():f}"


def _ceil_cent(value: Decimal) -> Decimal:
    """Return ``value`` rounded up to a multiple of 0.01, exactly however large it is."""
    with localcontext() as context:
        context.prec = max(context.prec, value.adjusted() + 4)
        return value.quantize(_CENT, rounding=ROUND_CEILING)


def _just_above(value: Decimal) -> Decimal:
    """Return the smallest multiple of 0.01 strictly above ``value``."""
    above = value.quantize(_CENT, rounding=ROUND_CEILING)
    return above + _CENT if above == value else above


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


def _format_problems(source: str, problems: list[tuple[str, str]]) -> str:
    return _format_lines(source, [_problem_line(field, text) for field, text in problems])


def _format_lines(source: str, lines: list[str]) -> str:
    count = f"{len(lines)} problem" + ("s" if len(lines) != 1 else "")
    return f"{source}: {count}:\n" + "\n".join(f"  - {line}" for line in lines)


def _problem_line(path: str, text: str) -> str:
    return f"{path or 'top level'}: {text}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Decimal) and value.is_finite():
        return _fmt(value)
    if isinstance(value, int) and abs(value) >= 10**16:
        return f"{value:.3g}"  # a 30-digit integer is unreadable
    return str(value)
