"""The seeded synthetic market: deterministic, valid, fast, and with the features the demo needs."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutcracker.core.units import Precision
from nutcracker.marketdata import (
    check_candles,
    gaps,
    load_candles_csv,
    synthetic_candles,
    synthetic_market,
    write_candles_csv,
)
from nutcracker.marketdata.synthetic import DEFAULT_START_TS_MS

BTC = Precision(tick=Decimal("0.01"), lot=Decimal("0.00001"))
FIELDS = ("ts_ms", "open", "high", "low", "close", "volume")


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), n=st.integers(1, 3_000))
def test_the_same_seed_gives_identical_arrays(seed: int, n: int) -> None:
    a = synthetic_candles(seed, n, Decimal("60000"), BTC)
    b = synthetic_candles(seed, n, Decimal("60000"), BTC)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(1, 5_000),
    start=st.sampled_from([Decimal("60000"), Decimal("2500.5"), Decimal("0.35"), Decimal("1")]),
    interval_ms=st.sampled_from([60_000, 300_000, 3_600_000]),
)
def test_every_synthetic_series_is_a_valid_candle_series(
    seed: int, n: int, start: Decimal, interval_ms: int
) -> None:
    precision = Precision(tick=Decimal("0.0001") if start < 10 else Decimal("0.01"), lot=Decimal("0.001"))
    a = synthetic_candles(seed, n, start, precision, interval_ms=interval_ms)
    check_candles(a)  # increasing, aligned, positive, low <= open/close <= high, volume >= 0
    assert len(a) == n
    assert a.interval_ms == interval_ms
    assert gaps(a) == []
    assert (a.low >= 1).all()
    assert (a.high >= np.maximum(a.open, a.close)).all()
    assert (a.low <= np.minimum(a.open, a.close)).all()
    assert np.isfinite(a.volume).all()
    assert (a.volume > 0).all()
    assert (a.open[1:] == a.close[:-1]).all()  # each bar opens where the previous closed
    assert a.open[0] == precision.price_to_ticks(start)
    assert np.array_equal(np.round(a.volume, 3), a.volume)  # volume on the lot's decimals


def test_different_seeds_give_different_markets() -> None:
    a = synthetic_candles(1, 1_000, Decimal("60000"), BTC)
    b = synthetic_candles(2, 1_000, Decimal("60000"), BTC)
    assert not np.array_equal(a.close, b.close)


def test_timestamps_start_at_the_given_time_on_the_bar_grid() -> None:
    a = synthetic_candles(7, 500, Decimal("60000"), BTC)
    assert a.ts_ms[0] == DEFAULT_START_TS_MS
    b = synthetic_candles(7, 500, Decimal("60000"), BTC, start_ts_ms=3_600_000, interval_ms=300_000)
    assert b.ts_ms.tolist() == [3_600_000 + 300_000 * i for i in range(500)]


def test_100k_candles_take_under_a_second_of_cpu() -> None:
    best = float("inf")
    for _ in range(2):
        t0 = time.process_time()
        a = synthetic_candles(42, 100_000, Decimal("60000"), BTC)
        best = min(best, time.process_time() - t0)
    assert len(a) == 100_000
    assert best < 1.0, f"took {best:.3f} s of CPU"


def test_the_market_has_calm_and_wild_stretches_trends_both_ways_and_wicks() -> None:
    a = synthetic_candles(3, 100_000, Decimal("60000"), BTC)
    x = np.log(a.close.astype(float))
    r = np.diff(x)
    window = 500
    vol = r[: len(r) // window * window].reshape(-1, window).std(axis=1)
    assert vol.max() / vol.min() > 3  # volatility regimes
    moves = x[window::window] - x[:-window:window]
    assert (moves > 0.01).any()
    assert (moves < -0.01).any()  # trends up and down
    body_top = np.maximum(a.open, a.close)
    body_bottom = np.minimum(a.open, a.close)
    assert (a.high > body_top).mean() > 0.5  # upper wicks are common
    assert (a.low < body_bottom).mean() > 0.5
    assert 0.25 < a.close[-1] / a.close[0] < 4  # the lean back toward the start keeps long runs sane
    assert 0.0002 < r.std() < 0.003  # per-minute volatility in a crypto-like range


def _variance_ratio(x: npt.NDArray[np.float64], q: int) -> float:
    r1 = np.diff(x)
    rq = x[q:] - x[:-q]
    return float(rq.var() / (q * r1.var()))


def test_ranges_mean_revert_and_trends_drift_as_the_hidden_state_says() -> None:
    market = synthetic_market(5, 200_000, Decimal("60000"), BTC)
    x = np.log(market.candles.close.astype(float))
    q = 100
    ratios = {0: [], 1: []}  # phase -> variance ratios of long stretches
    edges = np.flatnonzero(np.diff(market.phase)) + 1
    for start, stop in zip(np.r_[0, edges], np.r_[edges, len(x)], strict=True):
        if stop - start >= 6 * q:
            ratios[int(market.phase[start])].append(_variance_ratio(x[start:stop], q))
    assert ratios[1], "no long mean-reverting stretch"
    assert np.median(ratios[1]) < 0.8  # a range gives moves back: variance grows slower than time
    trend = market.phase == 0
    assert (market.drift[trend] > 0).any()
    assert (market.drift[trend] < 0).any()
    assert (market.drift[~trend] == 0).all()
    assert set(np.unique(market.regime).tolist()) == {0, 1, 2}  # calm, normal and wild all occur
    r = np.diff(x)
    by_regime = [r[market.regime[1:] == k].std() for k in range(3)]
    assert by_regime[0] < by_regime[1] < by_regime[2]
    assert np.array_equal(market.candles.close, synthetic_candles(5, 200_000, Decimal("60000"), BTC).close)


def test_a_synthetic_series_round_trips_through_a_file(tmp_path: Path) -> None:
    a = synthetic_candles(11, 2_000, Decimal("2500"), BTC, symbol="ETH/USDT")
    path = tmp_path / "synthetic.csv.gz"
    write_candles_csv(path, a, BTC)
    b = load_candles_csv(path, BTC, symbol="ETH/USDT")
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n": -1}, "n must be"),
        ({"start_ts_ms": DEFAULT_START_TS_MS + 1}, "multiple of interval_ms"),
        ({"start_price": Decimal("0.001")}, "below one tick"),
        ({"substeps": 1}, "substeps"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {"seed": 1, "n": 10, "start_price": Decimal("100"), "precision": BTC, **kwargs}
    with pytest.raises(ValueError, match=words):
        synthetic_candles(**args)  # type: ignore[arg-type]


def test_zero_candles_is_an_empty_series() -> None:
    assert len(synthetic_candles(1, 0, Decimal("100"), BTC)) == 0
