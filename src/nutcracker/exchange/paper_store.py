"""``PaperStore``: what a paper session needs to resume exactly, in a SQLite file next to the journal.

The paper exchange's matching engine is deterministic: the same calls give the same orders, fills,
trade ids and balances. So the store keeps the session's setup (its markets and starting
balances) and, write-ahead, every call that changes the engine: a placement, a cancel, a candle
fed, and the book each of those saw. Resuming replays them into a fresh engine, which ends up
exactly where the last session left it: resting orders, the trade and order id counters,
balances, fills, and the last candle fed. Every append is one durable transaction
(``synchronous=FULL``), made before the call it records runs, as a real exchange's state
outlives our process.

The file is ``<journal>.paper`` (``paper_state_path``); it belongs to that journal: a journal
whose paper state is gone, or a paper state without its journal, is refused at start.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from nutcracker.core.model import Book, Candle, MarketInfo, PlaceLimit, Side
from nutcracker.errors import ConfigError

FORMAT = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS session (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS log ("
    " seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, symbol TEXT NOT NULL, payload TEXT NOT NULL)",
)

Entry = tuple[str, str, str]
"""One logged call: (kind, symbol, JSON payload); kind is book, place, cancel or candle."""


def paper_state_path(journal_path: Path) -> Path:
    """Return where the paper state of the session journaled in ``journal_path`` lives."""
    return journal_path.with_name(journal_path.name + ".paper")


class PaperStore:
    """The setup and write-ahead call log of one paper session (one SQLite file)."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        try:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except sqlite3.Error as e:
            raise ConfigError(f"{self._path}: the paper state cannot be opened ({e}); move it away") from e

    @property
    def path(self) -> str:
        return self._path

    def setup(self) -> dict[str, Any] | None:
        """Return the session's setup (markets, starting balances), None for a new session."""
        row = self._read("SELECT value FROM session WHERE key = 'setup'").fetchone()
        if row is None:
            return None
        setup: dict[str, Any] = json.loads(row[0])
        if setup.get("format") != FORMAT:
            raise ConfigError(
                f"{self._path}: paper state format {setup.get('format')!r} is not {FORMAT}: "
                "start a new paper session with another --journal"
            )
        return setup

    def begin(self, markets: Sequence[MarketInfo], balances: dict[str, Decimal]) -> None:
        """Record the setup of a new session."""
        setup = {
            "format": FORMAT,
            "markets": [market_to_json(m) for m in markets],
            "balances": {asset: str(amount) for asset, amount in balances.items()},
        }
        self._write([("INSERT INTO session (key, value) VALUES ('setup', ?)", (json.dumps(setup),))])

    def append(self, entries: Sequence[Entry]) -> None:
        """Durably append calls to the log, in order, in one transaction."""
        if entries:
            self._write([("INSERT INTO log (kind, symbol, payload) VALUES (?, ?, ?)", e) for e in entries])

    def entries(self) -> Iterator[Entry]:
        """Yield the logged calls, oldest first."""
        for kind, symbol, payload in self._read("SELECT kind, symbol, payload FROM log ORDER BY seq"):
            yield str(kind), str(symbol), str(payload)

    def close(self) -> None:
        self._conn.close()

    def _read(self, sql: str) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql)
        except sqlite3.Error as e:
            raise ConfigError(f"{self._path}: the paper state cannot be read ({e}); move it away") from e

    def _write(self, statements: Sequence[tuple[str, tuple[str, ...]]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    conn.execute(sql, args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise ConfigError(f"{self._path}: the paper state cannot be written ({e})") from e


# -- payloads ------------------------------------------------------------------------------------


def market_to_json(m: MarketInfo) -> dict[str, str]:
    return {
        "symbol": m.symbol,
        "base": m.base,
        "quote": m.quote,
        "tick_size": str(m.tick_size),
        "lot_size": str(m.lot_size),
        "min_notional": str(m.min_notional),
        "maker_fee": str(m.maker_fee),
    }


def market_from_json(d: dict[str, str]) -> MarketInfo:
    return MarketInfo(
        symbol=d["symbol"],
        base=d["base"],
        quote=d["quote"],
        tick_size=Decimal(d["tick_size"]),
        lot_size=Decimal(d["lot_size"]),
        min_notional=Decimal(d["min_notional"]),
        maker_fee=Decimal(d["maker_fee"]),
    )


def book_entry(symbol: str, book: Book) -> Entry:
    return "book", symbol, json.dumps([book.best_bid, book.best_ask, book.bid_lots, book.ask_lots])


def book_of(payload: str) -> Book:
    bid, ask, bid_lots, ask_lots = json.loads(payload)
    return Book(int(bid), int(ask), int(bid_lots), int(ask_lots))


def place_entry(symbol: str, order: PlaceLimit, ts_ms: int) -> Entry:
    o = order
    return "place", symbol, json.dumps([ts_ms, o.client_order_id, o.side.value, o.price, o.qty, o.reason])


def place_of(payload: str) -> tuple[PlaceLimit, int]:
    ts_ms, cid, side, price, qty, reason = json.loads(payload)
    return PlaceLimit(str(cid), Side(side), int(price), int(qty), str(reason)), int(ts_ms)


def cancel_entry(symbol: str, client_order_id: str, ts_ms: int) -> Entry:
    return "cancel", symbol, json.dumps([ts_ms, client_order_id])


def cancel_of(payload: str) -> tuple[str, int]:
    ts_ms, cid = json.loads(payload)
    return str(cid), int(ts_ms)


def candle_entry(symbol: str, candle: Candle, interval_ms: int) -> Entry:
    c = candle
    return "candle", symbol, json.dumps([interval_ms, c.ts_ms, c.open, c.high, c.low, c.close, c.volume])


def candle_of(payload: str) -> tuple[Candle, int]:
    interval_ms, ts_ms, o, h, low, c, volume = json.loads(payload)
    return Candle(int(ts_ms), int(o), int(h), int(low), int(c), float(volume)), int(interval_ms)


__all__ = ["PaperStore", "paper_state_path"]
