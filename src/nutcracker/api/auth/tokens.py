"""Signed tokens: access JWTs and step-up JWTs, HS256 only, with a key generated at first start.

Why HS256: the server is the only party that signs and the only one that verifies, so a public key
would buy nothing; a 256-bit random key gives HMAC-SHA256 its full strength, verification costs
microseconds on every request, and with no public key anywhere there is nothing to confuse it with.
The algorithm is pinned on decode (``algorithms=["HS256"]``): ``none``, HS384/512, RS256 or a
token "signed" with anything but the key is refused before a claim is read.

Access and step-up tokens differ in audience *and* in ``typ``, so one is never taken for the other.
Time claims are checked by the caller against its injected clock, not by PyJWT's wall clock.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any, Final

import jwt

from nutcracker.api.auth.store import UsersError

__all__ = [
    "ACCESS_AUDIENCE",
    "ALGORITHM",
    "ISSUER",
    "STEP_UP_AUDIENCE",
    "TokenSigner",
    "key_path_for",
    "load_or_create_key",
]

ALGORITHM: Final = "HS256"
ISSUER: Final = "nutcracker"
ACCESS_AUDIENCE: Final = "nutcracker-api"
STEP_UP_AUDIENCE: Final = "nutcracker-step-up"
_KEY_BYTES: Final = 32  # 256 bits
_REQUIRED: Final = ["sub", "aud", "iss", "jti", "exp", "iat", "nbf", "typ"]


def key_path_for(users_path: Path) -> Path:
    """The signing key's file, beside the users file: ``nutcracker-users.db`` → ``nutcracker-users.key``."""
    return users_path.with_suffix(".key")


def load_or_create_key(path: Path) -> bytes:
    """Read the signing key, or create it (mode 0600) at first start; refuse one others can read."""
    if not path.exists():
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_KEY_BYTES))
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsersError(
            f"signing key {path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}`, and delete it if anyone else may have read it (every token dies)"
        )
    key = path.read_bytes()
    if len(key) != _KEY_BYTES:
        raise UsersError(
            f"signing key {path} is damaged ({len(key)} bytes, not {_KEY_BYTES}): delete it to make a new one"
        )
    return key


class TokenSigner:
    """Encode and verify the server's JWTs with its one key and its one algorithm."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode({**claims, "iss": ISSUER}, self._key, algorithm=ALGORITHM)

    def decode(self, token: str, audience: str) -> dict[str, Any] | None:
        """The claims of a token this server signed for ``audience``, or None (any fault, no detail)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": _REQUIRED, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        return claims
