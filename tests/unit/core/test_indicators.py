"""Indicators: TA-Lib agreement on real candles, incremental == batch bit for bit, hand values."""

from __future__ import annotations

import dataclasses
import gzip
import math
import struct
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from nutcracker.core.indicators import (
    IndicatorSeries,
    IndicatorState,
    batch,
    initial_state,
    state_at,
    step,
    update,
)
from nutcracker.core.model import Candle
from nutcracker.core.params import KeltnerParams

REPO_ROOT = Path(__file__).resolve().parents[3]
BTC_1M = "binance_BTC-USDT_1m.csv.gz"
FIELDS = [f.name for f in dataclasses.fields(IndicatorState)]


@dataclasses.dataclass(frozen=True)
class Bars:
    """Candles in integer ticks, as arrays and as ``Candle`` values."""

    ts: npt.NDArray[np.int64]
    open: npt.NDArray[np.int64]
    high: npt.NDArray[np.int64]
    low: npt.NDArray[np.int64]
    close: npt.NDArray[np.int64]

    def candles(self) -> list[Candle]:
        return [
            Candle(int(t), int(o), int(h), int(lo), int(c))
            for t, o, h, lo, c in zip(self.ts, self.open, self.high, self.low, self.close, strict=True)
        ]

    def batch(self, p: KeltnerParams) -> IndicatorSeries:
        return batch(
            self.ts,
            self.high.astype(np.float64),
            self.low.astype(np.float64),
            self.close.astype(np.float64),
            p,
        )


def kp(
    ema: int = 20,
    atr: int = 14,
    mult: float = 2.0,
    confirm: int = 3,
    hyst: int = 0,
    long: int = 200,
) -> KeltnerParams:
    return KeltnerParams(
        enabled=True,
        ema_period=ema,
        atr_period=atr,
        multiplier=mult,
        confirm_closes=confirm,
        hysteresis_ppm=hyst,
        long_period=long,
    )


def bars_of(candles: list[Candle]) -> Bars:
    cols = [[c.ts_ms, c.open, c.high, c.low, c.close] for c in candles]
    a = np.array(cols, dtype=np.int64).reshape(-1, 5)
    return Bars(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])


def load_bars(path: Path, rows: int | None) -> Bars:
    with gzip.open(path, "rt") as f:
        raw = np.loadtxt(f, delimiter=",", skiprows=1, max_rows=rows)
    # Tick 0.01; np.rint rounds half to even like round().
    ticks = np.rint(raw[:, 1:5] * 100).astype(np.int64)
    return Bars(raw[:, 0].astype(np.int64), ticks[:, 0], ticks[:, 1], ticks[:, 2], ticks[:, 3])


@pytest.fixture(scope="module")
def shared_data() -> Path:
    path = REPO_ROOT.parent / "shared" / "data"
    if not (path / BTC_1M).is_file():
        pytest.skip(f"shared market data absent: expected {path / BTC_1M} (../shared/data from the repo)")
    return path


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> Bars:
    return load_bars(shared_data / BTC_1M, 20_000)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def state_key(s: IndicatorState) -> tuple[object, ...]:
    """Return the state's fields with floats as their IEEE bits (nan == nan, 0.0 != -0.0)."""
    return tuple(bits(v) if isinstance(v, float) else v for v in dataclasses.astuple(s))


def incremental(candles: list[Candle], p: KeltnerParams) -> list[IndicatorState]:
    states = []
    s = initial_state()
    for c in candles:
        s = step(s, c, p)
        states.append(s)
    return states


def assert_series_equal(series: IndicatorSeries, states: list[IndicatorState]) -> None:
    """Assert the batch arrays hold, bit for bit, the incremental states' fields."""
    assert len(series) == len(states)
    for name in FIELDS:
        got = getattr(series, name)
        want = np.array([getattr(s, name) for s in states], dtype=got.dtype)
        if got.dtype == np.float64:
            assert np.array_equal(got, want, equal_nan=True), name
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), name
        else:
            assert np.array_equal(got, want), name


# --- TA-Lib on real candles -------------------------------------------------------------------


def assert_close(got: npt.NDArray[np.float64], want: npt.NDArray[np.float64]) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want))
    both = ~np.isnan(want)
    assert both.any()
    np.testing.assert_allclose(got[both], want[both], rtol=1e-9, atol=0.0)


