"""A real uvicorn on a free loopback port serving the auth router plus one protected route and one
step-up route, over a users file made for the test; the auth service's clock is the test's."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI

from auth_factories import MovableClock, make_users
from nutcracker.api.auth import AuthService, Passwords, key_path_for
from nutcracker.api.deps import CurrentPrincipal, require_step_up
from nutcracker.api.principal import Principal, StepUpAction
from nutcracker.api.problems import install_problem_handlers
from nutcracker.api.routers.auth import router
from nutcracker.core.commands import Role

PARAMS_STEP_UP = Depends(require_step_up(StepUpAction.PARAMS))


def build_app(service: AuthService) -> FastAPI:
    app = FastAPI()
    app.state.authenticator = service
    install_problem_handlers(app)
    app.include_router(router, prefix="/api/v1")  # as create_app does

    @app.get("/api/v1/protected")
    def protected(principal: CurrentPrincipal) -> dict[str, str]:
        return {"user": principal.user}

    @app.put("/api/v1/params")
    def change_params(principal: Annotated[Principal, PARAMS_STEP_UP]) -> dict[str, str]:
        return {"changed_by": principal.user}

    return app


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class AuthServer:
    url: str
    clock: MovableClock
    users: Path
    totp: dict[str, str]
    service: AuthService
    logs: LogRecords = field(default_factory=LogRecords)

    @property
    def key(self) -> bytes:
        return key_path_for(self.users).read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve_auth(tmp: Path, passwords: Passwords) -> Iterator[AuthServer]:
    """Alice (owner, TOTP), bob (operator on binance/main, no TOTP), carol (viewer, TOTP)."""
    clock = MovableClock()
    users = tmp / "users.db"
    totp = make_users(
        users,
        clock,
        ("alice", Role.OWNER, [], True),
        ("bob", Role.OPERATOR, ["binance/main"], False),
        ("carol", Role.VIEWER, ["binance/main"], True),
        passwords=passwords,  # stored hashes cost what the dummy hash costs: timing tells nothing
    )
    service = AuthService.open(users, clock=clock, passwords=passwords)
    port = _free_port()
    config = uvicorn.Config(
        build_app(service),
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="info",
        ws="none",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    logs = LogRecords()
    root = logging.getLogger()
    root.addHandler(logs)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start in 10 s"
            time.sleep(0.01)
        yield AuthServer(f"http://127.0.0.1:{port}", clock, users, totp, service, logs)
    finally:
        server.should_exit = True
        thread.join(10)
        root.removeHandler(logs)
        service.close()
