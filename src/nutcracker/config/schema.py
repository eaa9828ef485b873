"""The user's configuration: one frozen pydantic tree, read from TOML, turned into core params.

Money, prices and rates are Decimals here (TOML strings or numbers); ``SymbolConfig.to_params``
converts them exactly into the core's integer units (ticks, lots, quote units, ppm) and refuses
any value off the exchange grid. Every problem surfaces as one ``ConfigError`` that names the field
path (``symbol[0].rails.max_quote``) and says what to change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from nutcracker.config.advisor import AdvisorConfig
from nutcracker.config.problems import (
    _CENT,
    _ceil_cent,
    _decimal,
    _fmt,
    _format_problems,
    _just_above,
    _Problems,
    _show,
)
from nutcracker.config.units import _ExactUnits, _min_cycle_spread_bps
from nutcracker.core.indicators import warmup_candles
from nutcracker.core.orders import MAX_ID_LENGTH
from nutcracker.core.params import (
    GateParams,
    GridParams,
    KeltnerParams,
    MarketMakingParams,
    MarketParams,
    MartingaleParams,
    MeanReversionParams,
    RailParams,
    Spacing,
    SymbolParams,
    ladder_levels,
)
from nutcracker.core.units import Precision
from nutcracker.errors import ConfigError

CLIENT_ORDER_ID_MAX: Final = MAX_ID_LENGTH  # Binance newClientOrderId limit
CLIENT_ORDER_ID_SUFFIX_MAX: Final = 12  # what the engine appends to the prefix
ORDER_ID_PREFIX_MAX: Final = CLIENT_ORDER_ID_MAX - CLIENT_ORDER_ID_SUFFIX_MAX
MAX_LADDER_LEVELS: Final = 100  # exchanges cap open orders per symbol (Binance: 200)

_PPM_PER_BPS: Final = 100
_PPM_PER_PCT: Final = 10_000
_MS_PER_S: Final = 1_000

_ENGINE_ID = re.compile(r"^[a-z0-9]{1,8}$")
_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_SYMBOL = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)$")
_ASSET = re.compile(r"^[A-Z0-9]+$")
_NOT_IN_ORDER_ID = re.compile(r"[^A-Za-z0-9-]")

# Allowed ranges (docs/configuration.md lists them). Every number is bounded before any arithmetic
# uses it, so no value can overflow, lose precision or divide by zero further on.
MAX_AMOUNT: Final = Decimal(10) ** 15  # any amount, in its asset
MAX_UNITS: Final = 10**24  # an amount in the core's units (lots, quote units); per market
MIN_STEP: Final = Decimal("1E-12")  # tick_size and lot_size
MAX_STEP: Final = Decimal(10) ** 6
MAX_OFFSET_BPS: Final = 5_000  # prices at most 50 % away from the reference, so never <= 0
MAX_FEE_BPS: Final = 1_000  # 10 %: far above any exchange's maker fee
MAX_PERIOD: Final = 10_000  # candles of indicator history
MAX_CONFIRM_CLOSES: Final = 1_000
MAX_ATR_MULTIPLE: Final = 100.0
MIN_SCALE, MAX_SCALE = 0.1, 10.0  # martingale volume and step scales
MAX_PCT: Final = 100
MAX_PULSE_INTERVAL_S: Final = 86_400
MAX_COOLDOWN_S: Final = 30 * 86_400

NonNegativeDecimal = Annotated[Decimal, Field(ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
Amount = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT)]
NonNegativeAmount = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT)]
OffsetBps = Annotated[Decimal, Field(ge=0, le=MAX_OFFSET_BPS)]
PositiveOffsetBps = Annotated[Decimal, Field(gt=0, le=MAX_OFFSET_BPS)]
Step = Annotated[Decimal, Field(ge=MIN_STEP, le=MAX_STEP)]
Period = Annotated[StrictInt, Field(ge=1, le=MAX_PERIOD)]
Scale = Annotated[float, Field(strict=True, ge=MIN_SCALE, le=MAX_SCALE, allow_inf_nan=False)]
AtrMultiple = Annotated[float, Field(strict=True, gt=0, le=MAX_ATR_MULTIPLE, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=MAX_PCT)]
Fraction = Annotated[Decimal, Field(gt=0, le=1)]
ShareOfOne = Annotated[Decimal, Field(ge=0, le=1)]
Cooldown = Annotated[StrictInt, Field(ge=0, le=MAX_COOLDOWN_S)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- engine and portfolio -------------------------------------------------------------------------


class EngineConfig(_Section):
    """``[engine]``: settings of this engine instance."""

    id: str = Field(default="demo", examples=["demo"])
    cancel_on_shutdown: StrictBool = True
    pulse_interval_s: PositiveInt = Field(default=60, le=MAX_PULSE_INTERVAL_S)

    @field_validator("id")
    @classmethod
    def _id_fits_order_ids(cls, value: str) -> str:
        if not _ENGINE_ID.match(value):
            raise ValueError(
                f"{_show(value)} is not a valid engine id; use 1 to 8 lowercase letters or digits, "
                'e.g. "demo" (it goes into every client order id)'
            )
        return value


class PortfolioRailsConfig(_Section):
    """``[portfolio.<QUOTE>]``: a budget shared by every symbol that spends this quote asset."""

    max_quote: Amount = Field(examples=["8000"])


# --- one symbol -----------------------------------------------------------------------------------


class MarketConfig(_Section):
    """``[symbol.market]``: where to trade and the exchange's rules for the pair."""

    exchange: str = Field(examples=["binance"])
    symbol: str = Field(examples=["BTC/USDT"])
    tick_size: Step = Field(examples=["0.01"])
    lot_size: Step = Field(examples=["0.00001"])
    min_notional: NonNegativeAmount = Field(examples=["5"])
    maker_fee_bps: NonNegativeDecimal = Field(le=MAX_FEE_BPS, examples=["10"])
    api_url: str | None = None

    @field_validator("exchange")
    @classmethod
    def _exchange_is_ccxt_id(cls, value: str) -> str:
        if not _EXCHANGE_ID.match(value):
            raise ValueError(
                f'{_show(value)} is not a ccxt exchange id; use the lowercase id, e.g. "binance"'
            )
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol_is_ccxt_spot(cls, value: str) -> str:
        if not _SYMBOL.match(value):
            hint = f'"{value.upper()}"' if _SYMBOL.match(value.upper()) else '"BTC/USDT"'
            raise ValueError(
                f"{_show(value)} is not a spot symbol in ccxt form BASE/QUOTE; write it in capitals "
                f"with one slash, e.g. {hint}"
            )
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise ValueError(
                f'{_show(value)} is not an http(s) URL; write e.g. "http://127.0.0.1:8900", '
                "or remove api_url to use the exchange itself"
            )
        return value

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1]

    @property
    def precision(self) -> Precision:
        return Precision(tick=self.tick_size, lot=self.lot_size)