@pytest.mark.parametrize(("ema", "atr", "long"), [(20, 14, 200), (3, 1, 1), (50, 30, 1440), (2, 2, 2)])
def test_batch_matches_talib(btc: Bars, ema: int, atr: int, long: int) -> None:
    s = btc.batch(kp(ema=ema, atr=atr, long=long))
    close = btc.close.astype(np.float64)
    high = btc.high.astype(np.float64)
    low = btc.low.astype(np.float64)
    assert_close(s.ema, talib.EMA(close, ema))
    assert_close(s.long, talib.EMA(close, long))
    assert_close(s.atr, talib.ATR(high, low, close, atr))


# --- batch == incremental ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "p",
    [
        kp(confirm=0, hyst=0),
        kp(confirm=3, hyst=50),
        kp(confirm=3, hyst=0, mult=1.5, long=1440),
        kp(ema=10, atr=5, confirm=1, hyst=50, mult=1.0, long=50),
    ],
    ids=["c0-h0", "c3-h50", "c3-h0", "c1-h50-short"],
)
def test_batch_equals_incremental_on_real_candles(btc: Bars, p: KeltnerParams) -> None:
    series = btc.batch(p)
    assert_series_equal(series, incremental(btc.candles(), p))
    # The data must exercise the excursion logic, or this test proves little.
    assert series.below_run.max() > 0
    assert series.above_run.max() > 0
    if p.confirm_closes > 0:
        assert series.buy_armed.any()
        assert series.sell_armed.any()
    else:
        assert not series.buy_armed.any()
        assert not series.sell_armed.any()


def test_state_at_round_trip(btc: Bars) -> None:
    p = kp(confirm=3, hyst=50)
    candles = btc.candles()
    series = btc.batch(p)
    states = incremental(candles, p)
    for i in [0, 1, 13, 14, 19, 199, 200, 1999, len(candles) - 2]:
        got = state_at(series, i)
        assert state_key(got) == state_key(states[i])
        assert all(type(getattr(got, f)) is type(getattr(states[i], f)) for f in FIELDS)
        # The rebuilt state carries on exactly like the original one.
        nxt = candles[i + 1]
        assert state_key(step(got, nxt, p)) == state_key(step(states[i], nxt, p))
    assert state_key(state_at(series, -1)) == state_key(states[-1])


# --- update -----------------------------------------------------------------------------------


def test_update_applies_only_new_candles(btc: Bars) -> None:
    p = kp(confirm=2, hyst=50)
    candles = btc.candles()[:600]
    whole = update(initial_state(), candles, p)
    assert whole.count == 600
    assert whole.last_ts_ms == candles[-1].ts_ms

    # A live engine sees overlapping 200-candle windows.
    s = initial_state()
    for end in range(1, 601, 37):
        s = update(s, candles[max(0, end - 200) : end], p)
    s = update(s, candles[400:600], p)
    assert state_key(s) == state_key(whole)


def test_update_with_nothing_new_returns_the_same_state(btc: Bars) -> None:
    p = kp()
    candles = btc.candles()[:300]
    s = update(initial_state(), candles, p)
    assert update(s, candles[-200:], p) is s
    assert update(s, candles[:10], p) is s
    assert update(s, [], p) is s


def test_step_refuses_a_candle_that_is_not_newer() -> None:
    p = kp()
    s = step(initial_state(), Candle(60_000, 100, 101, 99, 100), p)
    with pytest.raises(ValueError, match="not newer"):
        step(s, Candle(60_000, 100, 101, 99, 100), p)
    with pytest.raises(ValueError, match="not newer"):
        step(s, Candle(0, 100, 101, 99, 100), p)


def test_batch_refuses_unordered_timestamps() -> None:
    a = np.array([100.0, 101.0, 102.0])
    with pytest.raises(ValueError, match=r"ts_ms\[2\]"):
        batch(np.array([0, 60_000, 60_000], dtype=np.int64), a, a, a, kp())
    with pytest.raises(ValueError, match="same length"):
        batch(np.array([0, 60_000], dtype=np.int64), a, a, a, kp())


def test_periods_must_be_positive() -> None:
    a = np.array([100.0])
    with pytest.raises(ValueError, match="periods"):
        batch(np.array([0], dtype=np.int64), a, a, a, kp(atr=0))
    with pytest.raises(ValueError, match="periods"):
        step(initial_state(), Candle(0, 100, 100, 100, 100), kp(long=0))


def test_empty_batch() -> None:
    e = np.empty(0)
    s = batch(np.empty(0, dtype=np.int64), e, e, e, kp())
    assert len(s) == 0
    assert s.ema.shape == (0,)


# --- values by hand ---------------------------------------------------------------------------


def flat(ts: int, close: int) -> Candle:
    return Candle(ts, close, close, close, close)


