"""User administration (``nutcracker users``; later the API's, behind a step-up): add, remove, passwd, TOTP.

Names, roles, accounts and passwords are checked here, each refusal one line saying what to fix.
Every change is audited with who made it and from where.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Final

from nutcracker.api.auth.passwords import Passwords, check_password_rules
from nutcracker.api.auth.service import Clock
from nutcracker.api.auth.store import AuthStore, UserRecord, UsersError
from nutcracker.api.auth.totp import new_secret, provisioning_uri
from nutcracker.api.principal import ALL_ACCOUNTS
from nutcracker.core.commands import Role

__all__ = ["USER_ROLES", "UserAdmin", "check_account", "check_user_name", "parse_role"]

USER_ROLES: Final = (Role.OWNER, Role.OPERATOR, Role.VIEWER)  # the roles a person can hold
_NAME: Final = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_ACCOUNT: Final = re.compile(r"^[a-z0-9]{2,32}/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_user_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsersError(
            f"{name!r} is not a valid user name: use 1 to 64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )
    return name


def parse_role(text: str) -> Role:
    allowed = "|".join(r.value for r in USER_ROLES)
    try:
        role = Role(text)
    except ValueError:
        role = None
    if role not in USER_ROLES:
        raise UsersError(f"unknown role {text!r}: use one of {allowed}")
    assert role is not None
    return role


def check_account(account: str) -> str:
    if account != ALL_ACCOUNTS and not _ACCOUNT.match(account):
        raise UsersError(
            f"{account!r} is not an account: write EXCHANGE/KEYNAME as in `nutcracker keys list` "
            f"(e.g. 'binance/main'), or '{ALL_ACCOUNTS}' for every account"
        )
    return account


class UserAdmin:
    """Change the users of an ``AuthStore``; ``actor`` and ``client`` say who does it, from where."""

    def __init__(
        self,
        store: AuthStore,
        *,
        actor: str,
        client: str = "local",
        clock: Clock = time.time,
        passwords: Passwords | None = None,
    ) -> None:
        self._store = store
        self._actor = actor
        self._client = client
        self._clock = clock
        self._passwords = passwords or Passwords()

    def add(self, name: str, role: Role, accounts: Sequence[str], password: str) -> None:
        """Add a user with ``role`` on each of ``accounts`` (every account when none is given)."""
        check_user_name(name)
        if role not in USER_ROLES:
            raise UsersError(
                f"unknown role {role.value!r}: use one of {'|'.join(r.value for r in USER_ROLES)}"
            )
        targets = [check_account(a) for a in accounts] or [ALL_ACCOUNTS]
        check_password_rules(password, name)
        now = self._clock()
        if self._store.user(name) is not None:  # before hashing: a duplicate need not wait for argon2
            raise UsersError(f"user {name!r} already exists: pick another name, or `users remove` it first")
        self._store.add_user(name, self._passwords.hash(password), dict.fromkeys(targets, role), now)
        self._store.record(
            now, self._actor, self._client, "user_added", f"{name}: {role.value} on {', '.join(targets)}"
        )

    def remove(self, name: str) -> None:
        """Remove a user; their tokens stop working on their next request."""
        now = self._clock()
        if not self._store.remove_user(name, now):
            raise UsersError(f"no user {name!r}: `nutcracker users list` shows who exists")
        self._store.record(now, self._actor, self._client, "user_removed", name)

    def passwd(self, name: str, password: str) -> None:
        """Set a new password; every login of the user ends (their tokens stop working)."""
        self._require(name)
        check_password_rules(password, name)
        now = self._clock()
        self._store.set_password(name, self._passwords.hash(password), now, end_sessions=True)
        self._store.record(now, self._actor, self._client, "password_changed", name)

    def enable_totp(self, name: str) -> str:
        """Give the user a new TOTP secret (replacing any old one) and return its otpauth:// URI."""
        self._require(name)
        secret = new_secret()
        self._store.set_totp_secret(name, secret)
        self._store.record(self._clock(), self._actor, self._client, "totp_enabled", name)
        return provisioning_uri(secret, name)

    def users(self) -> list[UserRecord]:
        return self._store.users()

    def _require(self, name: str) -> None:
        if self._store.user(name) is None:
            raise UsersError(f"no user {name!r}: `nutcracker users list` shows who exists")
