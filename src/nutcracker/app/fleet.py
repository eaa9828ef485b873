"""The symbols of scale-out workers, as the control API sees them from its own process.

``nutcracker serve --store redis://…`` runs no engine: ``nutcracker worker`` processes trade the
config's symbols. ``FleetEngine`` gives the API what it reads from an in-process ``Engine``, from
Redis instead: each symbol's latest pulse report as its owner published it (``RedisReports``,
about once a second), its parameters and status from the journal; and it sends commands through
the ``CommandInbox`` (``RedisInbox``) to whichever worker owns the symbol, then waits for that
worker to journal the outcome. A report the API hands on carries every fill booked since the
last one it handed on (from the journal), so fees and fill counts add up although reports
between two publications are never seen. Nothing here writes the journal: the owning worker applies every
command between two pulses, under its lease, as ``Engine.submit`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final, NamedTuple

from nutcracker.core.commands import (
    ChangeParams,
    Command,
    CommandOutcome,
    KillSymbol,
    Outcome,
    PauseSymbol,
    ResumeSymbol,
)
from nutcracker.core.model import Fill, OpenOrder
from nutcracker.core.params import SymbolParams
from nutcracker.core.records import FillRow
from nutcracker.core.serialize import loads_params
from nutcracker.engine.polling import poll
from nutcracker.engine.report_codec import decode_report
from nutcracker.engine.reports import PulseReport, SymbolStatus
from nutcracker.engine.runtime import journaled_outcome
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_inbox import RedisInbox
from nutcracker.store.redis_reports import RedisReports

__all__ = ["FleetEngine", "FleetWorker"]

logger = logging.getLogger("nutcracker.fleet")

POLL_S: Final = 0.5  # how often the published reports are read
APPLY_TIMEOUT_S: Final = 10.0  # how long a command waits for its owner's outcome before "sent"
_AFTER: Final = {
    PauseSymbol: SymbolStatus.PAUSED,
    KillSymbol: SymbolStatus.KILLED,
    ResumeSymbol: SymbolStatus.IDLE,
}


class _Published(NamedTuple):
    """A symbol's newly published report (None: unreadable) and the fills booked since the last."""

    symbol: str
    text: str
    report: PulseReport | None
    fills: list[FillRow]


class FleetWorker:
    """One symbol as its owner last showed it: parameters, status and resting orders."""

    __slots__ = ("open_orders", "params", "status")

    def __init__(self, params: SymbolParams, status: SymbolStatus) -> None:
        self.params = params
        self.status = status
        self.open_orders: tuple[OpenOrder, ...] = ()


