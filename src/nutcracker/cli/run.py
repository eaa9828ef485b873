"""``nutcracker run`` and ``nutcracker demo``: the engine in replay, paper or live mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nutcracker.cli._common import check_options, journal_failed, print_summary
from nutcracker.config import load_config
from nutcracker.errors import EXIT_CONFIG, ConfigError
from nutcracker.ranges import CANDLES, PULSE_INTERVAL, PULSES, SEED, SPEED, SYNTHETIC


def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its results.")] = Path("out/demo"),
    speed: Annotated[
        float, typer.Option(help="Candles per second (the default takes about a minute).")
    ] = 40.0,
    candles: Annotated[int, typer.Option(help="Candles to replay.")] = 2_400,
) -> None:
    """Run the demo: the live engine replays the example grid on the seeded synthetic market."""
    check_options(("--speed", speed, SPEED), ("--candles", candles, CANDLES))
    example = Path(__file__).resolve().parents[3] / "examples" / "grid-btc-usdt.toml"
    journal = out / "demo.db"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("demo.db*"):  # every demo starts from a fresh journal
        stale.unlink()
    asyncio_run_replay(example, [], speed, candles, 20_000, 7, journal, out, False)
    Console().print(
        f"status: nutcracker status --journal {journal}", markup=False, highlight=False, soft_wrap=True
    )


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
    check_options(
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
    from nutcracker.app.kernel import Mode, run_connected
    from nutcracker.engine.runtime import ShutdownIncompleteError
    from nutcracker.errors import ExchangeError, JournalError, PermissionRefusedError, SecretsError
    from nutcracker.terminal import print_log

    console = Console()
    try:
        config = load_config(config_file)
        run_connected(
            config,
            Mode(mode),
            journal,
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
        journal_failed(err, e)
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
    """Run a replay (``app.kernel`` wires it); SIGINT/SIGTERM stop it gracefully (the journal is flushed)."""
    import asyncio
    import signal

    from rich.live import Live

    from nutcracker.app.kernel import replay
    from nutcracker.backtest.data import assign_data, load_data
    from nutcracker.backtest.output import write_outputs
    from nutcracker.engine.reports import PulseReport
    from nutcracker.errors import DataError
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
        latest: dict[str, PulseReport] = {}
        if headless or not console.is_terminal:
            result = await replay(
                config,
                market_data,
                journal_path,
                speed=speed,
                candles=candles,
                stop=stop,
                on_report=lambda r: print_log(console, r),
            )
        else:
            with Live(console=console, refresh_per_second=8) as live:

                def show(report: PulseReport) -> None:
                    latest[report.symbol] = report
                    live.update(status_table(latest.values()))

                result = await replay(
                    config, market_data, journal_path, speed=speed, candles=candles, stop=stop, on_report=show
                )
        target = out or Path("out") / "replay"
        summary = write_outputs(result, config, target, report=True, title="Nutcracker replay")
        print_summary(console, summary, target, True)

    from nutcracker.errors import JournalError

    try:
        asyncio.run(main())
    except JournalError as e:
        journal_failed(err, e)
