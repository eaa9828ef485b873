"""Who is calling the API, as the routes see it, and the port that tells them (``Authenticator``).

The token service (``api.auth``) implements ``Authenticator``; the routes only ever see a
``Principal``. Roles are per account (an exchange and a key name, ``"binance/main"``): one server
can host several users, and a token of one user never reaches another user's accounts. The
account ``"*"`` stands for every account of the server (the single-user set-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from nutcracker.core.commands import Role

__all__ = ["ALL_ACCOUNTS", "AuthError", "Authenticator", "Principal", "StepUpAction", "rank", "step_up_hint"]

ALL_ACCOUNTS = "*"

_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.OWNER: 3}


def rank(role: Role) -> int:
    """Order the API's roles: viewer < operator < owner (0 for roles a person never has)."""
    return _RANK.get(role, 0)


class StepUpAction(StrEnum):
    """What a step-up token is scoped to: each needs a fresh TOTP code, valid two minutes."""

    PARAMS = "params"  # change a symbol's parameters
    RESUME_KILLED = "resume_killed"  # resume a killed symbol
    USERS = "users"  # user administration
    CONSENT = "consent"  # agent consent administration


def step_up_hint(action: StepUpAction) -> str:
    """What to do to get a step-up token for ``action`` (the detail of a 403 that needs one)."""
    return (
        f"this needs a step-up for {action.value!r}: POST /api/v1/auth/step-up with a fresh TOTP code and "
        f"action {action.value!r}, then send the token in the X-Step-Up-Token header"
    )


class AuthError(Exception):
    """Refused: ``status`` is the HTTP status (401 who are you, 403 not allowed), ``detail`` the fix.

    ``retry_after_s`` goes with 429 (too many failed logins): the ``Retry-After`` header's value.
    """

    def __init__(self, status: int, detail: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user: name, roles per account, and the access token's id (``jti``)."""

    user: str
    accounts: Mapping[str, Role] = field(default_factory=dict)
    token_id: str = ""

    def role_for(self, account: str) -> Role | None:
        """The user's role on ``account``, or None when the account is not theirs."""
        return self.accounts.get(account, self.accounts.get(ALL_ACCOUNTS))

    def may(self, account: str, needed: Role) -> bool:
        role = self.role_for(account)
        return role is not None and rank(role) >= rank(needed)


class Authenticator(Protocol):
    """What the routes need from the token service (implemented by ``api.auth``)."""

    def authenticate(self, access_token: str) -> Principal:
        """Return the bearer of a valid, unrevoked access token; raise ``AuthError(401)`` otherwise."""
        ...

    def check_step_up(self, principal: Principal, step_up_token: str, action: StepUpAction) -> None:
        """Raise ``AuthError(403)`` unless the token is the principal's, unexpired and for ``action``."""
        ...
