"""``calm_collector``: startup's objects frozen, its garbage collected first, fewer collections."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from nutcracker.api.collector import YOUNG, calm_collector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_calm_collector_freezes_what_lives_and_collects_less_often() -> None:
    kept = [object() for _ in range(10)]
    calm_collector()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold()[0] == YOUNG


@pytest.mark.usefixtures("restored_collector")
def test_a_cycle_dropped_after_a_freeze_is_collected_at_the_next_call() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    calm_collector()  # the cycle is alive: frozen
    del a, b
    gc.collect()
    assert gone() is not None  # frozen: out of the collector's reach
    calm_collector()
    assert gone() is None
