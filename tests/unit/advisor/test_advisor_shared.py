"""The shared study's pieces that every worker must compute alike: the trial set, the shown URL."""

from __future__ import annotations

from decimal import Decimal

from nutcracker.advisor.search import decode
from nutcracker.advisor.shared import display_url, trial_set

BOUNDS = {"profit.min_net_bps": (Decimal(5), Decimal(30)), "grid.levels": (Decimal(2), Decimal(6))}
CURRENT = {"profit.min_net_bps": Decimal(10), "grid.levels": 6}


def test_the_trial_set_is_the_seeds_distinct_draws_current_first_inside_the_bounds() -> None:
    one = trial_set(BOUNDS, CURRENT, 40, seed=3)
    assert one == trial_set(BOUNDS, CURRENT, 40, seed=3)  # every worker enqueues (or checks) the same
    assert one != trial_set(BOUNDS, CURRENT, 40, seed=4)
    assert one[0] == {"profit.min_net_bps": 5, "grid.levels": 6}  # the current: 10 bps is index 5 from 5
    assert len({tuple(sorted(t.items())) for t in one}) == 40
    for t in one:
        assert 5 <= decode("profit.min_net_bps", t["profit.min_net_bps"], Decimal(5)) <= 30
        assert 2 <= t["grid.levels"] <= 6


def test_a_trial_set_larger_than_the_space_is_the_whole_space() -> None:
    small = {"grid.levels": (Decimal(2), Decimal(4))}
    assert sorted(t["grid.levels"] for t in trial_set(small, {"grid.levels": 3}, 50, seed=0)) == [2, 3, 4]


def test_a_storage_url_is_shown_without_its_password() -> None:
    assert display_url("redis://:hunter2@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert display_url("postgresql://bob:pw@db/optuna") == "postgresql://bob:***@db/optuna"
    assert display_url("redis://10.0.0.5:6379/0") == "redis://10.0.0.5:6379/0"
