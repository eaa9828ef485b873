"""The token service: logins, rotating refresh tokens, revocation, TOTP step-up (``Authenticator``).

Every request re-reads the user's roles and the revocations from the store: a removed user, a
logout or a detected refresh-token theft takes effect on the next request, not at token expiry.
The clock is injected (epoch seconds) so tests can move time; nothing here reads the wall clock.
"""

from __future__ import annotations

import hashlib
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

from nutcracker.api.auth.passwords import MAX_PASSWORD, Passwords
from nutcracker.api.auth.store import AuditEntry, AuthStore, RefreshUse, UsersError
from nutcracker.api.auth.throttle import (
    CLIENT_POLICY,
    USER_POLICY,
    ThrottlePolicy,
    after_failure,
    retry_after_s,
)
from nutcracker.api.auth.tokens import (
    ACCESS_AUDIENCE,
    STEP_UP_AUDIENCE,
    TokenSigner,
    key_path_for,
    load_or_create_key,
)
from nutcracker.api.auth.totp import matching_step
from nutcracker.api.principal import AuthError, Principal, StepUpAction, rank, step_up_hint
from nutcracker.core.commands import Role

__all__ = [
    "ACCESS_TTL_S",
    "REFRESH_TTL_S",
    "SESSION_MAX_S",
    "STEP_UP_TTL_S",
    "AuthService",
    "Clock",
    "TokenPair",
]

Clock = Callable[[], float]  # epoch seconds

ACCESS_TTL_S: Final = 300
STEP_UP_TTL_S: Final = 120
REFRESH_TTL_S: Final = 12 * 3600  # a refresh token unused this long dies; each use makes a new one
SESSION_MAX_S: Final = 7 * 86_400  # then a login ends however often it was refreshed: log in again
_MAX_NAME: Final = 64

