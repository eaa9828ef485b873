"""Keltner indicators on tick prices: EMA mid, Wilder ATR bands, a long EMA, excursion counters.

Two forms give bit-identical floats, because both run the same transition
(``_kernels.advance``): ``step``/``update`` fold candles into an ``IndicatorState`` one at a
time (the live engine), ``batch`` computes every candle of whole arrays with numba (the
backtester). Prices are ``float(ticks)``.

Definitions (TA-Lib's defaults, structure and operation order included):

- EMA(n), k = 2/(n+1): the first value, at candle n-1, is the SMA of the first n closes
  (``sum / n``); then ``ema = (close - ema) * k + ema``. The long average is the same EMA
  with ``long_period``.
- ATR(n), Wilder: ``TR = max(high-low, |high-prev_close|, |low-prev_close|)`` from candle 1
  on; the first ATR, at candle n, is the mean of TR_1..TR_n; then
  ``atr = (atr * (n-1) + tr) / n``.
- Bands, once EMA and ATR are ready, from the values *including* the current candle
  (as TA-Lib's output at index i): ``lower/upper = ema ∓ multiplier * atr``.

Excursion/incursion, with ``h = hysteresis_ppm / 1e6``, evaluated on every candle once the
bands exist (before that the counters stay 0 and the flags False), in this order:

1. ``close < lower*(1-h)``: ``below_run += 1``; elif ``close > lower*(1+h)``: if
   ``confirm_closes > 0`` and ``below_run >= confirm_closes``, ``buy_armed = True``
   (incursion); then ``below_run = 0``. Otherwise (inside the hysteresis) nothing changes.
2. ``close >= ema``: ``buy_armed = False`` (clearing wins over arming on the same candle).
3. ``close > upper*(1+h)``: ``above_run += 1``; elif ``close < upper*(1-h)``: if confirmed,
   ``sell_armed = True``; then ``above_run = 0``.
4. ``close <= ema``: ``sell_armed = False``.

TA-Lib agreement: EMA is bit-exact. TA-Lib 0.8's ATR computes
``fma(atr, (n-1)/n, tr * (1 - (n-1)/n))`` instead of the classic form above, so it differs
in the last bits (relative error ~1e-15); the tests compare ATR within 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from nutcracker.core._kernels import advance, batch_kernel
from nutcracker.core.model import Candle
from nutcracker.core.params import KeltnerParams

__all__ = [
    "IndicatorSeries",
    "IndicatorState",
    "batch",
    "initial_state",
    "state_at",
    "step",
    "update",
    "warmup_candles",
]


def warmup_candles(ema_period: int, atr_period: int) -> int:
    """Return the candles applied before ``IndicatorState.ready``: the EMA's and the ATR's warm-up."""
    return max(ema_period, atr_period + 1)


@dataclass(slots=True, init=False, unsafe_hash=True)
class IndicatorState:
    """The indicators after the candles applied so far; floats are nan until ready."""

    count: Final[int]  # candles applied
    last_ts_ms: Final[int]  # open time of the last applied candle, -1 when none
    prev_close: Final[float]  # close of the last applied candle, nan when none
    ema: Final[float]
    ema_sum: Final[float]  # sum of the first ema_period closes (the SMA seed), then frozen
    atr: Final[float]
    atr_sum: Final[float]  # sum of TR_1..TR_atr_period (the SMA seed), then frozen
    long: Final[float]  # long-term EMA of long_period
    long_sum: Final[float]
    lower: Final[float]  # ema - multiplier*atr, nan until ema and atr are ready
    upper: Final[float]  # ema + multiplier*atr
    below_run: Final[int]  # consecutive closes below the lower band (excursion length)
    above_run: Final[int]
    buy_armed: Final[bool]  # an incursion after a confirmed excursion below; cleared at the mean
    sell_armed: Final[bool]

    def __init__(
        self,
        count: int,
        last_ts_ms: int,
        prev_close: float,
        ema: float,
        ema_sum: float,
        atr: float,
        atr_sum: float,
        long: float,
        long_sum: float,
        lower: float,
        upper: float,
        below_run: int,
        above_run: int,
        buy_armed: bool,
        sell_armed: bool,
    ) -> None:
        self.count = count
        self.last_ts_ms = last_ts_ms
        self.prev_close = prev_close
        self.ema = ema
        self.ema_sum = ema_sum
        self.atr = atr
        self.atr_sum = atr_sum
        self.long = long
        self.long_sum = long_sum
        self.lower = lower
        self.upper = upper
        self.below_run = below_run
        self.above_run = above_run
        self.buy_armed = buy_armed
        self.sell_armed = sell_armed

    @property
    def ready(self) -> bool:
        """Return whether the EMA and the ATR have values: what every decision reads.

        The long average is not waited for: no decision reads it (it is shown, and the advisor's
        features use it), and waiting for it kept every buy back ``long_period`` candles (four
        hours of 1m candles at the default) at the start of every backtest.
        """
        return not (math.isnan(self.ema) or math.isnan(self.atr))

    @property
    def atr_ppm(self) -> float:
        """Return the ATR in parts per million of the last close (nan until ready)."""
        return self.atr / self.prev_close * 1e6 if self.prev_close > 0.0 else math.nan


@dataclass(frozen=True, slots=True)
class IndicatorSeries:
    """The ``IndicatorState`` fields after each candle ``i``, one array per field."""

    count: npt.NDArray[np.int64]
    last_ts_ms: npt.NDArray[np.int64]
    prev_close: npt.NDArray[np.float64]
    ema: npt.NDArray[np.float64]
    ema_sum: npt.NDArray[np.float64]
    atr: npt.NDArray[np.float64]
    atr_sum: npt.NDArray[np.float64]
    long: npt.NDArray[np.float64]
    long_sum: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    below_run: npt.NDArray[np.int64]
    above_run: npt.NDArray[np.int64]
    buy_armed: npt.NDArray[np.bool_]
    sell_armed: npt.NDArray[np.bool_]
    # The arrays above are rows of these, in field order per type: ``state_at`` reads a column.
    floats: npt.NDArray[np.float64]  # (9, n): prev_close ... upper
    ints: npt.NDArray[np.int64]  # (4, n): count, last_ts_ms, below_run, above_run
    flags: npt.NDArray[np.bool_]  # (2, n): buy_armed, sell_armed

    def __len__(self) -> int:
        return int(self.count.shape[0])

    @property
    def ready(self) -> npt.NDArray[np.bool_]:
        """Return, per candle, whether the EMA and the ATR have values (``IndicatorState.ready``)."""
        return ~(np.isnan(self.ema) | np.isnan(self.atr))

    @property
    def atr_ppm(self) -> npt.NDArray[np.float64]:
        """Return, per candle, ``IndicatorState.atr_ppm`` (the same floats)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ppm: npt.NDArray[np.float64] = self.atr / self.prev_close * 1e6
        ppm[~(self.prev_close > 0.0)] = np.nan
        return ppm


