"""FastAPI dependencies the routes declare: who is calling (``current_principal``), and a step-up.

Both read the ``Authenticator`` from ``request.app.state.authenticator`` and raise ``AuthError``
(the app answers it as problem+json). A route that changes parameters declares
``principal: Annotated[Principal, Depends(require_step_up(StepUpAction.PARAMS))]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nutcracker.api.principal import Authenticator, AuthError, Principal, StepUpAction, step_up_hint

__all__ = ["CurrentPrincipal", "authenticator", "client_address", "current_principal", "require_step_up"]

# auto_error=False: a missing token is our AuthError (problem+json, the fix), not FastAPI's 403
bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/login")


def authenticator(request: Request) -> Authenticator:
    """The app's token service; refuse every request (fail closed) when none is configured."""
    service: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if service is None:
        raise AuthError(503, "authentication is not configured on this server: nothing is served without it")
    return service


def client_address(request: Request) -> str:
    """The caller's address (the proxy's client when uvicorn trusts the proxy's headers)."""
    return request.client.host if request.client else "unknown"


async def current_principal(  # async: run on the loop, not a thread hop per request (all in memory)
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The bearer of the request's valid, unrevoked access token; 401 otherwise."""
    if credentials is None:
        raise AuthError(
            401,
            "missing access token: send 'Authorization: Bearer TOKEN' (POST /api/v1/auth/login gives one)",
        )
    return authenticator(request).authenticate(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


# module level: FastAPI resolves the (postponed) annotations in the module's globals, not in a closure
STEP_UP_HEADER = Header(
    alias="X-Step-Up-Token", description="A step-up token for the route's action (POST /api/v1/auth/step-up)"
)


def require_step_up(action: StepUpAction) -> Callable[..., Principal]:
    """A dependency: the principal once their ``X-Step-Up-Token`` for ``action`` checks out; 403 otherwise."""

    def step_up_principal(
        request: Request,
        principal: CurrentPrincipal,
        step_up_token: Annotated[str | None, STEP_UP_HEADER] = None,
    ) -> Principal:
        service = authenticator(request)
        if not step_up_token:
            raise AuthError(403, step_up_hint(action))
        service.check_step_up(principal, step_up_token, action)
        return principal

    return step_up_principal
