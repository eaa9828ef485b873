"""The advisor's suggestions over the API: list, show, and the user's decision (accept or reject).

Accepting is a manual parameter change with the suggestion's patch: the owner's ``ChangeParams``
through ``Engine.submit`` (applied between pulses, from the symbol's next pulse), audited as the
owner's act with ``accepted suggestion ID`` as its why and ``suggestion-ID`` in its command id. It
needs the owner role and a step-up token for ``params``, as a parameter edit does. Only a pending
suggestion made for the running config of the symbol can be accepted (409 otherwise); a refused
change leaves it pending. Every decision, accept or reject, is also journaled in the audit as the
CLI's is (``accept_suggestion``, ``reject_suggestion``: a ``DecideSuggestion`` the engine records)
with the owner, their role, their address, the suggestion and their reason.

The suggestions live in the journal file's own table (``store.suggestions``) or, under
``serve --store``, in the workers' Redis (``store.redis_suggestions``); ``enable`` tells the app
which. Their expiry is wall-clock time, also in a replay (where the engine's clock is the market's).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from nutcracker.advisor.suggestion import symbol_table_hash
from nutcracker.api.access import check_step_up, client_of, plane_of, visible_symbol
from nutcracker.api.deps import current_principal
from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import Principal, StepUpAction
from nutcracker.api.problems import ProblemError, problem_responses
from nutcracker.control.params_patch import change_params
from nutcracker.core.commands import DecideSuggestion, Outcome, Role
from nutcracker.errors import ConfigError
from nutcracker.store.migrations import JournalError
from nutcracker.store.suggestions import (
    ACCEPTED,
    PENDING,
    REJECTED,
    StoredSuggestion,
    Suggestions,
    SuggestionStore,
)

__all__ = ["enable", "router"]

router = APIRouter(tags=["suggestions"])

_READ = problem_responses(
    {
        401: "No valid access token",
        404: "No such symbol among yours, or no such suggestion for it",
        503: "The engine is starting, or this server keeps no suggestions",
    }
)
_DECIDE = problem_responses(
    {
        401: "No valid access token",
        403: "Not the owner, or the step-up token is missing, expired or for another action",
        404: "No such symbol among yours, or no such suggestion for it",
        409: "The suggestion is not pending (accepted, rejected, expired) or was made for other parameters",
        422: "The body is invalid, or the patch no longer fits the config",
        503: "The engine is starting, or this server keeps no suggestions",
    }
)

Caller = Annotated[Principal, Depends(current_principal)]


def enable(app: FastAPI, kept: Path | Suggestions) -> None:
    """Serve the suggestions kept in ``kept``: the engine's journal file (opened per request, as the
    engine may create it after the server starts), or a store such as Redis's."""
    app.state.suggestions_kept = kept


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SuggestionOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    symbol: str
    status: str = Field(description="pending, accepted, rejected or expired")
    created_ts_ms: int
    expires_ts_ms: int
    decided_ts_ms: int = Field(description="-1 while pending")
    decided_by: str
    summary: str
    confidence: float = Field(description="share of walk-forward folds the suggestion won out of sample")
    diff: dict[str, Any] = Field(
        description="per field: the value it was made against (from) and the suggested one (to)"
    )


class SuggestionList(BaseModel):
    model_config = ConfigDict(frozen=True)

    symbol: str
    suggestions: list[SuggestionOut]


class SuggestionDetail(SuggestionOut):
    record: dict[str, Any] = Field(
        description="the suggestion as filed: patch, per-fold evidence, disclaimer"
    )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        default="", max_length=500, description="Optional note: journaled with your name and address."
    )


class DecisionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    symbol: str
    status: str
    command_id: str = Field(
        default="", description="the parameter change's command id (accept), the decision's (reject)"
    )
    outcome: str = Field(default="", description="applied or refused (accept), recorded (reject)")
    detail: str = ""
    version: int = Field(default=0, description="the symbol's parameter version after an accept")


