"""``nutcracker keys``: add, list, remove and verify exchange API keys.

Keys and secrets are read from a hidden prompt, or from standard input (one per line: key, secret,
then the passphrase for OKX, KuCoin and Bitget) when it is not a terminal, and never from the command
line, where they would land in the shell history and the process list. A key is stored only after the
exchange itself confirmed it cannot withdraw or transfer (the permission guard); there is no way to
skip that check.

The main CLI mounts this with ``app.add_typer(keys_app, name="keys")``; ``make_keys_app`` builds the
same app around another verifier or store (the composition root wires the ccxt connector's probe).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import SecretStr

from nutcracker.errors import NutcrackerError, SecretsError
from nutcracker.secrets.keystore import KeystoreSecretStore
from nutcracker.secrets.permissions import (
    KeyPermissions,
    describe,
    probe_for,
    unsupported_refusal,
)
from nutcracker.secrets.redaction import install_redaction, register_secret
from nutcracker.secrets.store import (
    PASSPHRASE_EXCHANGES,
    ApiCredentials,
    SecretStore,
    check_exchange_url,
    check_key_name,
)

EXIT_REFUSED = 1  # the permission guard refused the key
EXIT_SECRETS = 3  # the key could not be read, stored or checked

# Ask the exchange what the key may do (through the ccxt connector, once wired).
Verifier = Callable[[ApiCredentials], Coroutine[Any, Any, KeyPermissions]]
# Open the store chosen by --keystore PATH / --vault.
StoreFactory = Callable[[Path | None, bool], SecretStore]


async def verify_with_ccxt(credentials: ApiCredentials) -> KeyPermissions:
    """Probe the key's permissions through the ccxt connector (not wired yet: always raises)."""
    # TODO: the composition root passes the connector's probe to make_keys_app(verifier=...).
    raise SecretsError(
        f"permission probe needs the ccxt connector: it is not available in this build yet, so the "
        f"{credentials.exchange_id} key {credentials.name!r} cannot be verified, and an unverified key "
        "is never stored"
    )


def open_secret_store(keystore: Path | None, vault: bool) -> SecretStore:
    """Return the Vault store (``--vault``, configured from ``VAULT_*``) or the local keystore."""
    if vault:
        if keystore is not None:
            raise SecretsError("choose one store: --keystore PATH or --vault, not both")
        # hvac and requests cost every command ~20 MB and 80 ms: loaded only when Vault is asked for
        from nutcracker.secrets.vault import VaultSecretStore, vault_settings_from_env

        return VaultSecretStore(vault_settings_from_env())
    return KeystoreSecretStore(keystore)


KeystoreOption = Annotated[
    Path | None,
    typer.Option(
        "--keystore",
        help="Keystore file (default: $NUTCRACKER_KEYSTORE or ~/.config/nutcracker/keystore.json).",
        dir_okay=False,
    ),
]
VaultOption = Annotated[
    bool,
    typer.Option("--vault", help="Use HashiCorp Vault (VAULT_ADDR, VAULT_TOKEN or AppRole) instead."),
]
ExchangeUrlOption = Annotated[
    str | None,
    typer.Option("--exchange-url", help="Talk to this URL instead of the exchange (e.g. the simulator)."),
]


