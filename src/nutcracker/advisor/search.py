"""The walk-forward search: Optuna over the backtester, judged out of sample.

For each fold a seeded TPE study searches the tunable parameters on the training window (the
current parameters are its first trial, so the winner is never worse in sample); the winner and
the current parameters are then backtested on the test window, which the study never saw. A
suggestion is made only when the winners beat the current parameters out of sample on most folds
(a strict majority); the suggested values come from one more study on the latest window
(``folds.final_window``). Otherwise the current parameters hold.

Deterministic: one process, trials in sequence, a seeded sampler per fold (``seed + fold``) and
the backtester's own determinism give the same result for the same inputs and seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from nutcracker.advisor.candidates import Candidate, Value, apply, current_values, one_symbol
from nutcracker.advisor.folds import Fold, Scheme, final_window, walk_forward
from nutcracker.advisor.metrics import Metrics, measure
from nutcracker.backtest.runner import run_backtest
from nutcracker.config import TUNABLES, NutcrackerConfig
from nutcracker.errors import AdvisorError, ConfigError
from nutcracker.marketdata.candles import CandleArrays

if TYPE_CHECKING:
    import optuna

MIN_SEGMENT_TRADING = 60  # candles of trading beyond the indicators' warm-up in every segment


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One fold: the winner on its training window, and both parameter sets in and out of sample."""

    fold: Fold
    best: Candidate
    current_train: Metrics
    best_train: Metrics
    current_test: Metrics
    best_test: Metrics

    @property
    def beats(self) -> bool:
        """Whether the winner scored strictly better than the current parameters out of sample."""
        return self.best_test.score > self.current_test.score


@dataclass(frozen=True, slots=True)
class SymbolSearch:
    """The search's outcome for one symbol."""

    symbol: str
    current: Candidate
    folds: list[FoldResult]
    final: Candidate  # the latest window's winner
    final_window: tuple[int, int]
    trials: int
    seed: int
    scheme: Scheme
    invalid_trials: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def wins(self) -> int:
        return sum(1 for f in self.folds if f.beats)

    @property
    def holds(self) -> bool:
        """Whether the current parameters hold: no out-of-sample majority, or nothing to change."""
        return self.wins * 2 <= len(self.folds) or self.final == self.current


def evaluate(
    config: NutcrackerConfig, symbol: str, candidate: Mapping[str, Value], candles: CandleArrays
) -> Metrics:
    """Backtest ``candidate`` on ``candles`` and return its metrics (``ConfigError`` if invalid)."""
    result = run_backtest(apply(config, symbol, candidate), {symbol: candles})
    return measure(result.traces[symbol])


def _value(trial: optuna.Trial, name: str, low: Decimal, high: Decimal) -> Value:
    """Draw ``name`` on its grain between ``low`` and ``high`` (an index, so floats stay exact)."""
    tunable = TUNABLES[name]
    if tunable.kind == "int":
        return trial.suggest_int(name, int(low), int(high))
    steps = int((high - low) / tunable.grain)
    value = low + tunable.grain * trial.suggest_int(name, 0, steps)
    return value if tunable.kind == "decimal" else float(value)


def decode(name: str, drawn: int, low: Decimal) -> Value:
    """Return the value a trial parameter ``drawn`` stands for (``_value``'s encoding)."""
    tunable = TUNABLES[name]
    if tunable.kind == "int":
        return drawn
    value = low + tunable.grain * drawn
    return value if tunable.kind == "decimal" else float(value)


def index_of(name: str, value: Value, low: Decimal, high: Decimal) -> int | None:
    """Return the trial parameter that draws ``value`` (None: off the grain or out of bounds)."""
    exact = Decimal(str(value))
    if not low <= exact <= high:
        return None
    if TUNABLES[name].kind == "int":
        return int(exact)
    steps = (exact - low) / TUNABLES[name].grain
    return int(steps) if steps == int(steps) else None