class RailsConfig(_Section):
    """``[symbol.rails]``: the hard inventory and quote limits of this symbol."""

    max_base: Amount = Field(examples=["0.1"])
    max_quote: Amount = Field(examples=["5000"])
    reserve_base: NonNegativeAmount = Decimal(0)
    reserve_quote: NonNegativeAmount = Decimal(0)

    @model_validator(mode="after")
    def _reserves_below_limits(self) -> Self:
        problems = _Problems()
        for side, reserve, limit in (
            ("base", self.reserve_base, self.max_base),
            ("quote", self.reserve_quote, self.max_quote),
        ):
            if reserve >= limit:
                problems.add(
                    f"reserve_{side}",
                    f"reserve_{side}={_fmt(reserve)} is not below max_{side}={_fmt(limit)}, which leaves "
                    f"nothing to trade; lower reserve_{side} below max_{side} (0 = no reserve)",
                )
        problems.raise_any()
        return self


class ProfitConfig(_Section):
    """``[symbol.profit]``: the minimum net profit of a buy->sell cycle."""

    min_net_bps: PositiveOffsetBps = Field(examples=["20"])


class KeltnerConfig(_Section):
    """``[symbol.keltner]``: the volatility bands (EMA mid ± multiplier·ATR) and the buy gate."""

    enabled: StrictBool = False
    ema_period: Period = 20
    atr_period: Period = 14
    multiplier: AtrMultiple = 2.0
    confirm_closes: PositiveInt = Field(default=2, le=MAX_CONFIRM_CLOSES)
    hysteresis_bps: OffsetBps = Decimal(5)
    long_period: Period = 240


