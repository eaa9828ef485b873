"""Find the next candle on which the backtester must pulse: the compiled half of candle skipping.

A candle needs a pulse when a resting order can fill on it (a buy when its low trades below
the highest resting buy, a sell when its high trades above the lowest resting sell), when the
market leaves the last decision's hold region (``core.hold``), when a cooldown ends, or after
a gap in the data. Every other candle is skipped: the parity tests prove the fills and orders
are the same as pulsing on every candle.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]


@njit(cache=True)
def next_pulse(
    start: int,
    low: I64,
    high: I64,
    close: I64,
    pulse_ts: I64,
    ema: F64,  # the hold's float variables per candle (bid and ask come from the close)
    lower: F64,
    step: F64,
    atr_ppm: F64,
    flags: U8,  # the indicator flags per candle, bit f for flag f (``core.hold``'s order)
    forced: Bools,  # candles that must pulse (after a gap)
    bounds: F64,  # the hold's 6 lower bounds, then its 6 upper bounds
    flag_mask: int,  # bit f set: the decision read flag f ...
    flag_values: int,  # ... and wants bit f of this value
    until_ts: int,
    max_buy: int,  # highest resting buy, -1 when none
    min_sell: int,  # lowest resting sell, -1 when none
) -> int:
    """Return the first index >= start that needs a pulse, or len(close) when none does."""
    n = close.shape[0]
    # A variable the decision did not read has infinite bounds (and may be nan): its check is off.
    # Bounds in locals, checks as flags: the loop below runs on every skipped candle.
    lo0, lo1, lo2, lo3, lo4, lo5 = bounds[0], bounds[1], bounds[2], bounds[3], bounds[4], bounds[5]
    hi0, hi1, hi2, hi3, hi4, hi5 = bounds[6], bounds[7], bounds[8], bounds[9], bounds[10], bounds[11]
    c0 = not (np.isinf(lo0) and np.isinf(hi0))
    c1 = not (np.isinf(lo1) and np.isinf(hi1))
    c2 = not (np.isinf(lo2) and np.isinf(hi2))
    c3 = not (np.isinf(lo3) and np.isinf(hi3))
    c4 = not (np.isinf(lo4) and np.isinf(hi4))
    c5 = not (np.isinf(lo5) and np.isinf(hi5))
    buy_at = max_buy if max_buy >= 0 else -(2**62)  # no resting buy: no low is below it
    sell_at = min_sell if min_sell >= 0 else 2**62
    for j in range(start, n):
        if forced[j] or pulse_ts[j] >= until_ts or low[j] < buy_at or high[j] > sell_at:
            return j
        if (flags[j] ^ flag_values) & flag_mask:
            return j
        bid = float(close[j])
        if c0 and not (lo0 <= bid <= hi0):
            return j
        if c1 and not (lo1 <= bid + 1.0 <= hi1):  # the ask
            return j
        if c2 and not (lo2 <= ema[j] <= hi2):
            return j
        if c3 and not (lo3 <= lower[j] <= hi3):
            return j
        if c4 and not (lo4 <= step[j] <= hi4):
            return j
        if c5 and not (lo5 <= atr_ppm[j] <= hi5):
            return j
    return int(n)
