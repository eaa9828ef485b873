"""Every error as RFC 9457 ``application/problem+json``: a title, the status, a detail that says the fix.

Validation errors list each field (``errors[].field``) with what is wrong and what is accepted;
an ``AuthError`` keeps its status and detail (401 adds ``WWW-Authenticate``, 429 ``Retry-After``);
anything unexpected is a bare 500 whose detail names
no exception, path or value (the log has the traceback, the response never does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from nutcracker.api.principal import AuthError
from nutcracker.errors import JournalError

__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "ProblemError",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

PROBLEM_JSON = "application/problem+json"

logger = logging.getLogger("nutcracker.api")


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is answered (``errors``: per field)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


def problem_responses(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each answered as problem+json (a route's ``responses=``)."""
    schema = Problem.model_json_schema()
    return {
        status: {"description": text, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status, text in described.items()
    }


class ProblemError(Exception):
    """Raise in a route to answer with a problem document (``errors``: per-field problems)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    request: Request,
    *,
    errors: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return the problem+json response for ``status`` with ``detail`` (and per-field ``errors``)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field(loc: Sequence[int | str]) -> str:
    """``("body", "patch", "grid")`` -> ``patch.grid``; query and path parameters keep their name."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors():
        where = _field(error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        kind = str(error.get("type", ""))
        if kind == "missing":
            message = f"{where} is required"
        elif kind == "extra_forbidden":
            message = f"{where} is not a field of this request: remove it"
        errors.append({"field": where, "message": message})  # never the input: it may be a secret
    return errors


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "the request is not valid"
    return problem_response(422, detail, request, errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    return problem_response(exc.status_code, detail, request, headers=exc.headers)


async def _on_auth(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after_s is not None:  # 429: when the locked-out login may try again
        headers["Retry-After"] = str(exc.retry_after_s)
    return problem_response(exc.status, exc.detail, request, headers=headers or None)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.status, exc.detail, request, errors=exc.errors, headers=exc.headers or None)


async def _on_journal(request: Request, exc: Exception) -> JSONResponse:
    """The journal (a file, Redis) cannot be read or written now: the server is fine, retry later.

    Its message names the store and the fix, never a password (``redis_connect.describe``).
    """
    logger.warning("api_journal path=%s error=%s", request.url.path, exc)
    return problem_response(503, str(exc), request, headers={"Retry-After": "5"})


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("api_error path=%s error=%s", request.url.path, type(exc).__name__, exc_info=exc)
    return problem_response(500, "internal error: the server's log has the details", request)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(AuthError, _on_auth)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(JournalError, _on_journal)
    app.add_exception_handler(Exception, _on_unexpected)
