"""Errors as RFC 9457 problem details (``application/problem+json``), never a secret or a trace.

``add_problem_handlers(app)`` maps ``AuthError`` (401 with ``WWW-Authenticate``, 429 with
``Retry-After``) and request validation errors: those name the field and the rule, never echo the
input (it may be a password).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nutcracker.api.principal import AuthError

__all__ = ["PROBLEM_JSON", "Problem", "add_problem_handlers", "problem", "problem_responses"]

PROBLEM_JSON: Final = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is answered."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for error statuses, each answered as problem+json (a route's ``responses=``)."""
    schema = Problem.model_json_schema()
    return {
        status: {"description": text, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status, text in described.items()
    }


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: object) -> JSONResponse:
    """A problem+json response: ``title`` is the status's phrase, ``detail`` what happened and the fix."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {}
    if exc.status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    return problem(exc.status, exc.detail, headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # field and rule only: pydantic's "input" would echo what was sent, a password included
    errors = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
    return problem(HTTPStatus.UNPROCESSABLE_ENTITY, f"invalid request: {detail}", errors=errors)


def add_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