def _study(
    config: NutcrackerConfig,
    symbol: str,
    bounds: Mapping[str, tuple[Decimal, Decimal]],
    current: Candidate,
    candles: CandleArrays,
    trials: int,
    seed: int,
    invalid: list[int],
) -> Candidate:
    """Return the best candidate on ``candles`` after ``trials`` seeded trials (current first)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, trials // 3)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    first = {name: index_of(name, current[name], *bounds[name]) for name in bounds if name in current}
    if len(first) == len(bounds) and None not in first.values():
        study.enqueue_trial({k: v for k, v in first.items() if v is not None})

    def objective(trial: optuna.Trial) -> float:
        candidate = {**current, **{name: _value(trial, name, lo, hi) for name, (lo, hi) in bounds.items()}}
        try:
            score = evaluate(config, symbol, candidate, candles).score
        except ConfigError:
            invalid[0] += 1
            raise optuna.TrialPruned() from None  # a patch the config refuses is never a candidate
        return score if math.isfinite(score) else -1e300

    study.optimize(objective, n_trials=trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return dict(current)
    best = max(done, key=lambda t: (t.value, -t.number))  # the earliest of equals: current first
    candidate = dict(current)
    for name, (lo, _hi) in bounds.items():
        candidate[name] = decode(name, int(best.params[name]), lo)
    return candidate


class SearchInputs(NamedTuple):
    """What a search of one symbol starts from: its own config, the tunables' current values and
    bounds, notes on the tunables it does not set, and the walk-forward folds."""

    single: NutcrackerConfig
    current: Candidate
    bounds: dict[str, tuple[Decimal, Decimal]]
    notes: list[str]
    folds: list[Fold]


def search_inputs(config: NutcrackerConfig, symbol: str, n_candles: int) -> SearchInputs:
    """Return a search's inputs for ``symbol`` (one place for ``search_symbol`` and the shared study).

    Raises:
        AdvisorError: no ``[advisor.tune]``, no tunable set for the symbol, too few candles.
    """
    settings = config.advisor
    if settings is None or not settings.tune:
        raise AdvisorError(
            "nothing to search: add an [advisor.tune] table naming the tunable parameters and their "
            'bounds, e.g. "profit.min_net_bps" = ["5", "40"]'
        )
    single = one_symbol(config, symbol)
    current = current_values(single, symbol, list(settings.tune))
    notes = [f"{name} is not set for {symbol}: not searched" for name in settings.tune if name not in current]
    bounds = {name: b for name, b in settings.tune.items() if name in current}
    if not bounds:
        raise AdvisorError(
            f"{symbol}: none of the [advisor.tune] parameters is set for it: nothing to search"
        )
    warmup = single.symbol[0].warmup_candles
    folds = walk_forward(n_candles, settings.folds, settings.scheme, min_segment=warmup + MIN_SEGMENT_TRADING)
    return SearchInputs(single, current, bounds, notes, folds)


def search_symbol(
    config: NutcrackerConfig,
    symbol: str,
    candles: CandleArrays,
    *,
    trials: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> SymbolSearch:
    """Run the walk-forward search for ``symbol`` over ``candles``.

    Raises:
        AdvisorError: no ``[advisor]`` table or no tunable that applies, too few candles, or
            trials < 1.
    """
    if trials < 1:
        raise AdvisorError(f"--trials {trials}: give at least 1 trial per fold")
    single, current, bounds, notes, folds = search_inputs(config, symbol, len(candles))
    settings = config.advisor
    assert settings is not None  # search_inputs refused a config without it
    invalid = [0]
    results = []
    for fold in folds:
        if progress is not None:
            progress(f"{symbol}: fold {fold.index + 1}/{len(folds)}")
        train, test = candles.slice(*fold.train), candles.slice(*fold.test)
        best = _study(single, symbol, bounds, current, train, trials, seed + fold.index, invalid)
        results.append(
            FoldResult(
                fold,
                best,
                evaluate(single, symbol, current, train),
                evaluate(single, symbol, best, train),
                evaluate(single, symbol, current, test),
                evaluate(single, symbol, best, test),
            )
        )
    window = final_window(len(candles), settings.folds, settings.scheme)
    if progress is not None:
        progress(f"{symbol}: latest window")
    final = _study(
        single, symbol, bounds, current, candles.slice(*window), trials, seed + len(folds), invalid
    )
    return SymbolSearch(
        symbol, current, results, final, window, trials, seed, settings.scheme, invalid[0], notes
    )