class MeanReversionConfig(_Section):
    """``[symbol.mean_reversion]``: buy at the lower band, sell toward the mean."""

    enabled: StrictBool = False


class GridConfig(_Section):
    """``[symbol.grid]``: the buy ladder and its order size (the size every component uses)."""

    enabled: StrictBool = False
    levels: PositiveInt = Field(default=5, le=MAX_LADDER_LEVELS)
    spacing_bps: PositiveOffsetBps | None = None
    spacing_atr: AtrMultiple | None = None
    order_quote: Amount | None = Field(default=None, examples=["100"])
    # The same size as a share of rails.max_quote: the config keeps its budget use at any price.
    order_fraction: Fraction | None = Field(default=None, examples=["0.1"])
    trailing_up: StrictBool = True
    trailing_down: StrictBool = False
    # while flat, buy at the top of book the lots of this many sell levels above the price, as an
    # exchange grid bot does at its start (0 = off: start flat and buy dips only)
    seed_levels: StrictInt = Field(default=0, ge=0, le=MAX_LADDER_LEVELS)


class MartingaleConfig(_Section):
    """``[symbol.martingale]``: deeper ladder levels farther apart and larger, exited together."""

    enabled: StrictBool = False
    volume_scale: Scale = 1.5
    step_scale: Scale = 1.2
    max_steps: PositiveInt = Field(default=4, le=MAX_LADDER_LEVELS - 1)


class MarketMakingConfig(_Section):
    """``[symbol.market_making]``: quote both sides around the mean, skewed toward a target inventory."""

    enabled: StrictBool = False
    half_spread_bps: PositiveOffsetBps = Decimal(25)
    inventory_target: NonNegativeAmount = Decimal(0)
    skew_bps: OffsetBps = Decimal(20)


class DepthConfig(_Section):
    """``[symbol.depth]``: how far behind the top of book orders rest."""

    offset_bps: OffsetBps = Decimal(0)


class VolatilityConfig(_Section):
    """``[symbol.volatility]``: the backstop on ATR% (ATR as a percentage of price); 0 = off."""

    max_atr_pct: Percent = Decimal("1.0")
    min_atr_pct: Percent = Decimal(0)

    @model_validator(mode="after")
    def _band_is_not_empty(self) -> Self:
        if self.max_atr_pct > 0 and self.min_atr_pct >= self.max_atr_pct:
            problems = _Problems()
            problems.add(
                "min_atr_pct",
                f"min_atr_pct={_fmt(self.min_atr_pct)} is not below max_atr_pct={_fmt(self.max_atr_pct)}, "
                "so no buy could ever pass; lower min_atr_pct (0 = off) or raise max_atr_pct",
            )
            problems.raise_any()
        return self


class CooldownConfig(_Section):
    """``[symbol.cooldown]``: seconds to wait after a fill before placing again on that side."""

    buy_s: Cooldown = 0
    sell_s: Cooldown = 0


class OrdersConfig(_Section):
    """``[symbol.orders]``: when to move and when to purge resting orders."""

    requote_bps: OffsetBps = Decimal(10)
    # ...or while it moved less than this share of the level spacing (the grid's step; a lone
    # market-making quote: its spread), whichever is larger; 0 = requote_bps alone
    requote_spacing: ShareOfOne = Decimal("0.25")
    purge_bps: OffsetBps = Decimal(300)


