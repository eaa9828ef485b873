"""A suggestion: the parameter diff in the user's units and the evidence behind it, as a record.

The record is plain JSON, identical for identical inputs and seed (no wall-clock time in it: the
store keeps when it was filed and when it expires beside it), and its id is a digest of it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from nutcracker.advisor.candidates import Candidate, Value, as_patch, symbol_index
from nutcracker.advisor.search import SymbolSearch
from nutcracker.config import NutcrackerConfig
from nutcracker.marketdata.candles import CandleArrays

DISCLAIMER: Final = (
    "Past performance does not predict future results: these figures are backtests of past "
    "candles, and the market may behave differently from now on."
)
METHOD: Final = "walk-forward Optuna TPE search over the backtester (advisor.search); score: advisor.metrics"


def symbol_table_hash(config: NutcrackerConfig, symbol: str) -> str:
    """Return a digest of the symbol's effective config: a suggestion applies only to the table it saw."""
    table = config.symbol[symbol_index(config, symbol)]
    return hashlib.sha256(table.model_dump_json().encode()).hexdigest()[:16]


def _text(value: Value) -> str | float | int:
    return str(value) if isinstance(value, Decimal) else value


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _window(candles: CandleArrays, start: int, stop: int) -> dict[str, Any]:
    return {
        "first": _iso(int(candles.ts_ms[start])),
        "last": _iso(int(candles.ts_ms[stop - 1])),
        "candles": stop - start,
    }


def _diff(current: Candidate, suggested: Candidate) -> dict[str, dict[str, str | float | int]]:
    return {
        name: {"from": _text(current[name]), "to": _text(value)}
        for name, value in sorted(suggested.items())
        if value != current.get(name)
    }


@dataclass(frozen=True, slots=True)
class Advice:
    """What the advisor says about one symbol: a suggestion record, or that the parameters hold."""

    symbol: str
    record: dict[str, Any]
    suggests: bool

    @property
    def id(self) -> str:
        return str(self.record["id"])

    def to_json(self) -> str:
        return json.dumps(self.record, sort_keys=True, indent=2)


def advice(
    config: NutcrackerConfig,
    search: SymbolSearch,
    candles: CandleArrays,
    *,
    source: str,
    model: dict[str, Any] | None = None,
    history: dict[str, Any] | None = None,
    method: str = METHOD,
) -> Advice:
    """Return the advice of one symbol's search: its evidence, and the patch only when it beats current."""
    folds = [
        {
            "fold": f.fold.index + 1,
            "train": _window(candles, *f.fold.train),
            "test": _window(candles, *f.fold.test),
            "winner": {k: _text(v) for k, v in sorted(f.best.items())},
            "in_sample": {"current": f.current_train.as_dict(), "suggested": f.best_train.as_dict()},
            "out_of_sample": {"current": f.current_test.as_dict(), "suggested": f.best_test.as_dict()},
            "beats_current": f.beats,
        }
        for f in search.folds
    ]
    suggests = not search.holds
    record: dict[str, Any] = {
        "symbol": search.symbol,
        "verdict": "suggest" if suggests else "keep",
        "summary": (
            f"the searched parameters beat yours out of sample on {search.wins} of {len(search.folds)} folds"
            + ("" if suggests else "; keep your parameters")
        ),
        "patch": as_patch(search.final) if suggests else {},
        "diff": _diff(search.current, search.final) if suggests else {},
        "current": {k: _text(v) for k, v in sorted(search.current.items())},
        "evidence": {"folds": folds, "wins": search.wins, "folds_total": len(search.folds)},
        "window": _window(candles, 0, len(candles)),
        "final_window": _window(candles, *search.final_window),
        "seed": search.seed,
        "trials_per_study": search.trials,
        "scheme": search.scheme,
        "method": method,
        "source": source,
        "invalid_trials": search.invalid_trials,
        "notes": search.notes,
        "confidence": round(search.wins / len(search.folds), 4),
        "base_config_hash": symbol_table_hash(config, search.symbol),
        "excursion_model": model,
        "history": history,
        "disclaimer": DISCLAIMER,
    }
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]
    record["id"] = f"s{digest}"
    return Advice(search.symbol, record, suggests)
