"""Allowed ranges of the numeric command-line options, checked before any of them is used.

Each option has one documented range (docs/configuration.md, "Command-line options"); a value
outside it (NaN and infinities included) is a ``ConfigError`` whose one line names the option,
the value and the range. The commands print it and exit with ``EXIT_CONFIG``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from nutcracker.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Range:
    """``low <= value <= high`` (``low < value`` when ``low_open``); ``unit`` explains the value."""

    low: float
    high: float
    unit: str = ""
    low_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self, name: str) -> str:
        text = f"{_number(self.low)} {'<' if self.low_open else '<='} {name} <= {_number(self.high)}"
        return f"{text} ({self.unit})" if self.unit else text


def check_option(name: str, value: float | None, allowed: Range) -> None:
    """Raise ``ConfigError`` naming ``name`` and its range when ``value`` (if given) is outside it."""
    if value is not None and not allowed.contains(value):
        raise ConfigError(f"{name} {_number(value)}: out of range; allowed: {allowed.describe(name)}")


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


SPEED: Final = Range(0, 1_000_000, "candles per second; 0 = no pause")
SIM_SPEED: Final = Range(0, 1_000_000, "candles per second", low_open=True)
CANDLES: Final = Range(1, 100_000_000, "candles")
SYNTHETIC: Final = Range(1, 10_000_000, "synthetic candles per symbol")
SEED: Final = Range(0, 2**32 - 1)
PULSE_INTERVAL: Final = Range(0.01, 86_400, "seconds between pulses")
PULSES: Final = Range(1, 1_000_000_000, "pulses per symbol")
PORT: Final = Range(0, 65_535, "TCP port; 0 = any free port")
FAULT_TIMEOUT_MS: Final = Range(1, 600_000, "milliseconds")
WARMUP: Final = Range(0, 1_000_000, "candles")
LEASE_TTL: Final = Range(0.5, 3_600, "seconds a symbol's lease lasts unrenewed")
EPOCH_MS: Final = Range(1_000_000_000_000, 4_102_444_800_000, "epoch milliseconds, 2001-09-09 to 2100-01-01")

__all__ = [
    "CANDLES",
    "EPOCH_MS",
    "FAULT_TIMEOUT_MS",
    "LEASE_TTL",
    "PORT",
    "PULSES",
    "PULSE_INTERVAL",
    "SEED",
    "SIM_SPEED",
    "SPEED",
    "SYNTHETIC",
    "WARMUP",
    "Range",
    "check_option",
]