LOGIN_FAILED: Final = "login failed: check the user name, the password and, if enabled, the TOTP code"
_RELOGIN: Final = "log in again (POST /api/v1/auth/login)"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_in_s: int
    refresh_expires_in_s: int
    token_type: str = "bearer"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    """Implements ``Authenticator`` over an ``AuthStore`` and the server's signing key."""

    def __init__(
        self,
        store: AuthStore,
        signer: TokenSigner,
        *,
        clock: Clock = time.time,
        passwords: Passwords | None = None,
    ) -> None:
        self.store = store
        self._signer = signer
        self._clock = clock
        self._passwords = passwords or Passwords()

    @classmethod
    def open(
        cls, users_path: Path, *, clock: Clock = time.time, passwords: Passwords | None = None
    ) -> AuthService:
        """Open the users file (it must exist and hold a user) and the key beside it (made at first start)."""
        _refuse_readable_by_others(users_path)  # it holds the TOTP secrets
        store = AuthStore.open(users_path)
        try:
            if not store.users():
                raise UsersError(
                    f"{users_path} holds no user: add one with `nutcracker users add NAME --role owner "
                    f"--users {users_path}`"
                )
            signer = TokenSigner(load_or_create_key(key_path_for(users_path)))
            store.purge(clock())
        except BaseException:
            store.close()
            raise
        return cls(store, signer, clock=clock, passwords=passwords)

    def close(self) -> None:
        self.store.close()

    # -- login, refresh, logout --------------------------------------------------------------------

    def login(self, user: str, password: str, totp_code: str | None, client: str) -> TokenPair:
        """Check the password (and the TOTP code once enabled) and open a session; throttled per user, client.

        Raises:
            AuthError: 401 with one message for every wrong credential, known user or not;
                429 with ``retry_after_s`` while the user name or the client address is locked out.
        """
        now = self._clock()
        name = user.strip().lower()[:_MAX_NAME]
        user_key, client_key = f"user:{name}", f"client:{client}"
        self._refuse_locked(now, user_key, client_key)
        record = self.store.user(name)
        password = password[:MAX_PASSWORD]
        if record is None:
            self._passwords.verify_unknown(password)
            failure = "unknown user"
        elif not self._passwords.verify(record.password_hash, password):
            failure = "wrong password"
        elif record.totp_secret is not None:
            failure = self._totp_failure(name, record.totp_secret, totp_code, now)
        else:
            failure = ""
        if failure:
            keys = ((user_key, USER_POLICY), (client_key, CLIENT_POLICY))
            self._count_failure(now, name, client, "login_failed", failure, *keys)
            raise AuthError(401, LOGIN_FAILED)
        assert record is not None
        self.store.clear_attempts(user_key)  # not the client's: one good account must not reset its guesses
        if self._passwords.needs_rehash(record.password_hash):
            self.store.set_password(name, self._passwords.hash(password), now, end_sessions=False)
        family = secrets.token_urlsafe(16)
        self.store.start_family(family, name, now)
        self.store.record(now, name, client, "login", "")
        return self._issue(name, family, now)

    def refresh(self, refresh_token: str, client: str) -> TokenPair:
        """Trade a refresh token for a new pair; a second use of one revokes its whole login (theft)."""
        now = self._clock()
        found = self.store.use_refresh(_hash(refresh_token), now, families_since=now - SESSION_MAX_S)
        if found.outcome is RefreshUse.REUSED:
            self.store.revoke_family(found.family, "refresh token reused", now)
            self.store.record(now, found.user, client, "refresh_reuse", "the session was revoked")
            raise AuthError(
                401, f"refresh token already used: the session was ended in case it was stolen; {_RELOGIN}"
            )
        if found.outcome is not RefreshUse.FRESH:
            raise AuthError(401, f"refresh token invalid, expired or revoked: {_RELOGIN}")
        if self.store.roles(found.user) is None:
            self.store.revoke_family(found.family, "user removed", now)
            raise AuthError(401, f"the user of this session no longer exists: {_RELOGIN}")
        return self._issue(found.user, found.family, now)

    def logout(self, token: str, client: str = "") -> None:
        """End the login an access token or a refresh token belongs to; its other tokens die with it."""
        now = self._clock()
        claims = self._signer.decode(token, ACCESS_AUDIENCE)
        if claims is not None and claims["typ"] == "access":
            self.store.revoke_token(str(claims["jti"]), float(claims["exp"]))
            family, user = str(claims.get("sid", "")), str(claims["sub"])
        else:
            found = self.store.refresh_family(_hash(token))
            if found.outcome is RefreshUse.UNKNOWN:
                raise AuthError(
                    401, "nothing to log out: the token is not an access or refresh token of this server"
                )
            family, user = found.family, found.user
        self.store.revoke_family(family, "logout", now)
        self.store.record(now, user, client, "logout", "")

    def _issue(self, user: str, family: str, now: float) -> TokenPair:
        roles = self.store.roles(user) or {}
        top = max(roles.values(), key=rank, default=Role.VIEWER)
        iat = int(now)
        access = self._signer.encode(
            {
                "sub": user,
                "role": top.value,
                "roles": {account: role.value for account, role in roles.items()},
                "aud": ACCESS_AUDIENCE,
                "typ": "access",
                "jti": secrets.token_urlsafe(16),
                "sid": family,
                "iat": iat,
                "nbf": iat,
                "exp": iat + ACCESS_TTL_S,
            }
        )
        refresh = secrets.token_urlsafe(32)
        self.store.add_refresh(_hash(refresh), family, now, now + REFRESH_TTL_S)
        return TokenPair(access, refresh, ACCESS_TTL_S, REFRESH_TTL_S)

    # -- Authenticator -----------------------------------------------------------------------------

    def authenticate(self, access_token: str) -> Principal:
        claims = self._signer.decode(access_token, ACCESS_AUDIENCE)
        if claims is None or claims["typ"] != "access" or not isinstance(claims["sub"], str):
            raise AuthError(401, f"invalid access token: {_RELOGIN}")
        fault = _time_fault(claims, self._clock())
        if fault == "expired":
            raise AuthError(401, "access token expired: get a new one at POST /api/v1/auth/refresh")
        if fault:
            raise AuthError(401, f"access token {fault}: {_RELOGIN}")
        revoked, roles = self.store.bearer(str(claims["jti"]), str(claims.get("sid", "")), claims["sub"])
        if revoked:
            raise AuthError(
                401, f"access token revoked (logout, new password or a stolen refresh token): {_RELOGIN}"
            )
        if roles is None:
            raise AuthError(401, "the user of this access token no longer exists")
        return Principal(user=claims["sub"], accounts=roles, token_id=str(claims["jti"]))

    def check_step_up(self, principal: Principal, step_up_token: str, action: StepUpAction) -> None:
        claims = self._signer.decode(step_up_token, STEP_UP_AUDIENCE)
        if claims is None or claims["typ"] != "step-up":
            raise AuthError(403, f"invalid step-up token; {step_up_hint(action)}")
        if _time_fault(claims, self._clock()):
            raise AuthError(
                403,
                f"step-up token expired or not yet valid (they last {STEP_UP_TTL_S} s); "
                f"{step_up_hint(action)}",
            )
        if claims["sub"] != principal.user:
            raise AuthError(403, f"step-up token belongs to another user; {step_up_hint(action)}")
        if claims.get("act") != action.value:
            raise AuthError(403, f"step-up token is for {claims.get('act')!r}; {step_up_hint(action)}")

    # -- step-up -----------------------------------------------------------------------------------

    def step_up(self, principal: Principal, totp_code: str, action: StepUpAction, client: str = "") -> str:
        """A step-up token for ``action``, valid ``STEP_UP_TTL_S``, for a fresh TOTP code of the principal.

        Raises:
            AuthError: 403 without TOTP or for a wrong or reused code (counted like a failed login),
                429 while the user is locked out.
        """
        now = self._clock()
        name = principal.user
        record = self.store.user(name)
        if record is None:
            raise AuthError(401, "the user of this access token no longer exists")
        if record.totp_secret is None:
            raise AuthError(
                403,
                f"step-up needs a TOTP code and user {name!r} has none: "
                f"run `nutcracker users totp enable {name}`",
            )
        user_key = f"user:{name}"
        self._refuse_locked(now, user_key)
        failure = self._totp_failure(name, record.totp_secret, totp_code, now)
        if failure:
            why = f"{action.value}: {failure}"
            self._count_failure(now, name, client, "step_up_failed", why, (user_key, USER_POLICY))
            raise AuthError(403, "TOTP code wrong or already used: wait for the next code and try again")
        self.store.clear_attempts(user_key)
        self.store.record(now, name, client, "step_up", action.value)
        iat = int(now)
        return self._signer.encode(
            {
                "sub": name,
                "aud": STEP_UP_AUDIENCE,
                "typ": "step-up",
                "act": action.value,
                "jti": secrets.token_urlsafe(16),
                "iat": iat,
                "nbf": iat,
                "exp": iat + STEP_UP_TTL_S,
            }
        )

    def totp_enabled(self, user: str) -> bool:
        record = self.store.user(user)
        return record is not None and record.totp_secret is not None

    def audit(self, limit: int = 100) -> list[AuditEntry]:
        """The latest ``limit`` auth events, newest first."""
        return self.store.audit(limit)

    # -- throttles and TOTP ------------------------------------------------------------------------

    def _refuse_locked(self, now: float, *keys: str) -> None:
        waits = [w for w in (retry_after_s(self.store.attempts(k), now) for k in keys) if w is not None]
        if waits:
            wait = max(waits)
            raise AuthError(429, f"too many failed attempts: try again in {wait} s", retry_after_s=wait)

    def _count_failure(
        self, now: float, name: str, client: str, event: str, why: str, *keys: tuple[str, ThrottlePolicy]
    ) -> None:
        self.store.record(now, name, client, event, why)
        for key, policy in keys:
            counted = self.store.update_attempts(key, partial(after_failure, now=now, policy=policy))
            if counted.locked_until > now and counted.failures == 0:  # this failure started a lockout
                until = counted.locked_until - now
                self.store.record(now, name, client, "lockout", f"{key} locked for {until:.0f} s")

    def _totp_failure(self, name: str, secret: str, code: str | None, now: float) -> str:
        """Why ``code`` is refused ("" when accepted: its step is now used)."""
        if not code:
            return "TOTP code missing"
        step = matching_step(secret, code, now)
        if step is None:
            return "wrong TOTP code"
        if not self.store.claim_totp_step(name, step):
            return "TOTP code reused"
        return ""


def _refuse_readable_by_others(path: Path) -> None:
    if path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(path.stat().st_mode)
        raise UsersError(f"users file {path} is readable by others (mode {mode:04o}): run `chmod 600 {path}`")


def _time_fault(claims: dict[str, Any], now: float) -> str:
    """Why the token's time claims refuse it now ("" when valid): the injected clock, not PyJWT's."""
    try:
        exp, nbf, iat = float(claims["exp"]), float(claims["nbf"]), float(claims["iat"])
    except (TypeError, ValueError):
        return "malformed"
    if now >= exp:
        return "expired"
    if now < nbf or now < iat:
        return "not yet valid"
    return ""
