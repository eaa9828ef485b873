"""Signed tokens: access JWTs and step-up JWTs, HS256 only, with a key generated at first start.

Why HS256: the server is the only party that signs and the only one that verifies, so a public key
would buy nothing; a 256-bit random key gives HMAC-SHA256 its full strength, verification costs
microseconds on every request, and with no public key anywhere there is nothing to confuse it with.
The algorithm is pinned on decode (``algorithms=["HS256"]``): ``none``, HS384/512, RS256 or a
token "signed" with anything but the key is refused before a claim is read.

Access and step-up tokens differ in audience *and* in ``typ``, so one is never taken for the other.
Time claims are checked by the caller against its injected clock, not by PyJWT's wall clock.

A token that verified is remembered (its exact text, for its audience) with its claims: a client
polling every two seconds sends the same access token a hundred times, and the signature and the
claims of the same bytes under the same key cannot change. Only the verification is spared: expiry,
revocation and roles are still checked on every request by the caller.
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
    "load_or_create_scrape_token",
]

ALGORITHM: Final = "HS256"
ISSUER: Final = "nutcracker"
ACCESS_AUDIENCE: Final = "nutcracker-api"
STEP_UP_AUDIENCE: Final = "nutcracker-step-up"
_KEY_BYTES: Final = 32  # 256 bits
_REQUIRED: Final = ["sub", "aud", "iss", "jti", "exp", "iat", "nbf", "typ"]
_VERIFIED_MAX: Final = 4_096  # tokens remembered; then forgotten all at once (they live minutes)


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


_SCRAPE_MIN: Final = 32  # characters of the scrape token


def load_or_create_scrape_token(path: Path) -> str:
    """Read the metrics scrape token, or create it (mode 0600, 256 random bits) at first start.

    The token only opens ``/metrics``: it is not a login, names no user and reaches no other route.
    Prometheus sends it from a copy of the file (``authorization: credentials_file``).

    Raises:
        UsersError: the file is readable by others, not a file, or holds too short a token.
    """
    if path.is_dir():
        raise UsersError(f"--metrics-token-file {path} is a directory: give a file (made at first start)")
    if not path.exists():
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            pass
        except OSError as e:
            raise UsersError(f"--metrics-token-file {path}: cannot create it ({e.strerror})") from None
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsersError(
            f"--metrics-token-file {path} is readable by others (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}` (give Prometheus its own copy)"
        )
    token = path.read_text(encoding="utf-8", errors="replace").strip()
    if len(token) < _SCRAPE_MIN or not token.isascii() or any(c.isspace() for c in token):
        raise UsersError(
            f"--metrics-token-file {path} must hold one token of at least {_SCRAPE_MIN} characters "
            "without spaces: delete the file to have a random one made at start"
        )
    return token


class TokenSigner:
    """Encode and verify the server's JWTs with its one key and its one algorithm."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}

    def encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode({**claims, "iss": ISSUER}, self._key, algorithm=ALGORITHM)

    def decode(self, token: str, audience: str) -> dict[str, Any] | None:
        """The claims of a token this server signed for ``audience``, or None (any fault, no detail)."""
        known = self._verified.get((token, audience))
        if known is not None:
            return dict(known)
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
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[(token, audience)] = claims
        return dict(claims)
