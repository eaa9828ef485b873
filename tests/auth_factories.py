"""Builders for the auth tests: a movable clock, a cheap (still argon2id) hasher, a users file."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pyotp
from argon2 import PasswordHasher

from nutcracker.api.auth import AuthStore, Passwords, UserAdmin
from nutcracker.core.commands import Role

T0 = 1_800_000_000.0  # 2027-01-15: a fixed start, well inside a TOTP step boundary's reach
PASSWORD = "correct horse battery staple"


@dataclass
class MovableClock:
    """Epoch seconds that only the test moves."""

    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cheap_passwords() -> Passwords:
    """argon2id with small costs: the same code paths, milliseconds instead of a fifth of a second."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def make_users(
    path: Path,
    clock: MovableClock,
    *users: tuple[str, Role, list[str], bool],
    passwords: Passwords | None = None,
) -> dict[str, str]:
    """Create ``path`` with users (name, role, accounts, TOTP on?); return each TOTP user's secret."""
    store = AuthStore.open(path, create=True)
    admin = UserAdmin(store, actor="test", clock=clock, passwords=passwords or cheap_passwords())
    secrets: dict[str, str] = {}
    try:
        for name, role, accounts, totp in users:
            admin.add(name, role, accounts, PASSWORD)
            if totp:
                uri = admin.enable_totp(name)
                secrets[name] = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    finally:
        store.close()
    return secrets


def code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)
