"""A seeded synthetic market for the demo and for tests: no data files needed.

The log price follows, bar by bar,

    x[t] = x[t-1] + drift[t] + theta[t] * (m[t] - x[t-1]) + sigma[t] * z[t]

- ``sigma`` comes from a volatility regime (calm / normal / wild) switching by a Markov chain
  with geometric holding times;
- a second chain of market phases gives ``drift`` (trend up, trend down: ``theta = 0``) or a
  mean-reverting stretch (Ornstein-Uhlenbeck, ``drift = 0``, ``theta > 0``) around a mean ``m``
  that itself drifts slowly; trends lean back toward the start price so long runs stay sane;
- ``z`` is Student-t (5 degrees of freedom, unit variance): fat tails, occasional big bars.

Inside each bar a Brownian bridge of ``substeps`` steps joins the previous close to this close,
with the regime's volatility; open/high/low/close are the first/max/min/last of that path after
rounding to the tick, so ``low <= open, close <= high`` always and wicks exist. Volume grows
with the regime and with the bar's range. Everything is drawn from
``numpy.random.default_rng(seed)``: the same seed gives identical arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import numpy.typing as npt

from nutcracker.core.units import Precision
from nutcracker.marketdata.candles import CandleArrays

DEFAULT_START_TS_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC

# per-minute log-return volatility of the regimes calm / normal / wild, their mean holding time
# in bars, and the Markov chain moving between them (rows: from, columns: to; diagonal unused)
_REGIME_SIGMA = np.array([0.00035, 0.0008, 0.0022])
_REGIME_MEAN_BARS = np.array([700.0, 900.0, 200.0])
_REGIME_NEXT = np.array([[0.0, 0.8, 0.2], [0.6, 0.0, 0.4], [0.3, 0.7, 0.0]])

# market phases: a trend (up or down) or a mean-reverting range; the chain between them
_TREND, _RANGE = 0, 1
_PHASE_MEAN_BARS = np.array([500.0, 900.0])
_PHASE_NEXT = np.array([[0.4, 0.6], [1.0, 0.0]])
_T_DF = 5.0


def _segments(
    rng: np.random.Generator, n: int, mean_bars: npt.NDArray[np.float64], pick_next: npt.NDArray[np.float64]
) -> tuple[list[int], list[int]]:
    """Return (state, length) runs covering ``n`` bars, the next state drawn from ``pick_next``."""
    k = len(mean_bars)
    states: list[int] = []
    lengths: list[int] = []
    state = int(rng.integers(k))
    total = 0
    while total < n:
        length = int(rng.geometric(1.0 / mean_bars[state]))
        states.append(state)
        lengths.append(length)
        total += length
        state = int(rng.choice(k, p=pick_next[state]))
    return states, lengths


REGIMES = ("calm", "normal", "wild")
PHASES = ("trend", "range")


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticMarket:
    """Synthetic candles with the hidden state that made them (per bar), for demos and tests.

    ``regime[i]`` indexes ``REGIMES`` (calm / normal / wild); ``phase[i]`` indexes ``PHASES``
    (trend / mean-reverting range); ``drift[i]`` is the trend's log drift per bar (0 in a range).
    """

    candles: CandleArrays
    regime: npt.NDArray[np.int8]
    phase: npt.NDArray[np.int8]
    drift: npt.NDArray[np.float64]


def synthetic_candles(
    seed: int,
    n: int,
    start_price: Decimal,
    precision: Precision,
    start_ts_ms: int = DEFAULT_START_TS_MS,
    interval_ms: int = 60_000,
    *,
    symbol: str = "SYN/USDT",
    substeps: int = 20,
    quote_volume_per_minute: float = 500_000.0,
) -> CandleArrays:
    """Return ``n`` seeded synthetic candles starting at ``start_price`` (see the module doc).

    Prices are integer ticks (>= 1) on ``precision``'s grid; volume is in base units, rounded to
    the lot's decimals; ``quote_volume_per_minute`` sets the typical traded value in a normal bar.
    Same arguments, same arrays.
    """
    return synthetic_market(
        seed,
        n,
        start_price,
        precision,
        start_ts_ms,
        interval_ms,
        symbol=symbol,
        substeps=substeps,
        quote_volume_per_minute=quote_volume_per_minute,
    ).candles


_CHUNK = 16_384  # bars per intrabar chunk


def synthetic_market(
    seed: int,
    n: int,
    start_price: Decimal,
    precision: Precision,
    start_ts_ms: int = DEFAULT_START_TS_MS,
    interval_ms: int = 60_000,
    *,
    symbol: str = "SYN/USDT",
    substeps: int = 20,
    quote_volume_per_minute: float = 500_000.0,
) -> SyntheticMarket:
    """Like ``synthetic_candles``, also returning the regime, phase and drift of every bar."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if interval_ms <= 0 or start_ts_ms % interval_ms:
        raise ValueError(f"start_ts_ms {start_ts_ms} must be a multiple of interval_ms {interval_ms} > 0")
    if not 2 <= substeps <= 1000:
        raise ValueError(f"substeps must be in 2..1000, got {substeps}")
    start_ticks = precision.price_to_ticks(start_price, ROUND_HALF_EVEN)
    if start_ticks < 1:
        raise ValueError(f"start_price {start_price} is below one tick {precision.tick}")
    rng = np.random.default_rng(seed)
    time_scale = np.sqrt(interval_ms / 60_000)
    minutes = interval_ms / 60_000

    # volatility regimes
    states, lengths = _segments(rng, n, _REGIME_MEAN_BARS, _REGIME_NEXT)
    regime = np.repeat(np.array(states, dtype=np.int64), lengths)[:n]
    sigma = _REGIME_SIGMA[regime] * time_scale * rng.uniform(0.8, 1.25, size=len(states)).repeat(lengths)[:n]

    # market phases, each with its own strength
    phases, plengths = _segments(rng, n, _PHASE_MEAN_BARS, _PHASE_NEXT)
    trend_size = rng.uniform(0.4e-4, 2.0e-4, size=len(phases)) * minutes
    theta_size = rng.uniform(0.004, 0.03, size=len(phases)) * min(minutes, 25.0)
    coin = rng.random(size=len(phases))
    z = rng.standard_t(_T_DF, size=n) * np.sqrt((_T_DF - 2.0) / _T_DF)
    mean_walk = rng.standard_normal(size=n)

    x = np.empty(n + 1)
    x[0] = 0.0
    drift = np.zeros(n)
    xt = 0.0
    m = 0.0
    t = 0
    sig_list = sigma.tolist()
    z_list = z.tolist()
    walk_list = mean_walk.tolist()
    for seg, (phase, length) in enumerate(zip(phases, plengths, strict=True)):
        stop = min(t + length, n)
        if phase == _RANGE:
            theta = float(theta_size[seg])
            m = xt
            for i in range(t, stop):
                s = sig_list[i]
                m += 0.15 * s * walk_list[i]
                xt += theta * (m - xt) + s * z_list[i]
                x[i + 1] = xt
        else:
            # lean back toward the start: far above, most trends go down, and vice versa
            p_up = 1.0 / (1.0 + np.exp(4.0 * xt))
            mu = float(trend_size[seg]) * (1.0 if coin[seg] < p_up else -1.0)
            drift[t:stop] = mu
            for i in range(t, stop):
                xt += mu + sig_list[i] * z_list[i]
                x[i + 1] = xt
        t = stop
        if t >= n:
            break

    # intrabar Brownian bridges from x[t-1] to x[t], a chunk of bars at a time: the same draws in
    # the same order as one big array, in a bounded amount of memory
    k = substeps
    frac = np.arange(1, k + 1) / k
    open_, high, low, close = (np.empty(n, dtype=np.int64) for _ in range(4))
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        steps = rng.standard_normal(size=(b - a, k)) * (sigma[a:b] / np.sqrt(k))[:, None]
        walk = np.cumsum(steps, axis=1)
        bridge = walk - frac[None, :] * walk[:, -1:]
        path = np.empty((b - a, k + 1))
        path[:, 0] = x[a:b]
        path[:, 1:] = x[a:b, None] + frac[None, :] * (x[a + 1 : b + 1] - x[a:b])[:, None] + bridge
        path[:, -1] = x[a + 1 : b + 1]  # exactly, so that the next open equals this close
        ticks = np.maximum(np.rint(start_ticks * np.exp(path)), 1.0).astype(np.int64)
        open_[a:b] = ticks[:, 0]
        close[a:b] = ticks[:, -1]
        high[a:b] = ticks.max(axis=1)
        low[a:b] = ticks.min(axis=1)

    # volume: base units, larger in wild regimes and on wide bars
    rel_range = (high - low) / np.maximum(close, 1) / np.maximum(sigma, 1e-12)
    base = quote_volume_per_minute * minutes / float(start_price)
    volume = base * (sigma / (_REGIME_SIGMA[1] * time_scale)) * (0.4 + 0.3 * rel_range)
    volume *= rng.lognormal(0.0, 0.5, size=n)
    lot_exp = precision.lot.normalize().as_tuple().exponent
    decimals = min(max(0, -lot_exp if isinstance(lot_exp, int) else 8), 12)
    volume = np.maximum(np.round(volume, decimals), 10.0**-decimals)  # at least one lot traded

    ts = start_ts_ms + interval_ms * np.arange(n, dtype=np.int64)
    candles = CandleArrays(ts, open_, high, low, close, volume, interval_ms, symbol)
    phase_of_bar = np.repeat(np.array(phases, dtype=np.int8), plengths)[:n]
    return SyntheticMarket(candles, regime.astype(np.int8), phase_of_bar, drift)


__all__ = [
    "DEFAULT_START_TS_MS",
    "PHASES",
    "REGIMES",
    "SyntheticMarket",
    "synthetic_candles",
    "synthetic_market",
]
