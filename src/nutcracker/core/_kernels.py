"""The one-candle indicator transition, shared by the pure-Python and the numba forms.

``advance`` is plain Python (``indicators.step`` calls it directly) and is also registered
with numba, so ``batch_kernel`` compiles the very same source: both forms perform the same
IEEE operations in the same order and agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit
from numba.extending import register_jitable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

Advanced = tuple[float, float, float, float, float, float, float, float, int, int, bool, bool]


def advance(
    i: int,
    prev_close: float,
    ema: float,
    ema_sum: float,
    atr: float,
    atr_sum: float,
    long: float,
    long_sum: float,
    below_run: int,
    above_run: int,
    buy_armed: bool,
    sell_armed: bool,
    high: float,
    low: float,
    close: float,
    ema_period: int,
    atr_period: int,
    long_period: int,
    multiplier: float,
    h: float,
    confirm: int,
) -> Advanced:
    """Return the values after candle number ``i`` (0-based), in ``Advanced`` order.

    That order is: ema, ema_sum, atr, atr_sum, long, long_sum, lower, upper, below_run,
    above_run, buy_armed, sell_armed. See ``nutcracker.core.indicators`` for the definitions.
    """
    # EMA, TA-Lib style: SMA seed at index n-1, then (x - ema) * k + ema.
    if i < ema_period:
        ema_sum += close
        if i == ema_period - 1:
            ema = ema_sum / ema_period
    else:
        ema = (close - ema) * (2.0 / (ema_period + 1)) + ema
    if i < long_period:
        long_sum += close
        if i == long_period - 1:
            long = long_sum / long_period
    else:
        long = (close - long) * (2.0 / (long_period + 1)) + long

    # Wilder ATR, TA-Lib style: index 0 has no true range; mean of TR_1..TR_n at index n.
    if i >= 1:
        tr = high - low
        d = abs(high - prev_close)
        if d > tr:
            tr = d
        d = abs(low - prev_close)
        if d > tr:
            tr = d
        if i <= atr_period:
            atr_sum += tr
            if i == atr_period:
                atr = atr_sum / atr_period
        else:
            atr = (atr * (atr_period - 1) + tr) / atr_period

    lower = math.nan
    upper = math.nan
    if i >= ema_period - 1 and i >= atr_period:
        band = multiplier * atr
        lower = ema - band
        upper = ema + band
        # Below side first, then the mean clears the arm: an incursion that closes at or
        # above the mean has already reverted, so there is nothing left to buy.
        if close < lower * (1.0 - h):
            below_run += 1
        elif close > lower * (1.0 + h):
            if confirm > 0 and below_run >= confirm:
                buy_armed = True
            below_run = 0
        buy_armed = buy_armed & (close < ema)  # "&", not "and": no branch on a coin toss
        if close > upper * (1.0 + h):
            above_run += 1
        elif close < upper * (1.0 - h):
            if confirm > 0 and above_run >= confirm:
                sell_armed = True
            above_run = 0
        sell_armed = sell_armed & (close > ema)
    return (
        ema,
        ema_sum,
        atr,
        atr_sum,
        long,
        long_sum,
        lower,
        upper,
        below_run,
        above_run,
        buy_armed,
        sell_armed,
    )


# Registered, not replaced: ``advance`` stays an ordinary (typed) Python function. Inlined at
# numba IR level: as a separate call it costs more than the arithmetic it wraps.
register_jitable(inline="always")(advance)


# error_model="numpy" drops the division-by-zero checks: the caller guarantees periods >= 1.
@njit(cache=True, error_model="numpy")
def batch_kernel(
    ts_ms: I64,
    high: F64,
    low: F64,
    close: F64,
    ema_period: int,
    atr_period: int,
    long_period: int,
    multiplier: float,
    h: float,
    confirm: int,
    floats: F64,
    ints: I64,
    flags: Bools,
) -> int:
    """Apply ``advance`` to every candle in order, writing each candle's state in place.

    Rows: ``floats`` = prev_close, ema, ema_sum, atr, atr_sum, long, long_sum, lower, upper;
    ``ints`` = count, last_ts_ms, below_run, above_run; ``flags`` = buy_armed, sell_armed.
    Return -1, or the index of the first candle not newer than the one before (then stop).
    """
    # Three caller-allocated blocks instead of fifteen fresh arrays: on a VM the page faults
    # of fresh memory cost more than this loop.
    last_ts = -1
    prev_close = math.nan
    ema = math.nan
    ema_sum = 0.0
    atr = math.nan
    atr_sum = 0.0
    long = math.nan
    long_sum = 0.0
    below_run = 0
    above_run = 0
    buy_armed = False
    sell_armed = False
    for i in range(close.shape[0]):
        if ts_ms[i] <= last_ts:
            return i
        last_ts = ts_ms[i]
        (
            ema,
            ema_sum,
            atr,
            atr_sum,
            long,
            long_sum,
            lower,
            upper,
            below_run,
            above_run,
            buy_armed,
            sell_armed,
        ) = advance(
            i,
            prev_close,
            ema,
            ema_sum,
            atr,
            atr_sum,
            long,
            long_sum,
            below_run,
            above_run,
            buy_armed,
            sell_armed,
            high[i],
            low[i],
            close[i],
            ema_period,
            atr_period,
            long_period,
            multiplier,
            h,
            confirm,
        )
        prev_close = close[i]
        floats[0, i] = prev_close
        floats[1, i] = ema
        floats[2, i] = ema_sum
        floats[3, i] = atr
        floats[4, i] = atr_sum
        floats[5, i] = long
        floats[6, i] = long_sum
        floats[7, i] = lower
        floats[8, i] = upper
        ints[0, i] = i + 1
        ints[1, i] = last_ts
        ints[2, i] = below_run
        ints[3, i] = above_run
        flags[0, i] = buy_armed
        flags[1, i] = sell_armed
    return -1
