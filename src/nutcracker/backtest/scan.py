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
    flags: Bools,  # (n, 4)
    forced: Bools,  # candles that must pulse (after a gap)
    lo: F64,
    hi: F64,
    want_flags: npt.NDArray[np.int8],  # -1: not read by the decision
    until_ts: int,
    max_buy: int,  # highest resting buy, -1 when none
    min_sell: int,  # lowest resting sell, -1 when none
) -> int:
    """Return the first index >= start that needs a pulse, or len(close) when none does."""
    n = close.shape[0]
    check = np.empty(6, dtype=np.bool_)
    for v in range(6):
        check[v] = not (np.isinf(lo[v]) and np.isinf(hi[v]))
    for j in range(start, n):
        if forced[j] or pulse_ts[j] >= until_ts:
            return j
        if max_buy >= 0 and low[j] < max_buy:
            return j
        if min_sell >= 0 and high[j] > min_sell:
            return j
        for f in range(4):
            if want_flags[f] >= 0 and flags[j, f] != (want_flags[f] == 1):
                return j
        bid = float(close[j])
        if check[0] and not (lo[0] <= bid <= hi[0]):
            return j
        ask = bid + 1.0
        if check[1] and not (lo[1] <= ask <= hi[1]):
            return j
        if check[2] and not (lo[2] <= ema[j] <= hi[2]):
            return j
        if check[3] and not (lo[3] <= lower[j] <= hi[3]):
            return j
        if check[4] and not (lo[4] <= step[j] <= hi[4]):
            return j
        if check[5] and not (lo[5] <= atr_ppm[j] <= hi[5]):
            return j
    return int(n)
