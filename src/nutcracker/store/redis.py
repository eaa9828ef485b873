"""``RedisJournal``: the journal and read models in one Redis, for engine workers on several machines.

The same answers as ``SqliteJournal`` for the same calls (``tests/contract``). Every durable write
is one Lua script (``redis_scripts``): atomic, all or nothing, and fenced: it carries the symbol's
lease token and is refused with ``StaleTokenError`` once a newer token exists, even when it
arrives after the new owner's writes. Durability is the server's append-only file: with
``appendfsync always`` a write is on disk when its call returns; with ``everysec`` (the default
we recommend, see ``docs/scale-out.md``) a power loss can lose the last second, which the engine
resolves again by client order id as after any lost outcome. ``connect`` refuses a server
without AOF.

``save_state`` buffers in memory like ``SqliteJournal``'s: the buffer goes out with the next
durable write (in the same round trip) or ``flush``. Group commit: ``stage_batch`` prepares a
batch's scripts (CPU only, in the event loop), ``commit_staged`` sends them in one pipeline (one
round trip; the server fsyncs them together under ``always``) from the lane's commit thread and
returns the answer of each; each script applies whole or not at all on its own.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

import redis

from nutcracker.core.commands import tagged_command_id
from nutcracker.core.model import Side
from nutcracker.core.records import (
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
    StaleTokenError,
    StoredSymbol,
    audit_payload,
    check_intent_updates,
    check_symbol_status,
    cycle_row,
    fill_row,
    params_payload,
    pulse_payload,
    status_payload,
)
from nutcracker.errors import JournalError
from nutcracker.store import redis_scripts as lua
from nutcracker.store.redis_connect import connect, describe

__all__ = ["DEFAULT_PREFIX", "RedisJournal"]

_log = logging.getLogger("nutcracker.journal")
DEFAULT_PREFIX: Final = "nc:"
_Write = PulseRecord | tuple[str, Sequence[tuple[str, str, str]], int]


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class RedisJournal:
    """The ``Journal``, its group commit and ``ReadModels`` in Redis; see the module's docstring.

    Thread-safe (the client's connection pool); ``prefix`` keeps several journals in one database.
    Redis failures raise ``JournalError`` (one line with the server and what to do); a call that
    breaks an invariant raises ``ValueError`` and keeps nothing.
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, client: redis.Redis | None = None) -> None:
        """Connect to the Redis at ``url`` (checked: reachable, 7.0+, AOF on; see ``connect``).

        Raises:
            JournalError: the URL, the server or its durability is wrong; one line with the fix.
        """
        self._where = describe(url)
        self._prefix = prefix
        self._r = client if client is not None else connect(url)
        self._scripts = {
            name: self._r.register_script(source)
            for name, source in (
                ("state", lua.STATE),
                ("pulse", lua.PULSE),
                ("updates", lua.UPDATES),
                ("status", lua.STATUS),
                ("params", lua.PARAMS),
                ("audit", lua.AUDIT),
                ("fence", lua.FENCE),
            )
        }
        try:
            self._r.register_script(lua.COMMAND_INDEX)(args=[prefix])  # once per store: a no-op after
        except redis.RedisError as e:
            raise JournalError(
                f"Redis at {self._where}: cannot index the audit ({e}); check the server"
            ) from None
        self._fences: dict[str, int] = {}  # symbol -> the token this journal writes under
        self._buffer_lock = threading.Lock()
        self._buffered: dict[str, tuple[str, int]] = {}  # symbol -> (state_json, ts_ms), call order
        self._batch_lock = threading.Lock()  # held from stage_batch to commit_staged
        self._staged: list[tuple[str, list[Any]]] | None = None  # the scripts commit_staged sends

    @property
    def where(self) -> str:
        """Return the server's URL without its password."""
        return self._where

    @property
    def client(self) -> redis.Redis:
        """Return the Redis client (the leases and budgets of one worker share it)."""
        return self._r

    # -- writes ---------------------------------------------------------------------------------

    def commit_pulse(self, record: PulseRecord) -> None:
        """Store what one pulse changed in one script; repeated fills, cycles and intents once.

        Raises:
            ValueError: an intent reuses a recorded (client order id, action) for a different order.
            StaleTokenError: another process holds the symbol's lease now.
        """
        self._run([self._pulse_call(record)])

    def update_intents(self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int) -> None:
        """Set (client_order_id, status, detail) of recorded intents (the latest of each id).

        Raises:
            ValueError: a status is unknown or an id was never recorded; no update is kept.
        """
        if not updates:
            return
        check_intent_updates(updates)
        self._run([self._updates_call(symbol, updates, ts_ms)])

    def set_status(self, symbol: str, status: str, reason: str, ts_ms: int) -> None:
        """Set the symbol's status (see ``SYMBOL_STATUSES``) and why."""
        check_symbol_status(symbol, status)
        args = [symbol, self._token(symbol), status, reason, ts_ms, status_payload(status, reason)]
        self._run([("status", args)])

    def save_state(self, symbol: str, state_json: str, ts_ms: int) -> None:
        """Keep the symbol's strategy state in memory until the next durable write or ``flush``."""
        with self._buffer_lock:
            self._buffered.pop(symbol, None)
            self._buffered[symbol] = (state_json, ts_ms)

    def record_params(
        self, symbol: str, params_json: str, actor: str, why: str, ts_ms: int, config_json: str = ""
    ) -> None:
        """Append the next version of the symbol's parameters (JSON), with who and why."""
        payload = params_payload(0, params_json, actor, why, config_json)
        before, after = payload.rsplit('"version":0,"why":', 1)
        row = _dumps([params_json, actor, why, ts_ms, config_json])
        args = [symbol, self._token(symbol), ts_ms, row, before + '"version":', ',"why":' + after]
        self._run([("params", args)])

    def audit(self, actor: str, action: str, detail: str, ts_ms: int) -> None:
        """Append an audit entry (account-wide)."""
        row = _dumps([ts_ms, actor, action, detail])
        command_id = tagged_command_id(detail)
        ids = [] if command_id is None else [command_id]
        self._run([("audit", [ts_ms, row, audit_payload(actor, action, detail), detail, *ids])])

    def fence(self, symbol: str, token: int) -> None:
        """Write ``symbol`` under a lease's fencing token from now on (``FencedJournal``).

        Raises:
            StaleTokenError: a greater token was fenced or leased already.
        """
        self._run([("fence", [symbol, token])])
        self._fences[symbol] = token

    def stage_batch(self, writes: Sequence[_Write]) -> list[Exception | None]:
        """Prepare the writes' scripts (``GroupCommitJournal``); ``commit_staged`` sends them.

        Staging is CPU work only, so the lane does it in the event loop; the answers per write come
        from ``commit_staged`` (these placeholders say only that every write was prepared).

        Raises:
            ValueError: a write breaks an invariant Python checks (nothing is staged).
        """
        calls = [
            self._pulse_call(w) if isinstance(w, PulseRecord) else self._updates_call(*w) for w in writes
        ]
        self._batch_lock.acquire()
        self._staged = calls
        return [None] * len(calls)

    def commit_staged(self) -> list[Exception | None]:
        """Send the staged scripts in one round trip and return the answer of each write, in order.

        Under ``appendfsync always`` the server answers once they are on disk; the lane waits for it
        in its own thread, so the event loop keeps pulsing the other symbols meanwhile.

        Raises:
            JournalError: Redis could not be reached: the writes' outcome is unknown to this call
                (each script applied whole or not at all; the engine resolves intents by client id).
            RuntimeError: nothing was staged.
        """
        calls, self._staged = self._staged, None
        if calls is None:
            raise RuntimeError("commit_staged without stage_batch")
        try:
            return self._run(calls, raise_first=False)
        finally:
            self._batch_lock.release()

    def commit_batch(self, writes: Sequence[_Write]) -> list[Exception | None]:
        """``stage_batch`` then ``commit_staged``: the answer of each write, in order."""
        self.stage_batch(writes)
        return self.commit_staged()

    def flush(self) -> None:
        """Write the buffered states (everything else already went out)."""
        self._run([])

    def close(self) -> None:
        """Flush, then close the connections; closing twice is harmless."""
        try:
            self.flush()
        finally:
            self._r.close()

    # -- reads ----------------------------------------------------------------------------------

    def load_symbol(self, symbol: str) -> StoredSymbol | None:
        """Return what the journal holds for the symbol, or None if it never saw it."""
        with self._buffer_lock:
            buffered = self._buffered.get(symbol)
        fields = self._read(lambda: self._r.hmget(self._key("s", symbol), _SYMBOL_FIELDS))
        stored = _stored(symbol, fields) if fields[0] is not None else None
        return stored if buffered is None else _with_buffered(symbol, stored, buffered)

    def symbols(self) -> list[StoredSymbol]:
        """Return every symbol the journal holds, by symbol."""
        with self._buffer_lock:
            buffered = dict(self._buffered)
        names = sorted(self._read(lambda: self._r.smembers(self._prefix + "symbols")))
        pipe = self._r.pipeline(transaction=False)
        for name in names:
            pipe.hmget(self._key("s", name), _SYMBOL_FIELDS)
        rows = self._read(pipe.execute)
        stored = {name: _stored(name, fields) for name, fields in zip(names, rows, strict=True)}
        for symbol, state in buffered.items():
            stored[symbol] = _with_buffered(symbol, stored.get(symbol), state)
        return [stored[symbol] for symbol in sorted(stored)]

    def known_trade_ids(self, symbol: str, since_ms: int) -> set[str]:
        """Return the trade ids of the symbol's booked fills at or after ``since_ms``."""
        return set(self._read(lambda: self._r.zrangebyscore(self._key("ft", symbol), since_ms, "+inf")))

    def open_intents(self, symbol: str) -> list[IntentRecord]:
        """Return the symbol's intents still pending or ambiguous, in record order."""
        keys = self._read(lambda: self._r.zrange(self._key("io", symbol), 0, -1))
        return [row.as_record() for row in self._intent_rows(symbol, keys)]

    def intents(self, symbol: str) -> list[IntentRow]:
        """Return every intent recorded for the symbol, in record order."""
        keys = self._read(lambda: self._r.lrange(self._key("il", symbol), 0, -1))
        return self._intent_rows(symbol, keys)

    def fills(self, symbol: str) -> list[FillRow]:
        """Return the symbol's booked fills, oldest first (booking order among equal times)."""
        trade_ids = self._read(lambda: self._r.lrange(self._key("fl", symbol), 0, -1))
        if not trade_ids:
            return []
        rows = self._read(lambda: self._r.hmget(self._key("f", symbol), trade_ids))
        return sorted((_fill(symbol, json.loads(row)) for row in rows), key=lambda f: f.ts_ms)

    def fills_booked_after(self, symbol: str, count: int) -> list[FillRow]:
        """Return the symbol's fills after its first ``count`` in booking order (a reader's cursor)."""
        trade_ids = self._read(lambda: self._r.lrange(self._key("fl", symbol), count, -1))
        if not trade_ids:
            return []
        rows = self._read(lambda: self._r.hmget(self._key("f", symbol), trade_ids))
        return [_fill(symbol, json.loads(row)) for row in rows]

    def fills_booked_after_each(self, cursors: Mapping[str, int]) -> dict[str, list[FillRow]]:
        """Return ``fills_booked_after`` of every symbol in ``cursors`` (symbol -> count) in two round
        trips, not two per symbol: the API process reads a hundred symbols' new fills at once."""
        symbols = list(cursors)
        if not symbols:
            return {}
        pipe = self._r.pipeline(transaction=False)
        for symbol in symbols:
            pipe.lrange(self._key("fl", symbol), cursors[symbol], -1)
        ids = self._read(pipe.execute)
        booked = [(symbol, trade_ids) for symbol, trade_ids in zip(symbols, ids, strict=True) if trade_ids]
        out: dict[str, list[FillRow]] = {symbol: [] for symbol in symbols}
        if booked:
            pipe = self._r.pipeline(transaction=False)
            for symbol, trade_ids in booked:
                pipe.hmget(self._key("f", symbol), trade_ids)
            for (symbol, _), rows in zip(booked, self._read(pipe.execute), strict=True):
                out[symbol] = [_fill(symbol, json.loads(row)) for row in rows]
        return out

    def cycles(self, symbol: str) -> list[CycleRow]:
        """Return the symbol's closed cycles by cycle id."""
        rows = self._read(lambda: self._r.hvals(self._key("c", symbol)))
        cycles = [_cycle(symbol, json.loads(row)) for row in rows]
        return sorted(cycles, key=lambda c: c.cycle_id)

    def params_history(self, symbol: str) -> list[ParamsRow]:
        """Return every recorded version of the symbol's parameters, oldest first."""
        rows = self._read(lambda: self._r.lrange(self._key("p", symbol), 0, -1))
        out = []
        for version, row in enumerate(rows, start=1):
            params_json, actor, why, ts_ms, config_json = json.loads(row)
            out.append(ParamsRow(symbol, version, params_json, actor, why, ts_ms, config_json))
        return out

    def audit_log(self, limit: int) -> list[AuditRow]:
        """Return the latest ``limit`` audit entries, newest first."""
        if limit <= 0:
            return []
        pipe = self._r.pipeline(transaction=True)
        pipe.llen(self._prefix + "audit")
        pipe.lrange(self._prefix + "audit", -limit, -1)
        total, rows = self._read(pipe.execute)
        first = int(total) - len(rows) + 1
        entries = [AuditRow(first + n, *json.loads(row)) for n, row in enumerate(rows)]
        return entries[::-1]

    def command_detail(self, command_id: str) -> str | None:
        """Return the first audit detail journaled for ``command_id``, or None (``Journal``)."""
        detail = self._read(lambda: self._r.hget(self._prefix + "cmdd", command_id))
        return None if detail is None else str(detail)

    def recent_events(self, symbol: str, limit: int) -> list[EventRow]:
        """Return the symbol's latest ``limit`` events (``ACCOUNT`` for audit), newest first."""
        if limit <= 0:
            return []
        rows = self._read(lambda: self._r.lrange(self._key("ev", symbol), -limit, -1))
        return [_event(row) for row in reversed(rows)]

    def events_since(self, seq: int, limit: int = 1000) -> list[EventRow]:
        """Return up to ``limit`` events after ``seq`` (of every symbol), oldest first: a stream cursor."""
        if limit <= 0:
            return []
        start = max(seq, 0)
        rows = self._read(lambda: self._r.lrange(self._prefix + "ev", start, start + limit - 1))
        return [_event(row) for row in rows]

    def fencing_log(self, symbol: str) -> list[tuple[int, int]]:
        """Return (token, seq) for each token that wrote the symbol, in the order its writes began.

        seq is the account's next event when that token's first write was accepted. The scripts refuse
        an older token once a newer one is known, so the tokens must only grow: a token appearing
        again after a newer one would mean two writers at once (the chaos test checks this).
        """
        rows = self._read(lambda: self._r.lrange(self._key("flog", symbol), 0, -1))
        return [(int(token), int(seq)) for token, seq in (row.split(" ") for row in rows)]

    def known_client_order_ids(self, symbol: str) -> set[str]:
        """Return every client order id the journal recorded for the symbol (intents and fills)."""
        ids = {key.split("\0", 1)[0] for key in self._read(lambda: self._r.hkeys(self._key("iid", symbol)))}
        return ids | {fill.client_order_id for fill in self.fills(symbol)}

    # -- internals ------------------------------------------------------------------------------

    def _key(self, kind: str, symbol: str) -> str:
        return f"{self._prefix}{kind}:{symbol}"

    def _token(self, symbol: str) -> str:
        token = self._fences.get(symbol)
        return "" if token is None else str(token)

    def _pulse_call(self, record: PulseRecord) -> tuple[str, list[Any]]:
        symbol = record.symbol
        seen: dict[tuple[str, str], IntentRecord] = {}
        intents = []
        for intent in record.intents:  # repeats within the record: the first counts, as in the others
            key = (intent.client_order_id, intent.action)
            known = seen.get(key)
            if known is None:
                seen[key] = intent
                intents.append(intent)
            elif not known.same_order(intent):
                raise ValueError(
                    f"{symbol}: intent {intent.client_order_id} ({intent.action}) was recorded"
                    " for another order"
                )
        rows = [
            fill_row(symbol, fill, cycle_id)
            for fill, cycle_id in zip(record.fills, record.cycle_ids, strict=True)
        ]
        cycles = [cycle_row(symbol, cycle) for cycle in record.closed_cycles]
        whole = json.loads(pulse_payload(record, rows, cycles, intents))
        args: list[Any] = [
            symbol,
            self._token(symbol),
            record.state_json,
            max((fill.ts_ms for fill in record.fills), default=-1),
            record.ts_ms,
            _dumps(whole["reasons"]),
            len(rows),
        ]
        for row, fragment in zip(rows, whole["fills"], strict=True):
            encoded = [row.trade_id, row.client_order_id, row.side.value, row.price, row.qty, str(row.fee)]
            encoded += [row.ts_ms, row.cycle_id, str(row.fee_base), row.fee_asset]
            args += [row.trade_id, row.ts_ms, _dumps(encoded), _dumps(fragment)]
        args.append(len(cycles))
        for c, fragment in zip(cycles, whole["closed_cycles"], strict=True):
            amounts = [str(c.cost_qu), str(c.proceeds_qu), str(c.fees_qu), str(c.pnl_qu)]
            args += [
                c.cycle_id,
                _dumps([c.cycle_id, *amounts, c.opened_ts_ms, c.closed_ts_ms]),
                _dumps(fragment),
            ]
        args.append(len(intents))
        for intent, fragment in zip(intents, whole["intents"], strict=True):
            args += [
                f"{intent.client_order_id}\0{intent.action}",
                intent.client_order_id,
                intent.action,
                _dumps([intent.side, intent.price, intent.qty]),
                _dumps([intent.reason, intent.ts_ms]),
                intent.status,
                "1" if intent.status in OPEN_INTENT_STATUSES else "0",
                _dumps(fragment),
                f"{symbol}: intent {intent.client_order_id} ({intent.action}) was recorded for another order",
            ]
        return "pulse", args

    def _updates_call(
        self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int
    ) -> tuple[str, list[Any]]:
        check_intent_updates(updates)
        args: list[Any] = [symbol, self._token(symbol), ts_ms, len(updates)]
        for client_order_id, status, detail in updates:
            rest = _dumps({"client_order_id": client_order_id, "detail": detail, "status": status})[1:]
            args += [
                client_order_id,
                status,
                detail,
                "1" if status in OPEN_INTENT_STATUSES else "0",
                rest,
                f"{symbol}: no intent {client_order_id!r} was recorded",
            ]
        return "updates", args

    def _run(
        self, calls: Sequence[tuple[str, list[Any]]], *, raise_first: bool = True
    ) -> list[Exception | None]:
        """Send the buffered states and ``calls`` in one pipeline; map each script's error.

        The buffered states go first, each its own script; a refused one (the symbol's lease moved
        on) is dropped with a log line: the next durable write of that symbol is refused too.
        """
        with self._buffer_lock:
            states = dict(self._buffered)
        pipe = self._r.pipeline(transaction=False)
        for symbol, (state_json, ts_ms) in states.items():
            self._scripts["state"](
                args=[self._prefix, symbol, self._token(symbol), state_json, ts_ms], client=pipe
            )
        for name, args in calls:
            self._scripts[name](args=[self._prefix, *args], client=pipe)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as e:
            raise JournalError(
                f"Redis at {self._where}: write failed ({e}); check the server, then restart"
            ) from None
        with self._buffer_lock:
            for (symbol, state), reply in zip(states.items(), replies, strict=False):
                if self._buffered.get(symbol) is state:
                    del self._buffered[symbol]
                if isinstance(reply, Exception):
                    _log.info("%s: buffered state not written: %s", symbol, reply)
        results = [self._error(reply) for reply in replies[len(states) :]]
        if raise_first:
            for error in results:
                if error is not None:
                    raise error
        return results

    def _error(self, reply: object) -> Exception | None:
        if not isinstance(reply, Exception):
            return None
        text = str(reply)
        if text.startswith("STALE "):
            return StaleTokenError(text.removeprefix("STALE "))
        if text.startswith("INVALID "):
            return ValueError(text.removeprefix("INVALID "))
        return JournalError(f"Redis at {self._where}: a write failed ({text}); check the server")

    def _read(self, call: Any) -> Any:
        try:
            return call()
        except redis.RedisError as e:
            raise JournalError(f"Redis at {self._where}: read failed ({e}); check the server") from None

    def _intent_rows(self, symbol: str, keys: list[str]) -> list[IntentRow]:
        if not keys:
            return []
        pipe = self._r.pipeline(transaction=True)
        for kind in ("iid", "ix", "ist", "idt", "iup"):
            pipe.hmget(self._key(kind, symbol), keys)
        identities, extras, statuses, details, updated = self._read(pipe.execute)
        rows = []
        for key, identity, extra, status, detail, up in zip(
            keys, identities, extras, statuses, details, updated, strict=True
        ):
            client_order_id, action = key.split("\0", 1)
            side, price, qty = json.loads(identity)
            reason, created = json.loads(extra)
            rows.append(
                IntentRow(
                    symbol,
                    client_order_id,
                    action,
                    side,
                    price,
                    qty,
                    status,
                    reason,
                    detail,
                    created,
                    int(up),
                )
            )
        return rows


