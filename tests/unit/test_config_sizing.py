"""Order sizes as a fraction of rails.max_quote, and the warning when the ladder cannot fit max_base."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_config import EXAMPLE_FILES, grid_config

from nutcracker.config import load_config, parse_config
from nutcracker.core.strategy import _MAX_LATTICE
from nutcracker.errors import ConfigError
from nutcracker.sizing import ladder_fit_warning


def with_grid(**grid: object) -> dict[str, Any]:
    data = grid_config()
    data["symbol"][0]["grid"].pop("order_quote")
    data["symbol"][0]["grid"].update(grid)
    return data


def test_order_fraction_sizes_each_order_from_max_quote() -> None:
    config = parse_config(with_grid(order_fraction="0.125"), source="t.toml")
    symbol = config.symbol[0]
    assert symbol.order_quote_amount() == Decimal("250")  # 2000 × 0.125
    params = symbol.to_params("demo")
    assert params.grid.order_quote_qu == symbol.market.precision.quote_to_qu(Decimal(250))


def test_order_fraction_rounds_down_to_the_quote_unit() -> None:
    data = with_grid(order_fraction="0.1")
    data["symbol"][0]["grid"]["levels"] = 3
    data["symbol"][0]["rails"]["max_quote"] = "333.333333"
    symbol = parse_config(data, source="t.toml").symbol[0]
    assert symbol.order_quote_amount() <= Decimal("33.3333333")
    assert symbol.order_quote_amount() > Decimal("33.33")


@pytest.mark.parametrize("fraction", ["0", "-0.1", "1.5"])
def test_order_fraction_outside_its_range_is_refused_with_the_range(fraction: str) -> None:
    with pytest.raises(ConfigError, match=r"order_fraction"):
        parse_config(with_grid(order_fraction=fraction), source="t.toml")


def test_order_fraction_and_order_quote_together_are_refused() -> None:
    data = with_grid(order_fraction="0.1", order_quote="100")
    with pytest.raises(ConfigError, match=r"order_quote.*order_fraction|order_fraction.*order_quote"):
        parse_config(data, source="t.toml")


def test_an_order_fraction_whose_ladder_exceeds_max_quote_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"rails.max_quote"):
        parse_config(with_grid(order_fraction="0.5"), source="t.toml")  # 6 levels × 1000


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_ladder_can_use_most_of_max_quote(path: Path) -> None:
    for symbol in load_config(path).symbol:
        if symbol.ladder_levels == 1:
            continue  # one order at a time: it reaches the rail over repeated fills
        reach = symbol.ladder_quote()
        if symbol.grid.enabled and not symbol.martingale.enabled:
            # a sliding grid rests grid.levels buys but slides them down a lattice of levels (at most
            # _MAX_LATTICE deep) as lots fill: the lattice is what can reach the rail
            order = symbol.order_quote_amount()
            reach = max(reach, order * min(_MAX_LATTICE, int(symbol.rails.max_quote // order)))
        # a seeded grid buys the base of its seed levels at its start: that is budget in use too
        reach += symbol.grid.seed_levels * symbol.order_quote_amount()
        assert reach >= Decimal("0.9") * symbol.rails.max_quote, symbol.market.symbol


def test_the_fit_warning_names_how_many_levels_max_base_lets_through() -> None:
    data = grid_config()  # 6 × 200 USDT, max_base 0.03 BTC
    symbol = parse_config(data, source="t.toml").symbol[0]
    warning = ladder_fit_warning(symbol, Decimal("28000"))
    assert warning is not None
    assert "rails.max_base" in warning
    assert "4 of 6" in warning
    assert "\n" not in warning
    assert ladder_fit_warning(symbol, Decimal("60000")) is None


def test_the_fit_warning_counts_the_seeds_first() -> None:
    data = copy.deepcopy(grid_config())  # 6 × 200 USDT, max_base 0.03 BTC
    data["symbol"][0]["rails"].update(max_base="0.051", max_quote="3000")
    data["symbol"][0]["grid"]["seed_levels"] = 5
    symbol = parse_config(data, source="t.toml").symbol[0]
    # at 28,000 the 5 seeds take 0.0357 BTC of the 0.051: two ladder levels fit after them
    warning = ladder_fit_warning(symbol, Decimal("28000"))
    assert warning is not None
    assert "its 5 seeds and the buy ladder need about" in warning
    assert "only 2 of 6 levels (after 5 of 5 seeds)" in warning
    assert "grid.seed_levels" in warning
    data["symbol"][0]["grid"]["seed_levels"] = 0
    assert ladder_fit_warning(parse_config(data, source="t.toml").symbol[0], Decimal("28000")) is None


def test_the_fit_warning_is_silent_when_the_ladder_fits() -> None:
    data = copy.deepcopy(grid_config())
    data["symbol"][0]["rails"]["max_base"] = "1"
    assert ladder_fit_warning(parse_config(data, source="t.toml").symbol[0], Decimal("28000")) is None


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_ladder_fits_max_base_down_to_a_2022_low(path: Path) -> None:
    low = {"BTC": Decimal("15500"), "ETH": Decimal("1000")}
    for symbol in load_config(path).symbol:
        assert ladder_fit_warning(symbol, low[symbol.market.base]) is None
