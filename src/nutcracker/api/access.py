"""Which symbols a caller sees and may steer: another account's symbol does not exist for them.

A symbol of an account the caller has no role on is answered exactly like a symbol that is not
traded (404, same detail), so nothing about other users' accounts leaks. A role too low for a
change is a 403 that names the role needed.
"""

from __future__ import annotations

from fastapi import Request

from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import Authenticator, Principal, StepUpAction, step_up_hint
from nutcracker.api.problems import ProblemError
from nutcracker.core.commands import Role

__all__ = [
    "check_step_up",
    "client_of",
    "operable_symbols",
    "plane_of",
    "require_role",
    "visible_symbol",
    "visible_symbols",
]


def plane_of(request: Request) -> ControlPlane:
    plane: ControlPlane | None = request.app.state.plane
    if plane is None:  # paper and live connect to the exchange before the engine exists
        raise ProblemError(503, "the engine is starting: try again in a moment", headers={"Retry-After": "1"})
    return plane


def client_of(request: Request) -> str:
    """Return the caller's address as the server sees it (a proxy's, behind one)."""
    return request.client.host if request.client is not None else "unknown"


def visible_symbols(plane: ControlPlane, principal: Principal) -> list[str]:
    return [s for s in plane.symbols() if principal.role_for(plane.account_of(s)) is not None]


def operable_symbols(plane: ControlPlane, principal: Principal) -> list[str]:
    return [s for s in plane.symbols() if principal.may(plane.account_of(s), Role.OPERATOR)]


def visible_symbol(plane: ControlPlane, principal: Principal, slug: str) -> str:
    """Return the symbol a path names (``BTC-USDT``) when the caller may see it; 404 otherwise."""
    symbol = plane.by_slug.get(slug)
    if symbol is None or principal.role_for(plane.account_of(symbol)) is None:
        raise ProblemError(
            404, f"no symbol {slug[:40]!r} here: GET /api/v1/status lists yours (e.g. BTC-USDT)"
        )
    return symbol


def require_role(plane: ControlPlane, principal: Principal, symbol: str, needed: Role) -> Role:
    """Return the caller's role on the symbol's account; 403 unless it is at least ``needed``."""
    account = plane.account_of(symbol)
    role = principal.role_for(account)
    if role is None or not principal.may(account, needed):
        raise ProblemError(403, f"your role on {account} is {role}: this needs {needed.value} or owner")
    return role


def check_step_up(request: Request, principal: Principal, action: StepUpAction) -> None:
    """Refuse (403) unless ``X-Step-Up-Token`` is the caller's fresh step-up token for ``action``."""
    token = request.headers.get("x-step-up-token", "")
    if not token:
        raise ProblemError(403, step_up_hint(action))
    authenticator: Authenticator = request.app.state.authenticator
    authenticator.check_step_up(principal, token, action)