_SYMBOL_FIELDS: Final = ("state", "lf", "st", "rs", "up")


def _stored(symbol: str, fields: list[str | None]) -> StoredSymbol:
    state, lf, status, reason, updated = fields
    return StoredSymbol(
        symbol, state or "", int(lf or -1), status or NEW_SYMBOL_STATUS, reason or "", int(updated or 0)
    )


def _with_buffered(symbol: str, stored: StoredSymbol | None, buffered: tuple[str, int]) -> StoredSymbol:
    state_json, ts_ms = buffered
    if stored is None:
        return StoredSymbol(symbol, state_json, -1, NEW_SYMBOL_STATUS, "", ts_ms)
    return StoredSymbol(
        symbol, state_json, stored.last_fill_ts_ms, stored.status, stored.status_reason, ts_ms
    )


def _fill(symbol: str, row: list[Any]) -> FillRow:
    trade_id, cid, side, price, qty, fee, ts_ms, cycle_id, fee_base, fee_asset = row
    return FillRow(
        symbol, trade_id, cid, Side(side), price, qty, int(fee), ts_ms, cycle_id, int(fee_base), fee_asset
    )


def _cycle(symbol: str, row: list[Any]) -> CycleRow:
    cycle_id, cost, proceeds, fees, pnl, opened, closed = row
    return CycleRow(symbol, cycle_id, int(cost), int(proceeds), int(fees), int(pnl), opened, closed)


def _event(row: str) -> EventRow:
    seq, ts_ms, symbol, kind, payload = row.split("\n", 4)
    return EventRow(int(seq), int(ts_ms), symbol, kind, payload)
