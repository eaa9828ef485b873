"""``nutcracker worker``: one of several processes sharing a config's symbols through Redis leases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from nutcracker.cli._common import check_options, journal_failed
from nutcracker.config import load_config
from nutcracker.errors import EXIT_CONFIG, ConfigError
from nutcracker.ranges import LEASE_TTL, PULSE_INTERVAL


def worker(
    store: Annotated[str, typer.Option(help="The shared Redis: redis://[:PASSWORD@]HOST:PORT/DB.")],
    config_file: Annotated[
        Path, typer.Option("--config", help="TOML configuration file (the same on every worker).")
    ],
    mode: Annotated[str, typer.Option(help="paper or live.")] = "paper",
    exchange_url: Annotated[
        str | None, typer.Option("--exchange-url", help="Base URL of a Binance-compatible exchange.")
    ] = None,
    key: Annotated[str | None, typer.Option(help="live: the name of a key stored with `keys add`.")] = None,
    keystore: Annotated[
        Path | None, typer.Option(help="live: the keystore file (default: the user's).")
    ] = None,
    vault: Annotated[
        bool, typer.Option(help="live: read the key from HashiCorp Vault (VAULT_* env).")
    ] = False,
    pulse_interval: Annotated[float | None, typer.Option(help="Seconds between pulses.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="This worker's name in leases (default: host-pid-random).")
    ] = None,
    lease_ttl: Annotated[
        float, typer.Option(help="Seconds a lease lasts unrenewed: a dead worker's symbols move after it.")
    ] = 15.0,
) -> None:
    """Run a worker: claim symbols through Redis leases, trade them, hand them over when it dies."""
    check_options(("--pulse-interval", pulse_interval, PULSE_INTERVAL), ("--lease-ttl", lease_ttl, LEASE_TTL))
    err = Console(stderr=True)
    if mode not in ("paper", "live"):
        err.print(f"✗ --mode must be paper or live, not {mode!r}", markup=False)
        raise typer.Exit(code=EXIT_CONFIG)
    if owner is not None and (not owner or any(c.isspace() for c in owner)):
        err.print(f"✗ --owner must be one word without spaces, not {owner!r}", markup=False)
        raise typer.Exit(code=EXIT_CONFIG)
    import asyncio

    from nutcracker.app.worker import run_worker
    from nutcracker.errors import ExchangeError, JournalError, PermissionRefusedError, SecretsError
    from nutcracker.terminal import print_log

    console = Console()
    try:
        config = load_config(config_file)
        asyncio.run(
            run_worker(
                config,
                store_url=store,
                mode=mode,
                exchange_url=exchange_url,
                key_name=key,
                keystore=keystore,
                vault=vault,
                pulse_interval_s=pulse_interval,
                owner=owner,
                lease_ttl_ms=int(lease_ttl * 1000),
                on_report=lambda r: print_log(console, r),
                on_notice=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
            )
        )
    except PermissionRefusedError as e:
        err.print(f"✗ refused, nothing was placed: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except JournalError as e:  # the Redis URL, server or durability: nothing was started
        journal_failed(err, e)
    except (ConfigError, SecretsError, ExchangeError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None


def store_status(store: str, as_json: bool) -> None:
    """Print every symbol of a Redis store with its owner, fencing token and lease age."""
    from nutcracker.app.worker import scale_out_status
    from nutcracker.errors import JournalError

    try:
        rows = scale_out_status(store)
    except JournalError as e:
        journal_failed(Console(stderr=True), e)
    if as_json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return
    from nutcracker.store.redis_connect import describe

    table = Table(title=f"store {describe(store)}", title_justify="left")
    for column in (
        "symbol",
        "status",
        "why",
        "owner",
        "token",
        "lease age (s)",
        "lease left (s)",
        "open intents",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(
                "-" if row[k] is None else str(row[k])
                for k in (
                    "symbol",
                    "status",
                    "why",
                    "owner",
                    "fencing_token",
                    "lease_age_s",
                    "lease_left_s",
                    "open_intents",
                )
            )
        )
    console = Console() if Console().is_terminal else Console(width=200)
    console.print(table)
    if not rows:
        console.print("the store holds no symbol yet", markup=False)
