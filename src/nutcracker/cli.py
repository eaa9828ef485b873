"""The command line and composition root: the only module that picks concrete classes.

Each command is a small function that loads what it needs, wires it, and maps our errors to
exit codes (``EXIT_CONFIG`` for a bad configuration). Command groups are sub-apps added below.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from nutcracker.config import NutcrackerConfig, SymbolConfig, load_config
from nutcracker.errors import ConfigError
from nutcracker.ranges import (
    CANDLES,
    EPOCH_MS,
    PULSE_INTERVAL,
    PULSES,
    SEED,
    SPEED,
    SYNTHETIC,
    Range,
    check_option,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nutcracker.core.records import ParamsRow
    from nutcracker.secrets.permissions import KeyPermissions
    from nutcracker.secrets.store import ApiCredentials

EXIT_CONFIG = 2

app = typer.Typer(
    name="nutcracker",
    help="Deterministic, maker-only rebalancing engine for crypto spot accounts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold keys and secrets
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


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
    from nutcracker.marketdata.candles import DataError, load_candles_csv
    from nutcracker.sizing import data_fit_warnings

    candles = {}
    try:
        for name, path in assign_data(config, data).items():
            symbol = next(s for s in config.symbols if s.market.symbol == name)
            candles[name] = load_candles_csv(path, symbol.market.precision, name)
    except (DataError, OSError) as e:
        raise ConfigError(f"--data: {e}") from None
    return data_fit_warnings(config, candles)


def _check_options(*checks: tuple[str, float | None, Range]) -> None:
    """Refuse, before anything runs, an option value outside its documented range: one line, exit 2."""
    try:
        for name, value, allowed in checks:
            check_option(name, value, allowed)
    except ConfigError as e:
        Console(stderr=True).print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None


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


if __name__ == "__main__":
    app()


def _mount_commands() -> None:
    """Add the command groups that live beside their adapters; this module is the composition root."""
    from nutcracker.exchange.sim_cli import sim_exchange
    from nutcracker.secrets.cli_keys import make_keys_app

    app.command("sim-exchange", help="Serve a Binance-compatible simulated exchange on 127.0.0.1.")(
        sim_exchange
    )
    app.add_typer(
        make_keys_app(verifier=_verify_key), name="keys", help="Store and verify exchange API keys."
    )


async def _verify_key(credentials: ApiCredentials) -> KeyPermissions:
    """Probe a key's permissions through ccxt (imported only when a key is checked: ccxt is large)."""
    from nutcracker.exchange.key_probe import verify_key

    return await verify_key(credentials)


_mount_commands()