def test_ema_by_hand() -> None:
    # EMA(3) of 1..5: SMA seed (1+2+3)/3 = 2 at index 2, then k = 0.5: 3, 4.
    p = kp(ema=3, atr=1, long=5)
    states = incremental([flat(i, i + 1) for i in range(5)], p)
    assert [s.ema for s in states[2:]] == [2.0, 3.0, 4.0]
    assert all(math.isnan(s.ema) for s in states[:2])
    assert [s.ema_sum for s in states] == [1.0, 3.0, 6.0, 6.0, 6.0]
    assert states[-1].long == 3.0  # SMA(5) seed of 1..5
    assert all(math.isnan(s.long) for s in states[:4])
    # ready with the EMA and the ATR: the long average, which no decision reads, is not waited for
    assert [s.ready for s in states] == [False, False, True, True, True]


def test_atr_by_hand() -> None:
    # (high, low, close); TR from candle 1: max(h-l, |h-pc|, |l-pc|).
    hlc = [(12, 8, 10), (13, 9, 12), (20, 15, 16), (14, 13, 13), (15, 11, 14)]
    candles = [Candle(i, c, h, lo, c) for i, (h, lo, c) in enumerate(hlc)]
    # TR: 4 (h-l), 8 (h-pc=20-12), 3 (|l-pc|=|13-16|), 4 (h-l).
    states = incremental(candles, kp(ema=1, atr=2, long=1))
    assert math.isnan(states[0].atr)
    assert math.isnan(states[1].atr)
    assert states[2].atr == (4 + 8) / 2  # the mean of TR_1..TR_n at index n
    assert states[2].atr_sum == 12.0
    assert states[3].atr == (6.0 * 1 + 3) / 2
    assert states[4].atr == (4.5 * 1 + 4) / 2
    assert states[4].atr_ppm == 4.25 / 14 * 1e6
    assert math.isnan(states[1].atr_ppm)


# Keltner(ema 3, atr 1, multiplier 0.25): every value below is exact in binary.
#   i  h   l   c   ema    atr  lower  upper
#   2 100 100 100  100     0   100    100
#   3 100  92  92   96     8    94     98    92 < 94: below 1
#   4  92  84  84   90     8    88     92    84 < 88: below 2
#   5  89  85  89   89.5   5    88.25  90.75 89 > 88.25: incursion after 2 -> armed, 89 < ema
#   6  95  89  95   92.25  6    90.75  93.75 95 >= ema: cleared; 95 > upper: above 1
HAND = [
    (100, 100, 100),
    (100, 100, 100),
    (100, 100, 100),
    (100, 92, 92),
    (92, 84, 84),
    (89, 85, 89),
    (95, 89, 95),
]


def hand_candles(mirror: bool = False) -> list[Candle]:
    if mirror:  # p -> 200 - p swaps the bands and the sides
        return [Candle(i, 200 - c, 200 - lo, 200 - h, 200 - c) for i, (h, lo, c) in enumerate(HAND)]
    return [Candle(i, c, h, lo, c) for i, (h, lo, c) in enumerate(HAND)]


def test_excursion_and_incursion_by_hand() -> None:
    p = kp(ema=3, atr=1, mult=0.25, confirm=2, hyst=0, long=1)
    states = incremental(hand_candles(), p)
    assert [s.ema for s in states[2:]] == [100.0, 96.0, 90.0, 89.5, 92.25]
    assert [s.atr for s in states[1:]] == [0.0, 0.0, 8.0, 8.0, 5.0, 6.0]
    assert [s.lower for s in states[2:]] == [100.0, 94.0, 88.0, 88.25, 90.75]
    assert [s.upper for s in states[2:]] == [100.0, 98.0, 92.0, 90.75, 93.75]
    assert all(math.isnan(s.lower) and math.isnan(s.upper) for s in states[:2])
    assert [s.below_run for s in states] == [0, 0, 0, 1, 2, 0, 0]
    assert [s.buy_armed for s in states] == [False] * 5 + [True, False]
    assert [s.above_run for s in states] == [0] * 6 + [1]
    assert not any(s.sell_armed for s in states)

    mirrored = incremental(hand_candles(mirror=True), p)
    assert [s.above_run for s in mirrored] == [s.below_run for s in states]
    assert [s.sell_armed for s in mirrored] == [s.buy_armed for s in states]
    assert [s.below_run for s in mirrored] == [s.above_run for s in states]

    # Confirmation needs 3 closes below now: the incursion at 5 arms nothing.
    unconfirmed = incremental(hand_candles(), dataclasses.replace(p, confirm_closes=3))
    assert not any(s.buy_armed for s in unconfirmed)
    assert [s.below_run for s in unconfirmed] == [0, 0, 0, 1, 2, 0, 0]
    # Without confirmation there is never an arm.
    assert not any(s.buy_armed for s in incremental(hand_candles(), dataclasses.replace(p, confirm_closes=0)))


