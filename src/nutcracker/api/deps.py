"""FastAPI dependencies for who is calling (placeholder until the auth branch's ``deps`` lands).

Same interface as the auth branch's: ``current_principal`` reads the Bearer token and asks
``request.app.state.authenticator``; ``require_step_up(action)`` also checks ``X-Step-Up-Token``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from nutcracker.api.principal import Authenticator, AuthError, Principal, StepUpAction

__all__ = ["current_principal", "require_step_up"]


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        raise AuthError(401, "this server has no authenticator configured")
    return authenticator


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "send an access token: Authorization: Bearer <token> (POST /api/v1/auth/login)")
    return _authenticator(request).authenticate(token.strip())


def require_step_up(action: StepUpAction) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        token = request.headers.get("x-step-up-token", "")
        if not token:
            raise AuthError(403, f"this action needs a step-up token for {action.value!r}")
        _authenticator(request).check_step_up(principal, token, action)
        return principal

    return dependency
