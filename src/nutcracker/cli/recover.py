"""``nutcracker recover``: rebuild a lost or damaged journal from the exchange's history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nutcracker.cli._common import journal_failed
from nutcracker.config import load_config
from nutcracker.errors import EXIT_CONFIG, ConfigError


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

    from nutcracker.app.connected import run_recover
    from nutcracker.errors import ExchangeError, JournalError, ReconciliationError, SecretsError

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
        journal_failed(err, e)
    except (ConfigError, SecretsError, ExchangeError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None
    if aside is not None:
        out.print(f"the damaged journal was moved to {aside}", markup=False, highlight=False, soft_wrap=True)
    for item in rebuilt:
        out.print(f"recovered {item.line()}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"{journal} now holds what the exchange shows: start the engine again", markup=False)
