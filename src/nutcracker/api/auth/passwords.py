"""Passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile) and their rules."""

from __future__ import annotations

import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nutcracker.api.auth.store import UsersError

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "Passwords", "check_password_rules"]

MIN_PASSWORD: Final = 12
MAX_PASSWORD: Final = 1024  # argon2 takes any length; a bound keeps a login body small


def check_password_rules(password: str, user: str) -> None:
    """Refuse a password too short, too long, or equal to the user name (the one-line reason, never it)."""
    if len(password) < MIN_PASSWORD:
        raise UsersError(f"password too short: use at least {MIN_PASSWORD} characters (a passphrase is fine)")
    if len(password) > MAX_PASSWORD:
        raise UsersError(f"password too long: use at most {MAX_PASSWORD} characters")
    if password.strip().lower() == user.lower():
        raise UsersError("password equals the user name: choose another")


class Passwords:
    """Hash and verify; ``verify_unknown`` spends the same time as a real check for a missing user."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()  # argon2id
        # a hash of nothing anyone knows: checking it costs what checking a real user's does
        self._dummy = self._hasher.hash(secrets.token_urlsafe(32))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_unknown(self, password: str) -> bool:
        """Verify against the dummy hash and answer False: an unknown user, timed like a wrong password."""
        self.verify(self._dummy, password)
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False
