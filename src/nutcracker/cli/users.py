"""``nutcracker users``: the control plane's users (add, list, remove, passwd) and their TOTP.

Passwords come from a hidden prompt (asked twice) or, with ``--password-stdin``, from the first line
of standard input; never from the command line, where the shell history and the process list would
keep them. Every refusal is one line on stderr and exit code 2; nothing is changed then.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nutcracker.errors import EXIT_CONFIG, NutcrackerError

if TYPE_CHECKING:
    from nutcracker.api.auth import AuthStore, UserAdmin

users_app = typer.Typer(
    no_args_is_help=True,
    help="Add, list and remove the control plane's users; enable TOTP (needed for step-up).",
)
totp_app = typer.Typer(no_args_is_help=True, help="Time-based one-time codes (an authenticator app).")
users_app.add_typer(totp_app, name="totp")

UsersFile = Annotated[
    Path, typer.Option("--users", help="The users file (SQLite; the signing key lives beside it).")
]
DEFAULT_USERS = Path("nutcracker-users.db")
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Print our errors as one line on stderr and exit 2; never a traceback (it could hold a password)."""
    try:
        yield
    except NutcrackerError as e:
        typer.echo(f"✗ {e}", err=True)
        raise typer.Exit(code=EXIT_CONFIG) from None


@contextlib.contextmanager
def _admin(users: Path, *, create: bool = False) -> Iterator[tuple[AuthStore, UserAdmin]]:
    from nutcracker.api.auth import AuthStore, UserAdmin

    store = AuthStore.open(users, create=create)
    try:
        yield store, UserAdmin(store, actor=f"cli:{getpass.getuser()}")
    finally:
        store.close()


def _read_password(from_stdin: bool, user: str) -> str:
    from nutcracker.api.auth import MIN_PASSWORD, UsersError

    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsersError("no password on standard input: give it as the first line with --password-stdin")
        return line
    if not sys.stdin.isatty():
        raise UsersError("no terminal to ask the password on: pipe it in and add --password-stdin")
    first = getpass.getpass(f"password for {user} (at least {MIN_PASSWORD} characters): ")
    if getpass.getpass("again: ") != first:
        raise UsersError("the two passwords differ: nothing was changed, run the command again")
    return first


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits, '.', '_' or '-'.")],
    role: Annotated[str, typer.Option("--role", help="owner | operator | viewer")],
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account", help="EXCHANGE/KEYNAME the role applies to (repeat); default: every account"
        ),
    ] = None,
    users: UsersFile = DEFAULT_USERS,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user with a role on some accounts (or all); the users file is created if missing (mode 0600)."""
    from nutcracker.api.auth import UsersError, check_account, check_user_name, parse_role

    with _one_line_errors():
        check_user_name(name)
        parsed = parse_role(role)
        accounts = [check_account(a) for a in account or []]
        if not users.parent.is_dir():
            raise UsersError(f"--users {users}: the folder {users.parent} does not exist; create it first")
        with _admin(users, create=True) as (store, admin):
            if store.user(name) is not None:  # before asking for a password
                raise UsersError(
                    f"user {name!r} already exists: pick another name, or `users remove` it first"
                )
            admin.add(name, parsed, accounts, _read_password(password_stdin, name))
    where = ", ".join(accounts) or "every account"
    typer.echo(f"✓ added {name}: {parsed.value} on {where}")
    typer.echo(f"  step-up needs TOTP: nutcracker users totp enable {name}")


@users_app.command("list")
def list_users(users: UsersFile = DEFAULT_USERS) -> None:
    """List the users: roles per account, TOTP, creation time (UTC)."""
    with _one_line_errors(), _admin(users) as (_, admin):
        records = admin.users()
    if not records:
        typer.echo(f"{users} holds no user: add one with `nutcracker users add NAME --role owner`")
    for user in records:
        roles = ", ".join(f"{role.value} on {account}" for account, role in user.roles.items())
        totp = "totp on" if user.totp_secret else "totp off"
        created = datetime.fromtimestamp(user.created, UTC).strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{user.name}  {roles}  {totp}  created {created}")


@users_app.command("remove")
def remove(name: str, users: UsersFile = DEFAULT_USERS) -> None:
    """Remove a user: their tokens stop working at their next request."""
    with _one_line_errors(), _admin(users) as (_, admin):
        admin.remove(name)
    typer.echo(f"✓ removed {name}; their tokens no longer work")


@users_app.command("passwd")
def passwd(name: str, users: UsersFile = DEFAULT_USERS, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password; every session of the user ends."""
    from nutcracker.api.auth import UsersError

    with _one_line_errors(), _admin(users) as (store, admin):
        if store.user(name) is None:
            raise UsersError(f"no user {name!r}: `nutcracker users list` shows who exists")
        admin.passwd(name, _read_password(password_stdin, name))
    typer.echo(f"✓ new password for {name}; their sessions were ended")


@totp_app.command("enable")
def totp_enable(name: str, users: UsersFile = DEFAULT_USERS) -> None:
    """Give a user a TOTP secret (replacing any old one) and show it as an otpauth:// URI and a QR code."""
    import segno

    with _one_line_errors(), _admin(users) as (_, admin):
        uri = admin.enable_totp(name)
    typer.echo(f"Scan this with an authenticator app for {name} (anyone who sees it can make codes):\n")
    segno.make(uri, error="m").terminal(compact=True)
    typer.echo(f"\n{uri}\n\nLogins of {name} now need a code; step-up works with it.")
