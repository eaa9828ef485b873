"""Where a backtest's market data comes from: CSV files given per symbol, or the seeded synthetic market."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from nutcracker.config import NutcrackerConfig, SymbolConfig
from nutcracker.errors import ConfigError
from nutcracker.marketdata.candles import (
    FILENAME_RE,
    BboArrays,
    CandleArrays,
    TradeArrays,
    load_bbo_csv,
    load_candles_csv,
    load_trades_csv,
    symbol_from_filename,
)
from nutcracker.marketdata.synthetic import synthetic_candles

# a plausible start for the synthetic market of well-known bases; anything else starts at 100
_START_PRICES = {"BTC": Decimal(100_000), "ETH": Decimal(3_000), "SOL": Decimal(150), "BNB": Decimal(600)}


def assign_data(config: NutcrackerConfig, specs: Sequence[str], option: str = "--data") -> dict[str, Path]:
    """Return symbol -> CSV from ``option`` values: ``FILE`` (symbol from its name) or ``SYMBOL=FILE``.

    With one symbol in the config and one file, the file is that symbol's whatever its name.
    """
    symbols = [s.market.symbol for s in config.symbols]
    out: dict[str, Path] = {}
    for spec in specs:
        if "=" in spec and "/" in spec.split("=", 1)[0]:
            symbol, file = spec.split("=", 1)
        elif len(symbols) == 1 and len(specs) == 1:
            symbol, file = symbols[0], spec
            named = FILENAME_RE.match(Path(spec).name)
            if named is not None and f"{named['base']}/{named['quote']}" != symbol:
                other = f"{named['base']}/{named['quote']}"
                raise ConfigError(
                    f"{option} {spec}: the file name says {other} but the config trades {symbol}; give "
                    f"the {symbol} file, or write {option} {symbol}={spec} if the name is wrong"
                )
        else:
            file = spec
            try:
                symbol = symbol_from_filename(file)
            except ValueError as e:
                raise ConfigError(f"{option} {spec}: {e}; write {option} BASE/QUOTE={spec}") from e
        if symbol not in symbols:
            raise ConfigError(f"{option} {spec}: {symbol} is not in the config (it has {', '.join(symbols)})")
        if symbol in out:
            raise ConfigError(
                f"{option} {spec}: {symbol} already has {out[symbol]}; give one file per symbol"
            )
        out[symbol] = Path(file)
    missing = [symbol for symbol in symbols if symbol not in out]
    if option == "--data" and out and missing:
        # A backtest mixing real and synthetic markets measures nothing; refuse rather than guess.
        raise ConfigError(
            f"--data: {', '.join(missing)} has no file (given: {', '.join(out)}); without one it would "
            f"run on the synthetic market: add --data {missing[0]}=FILE for every symbol, or remove "
            "the symbol from the config"
        )
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
            data[market.symbol] = candles = load_candles_csv(path, market.precision, market.symbol)
            source = f"{path}: {len(candles)} candles"
        else:
            start = _START_PRICES.get(market.base, Decimal(100))
            if start < market.tick_size:
                raise ConfigError(
                    f"--synthetic: the synthetic {market.symbol} market starts at {start} {market.quote}, "
                    f"below one tick ({market.tick_size}); give real candles with --data"
                )
            data[market.symbol] = synthetic_candles(
                seed + n, synthetic, start, market.precision, symbol=market.symbol
            )
            source = f"--synthetic {synthetic}"
        _check_warmup(symbol, len(data[market.symbol]), source)
    return data


def _check_warmup(symbol: SymbolConfig, count: int, source: str) -> None:
    """Refuse data shorter than the indicators' warm-up: not one pulse could trade on it."""
    needed = symbol.warmup_candles
    if count < needed:
        k = symbol.keltner
        periods = f"keltner.ema_period = {k.ema_period}, keltner.atr_period = {k.atr_period}"
        raise ConfigError(
            f"{source}: {symbol.market.symbol} needs at least {needed} candles to warm up its indicators "
            f"({periods}); give a longer file or lower the periods"
        )


def load_prints(config: NutcrackerConfig, files: dict[str, Path]) -> dict[str, TradeArrays]:
    """Return the trade prints of the symbols given a ``--trades`` CSV."""
    markets = {s.market.symbol: s.market for s in config.symbols}
    return {
        symbol: load_trades_csv(path, markets[symbol].precision, symbol) for symbol, path in files.items()
    }


def load_quotes(config: NutcrackerConfig, files: dict[str, Path]) -> dict[str, BboArrays]:
    """Return the top-of-book updates of the symbols given a ``--bbo`` CSV."""
    markets = {s.market.symbol: s.market for s in config.symbols}
    return {s: load_bbo_csv(path, markets[s].precision, s) for s, path in files.items()}
