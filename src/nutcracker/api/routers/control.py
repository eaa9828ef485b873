"""Steering: pause, resume and kill per symbol or for all, and parameter changes in the config's units.

Every change is a command value sent through ``Engine.submit`` (applied between pulses, under the
symbol's lock, journaled with its id). The journal's audit entry says who (the user as ``actor``,
their role in the command tag), why (the request's ``reason``), from where (the client address)
and what (the state before; for parameters, each changed field before and after), and when.
Pause and kill need an operator; resuming a killed symbol and changing parameters also need a
step-up token (stopping is always easy, starting again is deliberate).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from nutcracker.api.access import (
    check_step_up,
    client_of,
    operable_symbols,
    plane_of,
    require_role,
    visible_symbol,
    visible_symbols,
)
from nutcracker.api.deps import current_principal
from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import Principal, StepUpAction
from nutcracker.api.problems import ProblemError, problem_responses
from nutcracker.api.routers.symbols import config_table
from nutcracker.api.schemas import CommandResult, ControlRequest, ParamsChange, ParamsDiff, ParamsPatch
from nutcracker.control.params_patch import change_params, patched_config
from nutcracker.core.commands import Command, KillSymbol, PauseSymbol, ResumeSymbol, Role
from nutcracker.errors import ConfigError

router = APIRouter(tags=["control"])

_CHANGE = problem_responses(
    {
        401: "No valid access token",
        403: "Your role is too low, or the step-up token is missing, expired or for another action",
        404: "No such symbol among yours",
        422: "The body is invalid: the detail names the field and the fix",
        503: "The engine is starting",
    }
)

Caller = Annotated[Principal, Depends(current_principal)]

_MAX_ID = 128  # the longest command id the journals keep
_KINDS: dict[str, type[Command]] = {"pause": PauseSymbol, "resume": ResumeSymbol, "kill": KillSymbol}


def _command_id(principal: Principal, given: str | None, suffix: str = "") -> str:
    """Scope a client's idempotency key to its user: another user's id never replays their outcome.

    At most ``_MAX_ID`` characters: a longer one keeps its start and ends with a digest of the
    whole, so the per-symbol ids of one "for all" command stay distinct (cutting the end off made
    them one id, and every symbol after the first a replay of the first).
    """
    cid = f"api:{principal.user}:{given or uuid.uuid4().hex}{suffix}"
    if len(cid) <= _MAX_ID:
        return cid
    digest = hashlib.sha256(cid.encode()).hexdigest()[:32]
    return f"{cid[: _MAX_ID - len(digest) - 1]}~{digest}"


def _why(reason: str, request: Request, what: str) -> str:
    return f"{reason} (API, from {client_of(request)}; {what})"


async def _control(
    plane: ControlPlane,
    request: Request,
    principal: Principal,
    kind: str,
    symbol: str,
    body: ControlRequest,
    suffix: str = "",
) -> CommandResult:
    role = require_role(plane, principal, symbol, Role.OPERATOR)
    before = str(plane.engine.worker(symbol).status)
    cid = _command_id(principal, body.command_id, suffix)
    command = _KINDS[kind](
        cid,
        symbol,
        principal.user,
        role,
        _why(body.reason, request, f"was {before}"),
        plane.clock.now_ms(),
    )
    outcome = await plane.submit(command)
    return CommandResult(
        symbol=symbol,
        command_id=cid,
        outcome=str(outcome.outcome),
        detail=outcome.detail,
        status=str(plane.engine.worker(symbol).status),
    )


def _needs_step_up_to_resume(plane: ControlPlane, symbols: list[str]) -> bool:
    return any(plane.engine.worker(s).status == "killed" for s in symbols)


@router.post(
    "/symbols/{symbol}/pause",
    response_model=CommandResult,
    summary="Pause a symbol (operator)",
    responses=_CHANGE,
)
async def pause(request: Request, symbol: str, body: ControlRequest, principal: Caller) -> CommandResult:
    plane = plane_of(request)
    return await _control(plane, request, principal, "pause", visible_symbol(plane, principal, symbol), body)


@router.post(
    "/symbols/{symbol}/kill",
    response_model=CommandResult,
    summary="Cancel its orders and stop it",
    responses=_CHANGE,
)
async def kill(request: Request, symbol: str, body: ControlRequest, principal: Caller) -> CommandResult:
    plane = plane_of(request)
    return await _control(plane, request, principal, "kill", visible_symbol(plane, principal, symbol), body)


@router.post(
    "/symbols/{symbol}/resume",
    response_model=CommandResult,
    summary="Resume a symbol (operator; a killed one also needs step-up resume_killed)",
    responses=_CHANGE,
)
async def resume(request: Request, symbol: str, body: ControlRequest, principal: Caller) -> CommandResult:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    require_role(plane, principal, name, Role.OPERATOR)
    if _needs_step_up_to_resume(plane, [name]):
        check_step_up(request, principal, StepUpAction.RESUME_KILLED)
    return await _control(plane, request, principal, "resume", name, body)


async def _for_all(
    request: Request, principal: Principal, kind: str, body: ControlRequest
) -> list[CommandResult]:
    plane = plane_of(request)
    targets = operable_symbols(plane, principal)
    if not targets:
        if visible_symbols(plane, principal):
            raise ProblemError(403, "you may only watch these symbols: this needs operator or owner")
        raise ProblemError(404, "you have no symbols here")
    if kind == "resume" and _needs_step_up_to_resume(plane, targets):
        check_step_up(request, principal, StepUpAction.RESUME_KILLED)
    # all at once: under `serve --store` each waits for its symbol's worker (up to 10 s when none
    # holds it), and one after the other a kill of every symbol took minutes
    return list(
        await asyncio.gather(*(_control(plane, request, principal, kind, s, body, f":{s}") for s in targets))
    )


@router.post(
    "/pause", response_model=list[CommandResult], summary="Pause every symbol you operate", responses=_CHANGE
)
async def pause_all(request: Request, body: ControlRequest, principal: Caller) -> list[CommandResult]:
    return await _for_all(request, principal, "pause", body)


@router.post(
    "/kill", response_model=list[CommandResult], summary="Kill every symbol you operate", responses=_CHANGE
)
async def kill_all(request: Request, body: ControlRequest, principal: Caller) -> list[CommandResult]:
    return await _for_all(request, principal, "kill", body)


@router.post(
    "/resume",
    response_model=list[CommandResult],
    summary="Resume every symbol you operate",
    responses=_CHANGE,
)
async def resume_all(request: Request, body: ControlRequest, principal: Caller) -> list[CommandResult]:
    return await _for_all(request, principal, "resume", body)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[ParamsDiff]:
    changes = []
    for section in sorted(set(before) | set(after)):
        old, new = before.get(section, {}), after.get(section, {})
        if not isinstance(old, dict) or not isinstance(new, dict):
            continue
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changes.append(ParamsDiff(field=f"{section}.{key}", before=old.get(key), after=new.get(key)))
    return changes


@router.put(
    "/symbols/{symbol}/params",
    response_model=ParamsChange,
    summary="Change parameters in the config's units (operator + step-up params); returns the diff",
    responses=_CHANGE,
)
async def change(request: Request, symbol: str, body: ParamsPatch, principal: Caller) -> ParamsChange:
    plane = plane_of(request)
    name = visible_symbol(plane, principal, symbol)
    role = require_role(plane, principal, name, Role.OPERATOR)
    check_step_up(request, principal, StepUpAction.PARAMS)
    async with plane.params_lock:  # each change patches the config the last one made current
        cid = _command_id(principal, body.command_id)
        try:
            diff = _diff(
                config_table(plane.config, name),
                config_table(patched_config(plane.config, name, body.patch), name),
            )
            if not diff:
                raise ConfigError("the patch changes nothing: every value in it is already current")
            what = ", ".join(f"{d.field} {json.dumps(d.before)} -> {json.dumps(d.after)}" for d in diff)
            command, new_config = change_params(
                plane.config,
                name,
                body.patch,
                command_id=cid,
                actor=principal.user,
                role=role,
                why=_why(body.reason, request, what),
                ts_ms=plane.clock.now_ms(),
            )
        except (
            ConfigError,
            ValueError,
            TypeError,
        ) as e:  # names the config field and its fix, as for the file
            raise ProblemError(422, str(e), errors=[{"field": "patch", "message": str(e)}]) from None
        outcome = await plane.submit(command)
        if outcome.applied:
            plane.config = new_config
    history = plane.journal.params_history(name)
    return ParamsChange(
        symbol=name,
        command_id=cid,
        outcome=str(outcome.outcome),
        detail=outcome.detail,
        version=history[-1].version if history else 0,
        diff=diff,
    )
