"""The command line: parses arguments, calls the composition root (``nutcracker.app``) and prints.

One module per command group; this one names every command, in the order ``--help`` lists them,
so ``nutcracker`` and ``python -m nutcracker.cli`` are the same program. Errors map to exit codes
(``EXIT_CONFIG`` for bad input, ``EXIT_JOURNAL`` for a journal that cannot be used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from nutcracker.cli import advise, backtest, recover, run, serve, status, worker
from nutcracker.cli._common import EXIT_JOURNAL
from nutcracker.cli.config import config_app
from nutcracker.cli.console import open_console
from nutcracker.cli.data import data_app
from nutcracker.cli.users import users_app
from nutcracker.errors import EXIT_CONFIG
from nutcracker.secrets.cli_keys import make_keys_app
from nutcracker.simexchange.cli import sim_exchange

if TYPE_CHECKING:
    from nutcracker.secrets.permissions import KeyPermissions
    from nutcracker.secrets.store import ApiCredentials


app = typer.Typer(
    name="nutcracker",
    help="Deterministic, maker-only rebalancing engine for crypto spot accounts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold keys and secrets
)


async def _verify_key(credentials: ApiCredentials) -> KeyPermissions:
    """Probe a key's permissions through ccxt (imported only when a key is checked: ccxt is large)."""
    from nutcracker.exchange.key_probe import verify_key

    return await verify_key(credentials)


app.add_typer(config_app, name="config")
app.command("sim-exchange", help="Serve a Binance-compatible simulated exchange on 127.0.0.1.")(sim_exchange)
app.add_typer(make_keys_app(verifier=_verify_key), name="keys", help="Store and verify exchange API keys.")
app.command("backtest")(backtest.backtest)
app.command("demo")(run.demo)
app.add_typer(data_app, name="data")
app.command("console")(open_console)
app.command("run")(run.run)
app.command("status")(status.status)
app.command("recover")(recover.recover)
app.command("serve")(serve.serve)
app.add_typer(users_app, name="users")
advise.register(app)
app.command("worker")(worker.worker)

__all__ = ["EXIT_CONFIG", "EXIT_JOURNAL", "app"]