def _store(request: Request) -> Suggestions:
    kept: Path | Suggestions | None = getattr(request.app.state, "suggestions_kept", None)
    if kept is None:
        raise ProblemError(503, "this server keeps no suggestions: serve an engine with a journal file")
    if not isinstance(kept, Path):
        return kept
    try:
        return SuggestionStore(kept)
    except JournalError as e:
        raise ProblemError(503, str(e)) from None


def _out(s: StoredSuggestion) -> dict[str, Any]:
    record = json.loads(s.record_json)
    return {
        "id": s.id,
        "symbol": s.symbol,
        "status": s.status,
        "created_ts_ms": s.created_ts_ms,
        "expires_ts_ms": s.expires_ts_ms,
        "decided_ts_ms": s.decided_ts_ms,
        "decided_by": s.decided_by,
        "summary": str(record.get("summary", "")),
        "confidence": float(record.get("confidence", 0)),
        "diff": record.get("diff", {}),
    }


def _owner(plane: ControlPlane, principal: Principal, symbol: str) -> Role:
    """Only the account's owner decides on a suggestion (403 names the role they have)."""
    account = plane.account_of(symbol)
    role = principal.role_for(account)
    if role is None or not principal.may(account, Role.OWNER):
        raise ProblemError(403, f"your role on {account} is {role}: deciding on a suggestion needs owner")
    return Role.OWNER


def _find(store: Suggestions, symbol: str, suggestion_id: str) -> StoredSuggestion:
    store.expire(_now_ms())
    found = store.get(suggestion_id)
    if found is None or found.symbol != symbol:
        raise ProblemError(
            404, f"no suggestion {suggestion_id[:40]!r} for {symbol}: GET …/suggestions lists them"
        )
    return found


def _pending(found: StoredSuggestion) -> None:
    if found.status != PENDING:
        fix = "run `nutcracker advise` again" if found.status == "expired" else "it was decided already"
        raise ProblemError(409, f"{found.id}: the suggestion is {found.status}, not pending; {fix}")


@router.get(
    "/symbols/{symbol}/suggestions",
    response_model=SuggestionList,
    summary="The advisor's suggestions for a symbol, newest first",
    responses=_READ,
)
async def list_suggestions(request: Request, symbol: str, principal: Caller) -> SuggestionList:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    store = _store(request)
    store.expire(_now_ms())
    rows = [SuggestionOut(**_out(s)) for s in store.all() if s.symbol == name]
    return SuggestionList(symbol=name, suggestions=rows)


@router.get(
    "/symbols/{symbol}/suggestions/{suggestion_id}",
    response_model=SuggestionDetail,
    summary="One suggestion: its diff, per-fold evidence and disclaimer",
    responses=_READ,
)
async def show_suggestion(
    request: Request, symbol: str, suggestion_id: str, principal: Caller
) -> SuggestionDetail:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    found = _find(_store(request), name, suggestion_id)
    return SuggestionDetail(**_out(found), record=json.loads(found.record_json))


@dataclass(frozen=True, slots=True)
class _Deciding:
    """A pending suggestion the caller, its symbol's owner, decides on (under the params lock)."""

    plane: ControlPlane
    symbol: str
    store: Suggestions
    found: StoredSuggestion
    role: Role


@asynccontextmanager
async def _deciding(
    request: Request, slug: str, suggestion_id: str, principal: Principal, step_up: StepUpAction | None
) -> AsyncIterator[_Deciding]:
    """Hold the params lock over a pending suggestion of ``slug`` the owner decides on.

    The checks come in this order: 404 symbol, 403 role, 403 step-up (when asked), 503 no
    suggestions kept, 404 suggestion, 409 not pending.
    """
    plane = plane_of(request)
    name = visible_symbol(plane, principal, slug)
    role = _owner(plane, principal, name)
    if step_up is not None:
        check_step_up(request, principal, step_up)
    store = _store(request)
    async with plane.params_lock:  # one decision at a time, on the config the last change made current
        found = _find(store, name, suggestion_id)
        _pending(found)
        yield _Deciding(plane, name, store, found, role)


