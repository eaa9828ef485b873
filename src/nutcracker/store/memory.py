"""``InMemoryJournal``: the journal in dicts, for the backtester and tests; nothing is durable."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import replace

from nutcracker.core.commands import tagged_command_id
from nutcracker.core.records import (
    ACCOUNT,
    NEW_SYMBOL_STATUS,
    OPEN_INTENT_STATUSES,
    AuditRow,
    CycleRow,
    EventRow,
    FillRow,
    IntentRecord,
    IntentRow,
    ParamsRow,
    PulseRecord,
    StoredSymbol,
    audit_payload,
    check_intent_updates,
    check_symbol_status,
    cycle_row,
    fill_row,
    intent_row,
    intents_payload,
    params_payload,
    pulse_payload,
    status_payload,
)

_IntentKey = tuple[str, str]  # (client_order_id, action)


class InMemoryJournal:
    """The ``Journal`` in memory: the same answers as ``SqliteJournal`` for the same calls.

    Each call applies all of its changes or, when it raises ``ValueError``, none. Lookups the
    pulse makes (``known_trade_ids``, ``open_intents``, ``update_intents``) do not scan the
    whole history, so long backtests stay linear.
    """

    def __init__(self) -> None:
        self._symbols: dict[str, StoredSymbol] = {}
        self._fills: dict[str, dict[str, FillRow]] = {}  # symbol -> trade_id -> row, booking order
        self._fill_times: dict[str, list[tuple[int, str]]] = {}  # symbol -> sorted (ts_ms, trade_id)
        self._cycles: dict[str, dict[int, CycleRow]] = {}
        self._intents: dict[str, dict[_IntentKey, IntentRow]] = {}  # record order
        self._latest_intent: dict[str, dict[str, _IntentKey]] = {}  # client_order_id -> latest key
        self._intent_positions: dict[str, dict[_IntentKey, int]] = {}  # key -> position in record order
        self._open_intents: dict[str, dict[_IntentKey, int]] = {}  # the open ones of those
        self._params: dict[str, list[ParamsRow]] = {}
        self._audit: list[AuditRow] = []
        self._commands: dict[str, str] = {}  # command id -> the first audit detail its tag names
        self._events: dict[str, list[EventRow]] = {}
        self._log: list[EventRow] = []  # every event, in seq order (seq n at index n - 1)
        self._event_count = 0

    # -- writes ---------------------------------------------------------------------------------

    def commit_pulse(self, record: PulseRecord) -> None:
        """Store what one pulse changed; repeated fills, cycles and intents once.

        Raises:
            ValueError: an intent reuses a recorded (client order id, action) for a different order.
        """
        symbol = record.symbol
        intents = self._intents.setdefault(symbol, {})
        new_intents: dict[_IntentKey, IntentRecord] = {}
        for intent in record.intents:  # check before changing anything
            key = (intent.client_order_id, intent.action)
            known = new_intents.get(key) or (intents[key].as_record() if key in intents else None)
            if known is None:
                new_intents[key] = intent
            elif not known.same_order(intent):
                raise ValueError(
                    f"{symbol}: intent {intent.client_order_id} ({intent.action}) was recorded"
                    " for another order"
                )

        last_fill_ts_ms = max((fill.ts_ms for fill in record.fills), default=-1)
        stored = self._symbols.get(symbol)
        if stored is None:
            stored = StoredSymbol(
                symbol, record.state_json, last_fill_ts_ms, NEW_SYMBOL_STATUS, "", record.ts_ms
            )
        else:
            last_fill_ts_ms = max(stored.last_fill_ts_ms, last_fill_ts_ms)
            stored = replace(
                stored,
                state_json=record.state_json,
                last_fill_ts_ms=last_fill_ts_ms,
                updated_ts_ms=record.ts_ms,
            )
        self._symbols[symbol] = stored

        fills = self._fills.setdefault(symbol, {})
        fill_times = self._fill_times.setdefault(symbol, [])
        new_fills = []
        for fill, cycle_id in zip(record.fills, record.cycle_ids, strict=True):
            if fill.trade_id not in fills:
                row = fills[fill.trade_id] = fill_row(symbol, fill, cycle_id)
                insort(fill_times, (fill.ts_ms, fill.trade_id))
                new_fills.append(row)

        cycles = self._cycles.setdefault(symbol, {})
        new_cycles = []
        for cycle in record.closed_cycles:
            if cycle.cycle_id not in cycles:
                cycles[cycle.cycle_id] = cycle_row(symbol, cycle)
                new_cycles.append(cycles[cycle.cycle_id])

        latest = self._latest_intent.setdefault(symbol, {})
        positions = self._intent_positions.setdefault(symbol, {})
        open_intents = self._open_intents.setdefault(symbol, {})
        for key, intent in new_intents.items():
            positions[key] = len(positions)
            if intent.status in OPEN_INTENT_STATUSES:
                open_intents[key] = positions[key]
            intents[key] = intent_row(intent)
            latest[intent.client_order_id] = key

        self._append_event(
            record.ts_ms, symbol, "pulse", pulse_payload(record, new_fills, new_cycles, new_intents.values())
        )

    def update_intents(self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int) -> None:
        """Set (client_order_id, status, detail) of recorded intents.

        An update goes to the latest intent recorded for the id: a cancel is recorded after the
        placement it cancels, so resolve a placement before recording its cancel.

        Raises:
            ValueError: a status is unknown or an id was never recorded; no update is kept.
        """
        if not updates:
            return
        check_intent_updates(updates)
        latest = self._latest_intent.get(symbol, {})
        for client_order_id, _, _ in updates:
            if client_order_id not in latest:
                raise ValueError(f"{symbol}: no intent {client_order_id!r} was recorded")
        intents, open_intents = self._intents[symbol], self._open_intents[symbol]
        applied = []
        for client_order_id, status, detail in updates:
            key = latest[client_order_id]
            intents[key] = replace(intents[key], status=status, detail=detail, updated_ts_ms=ts_ms)
            if status in OPEN_INTENT_STATUSES:
                open_intents[key] = self._intent_positions[symbol][key]
            else:
                open_intents.pop(key, None)
            applied.append((client_order_id, key[1], status, detail))
        self._append_event(ts_ms, symbol, "intents", intents_payload(applied))

    def set_status(self, symbol: str, status: str, reason: str, ts_ms: int) -> None:
        """Set the symbol's status (see ``SYMBOL_STATUSES``) and why."""
        check_symbol_status(symbol, status)
        stored = self._symbols.get(symbol) or StoredSymbol(symbol, "", -1, status, reason, ts_ms)
        self._symbols[symbol] = replace(stored, status=status, status_reason=reason, updated_ts_ms=ts_ms)
        self._append_event(ts_ms, symbol, "status", status_payload(status, reason))

    def save_state(self, symbol: str, state_json: str, ts_ms: int) -> None:
        """Store the symbol's strategy state."""
        stored = self._symbols.get(symbol) or StoredSymbol(symbol, "", -1, NEW_SYMBOL_STATUS, "", ts_ms)
        self._symbols[symbol] = replace(stored, state_json=state_json, updated_ts_ms=ts_ms)

    def record_params(
        self, symbol: str, params_json: str, actor: str, why: str, ts_ms: int, config_json: str = ""
    ) -> None:
        """Append the next version of the symbol's parameters (JSON), with who and why."""
        history = self._params.setdefault(symbol, [])
        payload = params_payload(len(history) + 1, params_json, actor, why, config_json)
        history.append(ParamsRow(symbol, len(history) + 1, params_json, actor, why, ts_ms, config_json))
        self._append_event(ts_ms, symbol, "params", payload)

    def audit(self, actor: str, action: str, detail: str, ts_ms: int) -> None:
        """Append an audit entry (account-wide)."""
        self._audit.append(AuditRow(len(self._audit) + 1, ts_ms, actor, action, detail))
        command_id = tagged_command_id(detail)
        if command_id is not None:
            self._commands.setdefault(command_id, detail)
        self._append_event(ts_ms, ACCOUNT, "audit", audit_payload(actor, action, detail))

    def command_detail(self, command_id: str) -> str | None:
        """Return the first audit detail journaled for ``command_id``, or None (``Journal``)."""
        return self._commands.get(command_id)

    def flush(self) -> None:
        """Do nothing: there is nothing to make durable."""

    def close(self) -> None:
        """Do nothing: the journal stays readable."""

    # -- reads ----------------------------------------------------------------------------------

    def load_symbol(self, symbol: str) -> StoredSymbol | None:
        """Return what the journal holds for the symbol, or None if it never saw it."""
        return self._symbols.get(symbol)

    def symbols(self) -> list[StoredSymbol]:
        """Return every symbol the journal holds, by symbol."""
        return [self._symbols[symbol] for symbol in sorted(self._symbols)]

    def known_trade_ids(self, symbol: str, since_ms: int) -> set[str]:
        """Return the trade ids of the symbol's booked fills at or after ``since_ms``."""
        fill_times = self._fill_times.get(symbol, [])
        return {trade_id for _, trade_id in fill_times[bisect_left(fill_times, (since_ms, "")) :]}

    def open_intents(self, symbol: str) -> list[IntentRecord]:
        """Return the symbol's intents still pending or ambiguous, in record order."""
        intents, open_intents = self._intents.get(symbol, {}), self._open_intents.get(symbol, {})
        return [intents[key].as_record() for key in sorted(open_intents, key=open_intents.__getitem__)]

    def intents(self, symbol: str) -> list[IntentRow]:
        """Return every intent recorded for the symbol, in record order."""
        return list(self._intents.get(symbol, {}).values())

    def fills(self, symbol: str) -> list[FillRow]:
        """Return the symbol's booked fills, oldest first."""
        return sorted(self._fills.get(symbol, {}).values(), key=lambda row: row.ts_ms)

    def cycles(self, symbol: str) -> list[CycleRow]:
        """Return the symbol's closed cycles by cycle id."""
        cycles = self._cycles.get(symbol, {})
        return [cycles[cycle_id] for cycle_id in sorted(cycles)]

    def params_history(self, symbol: str) -> list[ParamsRow]:
        """Return every recorded version of the symbol's parameters, oldest first."""
        return list(self._params.get(symbol, []))

    def audit_log(self, limit: int) -> list[AuditRow]:
        """Return the latest ``limit`` audit entries, newest first."""
        return self._audit[-limit:][::-1] if limit > 0 else []

    def recent_events(self, symbol: str, limit: int) -> list[EventRow]:
        """Return the symbol's latest ``limit`` events (``ACCOUNT`` for audit), newest first."""
        return self._events.get(symbol, [])[-limit:][::-1] if limit > 0 else []

    def events_since(self, seq: int, limit: int = 1000) -> list[EventRow]:
        """Return up to ``limit`` events after ``seq`` (of every symbol), oldest first."""
        return self._log[max(seq, 0) : max(seq, 0) + limit] if limit > 0 else []

    def _append_event(self, ts_ms: int, symbol: str, kind: str, payload: str) -> None:
        self._event_count += 1
        event = EventRow(self._event_count, ts_ms, symbol, kind, payload)
        self._events.setdefault(symbol, []).append(event)
        self._log.append(event)
