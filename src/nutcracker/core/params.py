"""The decision core's parameters: the validated config of one symbol in exact integer units.

Built once from the user's config (``nutcracker.config``) and frozen; the hot path never
parses Decimals. Prices are ticks, quantities lots, money quote units (qu), rates ppm.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nutcracker.core.units import Precision


class Spacing(StrEnum):
    BPS = "bps"  # a fixed fraction of price
    ATR = "atr"  # a multiple of the current ATR: the "smart" grid


@dataclass(frozen=True, slots=True)
class MarketParams:
    exchange: str
    symbol: str
    base: str
    quote: str
    precision: Precision
    min_notional_qu: int
    maker_fee_ppm: int


@dataclass(frozen=True, slots=True)
class RailParams:
    max_base_lots: int  # engine inventory plus open buys may never exceed this
    max_quote_qu: int  # cost of held lots plus open buy notional may never exceed this
    reserve_base_lots: int  # free base the engine must never sell
    reserve_quote_qu: int  # free quote the engine must never spend


@dataclass(frozen=True, slots=True)
class KeltnerParams:
    enabled: bool  # gate: no new buys while closes sit above the upper band; buy at or below the mid
    ema_period: int
    atr_period: int
    multiplier: float
    confirm_closes: int  # closes outside a band that make an excursion
    hysteresis_ppm: int  # margin around a band before a close counts as outside or back inside
    long_period: int  # long-term average (EMA) period


@dataclass(frozen=True, slots=True)
class MeanReversionParams:
    enabled: bool  # buy at the lower band (or after a confirmed excursion/incursion); target the mean


@dataclass(frozen=True, slots=True)
class GridParams:
    enabled: bool
    levels: int
    spacing: Spacing
    spacing_ppm: int  # with Spacing.BPS
    spacing_atr: float  # with Spacing.ATR
    order_quote_qu: int  # size of the first level in quote
    trailing_up: bool
    trailing_down: bool
    seed_levels: int = 0  # flat, buy at the top of book the lots of this many sell levels above it


@dataclass(frozen=True, slots=True)
class MartingaleParams:
    enabled: bool  # pooled exit of the whole sequence at its average cost plus min profit
    volume_scale: float
    step_scale: float
    max_steps: int


@dataclass(frozen=True, slots=True)
class MarketMakingParams:
    enabled: bool
    half_spread_ppm: int
    inventory_target_lots: int
    skew_ppm: int  # price shift at a full rail of inventory deviation from the target


@dataclass(frozen=True, slots=True)
class GateParams:
    depth_ppm: int  # orders sit at least this far behind the top of book (0 = join it)
    max_atr_ppm: int  # volatility backstop: no new buys above this ATR% (0 = off)
    min_atr_ppm: int  # too quiet: no new buys below this ATR% (0 = off)
    cooldown_buy_ms: int
    cooldown_sell_ms: int
    requote_ppm: int  # keep a resting order while its wanted price moved less than this
    purge_ppm: int  # the monitor cancels orders this far from the top of book (0 = off)
    requote_spacing_ppm: int = 0  # ...or less than this share (ppm) of the level spacing, if larger


@dataclass(frozen=True, slots=True)
class SymbolParams:
    market: MarketParams
    rails: RailParams
    min_profit_ppm: int  # net of both maker fees, of the cycle's cost
    keltner: KeltnerParams
    mean_reversion: MeanReversionParams
    grid: GridParams
    martingale: MartingaleParams
    market_making: MarketMakingParams
    gates: GateParams
    order_id_prefix: str  # our client order ids start with this; <= 24 chars

    @property
    def ladder_levels(self) -> int:
        """Return how many buy levels the ladder holds."""
        return ladder_levels(
            self.martingale.enabled, self.martingale.max_steps, self.grid.enabled, self.grid.levels
        )


def ladder_levels(martingale: bool, max_steps: int, grid: bool, grid_levels: int) -> int:
    """Return how many buy levels a ladder holds; the one rule (the config checks budgets with it)."""
    if martingale:
        return max_steps + 1
    if grid:
        return grid_levels
    return 1
