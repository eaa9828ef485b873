"""Commands as values: every change to a running symbol is one of these, sent to ``Engine.submit``.

A command carries who sends it (``actor``, ``role``, and the ``grant_id`` an agent acts under),
why, and the time the sender gives (ms): the core has no clock. ``command_id`` makes it
idempotent: the engine applies an id once and answers a replay with the first outcome. The API,
the console, the advisor and the agent will send these same values, so they hold plain data only.

``authorize`` is the role rule, pure: a viewer may send nothing, an advisor may only propose, an
agent needs a grant, only an owner decides on a suggestion; a ``ProposeChange`` and a
``DecideSuggestion`` are only ever recorded, never applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from nutcracker.core.params import SymbolParams

__all__ = [
    "MAX_COMMAND_ID",
    "TAG",
    "TAG_END",
    "ChangeParams",
    "Command",
    "CommandOutcome",
    "DecideSuggestion",
    "KillSymbol",
    "Outcome",
    "PauseSymbol",
    "ProposeChange",
    "ResumeSymbol",
    "Role",
    "authorize",
    "tagged_command_id",
]

MAX_COMMAND_ID = 128  # characters: a UUID, or a client's own id, fits
TAG, TAG_END = "command=", " role="  # an audit detail's ``command=ID role=ROLE``


def tagged_command_id(detail: str) -> str | None:
    """Return the command id an audit detail's tag names (its first ``command=ID role=``), or None.

    Only the first: the tag is written before any free text (``symbol=S command=ID role=R ...
    why=REASON``), so a reason that names another command's tag is never read as one. Read
    anywhere in the detail, such a reason made that id look journaled: the real command, a kill,
    was answered "journaled before" and never applied. The SQLite journal's trigger
    (``store.migrations``) and Redis' index script read it the same way.
    """
    start = detail.find(TAG)
    if start < 0:
        return None
    start += len(TAG)
    end = detail.find(TAG_END, start)
    return detail[start:end] if end > start else None


class Role(StrEnum):
    """Who may do what (see ``authorize``)."""

    OWNER = "owner"
    OPERATOR = "operator"
    VIEWER = "viewer"
    AGENT = "agent"
    ADVISOR = "advisor"
    CONFIG = "config"  # the configuration file, at engine start


class Outcome(StrEnum):
    APPLIED = "applied"  # the engine changed the symbol(s)
    RECORDED = "recorded"  # journaled only (a proposal)
    REFUSED = "refused"  # not allowed, or not possible: ``detail`` says why
    SENT = "sent"  # scale-out: in the symbol's inbox, not applied yet (no worker holds it now)


@dataclass(slots=True, init=False, unsafe_hash=True)
class Command:
    """What every command has; ``symbol`` None addresses every symbol of the engine."""

    command_id: Final[str]
    symbol: Final[str | None]
    actor: Final[str]
    role: Final[Role]
    why: Final[str]
    ts_ms: Final[int]
    grant_id: Final[str]

    def __init__(
        self,
        command_id: str,
        symbol: str | None,
        actor: str,
        role: Role,
        why: str,
        ts_ms: int,
        grant_id: str = "",
    ) -> None:
        if not command_id or len(command_id) > MAX_COMMAND_ID or not command_id.isprintable():
            raise ValueError(
                f"command_id must be 1 to {MAX_COMMAND_ID} printable characters, got {command_id!r}"
            )
        if not actor:
            raise ValueError("a command needs an actor")
        if ts_ms < 0:
            raise ValueError(f"ts_ms must be >= 0, got {ts_ms}")
        self.command_id = command_id
        self.symbol = symbol
        self.actor = actor
        self.role = Role(role)
        self.why = why
        self.ts_ms = ts_ms
        self.grant_id = grant_id

    @property
    def kind(self) -> str:
        """The action's name in the journal's audit (``pause``, ``resume``, ``kill``, ...)."""
        return "command"


@dataclass(slots=True, init=False, unsafe_hash=True)
class PauseSymbol(Command):
    """Stop deciding and dispatching (resting orders stay) until resumed."""

    @property
    def kind(self) -> str:
        return "pause"


@dataclass(slots=True, init=False, unsafe_hash=True)
class ResumeSymbol(Command):
    """Resume a paused or killed symbol."""

    @property
    def kind(self) -> str:
        return "resume"


@dataclass(slots=True, init=False, unsafe_hash=True)
class KillSymbol(Command):
    """Cancel every resting order of ours, then stop pulsing until resumed."""

    @property
    def kind(self) -> str:
        return "kill"


@dataclass(slots=True, init=False, unsafe_hash=True)
class ChangeParams(Command):
    """New parameters for one symbol, between two pulses.

    ``config_json`` is the same change in the user's own names and units (the symbol's config
    table as JSON, "" when the sender gave core parameters only): journaled beside them.
    """

    params: Final[SymbolParams]
    config_json: Final[str]

    def __init__(
        self,
        command_id: str,
        params: SymbolParams,
        actor: str,
        role: Role,
        why: str,
        ts_ms: int,
        grant_id: str = "",
        config_json: str = "",
    ) -> None:
        Command.__init__(self, command_id, params.market.symbol, actor, role, why, ts_ms, grant_id)
        self.params = params
        self.config_json = config_json

    @property
    def kind(self) -> str:
        return "params"


@dataclass(slots=True, init=False, unsafe_hash=True)
class ProposeChange(Command):
    """A suggested parameter patch (user units, JSON): recorded for a person, never applied."""

    patch_json: Final[str]

    def __init__(
        self,
        command_id: str,
        symbol: str,
        patch_json: str,
        actor: str,
        role: Role,
        why: str,
        ts_ms: int,
        grant_id: str = "",
    ) -> None:
        Command.__init__(self, command_id, symbol, actor, role, why, ts_ms, grant_id)
        self.patch_json = patch_json

    @property
    def kind(self) -> str:
        return "propose"


@dataclass(slots=True, init=False, unsafe_hash=True)
class DecideSuggestion(Command):
    """The owner's accept or reject of an advisor suggestion: recorded in the audit, changes nothing.

    An accepted suggestion's parameters come in their own ``ChangeParams``; this is the decision,
    journaled as ``accept_suggestion`` or ``reject_suggestion`` as the CLI's are.
    """

    suggestion_id: Final[str]
    accepted: Final[bool]

    def __init__(
        self,
        command_id: str,
        symbol: str,
        suggestion_id: str,
        accepted: bool,
        actor: str,
        role: Role,
        why: str,
        ts_ms: int,
    ) -> None:
        Command.__init__(self, command_id, symbol, actor, role, why, ts_ms)
        self.suggestion_id = suggestion_id
        self.accepted = accepted

    @property
    def kind(self) -> str:
        return "accept_suggestion" if self.accepted else "reject_suggestion"


@dataclass(slots=True, init=False, unsafe_hash=True)
class CommandOutcome:
    """What ``Engine.submit`` did with a command (the same answer for a replayed ``command_id``)."""

    command_id: Final[str]
    outcome: Final[Outcome]
    detail: Final[str]

    def __init__(self, command_id: str, outcome: Outcome, detail: str = "") -> None:
        self.command_id = command_id
        self.outcome = outcome
        self.detail = detail

    @property
    def applied(self) -> bool:
        return self.outcome == Outcome.APPLIED


def authorize(command: Command) -> str:
    """Return why the sender may not send this command, or "" when it may."""
    role = command.role
    if role == Role.VIEWER:
        return "a viewer may send no command"
    if role == Role.AGENT and not command.grant_id:
        return "an agent acts only under a grant: give its grant_id"
    if role == Role.ADVISOR and not isinstance(command, ProposeChange):
        return "an advisor may only propose a change"
    if isinstance(command, DecideSuggestion) and role != Role.OWNER:
        return f"only the owner decides on a suggestion (the sender is {role.value})"
    if type(command) is Command:
        return (
            "not a command: send PauseSymbol, ResumeSymbol, KillSymbol, ChangeParams, ProposeChange "
            "or DecideSuggestion"
        )
    return ""
