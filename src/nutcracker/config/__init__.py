"""The user's configuration: the schema (``schema``), its exact units (``units``), TOML loading (``loading``).

``from nutcracker.config import ...`` is the public door; the modules behind it may move.
"""

from __future__ import annotations

from nutcracker.config.advisor import TUNABLES, AdvisorConfig, Tunable
from nutcracker.config.balances import starting_balances
from nutcracker.config.loading import load_config, parse_config, read_toml
from nutcracker.config.schema import (
    CLIENT_ORDER_ID_MAX,
    CLIENT_ORDER_ID_SUFFIX_MAX,
    MAX_LADDER_LEVELS,
    ORDER_ID_PREFIX_MAX,
    CooldownConfig,
    DepthConfig,
    EngineConfig,
    GridConfig,
    KeltnerConfig,
    MarketConfig,
    MarketMakingConfig,
    MartingaleConfig,
    MeanReversionConfig,
    NutcrackerConfig,
    OrdersConfig,
    PortfolioRailsConfig,
    ProfitConfig,
    RailsConfig,
    SymbolConfig,
    VolatilityConfig,
    order_id_prefix,
)

__all__ = [
    "CLIENT_ORDER_ID_MAX",
    "CLIENT_ORDER_ID_SUFFIX_MAX",
    "MAX_LADDER_LEVELS",
    "ORDER_ID_PREFIX_MAX",
    "TUNABLES",
    "AdvisorConfig",
    "CooldownConfig",
    "DepthConfig",
    "EngineConfig",
    "GridConfig",
    "KeltnerConfig",
    "MarketConfig",
    "MarketMakingConfig",
    "MartingaleConfig",
    "MeanReversionConfig",
    "NutcrackerConfig",
    "OrdersConfig",
    "PortfolioRailsConfig",
    "ProfitConfig",
    "RailsConfig",
    "SymbolConfig",
    "Tunable",
    "VolatilityConfig",
    "load_config",
    "order_id_prefix",
    "parse_config",
    "read_toml",
    "starting_balances",
]