@app.command("backtest")
def backtest(
    config_file: Annotated[Path, typer.Option("--config", help="TOML configuration file.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory for summary.json, fills.csv, orders.csv, decisions.csv, report.html."
        ),
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Candle CSV: FILE (symbol from its name, or the config's only symbol) or "
            "BASE/QUOTE=FILE. Without it: the built-in seeded synthetic market.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    trades: Annotated[
        list[str] | None,
        typer.Option(
            "--trades",
            help="Trade prints CSV (timestamp,price,amount,side): on the candles it covers, fills come "
            "from the prints, queue-aware. Named like --data.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    bbo: Annotated[
        list[str] | None,
        typer.Option(
            "--bbo",
            help="Top-of-book CSV (timestamp,bid,bid_size,ask,ask_size): the book the pulses it covers "
            "see, and the queue ahead of orders at the best price. Named like --data.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    synthetic: Annotated[
        int, typer.Option(help="Synthetic candles per symbol when no --data is given.")
    ] = 43_200,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    skip: Annotated[
        bool, typer.Option(help="Skip candles on which nothing can change (same results, faster).")
    ] = True,
) -> None:
    """Run the live decision code over historical (or synthetic) candles and write the results."""
    _check_options(("--synthetic", synthetic, SYNTHETIC), ("--seed", seed, SEED))
    from nutcracker.backtest.data import assign_data, load_data, load_prints, load_quotes
    from nutcracker.backtest.output import write_outputs
    from nutcracker.backtest.runner import run_backtest
    from nutcracker.marketdata.candles import DataError

    err = Console(stderr=True)
    try:
        config = load_config(config_file)
        candles = load_data(config, assign_data(config, data or []), synthetic=synthetic, seed=seed)
        prints = load_prints(config, assign_data(config, trades or [], "--trades"))
        quotes = load_quotes(config, assign_data(config, bbo or [], "--bbo"))
    except (ConfigError, DataError, OSError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None
    from nutcracker.sizing import data_fit_warnings

    for warning in data_fit_warnings(config, candles):
        err.print(warning, markup=False, highlight=False, soft_wrap=True)
    total = sum(len(c.ts_ms) for c in candles.values())
    if err.is_terminal:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("backtest", total=total)
            result = run_backtest(
                config,
                candles,
                skip=skip,
                progress=lambda i: progress.update(task, completed=i),
                prints=prints,
                quotes=quotes,
            )
    else:
        result = run_backtest(config, candles, skip=skip, prints=prints, quotes=quotes)
    summary = write_outputs(result, config, out, report=report)
    _print_summary(Console(), summary, out, report)


def _print_summary(console: Console, summary: dict[str, object], out: Path, report: bool) -> None:
    table = Table(title="summary", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key not in ("config", "symbols", "starting_balances"):
            table.add_row(key, str(value))
    console.print(table)
    console.print(
        f"results: {out}/summary.json, fills.csv, orders.csv, decisions.csv", markup=False, highlight=False
    )
    if report:
        console.print(f"report: {(out / 'report.html').resolve()}", markup=False, highlight=False)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its results.")] = Path("out/demo"),
    speed: Annotated[
        float, typer.Option(help="Candles per second (the default takes about a minute).")
    ] = 40.0,
    candles: Annotated[int, typer.Option(help="Candles to replay.")] = 2_400,
) -> None:
    """Run the demo: the live engine replays the example grid on the seeded synthetic market."""
    _check_options(("--speed", speed, SPEED), ("--candles", candles, CANDLES))
    example = Path(__file__).resolve().parents[2] / "examples" / "grid-btc-usdt.toml"
    journal = out / "demo.db"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("demo.db*"):  # every demo starts from a fresh journal
        stale.unlink()
    asyncio_run_replay(example, [], speed, candles, 20_000, 7, journal, out, False)
    Console().print(
        f"status: nutcracker status --journal {journal}", markup=False, highlight=False, soft_wrap=True
    )


data_app = typer.Typer(help="Market data: download candles.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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


@app.command("run")
def run(
    config_file: Annotated[Path, typer.Option("--config", help="TOML configuration file.")],
    mode: Annotated[str, typer.Option(help="replay (simulated exchange), paper or live.")] = "replay",
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="replay: candle CSV per symbol ([SYMBOL=]FILE); default: the synthetic market.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="replay: candles per second of wall time (0: no pause).")
    ] = 20.0,
    candles: Annotated[int | None, typer.Option(help="replay: stop after this many candles.")] = None,
    synthetic: Annotated[
        int, typer.Option(help="replay: synthetic candles per symbol without --data.")
    ] = 43_200,
    seed: Annotated[int, typer.Option(help="replay: seed of the synthetic market.")] = 7,
    journal: Annotated[Path, typer.Option(help="The SQLite journal (state, fills, intents, audit).")] = Path(
        "nutcracker.db"
    ),
    out: Annotated[
        Path | None, typer.Option(help="replay: write summary, CSVs and report.html here.")
    ] = None,
    headless: Annotated[bool, typer.Option(help="key=value log lines instead of the live view.")] = False,
    key: Annotated[str | None, typer.Option(help="live: the name of a key stored with `keys add`.")] = None,
    keystore: Annotated[
        Path | None, typer.Option(help="live: the keystore file (default: the user's).")
    ] = None,
    vault: Annotated[
        bool, typer.Option(help="live: read the key from HashiCorp Vault (VAULT_* env).")
    ] = False,
    exchange_url: Annotated[
        str | None,
        typer.Option("--exchange-url", help="paper/live: base URL of a Binance-compatible exchange."),
    ] = None,
    pulse_interval: Annotated[float | None, typer.Option(help="paper/live: seconds between pulses.")] = None,
    pulses: Annotated[
        int | None, typer.Option(help="paper/live: stop after this many pulses per symbol.")
    ] = None,
    cancel_timeout: Annotated[
        float | None,
        typer.Option(
            "--cancel-timeout",
            min=0.1,
            max=86_400.0,
            help="paper/live: seconds cancel_on_shutdown retries failed cancels before it exits 1 "
            "listing what still rests (default 30).",
        ),
    ] = None,
) -> None:
    """Run the engine: replay on the simulated exchange, or paper and live through ccxt."""
    _check_options(
        ("--speed", speed, SPEED),
        ("--candles", candles, CANDLES),
        ("--synthetic", synthetic, SYNTHETIC),
        ("--seed", seed, SEED),
        ("--pulse-interval", pulse_interval, PULSE_INTERVAL),
        ("--pulses", pulses, PULSES),
    )
    err = Console(stderr=True)
    if mode == "replay":
        asyncio_run_replay(config_file, data or [], speed, candles, synthetic, seed, journal, out, headless)
        return
    if mode not in ("paper", "live"):
        err.print(f"✗ --mode must be replay, paper or live, not {mode!r}", markup=False)
        raise typer.Exit(code=EXIT_CONFIG)
    from nutcracker.connected import run_blocking
    from nutcracker.engine.runtime import ShutdownIncompleteError
    from nutcracker.errors import ExchangeError, JournalError, PermissionRefusedError, SecretsError
    from nutcracker.terminal import print_log

    console = Console()
    try:
        config = load_config(config_file)
        run_blocking(
            config,
            mode=mode,
            journal_path=journal,
            exchange_url=exchange_url,
            key_name=key,
            keystore=keystore,
            vault=vault,
            pulse_interval_s=pulse_interval,
            pulses=pulses,
            on_report=lambda r: print_log(console, r),
            cancel_timeout_s=cancel_timeout,
        )
    except ShutdownIncompleteError as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except PermissionRefusedError as e:
        err.print(f"✗ refused, nothing was placed: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except JournalError as e:  # damaged, unusable, or behind the exchange (recover first)
        _journal_failed(err, e)
    except (ConfigError, SecretsError, ExchangeError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None


def asyncio_run_replay(
    config_file: Path,
    data: list[str],
    speed: float,
    candles: int | None,
    synthetic: int,
    seed: int,
    journal_path: Path,
    out: Path | None,
    headless: bool,
) -> None:
    """Wire and run a replay; SIGINT/SIGTERM stop it gracefully (pulses stop, the journal is flushed)."""
    import asyncio
    import signal

    from rich.live import Live

    from nutcracker.backtest.data import assign_data, load_data
    from nutcracker.backtest.output import write_outputs
    from nutcracker.marketdata.candles import DataError
    from nutcracker.replay.driver import build_replay, run_replay
    from nutcracker.store.sqlite import SqliteJournal
    from nutcracker.terminal import print_log, status_table

    err, console = Console(stderr=True), Console()
    try:
        config = load_config(config_file)
        market_data = load_data(config, assign_data(config, data), synthetic=synthetic, seed=seed)
    except (ConfigError, DataError, OSError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        journal_path.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteJournal(journal_path)
        try:
            setup = build_replay(config, market_data, store)
            latest: dict[str, object] = {}
            if headless or not console.is_terminal:
                result = await run_replay(
                    setup,
                    market_data,
                    speed=speed,
                    candles=candles,
                    stop=stop,
                    on_report=lambda r: print_log(console, r),
                )
            else:
                with Live(console=console, refresh_per_second=8) as live:

                    def show(report: object) -> None:
                        latest[getattr(report, "symbol")] = report  # noqa: B009
                        live.update(status_table(latest.values()))  # type: ignore[arg-type]

                    result = await run_replay(
                        setup, market_data, speed=speed, candles=candles, stop=stop, on_report=show
                    )
        finally:
            store.close()
        target = out or Path("out") / "replay"
        summary = write_outputs(result, config, target, report=True, title="Nutcracker replay")
        _print_summary(console, summary, target, True)

    from nutcracker.errors import JournalError

    try:
        asyncio.run(main())
    except JournalError as e:
        _journal_failed(err, e)


@app.command("status")
def status(
    journal: Annotated[Path, typer.Option(help="The engine's SQLite journal.")] = Path("nutcracker.db"),
) -> None:
    """Print the state of every symbol from the journal: trading, idle (and why), stalled, paused,
    killed, or stopped (when and why)."""
    from nutcracker.status_view import read_lifecycle, symbol_status
    from nutcracker.store.sqlite import SqliteJournal

    err = Console(stderr=True)
    if not journal.exists():
        err.print(f"✗ no journal at {journal}: {_journal_hint()}", markup=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG)
    from nutcracker.errors import JournalError

    try:
        store = SqliteJournal(journal)
    except JournalError as e:
        _journal_failed(err, e)
    try:
        rows = store.symbols()
        life = read_lifecycle(store)
        table = Table(title=f"journal {journal}", title_justify="left")
        for column in (
            "symbol",
            "status",
            "why",
            "inventory",
            "open lots",
            "cycles",
            "realized PnL",
            "open orders",
            "open intents",
            f"updated (UTC, {life.clock_label})",
        ):
            table.add_column(column, overflow="fold")
        running = 0
        for row in rows:
            shown = symbol_status(store, row, life)
            running += shown.status != "stopped"
            table.add_row(
                row.symbol,
                shown.status,
                shown.why,
                *_ledger_cells(row.state_json, store.params_history(row.symbol)),
                shown.open_orders,
                str(len(store.open_intents(row.symbol))),
                shown.updated,
            )
    finally:
        store.close()
    console = Console()
    if not console.is_terminal:  # piped or captured: do not fold the table into a narrow default width
        console = Console(width=200)
    console.print(table)
    if not rows:
        console.print("the journal holds no symbol yet", markup=False)
    elif running:  # nothing tells a live engine from one that died: say both
        console.print(
            "no stop journaled after the last activity: the engine is running, or ended without a "
            "clean stop (kill -9, a crash); its orders may still rest",
            markup=False,
            highlight=False,
        )


def _journal_hint() -> str:
    """Say how to find a journal; name the demo's when it is there."""
    demo = Path("out") / "demo" / "demo.db"
    if demo.exists():
        return f"the demo's journal is {demo}: nutcracker status --journal {demo}"
    return "run the engine first, or pass --journal PATH"


def _ledger_cells(state_json: str, params_history: Sequence[ParamsRow]) -> tuple[str, str, str, str]:
    """Return inventory (base), open lots, cycles and realized PnL (quote) of a journaled state."""
    import json

    from nutcracker.core.serialize import loads_params, state_from_dict

    if not state_json:
        return "-", "-", "-", "-"
    try:
        doc = json.loads(state_json)
        ledger = state_from_dict(doc.get("strategy", doc)).ledger
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):  # the engine halts it
        return "unreadable (see why)", "-", "-", "-"
    if not params_history:  # no market known: the units the ledger counts in
        return (
            f"{ledger.held} lots" + (f" + {ledger.dust} bu dust" if ledger.dust else ""),
            str(len(ledger.lots)),
            str(ledger.cycles_closed),
            f"{ledger.realized_pnl} qu",
        )
    market = loads_params(params_history[-1].params_json).market
    precision = market.precision
    dust = f" + {precision.bu_to_base(ledger.dust).normalize():f} dust" if ledger.dust else ""  # below a lot
    return (
        f"{precision.lots_to_qty(ledger.held)} {market.base}{dust}",
        str(len(ledger.lots)),
        str(ledger.cycles_closed),
        f"{precision.qu_to_quote(ledger.realized_pnl).normalize():f} {market.quote}",
    )


# -- journal safety: one line per journal error, and `recover` -----------------------------------------

EXIT_JOURNAL = 3  # the journal is damaged, unusable, or behind the exchange: nothing was started


def _journal_failed(err: Console, error: Exception) -> NoReturn:
    """Print a journal error as its one line (file, fault, fix) and exit ``EXIT_JOURNAL``."""
    err.print(f"✗ {error}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_JOURNAL) from None


@app.command("recover")
def recover(
    journal: Annotated[Path, typer.Option(help="The engine's SQLite journal to rebuild.")],
    config_file: Annotated[Path, typer.Option("--config", help="The engine's TOML configuration file.")],
    key: Annotated[str | None, typer.Option(help="The key the engine trades with (`keys add`).")] = None,
    keystore: Annotated[Path | None, typer.Option(help="The keystore file (default: the user's).")] = None,
    vault: Annotated[bool, typer.Option(help="Read the key from HashiCorp Vault (VAULT_* env).")] = False,
    exchange_url: Annotated[
        str | None,
        typer.Option("--exchange-url", help="Base URL of a Binance-compatible exchange."),
    ] = None,
) -> None:
    """Rebuild a lost or damaged journal from the exchange's order and trade history; sends nothing."""
    import asyncio

    from nutcracker.errors import ExchangeError, JournalError, ReconciliationError, SecretsError
    from nutcracker.recover import run_recover

    err, out = Console(stderr=True), Console()
    try:
        config = load_config(config_file)
        rebuilt, aside = asyncio.run(
            run_recover(
                config,
                journal_path=journal,
                exchange_url=exchange_url,
                key_name=key,
                keystore=keystore,
                vault=vault,
            )
        )
    except (JournalError, ReconciliationError) as e:
        _journal_failed(err, e)
    except (ConfigError, SecretsError, ExchangeError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None
    if aside is not None:
        out.print(f"the damaged journal was moved to {aside}", markup=False, highlight=False, soft_wrap=True)
    for item in rebuilt:
        out.print(f"recovered {item.line()}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"{journal} now holds what the exchange shows: start the engine again", markup=False)
