"""Health and readiness (no token: for load balancers and supervisors), the audit log and ``/metrics``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from nutcracker.api.access import plane_of, visible_symbols
from nutcracker.api.deps import bearer, current_principal
from nutcracker.api.principal import ALL_ACCOUNTS, Principal
from nutcracker.api.problems import ProblemError, problem_responses
from nutcracker.api.schemas import AuditEntry, AuditPage, Health, Readiness

router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])

Caller = Annotated[Principal, Depends(current_principal)]


@router.get("/health", response_model=Health, summary="The process answers (no token needed)")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="The engine runs (no token needed); 503 while it starts or after it stopped",
    responses=problem_responses({503: "Not ready: the engine starts or has stopped"}),
)
async def ready(request: Request) -> Readiness:
    plane = plane_of(request)
    if not plane.ready or plane.stopped:
        why = "the engine has stopped" if plane.stopped else "the engine is starting"
        raise ProblemError(503, f"not ready: {why}", headers={"Retry-After": "1"})
    return Readiness(ready=True, mode=plane.mode, symbols=len(plane.books))


def _audit_symbol(detail: str) -> str:
    return detail.split(" ", 1)[0].removeprefix("symbol=") if detail.startswith("symbol=") else ""


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Who changed what, when, from where and why",
    responses=problem_responses({401: "No valid access token", 422: "limit is invalid"}),
)
async def audit(
    request: Request, principal: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> AuditPage:
    """Journal entries (commands, engine stops) of your symbols; with a role on every account, all of
    them and the auth service's (logins, lockouts, user changes)."""
    plane = plane_of(request)
    everything = principal.role_for(ALL_ACCOUNTS) is not None
    mine = set(visible_symbols(plane, principal))
    entries = [
        AuditEntry(
            source="journal", seq=r.seq, ts_ms=r.ts_ms, actor=r.actor, action=r.action, detail=r.detail
        )
        for r in plane.journal.audit_log(limit if everything else 10 * limit)
        if everything or _audit_symbol(r.detail) in mine
    ][:limit]
    if everything:
        entries.extend(auth_audit(request, limit))
        entries.sort(key=lambda e: e.ts_ms, reverse=True)
    return AuditPage(entries=entries[:limit])


def auth_audit(request: Request, limit: int) -> list[AuditEntry]:
    """The auth service's own audit, when the authenticator keeps one (``audit(limit)``)."""
    read = getattr(request.app.state.authenticator, "audit", None)
    if read is None:
        return []
    return [
        AuditEntry(
            source="auth",
            seq=int(getattr(row, "seq", 0)),
            ts_ms=int(getattr(row, "ts_ms", 0)),
            actor=str(getattr(row, "actor", "")),
            action=str(getattr(row, "action", "")),
            detail=str(getattr(row, "detail", ""))
            + (f" (from {row.client})" if getattr(row, "client", "") else ""),
        )
        for row in read(limit)
    ]


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics: the scrape token (serve --metrics-token-file), or a token with a role "
    "on every account (they name every symbol)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problem_responses(
            {401: "No valid token", 403: "Needs the scrape token or a role on every account"}
        ),
    },
)
async def metrics(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Response:
    if not _is_scrape_token(request, credentials):
        principal = await current_principal(request, credentials)
        if principal.role_for(ALL_ACCOUNTS) is None:
            raise ProblemError(
                403,
                "/metrics names every symbol of the server: it needs a role on every account ('*'), "
                "or the scrape token of serve --metrics-token-file",
            )
    body = request.app.state.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def _is_scrape_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the bearer is the server's scrape token (compared in constant time)."""
    expected: str | None = getattr(request.app.state, "metrics_token", None)
    if expected is None or credentials is None:
        return False
    return hmac.compare_digest(credentials.credentials.encode(), expected.encode())
