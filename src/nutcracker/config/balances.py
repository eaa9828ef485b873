"""The account a simulated session starts with: a fact of the config that backtest, replay and paper share."""

from __future__ import annotations

from decimal import Decimal

from nutcracker.config.schema import NutcrackerConfig


def starting_balances(config: NutcrackerConfig) -> dict[str, Decimal]:
    """Return the starting account: each symbol's quote rail and reserves, capped by portfolio rails."""
    quote: dict[str, Decimal] = {}
    base: dict[str, Decimal] = {}
    for symbol in config.symbols:
        market, rails = symbol.market, symbol.rails
        quote[market.quote] = quote.get(market.quote, Decimal(0)) + rails.max_quote + rails.reserve_quote
        base[market.base] = base.get(market.base, Decimal(0)) + rails.reserve_base
    for asset, rail in config.portfolio.items():
        if asset in quote:
            reserves = sum(
                (s.rails.reserve_quote for s in config.symbols if s.market.quote == asset), Decimal(0)
            )
            quote[asset] = min(quote[asset], rail.max_quote + reserves)
    return {**base, **quote}