class SymbolConfig(_Section):
    """``[[symbol]]``: everything about one traded pair; convert with ``to_params``."""

    market: MarketConfig
    rails: RailsConfig
    profit: ProfitConfig
    keltner: KeltnerConfig = KeltnerConfig()
    mean_reversion: MeanReversionConfig = MeanReversionConfig()
    grid: GridConfig = GridConfig()
    martingale: MartingaleConfig = MartingaleConfig()
    market_making: MarketMakingConfig = MarketMakingConfig()
    depth: DepthConfig = DepthConfig()
    volatility: VolatilityConfig = VolatilityConfig()
    cooldown: CooldownConfig = CooldownConfig()
    orders: OrdersConfig = OrdersConfig()

    @property
    def ladder_levels(self) -> int:
        """Return how many buy levels the ladder holds (as ``SymbolParams.ladder_levels``)."""
        m, grid = self.martingale, self.grid
        return ladder_levels(m.enabled, m.max_steps, grid.enabled, grid.levels)

    def order_quote_amount(self) -> Decimal:
        """Return one order's quote size: ``grid.order_quote``, or ``order_fraction × rails.max_quote``.

        A fraction rounds down to the market's quote unit, so the ladder never exceeds the rail.
        """
        if self.grid.order_fraction is None:
            return self.grid.order_quote or Decimal(0)
        unit = self.market.precision.quote_unit
        return (self.rails.max_quote * self.grid.order_fraction / unit).to_integral_value(ROUND_FLOOR) * unit

    def ladder_quote(self) -> Decimal:
        """Return the quote the whole buy ladder needs when every level is filled."""
        order_quote = self.order_quote_amount()
        if not self.martingale.enabled:
            return order_quote * self.ladder_levels
        scale = _decimal(self.martingale.volume_scale)
        return sum((order_quote * scale**k for k in range(self.ladder_levels)), Decimal(0))

    def to_params(self, engine_id: str) -> SymbolParams:
        """Return this symbol in the core's exact integer units.

        Raises:
            ConfigError: ``engine_id`` is invalid or a value is off the exchange grid.
        """
        if not _ENGINE_ID.match(engine_id):
            raise ConfigError(
                f"engine.id: {_show(engine_id)} is not a valid engine id; use 1 to 8 lowercase "
                'letters or digits, e.g. "demo"'
            )
        params, problems = self._convert(engine_id)
        if problems:
            raise ConfigError(_format_problems(self.market.symbol, problems))
        return params

    @property
    def warmup_candles(self) -> int:
        """Return how many candles the indicators need before the first pulse that can trade."""
        return warmup_candles(self.keltner.ema_period, self.keltner.atr_period)

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        problems = _Problems()
        self._check_units(problems)
        problems.raise_any()  # the checks below compute with these amounts
        self._check_strategy(problems)
        self._check_cycle_spreads(problems)
        if self.grid.order_quote is not None or self.grid.order_fraction is not None:
            self._check_sizes(self.order_quote_amount(), problems)
        for field, text in self._convert("check")[1]:
            problems.add(field, text)
        problems.raise_any()
        return self

    def _check_units(self, problems: _Problems) -> None:
        """Refuse amounts above ``MAX_UNITS`` of the market's units: the core counts them exactly."""
        market, rails, grid = self.market, self.rails, self.grid
        base = (market.base, market.lot_size, "lot_size")
        quote = (market.quote, market.precision.quote_unit, "quote unit (tick_size × lot_size / 10^6)")
        for field, amount, (asset, unit, what) in (
            ("market.min_notional", market.min_notional, quote),
            ("rails.max_base", rails.max_base, base),
            ("rails.max_quote", rails.max_quote, quote),
            ("rails.reserve_base", rails.reserve_base, base),
            ("rails.reserve_quote", rails.reserve_quote, quote),
            ("grid.order_quote", grid.order_quote or Decimal(0), quote),
            ("market_making.inventory_target", self.market_making.inventory_target, base),
        ):
            limit = unit * MAX_UNITS
            if amount > limit:
                problems.add(
                    field,
                    f"{_fmt(amount)} {asset} is above the largest amount the engine counts exactly on this "
                    f"market, {_fmt(limit)} {asset} (10^24 × the {what} {unit:E}); lower it "
                    f"(allowed: {_fmt(limit)} {asset} at most)",
                )

    def _check_strategy(self, problems: _Problems) -> None:
        grid, martingale = self.grid, self.martingale
        components = (self.keltner, self.mean_reversion, grid, martingale, self.market_making)
        if not any(component.enabled for component in components):
            problems.add(
                "",
                "no strategy component is enabled, so nothing would ever be placed; set enabled = true "
                "in at least one of [symbol.keltner], [symbol.mean_reversion], [symbol.grid], "
                "[symbol.martingale], [symbol.market_making]",
            )
        if grid.spacing_bps is not None and grid.spacing_atr is not None:
            problems.add(
                "grid.spacing_bps",
                "both spacing_bps and spacing_atr are set; keep exactly one (spacing_bps for a fixed step, "
                "spacing_atr for a step in ATR multiples) and remove the other",
            )
        elif (grid.enabled or martingale.enabled) and grid.spacing_bps is None and grid.spacing_atr is None:
            problems.add(
                "grid.spacing_bps",
                'the ladder has no spacing; set exactly one of spacing_bps (e.g. "50") or spacing_atr '
                "(e.g. 1.5) in [symbol.grid]",
            )
        if grid.order_quote is not None and grid.order_fraction is not None:
            problems.add(
                "grid.order_fraction",
                "both order_quote and order_fraction are set; keep exactly one (order_quote for a fixed "
                f"{self.market.quote} size, order_fraction for a share of rails.max_quote)",
            )
        elif grid.order_quote is None and grid.order_fraction is None:
            problems.add(
                "grid.order_quote",
                f"missing; set the {self.market.quote} size of one order in [symbol.grid], e.g. "
                'order_quote = "100", or a share of rails.max_quote, e.g. order_fraction = "0.2" '
                "(every component sizes its orders from it)",
            )
        if grid.seed_levels and not grid.enabled:
            problems.add(
                "grid.seed_levels",
                f"seed_levels={grid.seed_levels} seeds the grid's sell levels, but the grid is off; set "
                "grid.enabled = true or seed_levels = 0",
            )

    def _check_cycle_spreads(self, problems: _Problems) -> None:
        needed = _min_cycle_spread_bps(self.profit.min_net_bps, self.market.maker_fee_bps)
        cannot_earn = (
            f"cannot earn profit.min_net_bps={_fmt(self.profit.min_net_bps)} after two maker fees of "
            f"{_fmt(self.market.maker_fee_bps)} bps: a buy->sell cycle needs a spread of more than "
            f"{_fmt(needed.quantize(_CENT))} bps ((min_net_bps + 2 × maker_fee_bps) / (1 - maker fee))"
        )
        spacing = self.grid.spacing_bps
        if self.grid.enabled and spacing is not None and spacing <= needed:
            problems.add(
                "grid.spacing_bps",
                f"spacing_bps={_fmt(spacing)} {cannot_earn}; raise grid.spacing_bps to at least "
                f"{_fmt(_just_above(needed))} or lower profit.min_net_bps",
            )
        half_spread = self.market_making.half_spread_bps
        if self.market_making.enabled and 2 * half_spread <= needed:
            problems.add(
                "market_making.half_spread_bps",
                f"a spread of 2 × half_spread_bps={_fmt(2 * half_spread)} {cannot_earn}; raise "
                f"market_making.half_spread_bps to at least {_fmt(_just_above(needed / 2))} or lower "
                "profit.min_net_bps",
            )

    def _check_sizes(self, order_quote: Decimal, problems: _Problems) -> None:
        market, rails, martingale, quote = self.market, self.rails, self.martingale, self.market.quote
        min_notional = _fmt(market.min_notional)
        if order_quote < market.min_notional:
            problems.add(
                "grid.order_quote",
                f"{_fmt(order_quote)} {quote} is below market.min_notional {min_notional} {quote}, so no "
                f"order could be placed; raise grid.order_quote to at least {min_notional}",
            )
        elif martingale.enabled and martingale.volume_scale < 1:
            factor = _decimal(martingale.volume_scale) ** martingale.max_steps
            smallest = order_quote * factor
            if smallest < market.min_notional:
                needed = _ceil_cent(market.min_notional / factor)
                raise_order = (
                    f"raise grid.order_quote to at least {_fmt(needed)}, " if needed <= MAX_AMOUNT else ""
                )
                problems.add(
                    "martingale.volume_scale",
                    f"the smallest martingale order (step {martingale.max_steps}: order_quote "
                    f"{_fmt(order_quote)} × {martingale.volume_scale}^{martingale.max_steps} = "
                    f"{_fmt(smallest.quantize(_CENT))} {quote}) is below market.min_notional "
                    f"{min_notional} {quote}; {raise_order}raise volume_scale, or lower max_steps",
                )
        ladder, levels = self.ladder_quote(), self.ladder_levels
        if ladder > rails.max_quote:
            if martingale.enabled:
                scale = martingale.volume_scale
                how = f"{levels} martingale levels from {_fmt(order_quote)}, each {scale}× the one before"
                lower = "grid.order_quote, martingale.volume_scale or martingale.max_steps"
            else:
                how = f"{levels} level{'s' if levels > 1 else ''} × order_quote {_fmt(order_quote)}"
                lower = "grid.order_quote or grid.levels" if self.grid.enabled else "grid.order_quote"
            needed = _ceil_cent(ladder)
            raise_rail = (
                f"raise rails.max_quote to at least {_fmt(needed)} or " if needed <= MAX_AMOUNT else ""
            )
            problems.add(
                "rails.max_quote",
                f"the buy ladder needs {_fmt(needed) if raise_rail else f'{needed:.3E}'} {quote} ({how}) "
                f"but rails.max_quote is "
                f"{_fmt(rails.max_quote)} {quote}; {raise_rail}lower {lower}",
            )
        seeds = self.grid.seed_levels
        if seeds and order_quote * seeds > rails.max_quote:
            fit = int(rails.max_quote // order_quote)
            problems.add(
                "grid.seed_levels",
                f"seed_levels={seeds} needs {_fmt(order_quote * seeds)} {quote} ({seeds} × order_quote "
                f"{_fmt(order_quote)}) but rails.max_quote is {_fmt(rails.max_quote)} {quote}; lower "
                f"grid.seed_levels to at most {fit} or raise rails.max_quote",
            )
        target = self.market_making.inventory_target
        if self.market_making.enabled and target > rails.max_base:
            problems.add(
                "market_making.inventory_target",
                f"{_fmt(target)} {market.base} is above rails.max_base {_fmt(rails.max_base)}; lower "
                "inventory_target to at most rails.max_base",
            )

    def _convert(self, engine_id: str) -> tuple[SymbolParams, list[tuple[str, str]]]:
        market = self.market
        exact = _ExactUnits(market)
        grid, mm, keltner = self.grid, self.market_making, self.keltner
        spacing = Spacing.ATR if grid.spacing_atr is not None else Spacing.BPS
        params = SymbolParams(
            market=MarketParams(
                exchange=market.exchange,
                symbol=market.symbol,
                base=market.base,
                quote=market.quote,
                precision=market.precision,
                min_notional_qu=exact.quote_units("market.min_notional", market.min_notional),
                maker_fee_ppm=exact.ppm("market.maker_fee_bps", market.maker_fee_bps, _PPM_PER_BPS, "bps"),
            ),
            rails=RailParams(
                max_base_lots=exact.lots("rails.max_base", self.rails.max_base),
                max_quote_qu=exact.quote_units("rails.max_quote", self.rails.max_quote),
                reserve_base_lots=exact.lots("rails.reserve_base", self.rails.reserve_base),
                reserve_quote_qu=exact.quote_units("rails.reserve_quote", self.rails.reserve_quote),
            ),
            min_profit_ppm=exact.ppm("profit.min_net_bps", self.profit.min_net_bps, _PPM_PER_BPS, "bps"),
            keltner=KeltnerParams(
                enabled=keltner.enabled,
                ema_period=keltner.ema_period,
                atr_period=keltner.atr_period,
                multiplier=keltner.multiplier,
                confirm_closes=keltner.confirm_closes,
                hysteresis_ppm=exact.ppm(
                    "keltner.hysteresis_bps", keltner.hysteresis_bps, _PPM_PER_BPS, "bps"
                ),
                long_period=keltner.long_period,
            ),
            mean_reversion=MeanReversionParams(enabled=self.mean_reversion.enabled),
            grid=GridParams(
                enabled=grid.enabled,
                levels=grid.levels,
                spacing=spacing,
                spacing_ppm=exact.ppm(
                    "grid.spacing_bps", grid.spacing_bps or Decimal(0), _PPM_PER_BPS, "bps"
                ),
                spacing_atr=grid.spacing_atr or 0.0,
                order_quote_qu=exact.quote_units("grid.order_quote", self.order_quote_amount()),
                trailing_up=grid.trailing_up,
                trailing_down=grid.trailing_down,
                seed_levels=grid.seed_levels if grid.enabled else 0,
            ),
            martingale=MartingaleParams(
                enabled=self.martingale.enabled,
                volume_scale=self.martingale.volume_scale,
                step_scale=self.martingale.step_scale,
                max_steps=self.martingale.max_steps,
            ),
            market_making=MarketMakingParams(
                enabled=mm.enabled,
                half_spread_ppm=exact.ppm(
                    "market_making.half_spread_bps", mm.half_spread_bps, _PPM_PER_BPS, "bps"
                ),
                inventory_target_lots=exact.lots("market_making.inventory_target", mm.inventory_target),
                skew_ppm=exact.ppm("market_making.skew_bps", mm.skew_bps, _PPM_PER_BPS, "bps"),
            ),
            gates=GateParams(
                depth_ppm=exact.ppm("depth.offset_bps", self.depth.offset_bps, _PPM_PER_BPS, "bps"),
                max_atr_ppm=exact.ppm(
                    "volatility.max_atr_pct", self.volatility.max_atr_pct, _PPM_PER_PCT, "%"
                ),
                min_atr_ppm=exact.ppm(
                    "volatility.min_atr_pct", self.volatility.min_atr_pct, _PPM_PER_PCT, "%"
                ),
                cooldown_buy_ms=self.cooldown.buy_s * _MS_PER_S,
                cooldown_sell_ms=self.cooldown.sell_s * _MS_PER_S,
                requote_ppm=exact.ppm("orders.requote_bps", self.orders.requote_bps, _PPM_PER_BPS, "bps"),
                purge_ppm=exact.ppm("orders.purge_bps", self.orders.purge_bps, _PPM_PER_BPS, "bps"),
                requote_spacing_ppm=exact.ppm(
                    "orders.requote_spacing", self.orders.requote_spacing, 1_000_000, "of the spacing"
                ),
            ),
            order_id_prefix=order_id_prefix(engine_id, market.base, market.quote),
        )
        return params, exact.problems.items


# --- the whole file -------------------------------------------------------------------------------


class NutcrackerConfig(_Section):
    """The whole configuration file: the engine, shared quote budgets and one or more symbols."""

    engine: EngineConfig = EngineConfig()
    portfolio: dict[str, PortfolioRailsConfig] = Field(default_factory=dict)
    symbol: tuple[SymbolConfig, ...]
    advisor: AdvisorConfig | None = None  # what the offline advisor may search (config.advisor)

    @property
    def symbols(self) -> tuple[SymbolConfig, ...]:
        return self.symbol

    def to_params(self) -> tuple[SymbolParams, ...]:
        """Return the core params of every symbol, in file order."""
        return tuple(symbol.to_params(self.engine.id) for symbol in self.symbol)

    def to_toml(self) -> str:
        """Return the effective configuration (every default filled in) as TOML that loads back."""
        return "\n".join(_toml_lines(self))

    @model_validator(mode="after")
    def _check_across_symbols(self) -> Self:
        problems = _Problems()
        if not self.symbol:
            problems.add("symbol", "no symbol is configured; add at least one [[symbol]] table")
        seen: dict[tuple[str, str], int] = {}
        for index, symbol in enumerate(self.symbol):
            key = (symbol.market.exchange, symbol.market.symbol)
            if key in seen:
                problems.add(
                    f"symbol[{index}].market.symbol",
                    f"{key[1]} on {key[0]} is already configured in symbol[{seen[key]}]; each market may "
                    "appear once, so remove or merge one of the two [[symbol]] tables",
                )
            seen.setdefault(key, index)
        quotes = sorted({symbol.market.quote for symbol in self.symbol})
        for asset in self.portfolio:
            if asset in quotes:
                continue
            if asset.upper() in quotes:
                fix = f"write it in capitals: [portfolio.{asset.upper()}]"
            elif not _ASSET.match(asset):
                fix = "write the asset code in capitals, e.g. [portfolio.USDT]"
            else:
                fix = f"remove [portfolio.{asset}] or use one of: {', '.join(quotes)}"
            problems.add(f"portfolio.{asset}", f"no symbol quotes {asset!r}; {fix}")
        problems.raise_any()
        return self


def order_id_prefix(engine_id: str, base: str, quote: str) -> str:
    """Return the client order id prefix of a symbol: ``nc{engine_id}{BASE}{QUOTE}``, at most 24 chars.

    The engine appends up to ``CLIENT_ORDER_ID_SUFFIX_MAX`` characters, which keeps the whole id
    within Binance's 36-character ``newClientOrderId`` (``^[.A-Z:/a-z0-9_-]{1,36}$``).
    """
    return _NOT_IN_ORDER_ID.sub("", f"nc{engine_id}{base}{quote}")[:ORDER_ID_PREFIX_MAX]


# --- effective config as TOML ---------------------------------------------------------------------


def _toml_lines(config: NutcrackerConfig) -> Iterator[str]:
    yield from _toml_table("engine", config.engine)
    for asset, rails in config.portfolio.items():
        yield from _toml_table(f"portfolio.{_toml_key(asset)}", rails)
    for symbol in config.symbol:
        yield "[[symbol]]"
        for name in type(symbol).model_fields:
            yield from _toml_table(f"symbol.{name}", getattr(symbol, name))
    if config.advisor is not None:
        yield from config.advisor.toml_lines()


def _toml_table(header: str, section: BaseModel) -> Iterator[str]:
    yield f"[{header}]"
    for name in type(section).model_fields:
        value = getattr(section, name)
        yield f"# {name} is not set" if value is None else f"{name} = {_toml_value(value)}"
    yield ""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f'"{_fmt(value)}"'
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else json.dumps(key)


__all__ = [
    "CLIENT_ORDER_ID_MAX",
    "CLIENT_ORDER_ID_SUFFIX_MAX",
    "MAX_LADDER_LEVELS",
    "ORDER_ID_PREFIX_MAX",
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
    "VolatilityConfig",
    "order_id_prefix",
]
