"""``nutcracker config check``: validate configuration files and print the effective configuration."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from nutcracker.config import NutcrackerConfig, SymbolConfig, load_config
from nutcracker.errors import EXIT_CONFIG, ConfigError

config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(
    files: Annotated[
        list[Path], typer.Argument(help="TOML configuration files to validate.", metavar="FILE")
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Candle CSV ([SYMBOL=]FILE, as for backtest): warn when the buy ladder cannot fit "
            "rails.max_base at its first price.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
) -> None:
    """Validate configuration files and print the effective configuration, defaults filled in."""
    out, err = Console(), Console(stderr=True)
    failed = False
    for file in files:
        try:
            config = load_config(file)
            warnings = _fit_warnings(config, data) if data else []
        except ConfigError as e:
            err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
            failed = True
            continue
        _print_config(out, file, config)
        for warning in warnings:
            err.print(warning, markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(code=EXIT_CONFIG)


def _fit_warnings(config: NutcrackerConfig, data: list[str]) -> list[str]:
    """Return the max_base fit warnings of ``config`` at the given candle files' first prices."""
    from nutcracker.backtest.data import assign_data
    from nutcracker.errors import DataError
    from nutcracker.marketdata.candles import load_candles_csv
    from nutcracker.sizing import data_fit_warnings

    candles = {}
    try:
        for name, path in assign_data(config, data).items():
            symbol = next(s for s in config.symbols if s.market.symbol == name)
            candles[name] = load_candles_csv(path, symbol.market.precision, name)
    except (DataError, OSError) as e:
        raise ConfigError(f"--data: {e}") from None
    return data_fit_warnings(config, candles)


def _print_config(console: Console, file: Path, config: NutcrackerConfig) -> None:
    count = len(config.symbols)
    console.print(
        f"✓ {file}: valid, {count} symbol{'s' if count != 1 else ''}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(_symbols_table(config))
    console.print(Syntax(config.to_toml(), "toml", theme="ansi_dark", background_color="default"))


def _symbols_table(config: NutcrackerConfig) -> Table:
    table = Table(title=f"engine {config.engine.id}", title_justify="left")
    for column in ("symbol", "components", "buy ladder", "rails", "min net"):
        table.add_column(column)
    for symbol in config.symbols:
        market, rails = symbol.market, symbol.rails
        table.add_row(
            f"{market.symbol}\n{market.exchange}",
            "\n".join(_components(symbol)),
            f"{_ladder_shape(symbol)}\n= {_plain(symbol.ladder_quote())} {market.quote}",
            f"{_plain(rails.max_quote)} {market.quote}\n{_plain(rails.max_base)} {market.base}",
            f"{_plain(symbol.profit.min_net_bps)} bps",
        )
    return table


def _ladder_shape(symbol: SymbolConfig) -> str:
    order_quote = _plain(symbol.order_quote_amount())
    if symbol.martingale.enabled:
        return f"{symbol.ladder_levels} steps from {order_quote}, ×{symbol.martingale.volume_scale}"
    return f"{symbol.ladder_levels} × {order_quote}"


def _plain(value: Decimal | int) -> str:
    return f"{Decimal(value).normalize():f}"


def _components(symbol: SymbolConfig) -> list[str]:
    sections = {
        "keltner": symbol.keltner.enabled,
        "mean_reversion": symbol.mean_reversion.enabled,
        "grid": symbol.grid.enabled,
        "martingale": symbol.martingale.enabled,
        "market_making": symbol.market_making.enabled,
    }
    return [name for name, enabled in sections.items() if enabled]
