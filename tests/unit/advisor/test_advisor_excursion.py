"""The excursion model: targets from real candles, and a model-vs-baseline comparison that is computed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from nutcracker.advisor.excursion import Excursions, excursions, fit_model, pinball, proposals
from nutcracker.config import load_config
from nutcracker.core.units import Precision
from nutcracker.errors import AdvisorError
from nutcracker.marketdata.candles import load_candles_csv

ROOT = Path(__file__).resolve().parents[3]
KELTNER = load_config(ROOT / "examples" / "grid-btc-usdt.toml").to_params()[0].keltner  # the defaults


def test_pinball_loss_of_exact_predictions_is_zero_and_grows_with_error() -> None:
    actual = np.ones((4, 2))
    exact = np.ones((4, 2, 3))
    assert pinball(exact, actual) == 0.0
    assert pinball(exact + 1, actual) > pinball(exact + 0.5, actual) > 0


def test_model_and_baseline_are_both_scored_out_of_sample_on_real_candles(data_dir: Path) -> None:
    precision = Precision(Decimal("0.01"), Decimal("0.00001"))
    path = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    candles = load_candles_csv(path, precision, "BTC/USDT").slice(0, 6 * 1440)
    data = excursions(candles, KELTNER)
    assert data.features.shape[1] == 3
    assert np.all(data.targets >= 0)
    model = fit_model(data, seed=1)
    assert model["used"] == ("model" if model["pinball_model"] < model["pinball_baseline"] else "baseline")
    assert model["pinball_model"] > 0
    assert model["pinball_baseline"] > 0
    again = fit_model(data, seed=1)
    assert again["pinball_model"] == model["pinball_model"]  # seeded and deterministic
    q = model["excursion_bps"]
    assert q["q50"] <= q["q75"] <= q["q90"]
    bounded = proposals(model, {"grid.spacing_bps": (Decimal(30), Decimal(60))})
    assert Decimal(30) <= Decimal(bounded["grid.spacing_bps"]) <= Decimal(60)


def test_a_model_that_cannot_learn_loses_to_the_baseline_and_says_so() -> None:
    rng = np.random.default_rng(0)
    rows = 3000
    features = rng.normal(size=(rows, 3))  # noise: nothing to learn beyond the quantiles
    targets = np.abs(rng.normal(size=(rows, 2)))
    model = fit_model(Excursions(features, targets), seed=0)
    if model["used"] == "baseline":
        assert "does not beat" in model["verdict"]
    else:  # it may edge the baseline by chance, but never by much on noise
        assert model["pinball_baseline"] - model["pinball_model"] < 0.01


def test_too_few_candles_for_the_model_is_a_clear_error() -> None:
    with pytest.raises(AdvisorError, match="usable candles"):
        fit_model(Excursions(np.zeros((100, 3)), np.zeros((100, 2))), seed=0)
