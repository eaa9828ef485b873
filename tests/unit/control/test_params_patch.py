"""A parameter patch in the config's own names and units becomes a validated ``ChangeParams``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nutcracker.config import NutcrackerConfig, load_config
from nutcracker.control.params_patch import change_params, patched_config, propose_change
from nutcracker.core.commands import Role
from nutcracker.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BTC = "BTC/USDT"


@pytest.fixture
def config() -> NutcrackerConfig:
    return load_config(EXAMPLES / "grid-btc-usdt.toml")


def change(config: NutcrackerConfig, patch: Any, symbol: str = BTC) -> Any:
    return change_params(
        config, symbol, patch, command_id="c-1", actor="carol", role=Role.OWNER, why="tune", ts_ms=5
    )


def test_a_patch_in_user_units_becomes_the_core_parameters_of_the_whole_new_config(
    config: NutcrackerConfig,
) -> None:
    command, new = change(config, {"profit": {"min_net_bps": "15"}, "grid": {"levels": 4}})
    assert new.symbol[0].grid.levels == 4
    assert str(new.symbol[0].profit.min_net_bps) == "15"
    assert new.symbol[0].grid.spacing_bps == config.symbol[0].grid.spacing_bps  # the rest is kept
    assert command.params == new.symbol[0].to_params(new.engine.id)
    assert command.params.grid.levels == 4
    assert command.params.min_profit_ppm != config.symbol[0].to_params(config.engine.id).min_profit_ppm
    assert command.params.market == config.symbol[0].to_params(config.engine.id).market
    table = json.loads(command.config_json)  # the user's units, every default filled in
    assert table["grid"]["levels"] == 4
    assert table["profit"]["min_net_bps"] == "15"
    assert table["market"]["symbol"] == BTC
    assert (command.symbol, command.actor, command.role, command.why, command.ts_ms) == (
        BTC,
        "carol",
        Role.OWNER,
        "tune",
        5,
    )


def test_new_keltner_periods_reach_the_core_parameters(config: NutcrackerConfig) -> None:
    command, _ = change(config, {"keltner": {"ema_period": 50}})
    assert command.params.keltner.ema_period == 50


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"grid": {"levels": -1}}, r"symbol\[0\]\.grid\.levels: must be at least 1, got -1"),
        ({"grid": {"levles": 3}}, r"unknown key 'levles' in symbol\[0\]\.grid; did you mean 'levels'\?"),
        ({"gird": {"levels": 3}}, r"unknown key 'gird' in symbol\[0\]; did you mean 'grid'\?"),
        ({"profit": {"min_net_bps": "abc"}}, r"symbol\[0\]\.profit\.min_net_bps: expected a decimal"),
        (
            {"profit": {"min_net_bps": "90"}},
            r"symbol\[0\]\.grid\.spacing_bps: .*cannot earn",
        ),  # across fields
        ({"market": {"symbol": "ETH/USDT"}}, r"symbol\[0\]\.market: the market cannot change while"),
        ({"grid": 5}, r"symbol\[0\]\.grid: expected a table of keys"),
        ({}, "must be a non-empty table"),
    ],
    ids=["bound", "typo-key", "typo-section", "type", "cross-field", "market", "not-a-table", "empty"],
)
def test_a_bad_patch_is_one_config_error_naming_the_field(
    config: NutcrackerConfig, patch: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        change(config, patch)


def test_an_unconfigured_symbol_is_refused(config: NutcrackerConfig) -> None:
    with pytest.raises(ConfigError, match="ETH/USDT: not configured; the configured symbols are BTC/USDT"):
        patched_config(config, "ETH/USDT", {"grid": {"levels": 3}})


def test_a_proposal_is_checked_like_a_change_and_keeps_the_patch(config: NutcrackerConfig) -> None:
    patch = {"grid": {"levels": 4}}
    proposal = propose_change(
        config, BTC, patch, command_id="p-1", actor="adv", role=Role.ADVISOR, why="calm", ts_ms=1
    )
    assert json.loads(proposal.patch_json) == patch
    with pytest.raises(ConfigError, match="levels"):
        propose_change(
            config,
            BTC,
            {"grid": {"levels": 0}},
            command_id="p",
            actor="a",
            role=Role.ADVISOR,
            why="",
            ts_ms=1,
        )
