"""``nutcracker data download``: closed candles through ccxt, paginated, resumable and rate-limited."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nutcracker.errors import EXIT_CONFIG, ConfigError
from nutcracker.ranges import EPOCH_MS, check_option

data_app = typer.Typer(help="Market data: download candles.", no_args_is_help=True)


@data_app.command("download")
def data_download(
    exchange: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance.")],
    symbol: Annotated[str, typer.Option(help="Spot symbol, e.g. BTC/USDT.")],
    since: Annotated[str, typer.Option(help="First candle: a UTC date (2025-05-20) or epoch milliseconds.")],
    out: Annotated[
        Path, typer.Option(help="CSV to write (gzip when it ends in .gz); resumed when it exists.")
    ],
    timeframe: Annotated[str, typer.Option(help="Candle timeframe, e.g. 1m.")] = "1m",
    until: Annotated[str | None, typer.Option(help="Stop before this UTC date or epoch ms.")] = None,
    exchange_url: Annotated[
        str | None,
        typer.Option("--exchange-url", help="Base URL of a Binance-compatible exchange (the simulator)."),
    ] = None,
) -> None:
    """Download closed candles through ccxt: paginated, resumable and rate-limited."""
    import ccxt

    from nutcracker.exchange.ccxt_exchange import rebase_urls
    from nutcracker.marketdata.download import download_candles

    err = Console(stderr=True)
    try:
        since_ms, until_ms = _epoch_ms("--since", since), (_epoch_ms("--until", until) if until else None)
        _check_timeframe(timeframe)
        if until_ms is not None and until_ms <= since_ms:
            raise ValueError(f"--until {until}: is not after --since {since}; give a later --until")
        client = getattr(ccxt, exchange)(
            {
                "enableRateLimit": False,
                "options": {"fetchCurrencies": False, "fetchMarkets": {"types": ["spot"]}},
            }
        )
    except (AttributeError, ValueError, ConfigError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None
    if exchange_url:
        client.urls["api"] = rebase_urls(client.urls["api"], exchange_url.rstrip("/"))
    try:
        # A Binance-compatible server (the sim-exchange) may run on its own clock: a candle is
        # closed by that clock (its klines end with the still-forming candle, as Binance's do).
        now_ms = client.fetch_time if exchange_url else None
        rows = download_candles(client, symbol, timeframe, since_ms, out, until_ms=until_ms, now_ms=now_ms)
    except ccxt.BaseError as e:
        err.print(
            f"✗ download stopped ({type(e).__name__}); run the same command again to resume", markup=False
        )
        raise typer.Exit(code=1) from None
    Console().print(f"{rows} candles written to {out}", markup=False, highlight=False)


def _check_timeframe(timeframe: str) -> None:
    from nutcracker.marketdata.candles import timeframe_to_ms

    try:
        timeframe_to_ms(timeframe)
    except ValueError as e:
        raise ConfigError(f"--timeframe {timeframe}: {e}") from None


def _epoch_ms(option: str, text: str) -> int:
    """Return epoch milliseconds from digits or an ISO UTC date/time, refusing seconds and odd values."""
    from datetime import UTC, datetime

    if text.isdigit():
        value = int(text)
        if 10**9 <= value < 10**11:  # 2001..5138 in seconds, 1970 in milliseconds
            raise ConfigError(
                f"{option} {text}: looks like epoch seconds; give epoch milliseconds "
                f"({value * 1000}) or a date like 2025-05-20"
            )
        check_option(option, value, EPOCH_MS)
        return value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"{option} {text!r}: neither epoch milliseconds nor a date like 2025-05-20") from e
    value = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)
    check_option(option, value, EPOCH_MS)
    return value
