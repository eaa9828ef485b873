"""Does the buy ladder fit ``rails.max_base`` at a given price? A warning, not an error.

``max_base`` is in base units and ``max_quote`` in quote: a config sized at one price can find its
base rail binding at a lower one, where each level buys more base. The engine then silently places
fewer levels; this says so in one line, at ``config check --data`` and at backtest start.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from nutcracker.config import NutcrackerConfig, SymbolConfig
from nutcracker.marketdata.candles import CandleArrays

_BPS = Decimal(10_000)


def ladder_fit_warning(symbol: SymbolConfig, price: Decimal) -> str | None:
    """Return one line when fewer than every seed and ladder level fits in ``rails.max_base`` at ``price``.

    Levels are estimated ``grid.spacing_bps`` apart below ``price`` (at ``price`` itself with an ATR
    spacing), each sized like the engine sizes it (``order_quote``, scaled by a martingale). A
    seeded grid buys its ``grid.seed_levels`` seeds first, at about ``price``: they take their share
    of the rail before the ladder does.
    """
    if price <= 0:
        return None
    order_quote, levels = symbol.order_quote_amount(), symbol.ladder_levels
    scale = Decimal(str(symbol.martingale.volume_scale)) if symbol.martingale.enabled else Decimal(1)
    step = (symbol.grid.spacing_bps or Decimal(0)) / _BPS
    max_base, base = symbol.rails.max_base, symbol.market.base
    seeds = symbol.grid.seed_levels if symbol.grid.enabled else 0
    held, seeded, fitting = Decimal(0), 0, 0
    for _ in range(seeds):
        held += order_quote / price
        if held <= max_base:
            seeded += 1
    for k in range(levels):
        level_price = price * (1 - step) ** (k + 1) if step < 1 else price
        held += order_quote * scale**k / level_price
        if held <= max_base:
            fitting += 1
    if fitting == levels and seeded == seeds:
        return None
    what, fix, placed = "the buy ladder needs", "grid.levels", f"only {fitting} of {levels} levels"
    if seeds:
        what = f"its {seeds} seeds and the buy ladder need"
        fix += " or grid.seed_levels"
        placed += f" (after {seeded} of {seeds} seeds)"
    return (
        f"warning: {symbol.market.symbol}: at {price:,.2f} {symbol.market.quote} {what} about "
        f"{held:.6f} {base} but rails.max_base is {max_base.normalize():f} {base}: {placed} can be "
        f"placed; raise rails.max_base to at least {held:.6f} or lower grid.order_quote/order_fraction "
        f"or {fix}"
    )


def data_fit_warnings(config: NutcrackerConfig, data: Mapping[str, CandleArrays]) -> list[str]:
    """Return the fit warning of every symbol at its data's first close (where a backtest starts)."""
    warnings = []
    for symbol in config.symbols:
        candles = data.get(symbol.market.symbol)
        if candles is None or len(candles.close) == 0:
            continue
        price = Decimal(int(candles.close[0])) * symbol.market.tick_size
        warning = ladder_fit_warning(symbol, price)
        if warning is not None:
            warnings.append(warning)
    return warnings