def make_keys_app(
    verifier: Verifier = verify_with_ccxt, store_factory: StoreFactory = open_secret_store
) -> typer.Typer:
    """Return the ``keys`` command group around ``verifier`` and ``store_factory``."""
    app = typer.Typer(
        help="Add, list, remove and verify exchange API keys (trade-only keys; never withdraw).",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # locals hold keys and secrets
    )

    @app.callback()
    def _keys() -> None:
        install_redaction()

    @app.command("add")
    def add(
        exchange: Annotated[str, typer.Option("--exchange", help="ccxt exchange id, e.g. binance.")],
        name: Annotated[str, typer.Option("--name", help="Name to store the key under.")],
        exchange_url: ExchangeUrlOption = None,
        keystore: KeystoreOption = None,
        vault: VaultOption = False,
        replace: Annotated[bool, typer.Option("--replace", help="Overwrite a key of that name.")] = False,
    ) -> None:
        """Check a key's permissions with its exchange, then store it (secrets are prompted for)."""
        with _fail_on_errors():
            if probe_for(exchange) is None:
                _refuse(unsupported_refusal(exchange))
            check_key_name(name)
            check_exchange_url(exchange_url)
            store = store_factory(keystore, vault)
            credentials = _read_credentials(exchange, name, exchange_url)
            permissions = asyncio.run(verifier(credentials))
            _print_permissions(permissions)
            if not permissions.safe:
                _refuse(f"{permissions.refusal()}. Nothing was stored.")
            store.put(credentials, replace=replace)
            typer.echo(f"✓ stored {exchange} key {name!r} in {store!r}")

    @app.command("list")
    def list_keys(keystore: KeystoreOption = None, vault: VaultOption = False) -> None:
        """List the stored keys: names, exchanges and URLs, never the keys or secrets."""
        with _fail_on_errors():
            store = store_factory(keystore, vault)
            keys = store.list_keys()
            if not keys:
                typer.echo(f"no keys in {store!r}")
                return
            width = max(len(k.name) for k in keys)
            for key in keys:
                url = f"  {key.exchange_url}" if key.exchange_url else ""
                typer.echo(f"{key.name:<{width}}  {key.exchange_id}{url}")

    @app.command("remove")
    def remove(
        name: Annotated[str, typer.Argument(help="Name of the key to delete.")],
        keystore: KeystoreOption = None,
        vault: VaultOption = False,
    ) -> None:
        """Delete a stored key (revoke it on the exchange too)."""
        with _fail_on_errors():
            store = store_factory(keystore, vault)
            store.remove(name)
            typer.echo(f"✓ removed {name!r} from {store!r}; revoke the key on the exchange as well")

    @app.command("verify")
    def verify(
        name: Annotated[str, typer.Argument(help="Name of the stored key.")],
        exchange_url: ExchangeUrlOption = None,
        keystore: KeystoreOption = None,
        vault: VaultOption = False,
    ) -> None:
        """Ask the exchange what a stored key may do; exit 0 only when it is safe to trade with."""
        with _fail_on_errors():
            check_exchange_url(exchange_url)
            credentials = store_factory(keystore, vault).get(name)
            if exchange_url is not None:
                credentials = credentials.with_exchange_url(exchange_url)
            if probe_for(credentials.exchange_id) is None:
                _refuse(unsupported_refusal(credentials.exchange_id))
            permissions = asyncio.run(verifier(credentials))
            _print_permissions(permissions)
            if not permissions.safe:
                _refuse(permissions.refusal())
            typer.echo(f"✓ {name!r} can trade spot and cannot withdraw or transfer")

    return app


@contextlib.contextmanager
def _fail_on_errors() -> Iterator[None]:
    """Print our errors as one line on stderr and exit non-zero; never a traceback with locals."""
    try:
        yield
    except NutcrackerError as e:
        typer.echo(f"✗ {e}", err=True)
        raise typer.Exit(code=EXIT_SECRETS) from None


def _refuse(message: str) -> NoReturn:
    typer.echo(f"✗ {message}", err=True)
    raise typer.Exit(code=EXIT_REFUSED)


def _print_permissions(permissions: KeyPermissions) -> None:
    rows = describe(permissions)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"  {label:<{width}}  {value}")


def _read_credentials(exchange: str, name: str, exchange_url: str | None) -> ApiCredentials:
    wants_passphrase = exchange in PASSPHRASE_EXCHANGES
    if sys.stdin.isatty():
        api_key = getpass.getpass("API key: ")
        secret = getpass.getpass("API secret: ")
        password = getpass.getpass("API passphrase: ") if wants_passphrase else None
    else:
        api_key, secret = _stdin_line("API key"), _stdin_line("API secret")
        password = _stdin_line("API passphrase") if wants_passphrase else None
    for value in (api_key, secret, password):
        register_secret(value)
    return ApiCredentials(
        exchange_id=exchange,
        name=name,
        api_key=SecretStr(api_key.strip()),
        secret=SecretStr(secret.strip()),
        password=None if password is None else SecretStr(password.strip()),
        exchange_url=exchange_url,
    )


def _stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line.strip():
        raise SecretsError(
            f"the {what} is missing: give the key, then the secret (then the passphrase for "
            f"{', '.join(sorted(PASSPHRASE_EXCHANGES))}) on separate lines of standard input"
        )
    return line.rstrip("\r\n")


keys_app = make_keys_app()
