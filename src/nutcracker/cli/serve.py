"""``nutcracker serve``: the engine and the control API in one process (see ``api.server``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from nutcracker.cli._common import check_options, journal_failed
from nutcracker.errors import EXIT_CONFIG, ConfigError
from nutcracker.ranges import CANDLES, PORT, SEED, SPEED, SYNTHETIC

DEMO_SPEED = 2.0  # candles a second: slow enough to watch a pulse and steer it
DEMO_CANDLES = 43_200  # six hours at that speed


def serve(
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")] = None,
    mode: Annotated[
        str | None, typer.Option(help="replay (simulated exchange, the default), paper or live.")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="redis://…: serve the symbols `nutcracker worker --store` processes trade (no engine here; "
            "commands reach each symbol's owner through Redis).",
            metavar="URL",
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(help="Serve the replay demo (the example grid, synthetic market): no keys, no network."),
    ] = False,
    host: Annotated[
        str, typer.Option(help="Address to listen on (other than loopback: TLS or --behind-proxy).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free one).")] = 8080,
    users: Annotated[Path, typer.Option(help="The users file (`nutcracker users add`).")] = Path(
        "nutcracker-users.db"
    ),
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate: serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    behind_proxy: Annotated[
        bool, typer.Option("--behind-proxy", help="A TLS-terminating proxy on this machine fronts the API.")
    ] = False,
    metrics_token_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-token-file",
            help="A scrape token for /metrics alone (made, mode 0600, if missing): Prometheus sends it "
            "as a bearer token.",
        ),
    ] = None,
    journal: Annotated[Path, typer.Option(help="The SQLite journal.")] = Path("nutcracker.db"),
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="replay: candle CSV per symbol ([SYMBOL=]FILE).", metavar="[SYMBOL=]FILE"
        ),
    ] = None,
    speed: Annotated[
        float | None, typer.Option(help="replay: candles per second (default 20; demo 2).")
    ] = None,
    candles: Annotated[int | None, typer.Option(help="replay: stop after this many candles.")] = None,
    synthetic: Annotated[
        int, typer.Option(help="replay: synthetic candles per symbol without --data.")
    ] = DEMO_CANDLES,
    seed: Annotated[int, typer.Option(help="replay: seed of the synthetic market.")] = 7,
    key: Annotated[
        str | None,
        typer.Option(
            help="paper/live: the stored key's name (the account's name too); --store: the workers'."
        ),
    ] = None,
    keystore: Annotated[Path | None, typer.Option(help="live: the keystore file.")] = None,
    vault: Annotated[bool, typer.Option(help="live: read the key from HashiCorp Vault.")] = False,
    exchange_url: Annotated[
        str | None, typer.Option("--exchange-url", help="paper/live: a Binance-compatible URL.")
    ] = None,
    pulse_interval: Annotated[float | None, typer.Option(help="paper/live: seconds between pulses.")] = None,
) -> None:
    """Serve the control API beside the engine: watch and steer it over HTTP (docs/api.md)."""
    check_options(
        ("--port", port, PORT),
        ("--speed", speed, SPEED),
        ("--candles", candles, CANDLES),
        ("--synthetic", synthetic, SYNTHETIC),
        ("--seed", seed, SEED),
    )
    err, out = Console(stderr=True), Console()

    def fail(message: str) -> NoReturn:
        err.print(f"✗ {message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG)

    if store is not None:
        given = [
            name
            for name, value in (("--mode", mode), ("--data", data), ("--exchange-url", exchange_url))
            if value
        ]
        if demo or given:
            extra = ", ".join(given or ["--demo"])
            fail(f"--store serves the workers' symbols, it runs no engine: leave out {extra}")
    if demo:
        if config_file is not None or mode is not None:
            fail("--demo serves the built-in replay demo: leave out --config and --mode")
        config_file = Path(__file__).resolve().parents[3] / "examples" / "grid-btc-usdt.toml"
        journal = Path("out/serve-demo/demo.db")
        journal.parent.mkdir(parents=True, exist_ok=True)
        for stale in journal.parent.glob("demo.db*"):  # every demo starts from a fresh journal
            stale.unlink()
    if config_file is None:
        fail("give --config FILE (or --demo to try the API on the replay demo)")
    mode = mode or "replay"
    if mode not in ("replay", "paper", "live"):
        fail(f"--mode must be replay, paper or live, not {mode!r}")

    from nutcracker.api.server import Listen, check_listen

    listen = Listen(host, port, tls_cert, tls_key, behind_proxy)
    try:
        check_listen(listen)
    except ConfigError as e:
        fail(str(e))

    from nutcracker.api.auth import AuthService, UsersError
    from nutcracker.api.auth.tokens import load_or_create_scrape_token
    from nutcracker.config import load_config
    from nutcracker.errors import DataError, ExchangeError, JournalError, PermissionRefusedError, SecretsError

    scheme = "https" if tls_cert else "http"

    def listening(bound: int) -> None:
        out.print(
            f"serving the API on {scheme}://{host}:{bound}/api/v1 (OpenAPI: /api/v1/openapi.json, "
            f"docs: /api/v1/docs); users: {users}"
            + (f"; /metrics scrape token in {metrics_token_file}" if metrics_token_file else ""),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    try:
        config = load_config(config_file)
        scrape = None if metrics_token_file is None else load_or_create_scrape_token(metrics_token_file)
        authenticator = AuthService.open(users)
        if store is not None:
            from nutcracker.api.server import run, serve_fleet

            run(
                serve_fleet(
                    config,
                    store,
                    authenticator,
                    listen,
                    on_listening=listening,
                    key_name=key,
                    metrics_token=scrape,
                )
            )
        elif mode == "replay":
            from nutcracker.api.server import run, serve_replay
            from nutcracker.backtest.data import assign_data, load_data

            market = load_data(config, assign_data(config, data or []), synthetic=synthetic, seed=seed)
            pace = speed if speed is not None else (DEMO_SPEED if demo else 20.0)
            run(
                serve_replay(
                    config,
                    market,
                    journal,
                    authenticator,
                    listen,
                    speed=pace,
                    candles=candles,
                    on_listening=listening,
                    metrics_token=scrape,
                )
            )
        else:
            from nutcracker.api.server import run, serve_connected
            from nutcracker.app.connected import run_connected
            from nutcracker.app.kernel import Mode

            run(
                serve_connected(
                    config,
                    Mode(mode),
                    journal,
                    authenticator,
                    listen,
                    on_listening=listening,
                    run_connected=run_connected,
                    key_name=key,
                    metrics_token=scrape,
                    exchange_url=exchange_url,
                    keystore=keystore,
                    vault=vault,
                    pulse_interval_s=pulse_interval,
                    pulses=None,
                    on_report=lambda report: None,
                )
            )
    except PermissionRefusedError as e:
        err.print(f"✗ refused, nothing was placed: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except JournalError as e:
        journal_failed(err, e)
    except OSError as e:  # the port is taken, a TLS file unreadable
        fail(f"cannot serve on {host}:{port}: {e.strerror or e}")
    except (ConfigError, DataError, SecretsError, ExchangeError, UsersError) as e:
        fail(str(e))
