"""``create_app``: the FastAPI application over one ``ControlPlane`` and an ``Authenticator``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from nutcracker.api.admission import Admission
from nutcracker.api.fastpath import StatusFastPath
from nutcracker.api.metrics import ApiMetrics, RequestTimer
from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import Authenticator
from nutcracker.api.problems import install_problem_handlers
from nutcracker.api.routers import (
    backtests,
    control,
    events,
    history,
    levels,
    ops,
    reference,
    suggestions,
    symbols,
)

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(
    authenticator: Authenticator,
    plane: ControlPlane | None = None,
    *,
    metrics: ApiMetrics | None = None,
    heartbeat_s: float = 15.0,
    metrics_token: str | None = None,
    admitted: int = 4,
) -> FastAPI:
    """Return the API app. ``plane`` may be attached later (``app.state.plane``): until then, 503.

    ``metrics_token`` is the scrape token that opens ``/metrics`` (and nothing else) without a login.
    ``admitted`` requests are handled at once, the others wait their turn (``api.admission``).
    """
    app = FastAPI(
        title="Nutcracker control API",
        version="1",
        summary="Watch and steer a running Nutcracker engine: status, reasons, pause, kill, parameters.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks look for a configured provider on every request (a tenth
        # of a request's CPU, bench/api.py); the API's metrics are its Prometheus ones (/metrics)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.authenticator = authenticator
    app.state.plane = plane
    app.state.metrics = metrics or ApiMetrics()
    app.state.heartbeat_s = heartbeat_s
    app.state.metrics_token = metrics_token
    if plane is not None:
        plane.engine.add_observer(app.state.metrics.observe)
    install_problem_handlers(app)
    app.add_middleware(StatusFastPath, path=f"{API_PREFIX}/status")  # inside both: admitted, timed
    app.add_middleware(Admission, limit=admitted)
    # added last, so outside the admission: the latency it records includes the wait for a turn
    app.add_middleware(RequestTimer, metrics=app.state.metrics, prefix=API_PREFIX)
    for router in [
        *_auth_routers(),
        ops.router,
        symbols.router,
        control.router,
        events.router,
        suggestions.router,
    ]:
        app.include_router(router, prefix=API_PREFIX)
    for router in [backtests.router, history.router, levels.router, reference.router]:  # the console adds
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(ops.metrics_router)
    return app


def attach(app: FastAPI, plane: ControlPlane) -> None:
    """Give a running app its engine (paper and live build the engine after the server starts)."""
    plane.engine.add_observer(app.state.metrics.observe)
    app.state.plane = plane


def _auth_routers() -> list[APIRouter]:
    from nutcracker.api.routers import auth  # the token service's routes: login, refresh, step-up

    return [auth.router]