def _why(request: Request, verb: str, suggestion_id: str, reason: str) -> str:
    note = f"; {reason}" if reason else ""
    return f"{verb} suggestion {suggestion_id}{note} (API, from {client_of(request)})"


async def _record_decision(d: _Deciding, principal: Principal, why: str, *, accepted: bool, cid: str) -> None:
    """Journal the decision in the audit as the CLI's (``accept_suggestion`` / ``reject_suggestion``)."""
    decision = DecideSuggestion(
        cid, d.symbol, d.found.id, accepted, principal.user, d.role, why, d.plane.clock.now_ms()
    )
    outcome = await d.plane.submit(decision)
    if outcome.outcome != Outcome.RECORDED:
        raise ProblemError(409, f"{d.found.id}: the decision was not journaled: {outcome.detail}")


@router.post(
    "/symbols/{symbol}/suggestions/{suggestion_id}/accept",
    response_model=DecisionResult,
    summary="Apply a pending suggestion as your parameter change (owner + step-up params)",
    responses=_DECIDE,
)
async def accept_suggestion(
    request: Request, symbol: str, suggestion_id: str, body: Decision, principal: Caller
) -> DecisionResult:
    async with _deciding(request, symbol, suggestion_id, principal, StepUpAction.PARAMS) as d:
        record = json.loads(d.found.record_json)
        if symbol_table_hash(d.plane.config, d.symbol) != record.get("base_config_hash"):
            raise ProblemError(
                409,
                f"{d.found.id}: {d.symbol}'s parameters changed since this suggestion was made; "
                "run `nutcracker advise` again on the current config",
            )
        cid = f"api:{principal.user}:suggestion-{d.found.id}"
        why = _why(request, "accepted", d.found.id, body.reason)
        try:
            command, new_config = change_params(
                d.plane.config,
                d.symbol,
                record["patch"],
                command_id=cid,
                actor=principal.user,
                role=d.role,
                why=why,
                ts_ms=d.plane.clock.now_ms(),
            )
        except (ConfigError, ValueError, TypeError) as e:
            raise ProblemError(
                422, f"{d.found.id}: {e}", errors=[{"field": "patch", "message": str(e)}]
            ) from None
        outcome = await d.plane.submit(command)
        if outcome.applied:
            d.plane.config = new_config
            await _record_decision(d, principal, why, accepted=True, cid=f"{cid}:decision")
            d.store.decide(d.found.id, ACCEPTED, principal.user, _now_ms())
    history = d.plane.journal.params_history(d.symbol)
    return DecisionResult(
        id=d.found.id,
        symbol=d.symbol,
        status=ACCEPTED if outcome.applied else PENDING,
        command_id=cid,
        outcome=str(outcome.outcome),
        detail=outcome.detail,
        version=history[-1].version if history else 0,
    )


@router.post(
    "/symbols/{symbol}/suggestions/{suggestion_id}/reject",
    response_model=DecisionResult,
    summary="Reject a pending suggestion (owner); it can no longer be accepted",
    responses=_DECIDE,
)
async def reject_suggestion(
    request: Request, symbol: str, suggestion_id: str, body: Decision, principal: Caller
) -> DecisionResult:
    async with _deciding(request, symbol, suggestion_id, principal, step_up=None) as d:
        cid = f"api:{principal.user}:reject-{d.found.id}"
        # journaled first: no rejection without its audit entry
        await _record_decision(
            d, principal, _why(request, "rejected", d.found.id, body.reason), accepted=False, cid=cid
        )
        if not d.store.decide(d.found.id, REJECTED, principal.user, _now_ms()):
            raise ProblemError(409, f"{d.found.id}: the suggestion was decided meanwhile")
    return DecisionResult(
        id=d.found.id,
        symbol=d.symbol,
        status=REJECTED,
        command_id=cid,
        outcome=str(Outcome.RECORDED),
        detail=body.reason,
    )