def _check(p: KeltnerParams) -> None:
    if p.ema_period < 1 or p.atr_period < 1 or p.long_period < 1:
        raise ValueError(f"indicator periods must be >= 1: {p}")


def _hysteresis(p: KeltnerParams) -> float:
    return p.hysteresis_ppm / 1e6


def initial_state() -> IndicatorState:
    """Return the state before any candle."""
    nan = math.nan
    return IndicatorState(0, -1, nan, nan, 0.0, nan, 0.0, nan, 0.0, nan, nan, 0, 0, False, False)


def step(state: IndicatorState, candle: Candle, p: KeltnerParams) -> IndicatorState:
    """Return the state after applying one candle newer than the last applied one."""
    if candle.ts_ms <= state.last_ts_ms:
        raise ValueError(f"candle {candle.ts_ms} is not newer than the state ({state.last_ts_ms})")
    _check(p)
    close = float(candle.close)
    (ema, ema_sum, atr, atr_sum, long, long_sum, lower, upper, below, above, buy, sell) = advance(
        state.count,
        state.prev_close,
        state.ema,
        state.ema_sum,
        state.atr,
        state.atr_sum,
        state.long,
        state.long_sum,
        state.below_run,
        state.above_run,
        state.buy_armed,
        state.sell_armed,
        float(candle.high),
        float(candle.low),
        close,
        p.ema_period,
        p.atr_period,
        p.long_period,
        p.multiplier,
        _hysteresis(p),
        p.confirm_closes,
    )
    return IndicatorState(
        state.count + 1,
        candle.ts_ms,
        close,
        ema,
        ema_sum,
        atr,
        atr_sum,
        long,
        long_sum,
        lower,
        upper,
        below,
        above,
        buy,
        sell,
    )


