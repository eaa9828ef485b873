"""A learned excursion model: how far price runs past a buy entry before it reverts, and how long.

For every candle that closes below its EMA (a buy entered there, below the mean) the targets are
the deepest fall below the entry before a later candle trades back at that EMA (basis points) and
the candles that took, capped at ``HORIZON`` candles (a run that never reverted counts its whole
horizon). The conditions are
the Keltner indicators the strategy already folds: ATR %, band width and trend (EMA against the
long EMA).

A small PyTorch network predicts the 50/75/90 % quantiles of both (pinball loss), trained on the
first 70 % of the candles and scored on the rest, with ``HORIZON`` candles between them so no
target of the training rows sees a test candle. Its out-of-sample pinball loss is compared with
the empirical quantiles of the training rows (the baseline); when it does not beat the baseline
the advisor says so and uses the baseline. torch is imported only inside ``fit_model``.

Proposals (heuristics, shown beside the search's evidence, never applied as they are):
grid spacing = the median excursion, so the next rung sits where half the runs reach;
minimum profit = half of it; martingale step scale = sqrt(q90 / q50), how much deeper the tail is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from nutcracker.core import indicators
from nutcracker.core.params import KeltnerParams
from nutcracker.errors import AdvisorError
from nutcracker.marketdata.candles import CandleArrays

F64 = npt.NDArray[np.float64]
HORIZON: Final = 480  # candles a run may take to revert (8 hours of 1m candles)
QUANTILES: Final = (0.5, 0.75, 0.9)
TRAIN_SHARE: Final = 0.7
MAX_TRAIN_ROWS: Final = 40_000  # neighbouring rows are near copies: a stride keeps a year under 60 s
EPOCHS: Final = 300
MIN_ROWS: Final = 200


@dataclass(frozen=True, slots=True)
class Excursions:
    """Per usable candle: the conditions (n, 3) and the targets (n, 2): log1p(bps), log1p(candles)."""

    features: F64
    targets: F64


def excursions(candles: CandleArrays, keltner: KeltnerParams, horizon: int = HORIZON) -> Excursions:
    """Return the conditions and the excursion targets of every candle with indicators and a future."""
    high, low, close = (a.astype(np.float64) for a in (candles.high, candles.low, candles.close))
    series = indicators.batch(candles.ts_ms, high, low, close, keltner)
    n = len(close)
    level = series.ema  # the mean at entry: what a reversion trades back to
    deepest = close.copy()
    took = np.full(n, horizon, dtype=np.float64)
    open_ = np.ones(n, dtype=np.bool_)
    for k in range(1, horizon + 1):  # one pass per step ahead, over every entry still running
        idx = np.nonzero(open_[: n - k])[0]
        if not len(idx):
            break
        deepest[idx] = np.minimum(deepest[idx], low[idx + k])
        back = high[idx + k] >= level[idx]
        took[idx[back]] = k
        open_[idx[back]] = False
    usable = np.asarray(series.ready, dtype=np.bool_) & (np.arange(n) < n - horizon) & (close < level)
    with np.errstate(divide="ignore", invalid="ignore"):
        atr_pct = series.atr / close * 100
        width = (series.upper - series.lower) / series.ema * 100
        trend = (series.ema - series.long) / series.long * 100
    features = np.column_stack([atr_pct, width, trend])
    usable &= np.all(np.isfinite(features), axis=1)
    depth_bps = np.maximum(close - deepest, 0) / close * 10_000
    targets = np.column_stack([np.log1p(depth_bps), np.log1p(took)])
    return Excursions(features[usable], targets[usable])


def pinball(predicted: F64, actual: F64) -> float:
    """Return the mean pinball loss of quantile predictions (rows, targets, quantiles)."""
    q = np.asarray(QUANTILES, dtype=np.float64)
    error = actual[:, :, None] - predicted
    return float(np.mean(np.maximum(q * error, (q - 1) * error)))


def fit_model(data: Excursions, *, seed: int) -> dict[str, Any]:
    """Train the quantile network and the baseline; return both losses and the proposals' quantiles.

    Raises:
        AdvisorError: too few candles to train and test on.
    """
    import torch

    rows = len(data.targets)
    split = int(rows * TRAIN_SHARE)
    test_start = split + HORIZON  # the purge: training targets look HORIZON candles ahead
    if split < MIN_ROWS or rows - test_start < MIN_ROWS:
        raise AdvisorError(
            f"the excursion model needs at least {2 * MIN_ROWS + HORIZON} usable candles after the "
            f"indicators' warm-up and before the last {HORIZON}; give longer candle files"
        )
    stride = max(1, split // MAX_TRAIN_ROWS)
    x_train, y_train = data.features[:split:stride], data.targets[:split:stride]
    x_test, y_test = data.features[test_start:], data.targets[test_start:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12
    q = np.asarray(QUANTILES, dtype=np.float64)
    baseline = np.quantile(y_train, q, axis=0).T  # (targets, quantiles)
    baseline_loss = pinball(np.broadcast_to(baseline, (len(y_test), *baseline.shape)), y_test)

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # the advisor runs niced beside an engine: one core at most
    torch.use_deterministic_algorithms(True)
    head = torch.nn.Linear(32, 2 * len(q))
    net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.ReLU(), head)
    with torch.no_grad():  # start from the baseline: the network learns what the conditions add
        head.bias.copy_(torch.tensor(baseline.reshape(-1), dtype=torch.float32))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    xt = torch.tensor((x_train - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y_train, dtype=torch.float32)
    qt = torch.tensor(q, dtype=torch.float32)
    for _ in range(EPOCHS):
        optimizer.zero_grad()
        error = yt[:, :, None] - net(xt).reshape(-1, 2, len(q))
        loss = torch.mean(torch.maximum(qt * error, (qt - 1) * error))
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    def predict(x: F64) -> F64:
        with torch.no_grad():
            out = net(torch.tensor((x - mean) / std, dtype=torch.float32)).reshape(-1, 2, len(q))
        return np.sort(out.numpy().astype(np.float64), axis=2)  # quantiles in order

    model_loss = pinball(predict(x_test), y_test)
    wins = model_loss < baseline_loss
    latest = predict(data.features[-1:])[0] if wins else baseline
    return {
        "rows_train": len(y_train),
        "rows_test": len(y_test),
        "pinball_model": round(model_loss, 6),
        "pinball_baseline": round(baseline_loss, 6),
        "used": "model" if wins else "baseline",
        "verdict": (
            "the model beats the empirical quantiles out of sample"
            if wins
            else "the model does not beat the empirical quantiles out of sample: the baseline is used"
        ),
        "excursion_bps": {
            f"q{int(p * 100)}": round(math.expm1(v), 2) for p, v in zip(q, latest[0], strict=True)
        },
        "candles_to_revert": {
            f"q{int(p * 100)}": round(math.expm1(v), 1) for p, v in zip(q, latest[1], strict=True)
        },
    }


def proposals(model: dict[str, Any], bounds: dict[str, tuple[Decimal, Decimal]]) -> dict[str, str]:
    """Return the heuristic proposals of a fitted model, clipped to the user's bounds where given."""
    q50, q90 = (float(model["excursion_bps"][k]) for k in ("q50", "q90"))
    raw = {
        "grid.spacing_bps": Decimal(str(max(1.0, round(q50)))),
        "profit.min_net_bps": Decimal(str(max(1.0, round(q50 / 2)))),
        "martingale.step_scale": Decimal(
            str(round(min(3.0, max(1.0, math.sqrt(q90 / q50) if q50 > 0 else 1.0)), 2))
        ),
    }
    out = {}
    for name, value in raw.items():
        low, high = bounds.get(name, (value, value))
        out[name] = str(min(max(value, low), high))
    return out