class FleetEngine:
    """The read side and the one door (``submit``) of the workers' symbols (module docstring)."""

    def __init__(
        self,
        params: Sequence[SymbolParams],
        journal: RedisJournal,
        *,
        prefix: str = "nc:",
        apply_timeout_s: float = APPLY_TIMEOUT_S,
    ) -> None:
        self._journal = journal
        self._inbox = RedisInbox(journal.client, prefix=prefix)
        self._board = RedisReports(journal.client, prefix=prefix)
        self._timeout_s = apply_timeout_s
        self._workers: dict[str, FleetWorker] = {}
        for configured in params:
            symbol = configured.market.symbol
            history = journal.params_history(symbol)  # a change since the config was written wins
            current = loads_params(history[-1].params_json) if history else configured
            stored = journal.load_symbol(symbol)
            status = (
                SymbolStatus(stored.status) if stored is not None and stored.status else SymbolStatus.IDLE
            )
            self._workers[symbol] = FleetWorker(current, status)
        self._latest: dict[str, PulseReport] = {}
        self._texts: dict[str, str] = {}
        # fills delivered per symbol: a published report carries its own pulse's fills only, and the
        # reports between two publications are not published, so the fills come from the journal
        self._booked = {symbol: len(journal.fills(symbol)) for symbol in self._workers}
        self._observers: list[Callable[[PulseReport], None]] = []

    @property
    def workers(self) -> Mapping[str, FleetWorker]:
        return MappingProxyType(self._workers)

    def worker(self, symbol: str) -> FleetWorker:
        try:
            return self._workers[symbol]
        except KeyError:
            raise KeyError(f"{symbol} is not in this config ({', '.join(self._workers)})") from None

    def latest(self) -> dict[str, PulseReport]:
        """Return the last report each symbol's owner published."""
        return dict(self._latest)

    def add_observer(self, observer: Callable[[PulseReport], None]) -> None:
        """Call ``observer(report)`` for every newly published report."""
        self._observers.append(observer)

    def refresh(self) -> None:
        """Read the published reports; take the new ones and tell the observers."""
        self._take(self._read())

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``POLL_S`` until ``stop``.

        The reading (Redis round trips, a hundred reports decoded) runs in a thread: on the loop it
        held every API request for 50-110 ms once a second (``bench/api.py --fleet``: status p99
        133 ms); only taking what was read, and telling the observers, runs on the loop.
        """

        async def read() -> None:
            self._take(await asyncio.to_thread(self._read))

        await poll(stop, POLL_S, read, logger, "reports")

    def _read(self) -> list[_Published]:
        """Return the reports published since the last taken, each with the fills booked since.

        Only reads: what it returns is taken on the loop (``_take``), so the cursors it reads here
        are not moved under it (one reader at a time: ``run`` awaits each read).
        """
        changed = {
            symbol: text
            for symbol, text in self._board.read().items()
            if symbol in self._workers and self._texts.get(symbol) != text
        }
        reports: dict[str, PulseReport | None] = {}
        for symbol, text in changed.items():
            try:
                reports[symbol] = decode_report(text)
            except ValueError as e:
                logger.warning("%s: report not read: %s", symbol, e)
                reports[symbol] = None  # taken as seen: the same text is not read again
        cursors = {symbol: self._booked[symbol] for symbol, report in reports.items() if report is not None}
        booked = self._journal.fills_booked_after_each(cursors)
        return [
            _Published(symbol, changed[symbol], report, booked.get(symbol, []))
            for symbol, report in reports.items()
        ]

    def _take(self, published: list[_Published]) -> None:
        for symbol, text, report, rows in published:
            self._texts[symbol] = text
            if report is None:
                continue
            self._booked[symbol] += len(rows)
            fills = tuple(
                Fill(
                    r.trade_id,
                    r.client_order_id,
                    r.side,
                    r.price,
                    r.qty,
                    r.fee,
                    r.ts_ms,
                    r.fee_base,
                    r.fee_asset,
                )
                for r in rows
            )
            report = dataclasses.replace(report, fills=fills)  # every fill since the last one seen, once
            worker = self._workers[symbol]
            worker.status = report.status
            worker.open_orders = report.open_orders
            self._latest[symbol] = report
            for observer in self._observers:
                observer(report)

    async def submit(self, command: Command) -> CommandOutcome:
        """Send ``command`` to its symbol's owner; return the outcome the owner journals.

        Idempotent by ``command_id`` as ``Engine.submit`` is (the owner applies an id once). When no
        owner journals it within ``apply_timeout_s`` (no worker holds the symbol now), the outcome is
        ``sent``: the command waits in the inbox for the symbol's next owner.
        """
        cid = command.command_id
        if command.symbol is not None and command.symbol not in self._workers:
            return CommandOutcome(cid, Outcome.REFUSED, f"{command.symbol} is not in this config")
        detail = await asyncio.to_thread(self._journal.command_detail, cid)
        if detail is None:
            await self._inbox.send(command)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._timeout_s
            while detail is None:
                if loop.time() >= deadline:
                    return CommandOutcome(
                        cid,
                        Outcome.SENT,
                        "sent to the symbol's owner; not applied yet (no worker holds it now?)",
                    )
                await asyncio.sleep(0.05)
                detail = await asyncio.to_thread(self._journal.command_detail, cid)
        outcome, why = journaled_outcome(command, detail)
        if outcome == Outcome.REFUSED:
            return CommandOutcome(cid, outcome, why)
        if outcome == Outcome.RECORDED:
            return CommandOutcome(cid, outcome, "recorded for a person to decide; nothing changed")
        if isinstance(command, ChangeParams):
            self._workers[command.symbol or ""].params = command.params
            return CommandOutcome(cid, Outcome.APPLIED, "new parameters apply from the owner's next pulse")
        symbols = [command.symbol] if command.symbol is not None else list(self._workers)
        after = _AFTER.get(type(command))
        if after is not None:
            for symbol in symbols:
                self._workers[symbol].status = after  # until the owner's next report says more
        return CommandOutcome(
            cid, Outcome.APPLIED, ", ".join(f"{s} {after}" for s in symbols) + " (by the owner)"
        )
