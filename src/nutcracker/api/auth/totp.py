"""TOTP (RFC 6238, pyotp): 30-second steps, a code accepted one step early or late, each step once."""

from __future__ import annotations

import hmac
from typing import Final

import pyotp

__all__ = ["ISSUER_NAME", "matching_step", "new_secret", "provisioning_uri"]

ISSUER_NAME: Final = "Nutcracker"
_DRIFT_STEPS: Final = 1  # a phone's clock a step off still works


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, user: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user, issuer_name=ISSUER_NAME)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` belongs to (within the drift), or None: the caller refuses reused steps."""
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        # compare every candidate, in constant time: the loop takes as long whichever matches
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found