def update(state: IndicatorState, candles: Sequence[Candle], p: KeltnerParams) -> IndicatorState:
    """Return the state after applying, in order, the candles newer than ``state.last_ts_ms``.

    ``candles`` are oldest first; the new ones are found from the end, so a window that holds
    nothing new costs one comparison.
    """
    start = len(candles)
    while start > 0 and candles[start - 1].ts_ms > state.last_ts_ms:
        start -= 1
    for i in range(start, len(candles)):
        state = step(state, candles[i], p)
    return state


def batch(
    ts_ms: npt.NDArray[np.int64],
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    p: KeltnerParams,
) -> IndicatorSeries:
    """Return the indicators after every candle of whole arrays, as ``update`` would give them."""
    _check(p)
    ts = np.ascontiguousarray(ts_ms, dtype=np.int64)
    hi = np.ascontiguousarray(high, dtype=np.float64)
    lo = np.ascontiguousarray(low, dtype=np.float64)
    cl = np.ascontiguousarray(close, dtype=np.float64)
    n = ts.shape[0]
    if ts.ndim != 1 or hi.shape != (n,) or lo.shape != (n,) or cl.shape != (n,):
        raise ValueError("ts_ms, high, low and close must be 1-d arrays of the same length")
    floats = np.empty((9, n), np.float64)
    ints = np.empty((4, n), np.int64)
    flags = np.empty((2, n), np.bool_)
    bad = batch_kernel(
        ts,
        hi,
        lo,
        cl,
        p.ema_period,
        p.atr_period,
        p.long_period,
        p.multiplier,
        _hysteresis(p),
        p.confirm_closes,
        floats,
        ints,
        flags,
    )
    if bad >= 0:
        # The incremental form refuses such a candle too.
        raise ValueError(f"ts_ms[{bad}] = {ts[bad]} is not newer than the candle before it")
    return IndicatorSeries(
        count=ints[0],
        last_ts_ms=ints[1],
        prev_close=floats[0],
        ema=floats[1],
        ema_sum=floats[2],
        atr=floats[3],
        atr_sum=floats[4],
        long=floats[5],
        long_sum=floats[6],
        lower=floats[7],
        upper=floats[8],
        below_run=ints[2],
        above_run=ints[3],
        buy_armed=flags[0],
        sell_armed=flags[1],
        floats=floats,
        ints=ints,
        flags=flags,
    )


def state_at(series: IndicatorSeries, i: int) -> IndicatorState:
    """Return the state the incremental form holds after candle ``i`` of ``series``."""
    f: list[float] = series.floats[:, i].tolist()  # one column per type: fewer numpy scalars
    n: list[int] = series.ints[:, i].tolist()
    b: list[bool] = series.flags[:, i].tolist()
    return IndicatorState(
        n[0], n[1], f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], n[2], n[3], b[0], b[1]
    )
