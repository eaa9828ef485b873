"""``StatusFastPath``: the ``GET /status`` polls, answered before FastAPI's routing.

Hundreds of consoles polling ``/status`` share the loop the engine pulses on. The body they get is
already kept and compressed once (``routers.symbols.status_response``); what each poll still cost
was FastAPI's machinery around it: matching the request against ten routes and solving three
dependencies, some 850 Python calls, ~0.3 ms in a tight loop and ~1 ms as served (caches cold
between two polls; ``bench/api.py``). This middleware answers the common case with the same
function and the same token check: a GET of exactly that path whose bearer token authenticates.
Anything else (no token, a bad or revoked one, no engine yet, another path) goes on to the router,
which answers it as before; a failed check has no side effect, so checking twice changes nothing.
"""

from __future__ import annotations

from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from nutcracker.api.principal import AuthError
from nutcracker.api.routers import symbols

__all__ = ["StatusFastPath"]


class StatusFastPath:
    """ASGI middleware: answer an authenticated ``GET {path}`` itself (module docstring)."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self._app = app
        self._path = path
        # the route the router would have matched: the metrics label requests by its template
        self._route = next(r for r in symbols.router.routes if getattr(r, "endpoint", None) is symbols.status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self._path:
            state = scope["app"].state
            plane, service = state.plane, getattr(state, "authenticator", None)
            token, accept_encoding = _headers(scope["headers"])
            if plane is not None and service is not None and token:
                try:
                    principal = service.authenticate(token)
                except AuthError:  # the route answers it, with the problem's own words
                    pass
                else:
                    scope["route"] = self._route
                    await symbols.status_response(plane, principal, accept_encoding)(scope, receive, send)
                    return
        await self._app(scope, receive, send)


def _headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
    """Return the bearer token (``""`` when the first Authorization header is not one) and the
    Accept-Encoding, read as FastAPI's ``HTTPBearer`` (its own parser) and ``Headers.get`` read them."""
    authorization = accept_encoding = None
    for name, value in headers:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"accept-encoding" and accept_encoding is None:
            accept_encoding = value.decode("latin-1")
    scheme, token = get_authorization_scheme_param(authorization)
    return (token if scheme.lower() == "bearer" else ""), accept_encoding or ""
