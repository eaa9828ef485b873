"""``/api/v1/auth``: login, refresh, logout, step-up and who am I (``create_app`` adds ``/api/v1``).

Handlers are plain functions (FastAPI runs them in its thread pool): argon2 takes tens of
milliseconds by design and must not hold up the event loop the engine pulses on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from nutcracker.api.auth import STEP_UP_TTL_S, AuthService, TokenPair
from nutcracker.api.auth.passwords import MAX_PASSWORD
from nutcracker.api.deps import CurrentPrincipal, authenticator, bearer, client_address
from nutcracker.api.principal import AuthError, StepUpAction, rank
from nutcracker.api.problems import problem_responses
from nutcracker.core.commands import Role

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"])  # create_app mounts it under /api/v1

_TOTP = r"^[0-9]{6}$"
_UNAUTHENTICATED = {
    401: "Not authenticated: the detail says why and how to fix it",
    422: "Invalid request: the detail names the field",
}
_PROBLEMS = problem_responses(_UNAUTHENTICATED)
_THROTTLED = problem_responses({**_UNAUTHENTICATED, 429: "Too many failed attempts: see Retry-After"})
_STEP_UP = problem_responses(
    {
        **_UNAUTHENTICATED,
        403: "No TOTP, or a wrong or reused code",
        429: "Too many failed attempts: see Retry-After",
    }
)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=MAX_PASSWORD)
    totp_code: str | None = Field(default=None, pattern=_TOTP, description="Required once TOTP is enabled")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: SecretStr = Field(min_length=1, max_length=256)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: SecretStr | None = Field(default=None, max_length=256)


class StepUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: StepUpAction
    totp_code: str = Field(pattern=_TOTP)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_token: str
    refresh_expires_in: int = Field(description="Seconds the refresh token is valid if unused")


class StepUpResponse(BaseModel):
    step_up_token: str
    action: StepUpAction
    expires_in: int


class MeResponse(BaseModel):
    user: str
    role: str = Field(description="The user's highest role")
    accounts: dict[str, str] = Field(description="Role per account ('*' = every account of the server)")
    totp_enabled: bool


def _service(request: Request) -> AuthService:
    service = authenticator(request)
    if not isinstance(service, AuthService):
        raise AuthError(503, "this server's authenticator issues no tokens")
    return service


Service = Annotated[AuthService, Depends(_service)]
Client = Annotated[str, Depends(client_address)]


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.access_expires_in_s,
        refresh_token=pair.refresh_token,
        refresh_expires_in=pair.refresh_expires_in_s,
    )


@router.post("/login", responses=_THROTTLED)
def login(body: LoginRequest, service: Service, client: Client) -> TokenResponse:
    """Log in with a password (and a TOTP code once enabled): a short-lived access token, a refresh token."""
    return _tokens(service.login(body.username, body.password.get_secret_value(), body.totp_code, client))


@router.post("/refresh", responses=_PROBLEMS)
def refresh(body: RefreshRequest, service: Service, client: Client) -> TokenResponse:
    """Trade a refresh token for a new pair; each refresh token works once (a reuse ends the session)."""
    return _tokens(service.refresh(body.refresh_token.get_secret_value(), client))


@router.post("/logout", status_code=204, response_class=Response, responses=_PROBLEMS)
def logout(
    service: Service,
    client: Client,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    body: LogoutRequest | None = None,
) -> None:
    """End the session of the bearer access token, or of the refresh token in the body."""
    if credentials is not None:
        service.logout(credentials.credentials, client)
    elif body is not None and body.refresh_token is not None:
        service.logout(body.refresh_token.get_secret_value(), client)
    else:
        raise AuthError(
            401, "nothing to log out: send the access token as Bearer, or the refresh token in the body"
        )


@router.post("/step-up", responses=_STEP_UP)
def step_up(
    body: StepUpRequest, principal: CurrentPrincipal, service: Service, client: Client
) -> StepUpResponse:
    """A step-up token for one action, valid two minutes, for a fresh TOTP code."""
    token = service.step_up(principal, body.totp_code, body.action, client)
    return StepUpResponse(step_up_token=token, action=body.action, expires_in=STEP_UP_TTL_S)


@router.get("/me", responses=_PROBLEMS)
def me(principal: CurrentPrincipal, service: Service) -> MeResponse:
    """Who the access token's bearer is, with their roles as the store has them now."""
    top = max(principal.accounts.values(), key=rank, default=Role.VIEWER)
    return MeResponse(
        user=principal.user,
        role=top.value,
        accounts={account: role.value for account, role in principal.accounts.items()},
        totp_enabled=service.totp_enabled(principal.user),
    )
