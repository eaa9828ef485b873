"""The user's decision on a suggestion: accept (the manual parameter-change path) or reject.

Accepting validates the suggestion's patch through ``control.params_patch.change_params`` (what a
manual edit goes through), refuses a suggestion made for another version of the symbol's config,
writes the change into the user's config file (``config.editing``: atomic, ``FILE.bak`` kept) and
journals it as the user's act: the new parameters in the parameter history with the user as
actor, and an audit entry naming the suggestion. A running engine picks the file up at its next
start (the control API's accept endpoint, issue 14, will apply it between pulses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nutcracker.advisor.candidates import symbol_index
from nutcracker.advisor.suggestion import symbol_table_hash
from nutcracker.config import load_config
from nutcracker.config.editing import apply_to_file
from nutcracker.control.params_patch import change_params
from nutcracker.core.commands import Role
from nutcracker.core.serialize import dumps_params
from nutcracker.errors import AdvisorError, ConfigError
from nutcracker.store.sqlite import SqliteJournal
from nutcracker.store.suggestions import (
    ACCEPTED,
    EXPIRED,
    PENDING,
    REJECTED,
    StoredSuggestion,
    Suggestions,
    SuggestionStore,
)


class SuggestionError(ConfigError):
    """A suggestion that cannot be decided: unknown, already decided, expired or stale."""


@dataclass(frozen=True, slots=True)
class Accepted:
    suggestion_id: str
    symbol: str
    backup: Path


def pending(store: Suggestions, suggestion_id: str, now_ms: int) -> StoredSuggestion:
    """Return the suggestion if it can still be decided.

    Raises:
        SuggestionError: it is unknown, expired, accepted or rejected.
    """
    store.expire(now_ms)
    found = store.get(suggestion_id)
    if found is None:
        known = ", ".join(s.id for s in store.all() if s.status == PENDING) or "none"
        raise SuggestionError(f"{suggestion_id}: no such suggestion; pending ones: {known}")
    if found.status != PENDING:
        fix = "run `nutcracker advise` again" if found.status == EXPIRED else "it was decided already"
        raise SuggestionError(f"{suggestion_id}: the suggestion is {found.status}, not pending; {fix}")
    return found


def accept(journal: Path, config_file: Path, suggestion_id: str, *, actor: str, now_ms: int) -> Accepted:
    """Apply a pending suggestion to ``config_file`` as ``actor``'s own change, and journal it.

    Raises:
        SuggestionError, ConfigError: nothing was changed.
        JournalError: the journal cannot be written (the config file may already be changed: its
            backup is ``FILE.bak``).
    """
    store = SuggestionStore(journal)
    found = pending(store, suggestion_id, now_ms)
    record = json.loads(found.record_json)
    config = load_config(config_file)
    symbol = found.symbol
    try:
        index = symbol_index(config, symbol)
    except AdvisorError as e:
        raise SuggestionError(f"{suggestion_id}: {e}") from None
    if symbol_table_hash(config, symbol) != record["base_config_hash"]:
        raise SuggestionError(
            f"{suggestion_id}: {config_file} changed for {symbol} since this suggestion was made; "
            "run `nutcracker advise` again on the current config"
        )
    why = f"accepted suggestion {suggestion_id}"
    command, new = change_params(
        config,
        symbol,
        record["patch"],
        command_id=f"suggestion-{suggestion_id}",
        actor=actor,
        role=Role.OWNER,
        why=why,
        ts_ms=now_ms,
    )
    backup = apply_to_file(config_file, index, record["patch"], new, note=f"suggestion {suggestion_id}")
    with SqliteJournal(journal, checkpoint_every_s=None) as j:
        j.record_params(symbol, dumps_params(command.params), actor, why, now_ms, command.config_json)
        j.audit(
            actor,
            "accept_suggestion",
            f"suggestion={suggestion_id} symbol={symbol} command={command.command_id} role={Role.OWNER}",
            now_ms,
        )
    store.decide(suggestion_id, ACCEPTED, actor, now_ms)
    return Accepted(suggestion_id, symbol, backup)


def reject(journal: Path, suggestion_id: str, *, actor: str, now_ms: int) -> None:
    """Mark a pending suggestion rejected by ``actor``, audited."""
    store = SuggestionStore(journal)
    found = pending(store, suggestion_id, now_ms)
    store.decide(suggestion_id, REJECTED, actor, now_ms)
    with SqliteJournal(journal, checkpoint_every_s=None) as j:
        j.audit(actor, "reject_suggestion", f"suggestion={suggestion_id} symbol={found.symbol}", now_ms)