def test_hysteresis_by_hand() -> None:
    # h = 2%: at 5, 89 <= 88.25 * 1.02 = 90.015 sits inside the margin: nothing changes.
    # At 6, 95 > 90.75 * 1.02 ends the excursion and arms, but 95 >= ema clears it at once.
    p = kp(ema=3, atr=1, mult=0.25, confirm=2, hyst=20_000, long=1)
    states = incremental(hand_candles(), p)
    assert [s.below_run for s in states] == [0, 0, 0, 1, 2, 2, 0]
    assert not any(s.buy_armed for s in states)
    # 95 > 93.75 but not > 93.75 * 1.02: not an excursion above.
    assert [s.above_run for s in states] == [0] * 7


def test_counters_wait_for_the_bands() -> None:
    # Falling closes sit below the lagging EMA (the band itself with multiplier 0), but the
    # ATR (period 5) is not ready before candle 5: no counting until then.
    candles = [flat(i, 100 - 10 * i) for i in range(6)]
    states = incremental(candles, kp(ema=3, atr=5, mult=0.0, confirm=1, long=1))
    assert all(s.prev_close < s.ema for s in states[2:])
    assert [s.below_run for s in states] == [0] * 5 + [1]
    assert [math.isnan(s.lower) for s in states] == [True] * 5 + [False]


def test_batch_matches_the_hand_values() -> None:
    p = kp(ema=3, atr=1, mult=0.25, confirm=2, hyst=0, long=1)
    candles = hand_candles()
    assert_series_equal(bars_of(candles).batch(p), incremental(candles, p))


# --- property: batch == incremental on random candles -----------------------------------------


@st.composite
def random_bars(draw: st.DrawFn) -> list[Candle]:
    """Return a valid candle series whose drift changes a few times (excursions need trends)."""
    n = draw(st.integers(0, 120))
    # Four bytes a candle in one draw: drawing 5 integers per candle made generation dominate.
    raw = draw(st.binary(min_size=4 * n, max_size=4 * n))
    drifts = draw(st.lists(st.integers(-40, 40), min_size=1, max_size=8))
    price = draw(st.integers(20, 3000))
    ts = draw(st.integers(0, 10**12))
    candles = []
    for k in range(n):
        b0, b1, b2, b3 = raw[4 * k : 4 * k + 4]
        ts += (1 + b0 % 3) * 60_000  # gaps of a minute or two happen
        o = max(1, price + (b0 // 3) % 7 - 3)  # open near the previous close
        c = max(1, o + drifts[k * len(drifts) // n] + b1 % 41 - 20)
        candles.append(Candle(ts, o, max(o, c) + b2 % 16, max(1, min(o, c) - b3 % 16), c))
        price = c
    return candles


params = st.builds(
    KeltnerParams,
    enabled=st.just(True),
    ema_period=st.integers(1, 8),
    atr_period=st.integers(1, 8),
    multiplier=st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]), st.floats(0.0, 2.5)),
    confirm_closes=st.integers(0, 3),
    hysteresis_ppm=st.one_of(st.just(0), st.integers(0, 5_000), st.integers(0, 50_000)),
    long_period=st.integers(1, 12),
)


@settings(max_examples=1000, deadline=None)
@given(candles=random_bars(), p=params, cut=st.integers(0, 120))
def test_batch_equals_incremental_on_random_candles(
    candles: list[Candle], p: KeltnerParams, cut: int
) -> None:
    series = bars_of(candles).batch(p)
    states = incremental(candles, p)
    assert_series_equal(series, states)
    if candles:
        # Updating in two overlapping windows ends in the same state.
        s = update(initial_state(), candles[:cut], p)
        s = update(s, candles[max(0, cut - 5) :], p)
        assert state_key(s) == state_key(states[-1]) == state_key(state_at(series, len(candles) - 1))


# --- speed ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_speed(shared_data: Path) -> None:
    bars = load_bars(shared_data / BTC_1M, None)
    high, low, close = (x.astype(np.float64) for x in (bars.high, bars.low, bars.close))
    p = kp(confirm=3, hyst=50, long=1440)
    batch(bars.ts, high, low, close, p)  # compile or load the cache
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        batch(bars.ts, high, low, close, p)
        best = min(best, time.perf_counter() - t0)
    # The backtester budgets 2M candles/s end to end; the indicators must be a small share.
    assert len(bars.ts) / best > 10_000_000, f"{len(bars.ts)} candles in {best * 1e3:.1f} ms"
