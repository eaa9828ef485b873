"""Walk-forward folds: each trains on candles before the candles it tests on, never after.

The candles are cut into ``folds + 1`` equal segments. Fold ``i`` tests on segment ``i + 1`` and
trains on segments ``0..i`` (anchored) or segment ``i`` alone (rolling): a test window never
overlaps nor precedes its training window, so no future candle leaks into a choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nutcracker.errors import AdvisorError

Scheme = Literal["anchored", "rolling"]


@dataclass(frozen=True, slots=True)
class Fold:
    """One train -> test split, as candle index ranges ``[start, stop)``."""

    index: int
    train: tuple[int, int]
    test: tuple[int, int]


def walk_forward(candles: int, folds: int, scheme: Scheme, *, min_segment: int) -> list[Fold]:
    """Return the folds over ``candles`` candles.

    Raises:
        AdvisorError: a segment would hold fewer than ``min_segment`` candles.
    """
    if folds < 1:
        raise AdvisorError(f"folds={folds}: give at least 1 fold")
    size = candles // (folds + 1)
    if size < min_segment:
        raise AdvisorError(
            f"{candles} candles make {folds + 1} segments of {size}, fewer than the {min_segment} each needs "
            f"(indicator warm-up and trading); give more candles or fewer folds ([advisor] folds)"
        )
    bounds = [k * size for k in range(folds + 1)] + [candles]
    out = []
    for i in range(folds):
        start = 0 if scheme == "anchored" else bounds[i]
        out.append(Fold(i, (start, bounds[i + 1]), (bounds[i + 1], bounds[i + 2])))
    return out


def final_window(candles: int, folds: int, scheme: Scheme) -> tuple[int, int]:
    """Return the window the suggestion itself is trained on: the latest, as the folds' windows."""
    size = candles // (folds + 1)
    return (0 if scheme == "anchored" else candles - size, candles)
