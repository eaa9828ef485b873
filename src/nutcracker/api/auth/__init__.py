"""Authentication and authorization of the control plane: users, tokens, TOTP step-up, throttles, audit.

``AuthService`` implements the routes' ``Authenticator`` port (``api.principal``); ``UserAdmin``
changes users (the ``nutcracker users`` command). It imports nothing of the API's routes or of the
engine: the app wires it in as ``app.state.authenticator``.
"""

from nutcracker.api.auth.admin import USER_ROLES, UserAdmin, check_account, check_user_name, parse_role
from nutcracker.api.auth.passwords import MIN_PASSWORD, Passwords
from nutcracker.api.auth.service import (
    ACCESS_TTL_S,
    REFRESH_TTL_S,
    SESSION_MAX_S,
    STEP_UP_TTL_S,
    AuthService,
    Clock,
    TokenPair,
)
from nutcracker.api.auth.store import AuditEntry, AuthStore, UserRecord, UsersError
from nutcracker.api.auth.tokens import ALGORITHM, key_path_for

__all__ = [
    "ACCESS_TTL_S",
    "ALGORITHM",
    "MIN_PASSWORD",
    "REFRESH_TTL_S",
    "SESSION_MAX_S",
    "STEP_UP_TTL_S",
    "USER_ROLES",
    "AuditEntry",
    "AuthService",
    "AuthStore",
    "Clock",
    "Passwords",
    "TokenPair",
    "UserAdmin",
    "UserRecord",
    "UsersError",
    "check_account",
    "check_user_name",
    "key_path_for",
    "parse_role",
]
