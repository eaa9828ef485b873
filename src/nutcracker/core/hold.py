"""The hold region of a decision: where re-deciding would change nothing.

``decide`` can also return a ``Hold``: bounds on the market variables it read (best bid and
ask, EMA, lower band, grid step, ATR%), the indicator flags it branched on and a time limit.
While no fill arrives, our open orders are the ones the decision left and balances are
unchanged, deciding again with the new state on a market inside the region gives no intents
and the same state. The backtester uses it to skip candles on which nothing can change; the
parity tests prove that skipping changes no fill and no order.

Every bound is conservative: a region may be smaller than the truth (a wasted re-decision),
never larger (a missed one). Integer variables (bid, ask) get exact integer bounds; float
variables keep a relative margin so that rounding can only shrink the region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from nutcracker.core.units import PPM, ceil_div

BID, ASK, EMA, LOWER, STEP, ATR_PPM = range(6)
VARIABLES = ("bid", "ask", "ema", "lower", "step", "atr_ppm")
NEVER_TS = 2**62


@dataclass(slots=True, init=False, unsafe_hash=True)
class Hold:
    lo: Final[tuple[float, ...]]  # per variable, inclusive
    hi: Final[tuple[float, ...]]
    # indicators ready, closes above the upper band, buy armed, sell armed; None: the decision did not read it
    flags: Final[tuple[bool | None, bool | None, bool | None, bool | None]]
    until_ts_ms: Final[int]  # the region ends at this pulse time (a cooldown expires)

    def __init__(
        self,
        lo: tuple[float, ...],
        hi: tuple[float, ...],
        flags: tuple[bool | None, bool | None, bool | None, bool | None],
        until_ts_ms: int,
    ) -> None:
        self.lo = lo
        self.hi = hi
        self.flags = flags
        self.until_ts_ms = until_ts_ms

    def contains(self, values: tuple[float, ...], flags: tuple[bool, bool, bool, bool], ts_ms: int) -> bool:
        """Return whether a pulse at ``ts_ms`` on this market would change nothing."""
        if ts_ms >= self.until_ts_ms:
            return False
        if any(want is not None and want != have for want, have in zip(self.flags, flags, strict=True)):
            return False
        return all(  # a variable the decision did not read has infinite bounds (and may be nan)
            (math.isinf(lo) and math.isinf(hi)) or lo <= v <= hi
            for lo, v, hi in zip(self.lo, values, self.hi, strict=True)
        )


def _margin(x: float) -> float:
    return abs(x) * 1e-9 + 1e-9


class HoldBuilder:
    """Collects the bounds while ``decide`` works; ``void`` when any outcome is too delicate to bound."""

    __slots__ = ("hi", "lo", "until_ts_ms", "void")

    def __init__(self) -> None:
        self.lo = [-math.inf] * len(VARIABLES)
        self.hi = [math.inf] * len(VARIABLES)
        self.until_ts_ms = NEVER_TS
        self.void = False

    def at_least(self, var: int, x: float) -> None:
        """Require ``var >= x`` (float variables get a margin)."""
        bound = float(x) if var in (BID, ASK) else x + _margin(x)
        self.lo[var] = max(self.lo[var], bound)

    def at_most(self, var: int, x: float) -> None:
        bound = float(x) if var in (BID, ASK) else x - _margin(x)
        self.hi[var] = min(self.hi[var], bound)

    def until(self, ts_ms: int) -> None:
        self.until_ts_ms = min(self.until_ts_ms, ts_ms)

    # Derived prices of the book. buy_top = min(ask - 1, floor(bid * (PPM - d) / PPM)) and
    # sell_bottom = max(bid + 1, ceil(ask * (PPM + d) / PPM)), d the depth in ppm.

    def buy_top_at_least(self, x: int, depth_ppm: int) -> None:
        self.at_least(ASK, x + 1)
        self.at_least(BID, ceil_div(x * PPM, PPM - depth_ppm))

    def buy_top_at_most(self, y: int, depth_ppm: int, bid: int, ask: int) -> None:
        if ask - 1 <= y:
            self.at_most(ASK, y + 1)
        elif bid * (PPM - depth_ppm) // PPM <= y:
            self.at_most(BID, ceil_div((y + 1) * PPM, PPM - depth_ppm) - 1)
        else:
            self.void = True

    def sell_bottom_at_most(self, y: int, depth_ppm: int) -> None:
        self.at_most(BID, y - 1)
        self.at_most(ASK, y * PPM // (PPM + depth_ppm))

    def sell_bottom_at_least(self, x: int, depth_ppm: int, bid: int, ask: int) -> None:
        if bid + 1 >= x:
            self.at_least(BID, x - 1)
        elif ceil_div(ask * (PPM + depth_ppm), PPM) >= x:
            self.at_least(ASK, (x - 1) * PPM // (PPM + depth_ppm) + 1)
        else:
            self.void = True

    def build(self, flags: tuple[bool | None, bool | None, bool | None, bool | None]) -> Hold | None:
        if self.void:
            return None
        for v in range(len(VARIABLES)):  # an index loop: zip's generator is slow compiled
            if self.lo[v] > self.hi[v]:
                return None
        return Hold(tuple(self.lo), tuple(self.hi), flags, self.until_ts_ms)
