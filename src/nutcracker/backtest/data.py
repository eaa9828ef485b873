"""Where a backtest's candles come from: CSV files given per symbol, or the seeded synthetic market."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from nutcracker.config import NutcrackerConfig
from nutcracker.errors import ConfigError
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv, symbol_from_filename
from nutcracker.marketdata.synthetic import synthetic_candles

# a plausible start for the synthetic market of well-known bases; anything else starts at 100
_START_PRICES = {"BTC": Decimal(100_000), "ETH": Decimal(3_000), "SOL": Decimal(150), "BNB": Decimal(600)}


def assign_data(config: NutcrackerConfig, specs: Sequence[str]) -> dict[str, Path]:
    """Return symbol -> CSV from ``--data`` values: ``FILE`` (symbol from its name) or ``SYMBOL=FILE``.

    With one symbol in the config and one file, the file is that symbol's whatever its name.
    """
    symbols = [s.market.symbol for s in config.symbols]
    out: dict[str, Path] = {}
    for spec in specs:
        if "=" in spec and "/" in spec.split("=", 1)[0]:
            symbol, file = spec.split("=", 1)
        elif len(symbols) == 1 and len(specs) == 1:
            symbol, file = symbols[0], spec
        else:
            file = spec
            try:
                symbol = symbol_from_filename(file)
            except ValueError as e:
                raise ConfigError(f"--data {spec}: {e}; write --data BASE/QUOTE={spec}") from e
        if symbol not in symbols:
            raise ConfigError(f"--data {spec}: {symbol} is not in the config (it has {', '.join(symbols)})")
        out[symbol] = Path(file)
    return out


def load_data(
    config: NutcrackerConfig, files: dict[str, Path], *, synthetic: int, seed: int
) -> dict[str, CandleArrays]:
    """Return every symbol's candles: from its CSV when given, else ``synthetic`` seeded synthetic candles."""
    data: dict[str, CandleArrays] = {}
    for n, symbol in enumerate(config.symbols):
        market = symbol.market
        path = files.get(market.symbol)
        if path is not None:
            data[market.symbol] = load_candles_csv(path, market.precision, market.symbol)
        else:
            start = _START_PRICES.get(market.base, Decimal(100))
            data[market.symbol] = synthetic_candles(
                seed + n, synthetic, start, market.precision, symbol=market.symbol
            )
    return data
