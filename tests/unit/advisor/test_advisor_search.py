"""The walk-forward search on a real slice of BTC/USDT: folds, leakage, determinism, holds, rails."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutcracker.advisor.candidates import apply
from nutcracker.advisor.folds import walk_forward
from nutcracker.advisor.search import search_symbol
from nutcracker.advisor.suggestion import advice
from nutcracker.config import TUNABLES, NutcrackerConfig, load_config
from nutcracker.errors import AdvisorError, ConfigError
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv

ROOT = Path(__file__).resolve().parents[3]
ADVISOR = """
[advisor]
folds = 3

[advisor.tune]
"profit.min_net_bps" = ["5", "30"]
"grid.levels" = [2, 6]
"""
SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> NutcrackerConfig:
    path = tmp_path_factory.mktemp("cfg") / "grid.toml"
    path.write_text((ROOT / "examples" / "grid-btc-usdt.toml").read_text() + ADVISOR)
    return load_config(path)


@pytest.fixture(scope="module")
def candles(data_dir: Path, config: NutcrackerConfig) -> CandleArrays:
    """Three days of real 1m candles: small enough for a fast search, real enough to trade."""
    path = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    return load_candles_csv(path, config.symbol[0].market.precision, SYMBOL).slice(0, 3 * 1440)


@pytest.mark.parametrize("scheme", ["anchored", "rolling"])
def test_every_fold_trains_only_on_candles_before_its_test(scheme: str) -> None:
    folds = walk_forward(1000, 4, scheme, min_segment=10)  # type: ignore[arg-type]
    assert len(folds) == 4
    for fold in folds:
        assert fold.train[1] <= fold.test[0]
        assert fold.test[0] < fold.test[1] <= 1000
    assert [f.train[0] for f in folds] == ([0, 0, 0, 0] if scheme == "anchored" else [0, 200, 400, 600])


def test_too_few_candles_for_the_folds_is_a_clear_error() -> None:
    with pytest.raises(AdvisorError, match="fewer folds"):
        walk_forward(100, 4, "anchored", min_segment=50)


def _planted(candles: CandleArrays, start: int) -> CandleArrays:
    """Return ``candles`` with a violent oscillation from ``start`` on: a future-only pattern."""
    wave = (1 + 0.03 * np.sin(np.arange(len(candles) - start) / 7)).astype(np.float64)

    def plant(a: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        out = a.copy()
        out[start:] = (a[start:] * wave).astype(np.int64)
        return out

    high = plant(candles.high)
    low = plant(candles.low)
    return CandleArrays(
        candles.ts_ms,
        np.clip(plant(candles.open), low, high),
        high,
        low,
        np.clip(plant(candles.close), low, high),
        candles.volume,
        candles.interval_ms,
        candles.symbol,
    )


def test_a_pattern_only_in_the_last_test_window_changes_no_earlier_choice(
    config: NutcrackerConfig, candles: CandleArrays
) -> None:
    plain = search_symbol(config, SYMBOL, candles, trials=4, seed=3)
    last = plain.folds[-1].fold
    planted = search_symbol(config, SYMBOL, _planted(candles, last.test[0]), trials=4, seed=3)
    for a, b in zip(plain.folds, planted.folds, strict=True):
        assert a.best == b.best  # every winner is chosen on training candles, before the pattern
        assert a.best_train == b.best_train
    assert plain.folds[-1].current_test != planted.folds[-1].current_test  # the pattern was there to see


def test_the_same_seed_gives_the_same_advice_byte_for_byte(
    config: NutcrackerConfig, candles: CandleArrays
) -> None:
    one = advice(config, search_symbol(config, SYMBOL, candles, trials=4, seed=5), candles, source="test")
    two = advice(config, search_symbol(config, SYMBOL, candles, trials=4, seed=5), candles, source="test")
    assert one.to_json() == two.to_json()
    assert one.record["evidence"]["folds_total"] == 3


def test_one_trial_per_study_is_the_current_parameters_so_they_hold(
    config: NutcrackerConfig, candles: CandleArrays
) -> None:
    search = search_symbol(config, SYMBOL, candles, trials=1, seed=0)
    assert all(f.best == search.current for f in search.folds)
    assert search.wins == 0
    assert search.holds
    record = advice(config, search, candles, source="test").record
    assert record["verdict"] == "keep"
    assert record["patch"] == {}
    assert "keep your parameters" in record["summary"]


def test_trials_below_one_and_a_missing_tune_table_are_refused(
    config: NutcrackerConfig, candles: CandleArrays
) -> None:
    with pytest.raises(AdvisorError, match="at least 1 trial"):
        search_symbol(config, SYMBOL, candles, trials=0, seed=0)
    bare = config.model_copy(update={"advisor": None})
    with pytest.raises(AdvisorError, match=r"\[advisor.tune\]"):
        search_symbol(bare, SYMBOL, candles, trials=2, seed=0)


def test_rails_cannot_be_made_tunable(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        (ROOT / "examples" / "grid-btc-usdt.toml").read_text()
        + '[advisor.tune]\n"rails.max_quote" = ["1", "9000"]\n'
    )
    with pytest.raises(ConfigError, match="rails are never tuned"):
        load_config(path)


@settings(max_examples=40, deadline=None)
@given(
    values=st.fixed_dictionaries(
        {
            "profit.min_net_bps": st.integers(1, 400).map(Decimal),
            "grid.levels": st.integers(1, 40),
            "grid.spacing_bps": st.integers(1, 400).map(Decimal),
            "cooldown.buy_s": st.integers(0, 3600),
        }
    )
)
def test_no_candidate_ever_loosens_a_rail(config: NutcrackerConfig, values: dict[str, Decimal | int]) -> None:
    assert set(values) <= set(TUNABLES)
    try:
        patched = apply(config, SYMBOL, values)
    except ConfigError:
        return  # refused as a whole config: never backtested, never suggested
    assert patched.symbol[0].rails == config.symbol[0].rails
    params = patched.symbol[0].to_params(patched.engine.id)
    assert params.rails == config.symbol[0].to_params(config.engine.id).rails


def test_the_engine_and_backtester_do_not_load_torch_or_optuna() -> None:
    code = (
        "import sys, nutcracker.engine.runtime, nutcracker.backtest.runner;"
        "import nutcracker.app.kernel, nutcracker.cli;"
        "print(json.dumps(sorted(m for m in ('torch', 'optuna') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
