"""The engine runtime: one ``SymbolWorker`` task per symbol, the monitor, a clock, shutdown, observers.

``Engine`` holds the workers (``worker.py``), the shared quote budgets (``portfolio.py``) and the
monitor (``monitor.py``). ``run`` pulses every symbol in its own asyncio task, each at its own
interval (``EngineSettings.pulse_interval_s``, per symbol ``pulse_intervals``), so a slow or
data-stalled symbol never holds up another; a stalled symbol waits its backoff instead. SIGINT or
SIGTERM (or ``request_stop``) stops it gracefully: no new pulse starts, running ones finish (up to
``shutdown_timeout_s``), resting orders are cancelled when ``cancel_on_shutdown`` is set (failed
cancels are retried with backoff for ``shutdown_cancel_s``; what still rests then raises
``ShutdownIncompleteError``, listing it), the open orders left are reconciled with the exchange
and journaled with a ``stop`` event and its reason (audits by actor ``engine``, which ``nutcracker
status`` reads), and the journal is flushed. Funds stay with the exchange. ``pulse_all`` runs one
pulse of every symbol instead, for drivers that own the clock (replay, tests, benchmarks),
giving the event loop a turn every ``PULSE_SLICE_S`` (the API shares it).

Clocks (``RunClock``): ``WallClock`` for live and paper; ``SimulatedClock`` for replay, moved by
the driver (``advance_to``), whose ``sleep`` returns once simulated time has caught up.

Control: ``submit(command)`` is the one door (``core.commands``): ``PauseSymbol``, ``ResumeSymbol``
and ``KillSymbol`` per symbol or for all (``symbol=None``), ``ChangeParams``, and ``ProposeChange``
(recorded only). Each waits for the symbol's running pulse, is journaled with who, why, its id and
role, is idempotent by ``command_id``, and pause, resume and kill produce a report like a pulse.

Observer hook. After every pulse or control action the engine hands a ``PulseReport`` to every
callback added with ``add_observer(fn)`` (called synchronously in the engine's loop: keep it quick;
an exception is logged and ignored) and puts it on every queue returned by ``subscribe()`` (a
full queue drops its oldest report: a slow view never slows the engine). ``latest()`` returns the
last report of every symbol. ``PulseReport`` (``engine.reports``; frozen; integer units of the
symbol's market, with ``price(ticks)``, ``qty(lots)`` and ``quote(qu)`` returning ``Decimal``s
through ``precision``):

==========================  ==================================================================
``symbol``, ``seq``         the market (``BTC/USDT``) and the worker's pulse counter
``ts_ms``                   exchange time of the pulse (the engine clock for control reports)
``status``                  a ``SymbolStatus`` (``StrEnum``): ``trading`` (orders rest), ``idle``,
                            ``stalled`` (data-stall), ``paused`` (by a person, or halted on a
                            broken invariant), ``killed``
``status_reason``           why: the decision's idle reasons, the stall's error, who paused
``reasons``                 every reason ``decide`` gave this pulse (wants, gates, skips)
``intents``                 ``IntentOutcome``\\ s: client id, action, side, price, qty, status
                            (``acked``, ``rejected``, ``ambiguous``, ``pending``, ``done``...),
                            the strategy's reason and the exchange's answer (``detail``)
``fills``                   our fills booked this pulse (``core.model.Fill``)
``closed_cycles``           cycles closed this pulse, exact PnL in qu
``book``, ``close``         top of book (ticks, None before the first hydrate), last close
``bands``                   ``Bands``: ema, lower, upper, long, atr (ticks), atr_ppm, ready,
                            candle_ts_ms (the open time of the last candle they include)
``held_lots``               inventory the engine bought, against ``max_base_lots``
``committed_quote_qu``      held cost + open buy notional, against ``max_quote_qu``
``quote_allowance_qu``      what the shared quote budget still allowed (None: no budget)
``realized_pnl_qu``         net PnL of closed cycles so far
``open_orders``             our orders resting after the pulse (``core.model.OpenOrder``)
``retry_in_s``              while stalled: the backoff before the next try
``decided``                 whether ``decide`` ran (False: the market stayed inside the last
                            decision's hold region, so that decision and its reasons stand;
                            False for control reports too)
``candles``                 the closed candles this pulse hydrated (a cold start: the history)
``levels``                  ``core.model.PlannedLevel``\\ s of the standing decision: every exit
                            and buy level it planned, resting or why not (empty without one)
``dispatched``              (property) whether anything was sent this pulse
==========================  ==================================================================

Journal calls run in the event loop's thread by default. ``journal_in_thread`` moves them to one
thread of their own (the journal must be thread-safe, as ``SqliteJournal`` is), so that a durable
commit's fsync waits there while the loop pulses the other symbols. Either way the workers share
one ``JournalLane`` (``journaling.py``): with ``group_commit`` (the default, for a journal that
can, as ``SqliteJournal``) the write-ahead commits and intent outcomes of all the symbols that
reach them in the same event-loop turn go to the journal as one transaction with one fsync,
waited for in a thread of the lane's own while the loop goes on; each worker sends nothing
before its own commit is durable (``bench/engine.py`` measures both modes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

from nutcracker.core.commands import (
    TAG,
    TAG_END,
    ChangeParams,
    Command,
    CommandOutcome,
    DecideSuggestion,
    KillSymbol,
    Outcome,
    PauseSymbol,
    ProposeChange,
    ResumeSymbol,
    authorize,
)
from nutcracker.core.model import OpenOrder
from nutcracker.core.params import SymbolParams
from nutcracker.engine.journaling import JournalLane
from nutcracker.engine.monitor import MarketReader, Monitor
from nutcracker.engine.portfolio import PortfolioRails
from nutcracker.engine.ports import CommandInbox, Exchange, Journal, QuoteBudget
from nutcracker.engine.reports import Bands, IntentOutcome, PulseReport, SymbolStatus
from nutcracker.engine.worker import LogLine, SymbolWorker, WorkerSettings
from nutcracker.errors import JournalError

__all__ = [
    "Bands",
    "Engine",
    "EngineSettings",
    "IntentOutcome",
    "PulseReport",
    "RunClock",
    "ShutdownIncompleteError",
    "SimulatedClock",
    "SymbolStatus",
    "WallClock",
    "journaled_outcome",
]

logger = logging.getLogger("nutcracker.engine")

Observer = Callable[[PulseReport], None]

SHUTDOWN_CANCEL_S = 30.0
"""How long ``cancel_on_shutdown`` retries failed cancels (with backoff) before giving up."""
INBOX_RETRY_S = 0.5
"""How often ``serve`` tries again to read an inbox it could not read."""
PULSE_SLICE_S = 0.005
"""``pulse_all`` gives the event loop a turn after at most this long of pulses in a row (a round of
100 symbols held it about 20 ms: an API request waited that long)."""
_RETRY_FIRST_S, _RETRY_MAX_S = 0.1, 2.0  # the backoff between two rounds of shutdown cancels


class ShutdownIncompleteError(Exception):
    """``cancel_on_shutdown`` gave up: orders of ours still rest (or could not be confirmed gone).

    ``resting`` maps each symbol left with orders to them; the message lists client id, side and
    price of each, and says whether the list is the exchange's or the last pulse's.
    """

    def __init__(self, message: str, resting: Mapping[str, tuple[OpenOrder, ...]]) -> None:
        super().__init__(message)
        self.resting = dict(resting)


class RunClock(Protocol):
    """The engine's clock: the time for the journal and the waits between pulses."""

    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    """Real time (live and paper)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """Simulated time (replay): moved by the driver; ``sleep`` returns once time has caught up."""

    def __init__(self, now_ms: int = 0) -> None:
        self._now_ms = now_ms
        self._sleepers: list[tuple[int, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._now_ms

    def advance_to(self, ts_ms: int) -> None:
        """Move the clock to ``ts_ms`` (never backwards) and wake the sleepers that are due."""
        self._now_ms = max(self._now_ms, ts_ms)
        waiting = []
        for due, future in self._sleepers:
            if future.done():
                continue
            if due <= self._now_ms:
                future.set_result(None)
            else:
                waiting.append((due, future))
        self._sleepers = waiting

    async def sleep(self, seconds: float) -> None:
        due = self._now_ms + int(seconds * 1000)
        if due <= self._now_ms:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((due, future))
        await future


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The runtime's settings; the CLI builds them from ``[engine]``."""

    pulse_interval_s: float = 60.0
    pulse_intervals: Mapping[str, float] = field(default_factory=dict)  # per symbol, overriding
    monitor_interval_s: float | None = 5.0  # None: no monitor
    cancel_on_shutdown: bool = True
    shutdown_timeout_s: float = 30.0
    shutdown_cancel_s: float = SHUTDOWN_CANCEL_S  # retry failed shutdown cancels this long, then fail
    journal_in_thread: bool = False  # run journal calls in one thread: needs a thread-safe journal
    group_commit: bool = True  # the symbols' writes of one loop turn share a commit (journal permitting)
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    def __post_init__(self) -> None:
        intervals = [self.pulse_interval_s, *self.pulse_intervals.values()]
        if any(i <= 0 for i in intervals):
            raise ValueError("pulse intervals must be positive")
        if self.shutdown_timeout_s <= 0:
            raise ValueError("shutdown_timeout_s must be positive")
        if not 0 < self.shutdown_cancel_s < float("inf"):
            raise ValueError("shutdown_cancel_s must be positive and finite")
        object.__setattr__(self, "pulse_intervals", MappingProxyType(dict(self.pulse_intervals)))

    def interval_of(self, symbol: str) -> float:
        return self.pulse_intervals.get(symbol, self.pulse_interval_s)


class Engine:
    """The live engine: workers, monitor, portfolio rails, run loop, control and observers."""

    def __init__(
        self,
        params: Sequence[SymbolParams],
        exchange: Exchange,
        journal: Journal,
        clock: RunClock,
        *,
        settings: EngineSettings | None = None,
        portfolio_budgets: Mapping[str, Decimal] | None = None,
        monitor_reader: MarketReader | None = None,
        quote_budget: QuoteBudget | None = None,
    ) -> None:
        """Build one worker per symbol.

        Args:
            params: the symbols' parameters (one market each).
            exchange, journal: the ports the CLI picked (``CcxtExchange``/``SimExchange``, a journal).
            portfolio_budgets: ``max_quote`` per quote asset shared by its symbols (``[portfolio]``).
            monitor_reader: where the monitor reads (default: ``exchange``).
            quote_budget: another implementation of the shared budgets than ``PortfolioRails``
                (in-process, built from ``portfolio_budgets``); give one or the other.
        """
        self._settings = settings or EngineSettings()
        self._exchange = exchange
        self._journal = journal
        self._clock = clock
        symbols = [p.market.symbol for p in params]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"each symbol may appear once, got {symbols}")
        if quote_budget is not None and portfolio_budgets:
            raise ValueError("give portfolio_budgets or a quote_budget, not both")
        self.portfolio: QuoteBudget | None = (
            PortfolioRails(portfolio_budgets) if portfolio_budgets else quote_budget
        )
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
            if self._settings.journal_in_thread
            else None
        )
        self.journal_lane = JournalLane(journal, self._executor, group_commit=self._settings.group_commit)
        self._workers: dict[str, SymbolWorker] = {
            p.market.symbol: SymbolWorker(
                p,
                exchange,
                journal,
                clock,
                settings=self._settings.worker,
                portfolio=self.portfolio,
                journal_lane=self.journal_lane,
            )
            for p in params
        }
        interval = self._settings.monitor_interval_s
        self.monitor = (
            Monitor(list(self._workers.values()), monitor_reader or exchange, interval_s=interval)
            if interval is not None
            else None
        )
        self._observers: list[Observer] = []
        self._queues: list[asyncio.Queue[PulseReport]] = []
        self._latest: dict[str, PulseReport] = {}
        self._stop: asyncio.Event | None = None
        self._stop_reason: str | None = None  # why the engine stops (journaled at shutdown)
        self._journaled_open: dict[str, int] = {}  # open-order count last journaled per symbol
        self._hurry = False  # a second signal: stop retrying shutdown cancels
        self._started = False
        self._fatal: JournalError | None = None  # the journal failure that stopped the run
        self._commands: dict[str, asyncio.Future[CommandOutcome]] = {}  # by command_id: idempotence

    # -- views -----------------------------------------------------------------------------------

    @property
    def workers(self) -> Mapping[str, SymbolWorker]:
        return MappingProxyType(self._workers)

    def worker(self, symbol: str) -> SymbolWorker:
        try:
            return self._workers[symbol]
        except KeyError:
            raise KeyError(f"{symbol} is not traded by this engine ({', '.join(self._workers)})") from None

    def latest(self) -> dict[str, PulseReport]:
        """Return the last report of every symbol that produced one."""
        return dict(self._latest)

    # -- observers -------------------------------------------------------------------------------

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(report)`` after every pulse and control action."""
        self._observers.append(observer)

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[PulseReport]:
        """Return a queue receiving every report; when full, its oldest report is dropped."""
        queue: asyncio.Queue[PulseReport] = asyncio.Queue(maxsize=maxsize)
        self._queues.append(queue)
        return queue

    def _emit(self, report: PulseReport) -> None:
        self._latest[report.symbol] = report
        for observer in self._observers:
            try:
                observer(report)
            except Exception:  # a view's bug must not stop trading
                logger.exception(LogLine("observer_error", symbol=report.symbol))
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(report)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every symbol's state and status from the journal (idempotent)."""
        if self._started:
            return
        for worker in self._workers.values():
            await worker.start()
        self._started = True

    async def pulse_all(self, *, concurrently: bool = False) -> list[PulseReport]:
        """Run one pulse of every symbol (in order, or concurrently) and return the reports."""
        await self.start()
        workers = list(self._workers.values())
        if concurrently:
            reports = list(await asyncio.gather(*(w.pulse() for w in workers)))
        else:
            reports = []
            sliced_at = time.perf_counter()
            for w in workers:
                reports.append(await w.pulse())
                if time.perf_counter() - sliced_at >= PULSE_SLICE_S:
                    # a turn for the loop's other callbacks (an API request waits at most a slice,
                    # not a whole round); the clock is the runtime's: no decision reads it
                    await asyncio.sleep(0)
                    sliced_at = time.perf_counter()
        for report in reports:
            self._emit(report)
        return reports

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask ``run`` to stop gracefully (what SIGINT and SIGTERM do); the first reason is journaled."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._stop is not None:
            self._stop.set()

    def _on_signal(self, name: str) -> None:
        """The first SIGINT/SIGTERM stops gracefully; another one cuts the shutdown's cancel retries short."""
        if self._stop is not None and self._stop.is_set():
            self._hurry = True
            logger.warning(LogLine("shutdown_hurried", signal=name))
        self.request_stop(f"signal {name}")

    async def run(self, *, handle_signals: bool = True) -> None:
        """Pulse every symbol at its interval until stopped, then shut down gracefully."""
        await self.start()
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig.name)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
                    pass
        logger.info(LogLine("engine_start", symbols=len(self._workers), monitor=self.monitor is not None))
        tasks = [
            asyncio.create_task(self._symbol_loop(w), name=f"pulse {w.symbol}")
            for w in self._workers.values()
        ]
        if self.monitor is not None:
            tasks.append(asyncio.create_task(self.monitor.run(self._stop, self._sleep), name="monitor"))
        try:
            await self._stop.wait()
        except BaseException as e:
            if self._stop_reason is None:
                self._stop_reason = f"error: {type(e).__name__}: {e}"[:200]
            raise
        finally:
            self._stop.set()
            try:
                await self._shutdown(tasks, self._stop_reason or "stop requested")
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)
        if self._fatal is not None:
            raise self._fatal

    async def _symbol_loop(self, worker: SymbolWorker) -> None:
        interval = self._settings.interval_of(worker.symbol)
        stop = self._stop
        assert stop is not None
        errors = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = await worker.pulse()
                self._emit(report)
                errors = 0
                await self._journal_open_orders(report)
            except asyncio.CancelledError:
                raise
            except JournalError as e:  # nothing can be written ahead any more: stop every symbol
                logger.error(LogLine("journal_error", symbol=worker.symbol, error=e))
                self._fatal = self._fatal or e
                self.request_stop()
                return
            except Exception:  # a bug in one symbol's pulse must not stop the others
                errors += 1
                logger.exception(LogLine("pulse_error", symbol=worker.symbol, errors=errors))
            delay = worker.next_delay_s(interval)
            if worker.retry_in_s() is None:
                delay -= time.monotonic() - started  # keep the cadence: the interval is start to start
            if errors:
                s = self._settings.worker
                delay = max(delay, min(s.backoff_max_s, s.backoff_initial_s * 2 ** min(errors - 1, 62)))
            await self._sleep(delay)

    async def _journal_open_orders(self, report: PulseReport) -> None:
        """Journal a symbol's open-order count (a ``reconciliation`` audit) when a pulse changed it."""
        count = len(report.open_orders)
        if self._journaled_open.get(report.symbol) == count:
            return
        self._journaled_open[report.symbol] = count
        detail = json.dumps({report.symbol: {"open_orders": count, "source": "last pulse"}})
        try:
            await self.journal_lane.call(
                self._journal.audit, "engine", "reconciliation", detail, self._clock.now_ms()
            )
        except Exception as e:  # the count is informational: trading goes on
            logger.warning(LogLine("reconciliation_not_journaled", symbol=report.symbol, error=repr(e)))

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the engine's clock, returning early when a stop is requested."""
        stop = self._stop
        if stop is None or stop.is_set():
            return
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()

    async def _shutdown(self, tasks: list[asyncio.Task[None]], reason: str) -> None:
        timeout = self._settings.shutdown_timeout_s
        logger.info(LogLine("engine_stopping", cancel_on_shutdown=self._settings.cancel_on_shutdown))
        if tasks:
            _, running = await asyncio.wait(tasks, timeout=timeout)
            for (
                task
            ) in running:  # a pulse stuck past the timeout: its intents stay pending, resolved on restart
                task.cancel()
            if running:
                await asyncio.wait(running)
        cancelled: set[str] = set()
        if self._settings.cancel_on_shutdown:
            cancelled = await self._cancel_with_retries()
        resting = await self._reconcile(cancelled, reason)
        self.journal_lane.close()  # every write was awaited: no batch is in flight
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._journal.flush)
            self._executor.shutdown(wait=True)
            self._executor = None
        else:
            self._journal.flush()
        logger.info(LogLine("engine_stopped", reason=reason))
        left = {symbol: orders for symbol, (orders, _) in resting.items() if orders}
        if self._settings.cancel_on_shutdown and left:
            raise ShutdownIncompleteError(self._resting_message(left, resting), left)

    async def shutdown(self, reason: str = "shutdown") -> None:
        """Stop without a run loop: cancel resting orders if configured, then flush the journal.

        Raises:
            ShutdownIncompleteError: ``cancel_on_shutdown`` left orders resting.
        """
        self._stop = self._stop or asyncio.Event()
        self._stop.set()
        await self._shutdown([], self._stop_reason or reason)

    async def _cancel_with_retries(self) -> set[str]:
        """Cancel every symbol's resting orders, retrying with backoff for ``shutdown_cancel_s``.

        Returns the symbols confirmed clear (the exchange listed none of ours after the cancels).
        """
        s = self._settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.shutdown_cancel_s
        targets = [w for w in self._workers.values() if w.status != "killed"]
        clear: set[str] = set()
        delay, rounds = _RETRY_FIRST_S, 0
        while targets:
            rounds += 1
            budget = max(0.01, min(s.shutdown_timeout_s, deadline - loop.time()))
            results = await asyncio.gather(
                *(asyncio.wait_for(w.cancel_all("engine shutdown"), budget) for w in targets),
                return_exceptions=True,
            )
            failed = []
            for worker, result in zip(targets, results, strict=True):
                if result is True:
                    clear.add(worker.symbol)
                else:
                    failed.append(worker)
                    logger.warning(
                        LogLine(
                            "shutdown_cancel_retry", symbol=worker.symbol, round=rounds, result=repr(result)
                        )
                    )
            targets = failed
            if not targets or self._hurry or loop.time() + delay >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
        return clear

    async def _reconcile(self, clear: set[str], reason: str) -> dict[str, tuple[tuple[OpenOrder, ...], str]]:
        """Journal what rests per symbol (a ``reconciliation`` audit), then the ``stop`` event.

        A symbol the shutdown cancels cleared rests nothing; for the others the exchange is asked
        once, and when it cannot answer the last pulse's view stands (and says so).
        """
        resting: dict[str, tuple[tuple[OpenOrder, ...], str]] = {}
        for worker in self._workers.values():
            if worker.symbol in clear:
                resting[worker.symbol] = ((), "exchange")
                continue
            prefix = worker.params.order_id_prefix + "-"
            try:
                orders = await asyncio.wait_for(
                    self._exchange.fetch_open_orders(worker.symbol), self._settings.shutdown_timeout_s
                )
                ours = tuple(o for o in orders if o.client_order_id.startswith(prefix))
                resting[worker.symbol] = (ours, "exchange")
            except Exception as e:  # the exchange cannot say: the last pulse's view, labelled so
                logger.warning(LogLine("shutdown_reconcile_failed", symbol=worker.symbol, error=repr(e)))
                resting[worker.symbol] = (worker.open_orders, "last pulse")
        counts = {
            symbol: {"open_orders": len(orders), "source": source}
            for symbol, (orders, source) in resting.items()
        }
        clock = "wall" if isinstance(self._clock, WallClock) else "replay market"
        total = sum(len(orders) for orders, _ in resting.values())
        stop = {"reason": reason, "clock": clock, "open_orders": total}
        now = self._clock.now_ms()
        try:
            await self.journal_lane.call(
                self._journal.audit, "engine", "reconciliation", json.dumps(counts, sort_keys=True), now
            )
            await self.journal_lane.call(self._journal.audit, "engine", "stop", json.dumps(stop), now)
        except Exception as e:  # the stop still happens; the journal's own error is logged
            logger.error(LogLine("stop_not_journaled", reason=reason, error=repr(e)))
        return resting

    def _resting_message(
        self,
        left: Mapping[str, tuple[OpenOrder, ...]],
        resting: Mapping[str, tuple[tuple[OpenOrder, ...], str]],
    ) -> str:
        count = sum(len(orders) for orders in left.values())
        lines = [
            f"shutdown: {count} order(s) still resting after {self._settings.shutdown_cancel_s:g} s of "
            "cancel retries; cancel them on the exchange, or restart the engine to retry:"
        ]
        for symbol, orders in left.items():
            precision = self._workers[symbol].params.market.precision
            source = resting[symbol][1]
            for o in orders:
                price = precision.ticks_to_price(o.price)
                lines.append(f"  {symbol} {o.client_order_id} {o.side.value} {price} (per the {source})")
        return "\n".join(lines)

    # -- control: the one door ------------------------------------------------------------------

    def _targets(self, symbol: str | None) -> list[SymbolWorker]:
        return list(self._workers.values()) if symbol is None else [self.worker(symbol)]

    async def submit(self, command: Command) -> CommandOutcome:
        """Apply a command between two pulses of its symbol(s): the only way to change a running symbol.

        Idempotent by ``command_id``: a replayed id (even while the first is being applied) changes
        nothing and returns the first outcome. A command the sender's role does not allow
        (``core.commands.authorize``), or for a symbol this engine does not trade, is refused; a
        ``ProposeChange`` or a ``DecideSuggestion`` is only recorded. Every command is journaled as
        an audit event with its id, role and grant: pause, resume and kill once per symbol they
        change (as before), a parameter change with the new version in the params history (the
        user's units beside the core's), a refusal, a proposal or a decision by itself. A journal
        failure raises and forgets the id, so the same command can be sent again.
        """
        first = self._commands.get(command.command_id)
        if first is not None:
            return await asyncio.shield(first)
        future: asyncio.Future[CommandOutcome] = asyncio.get_running_loop().create_future()
        self._commands[command.command_id] = future
        try:
            seen = await self.journal_lane.call(self._journal.command_detail, command.command_id)
            # journaled before this process (a restart, another process on the store): not again
            outcome = await self._apply(command) if seen is None else _journaled_outcome(command, seen)
        except BaseException as e:
            del self._commands[command.command_id]
            future.set_exception(e)
            future.exception()  # retrieved: only replays waiting on it re-raise it
            raise
        future.set_result(outcome)
        return outcome

    async def _apply(self, command: Command) -> CommandOutcome:
        cid = command.command_id
        refusal = authorize(command)
        if not refusal and command.symbol is not None and command.symbol not in self._workers:
            refusal = f"{command.symbol} is not traded by this engine ({', '.join(self._workers)})"
        if refusal:
            await self._record_command(command, f"refused: {refusal}")
            return CommandOutcome(cid, Outcome.REFUSED, refusal)
        if isinstance(command, ProposeChange):
            await self._record_command(command, f"proposal={command.patch_json}")
            return CommandOutcome(cid, Outcome.RECORDED, "recorded for a person to decide; nothing changed")
        if isinstance(command, DecideSuggestion):
            await self._record_command(command, f"suggestion={command.suggestion_id}")
            return CommandOutcome(cid, Outcome.RECORDED, f"{command.kind} recorded")
        tag = _command_tag(command)
        if isinstance(command, ChangeParams):
            try:
                await self.worker(command.symbol or "").apply_params(
                    command.params,
                    command.actor,
                    command.why,
                    config_json=command.config_json,
                    command_id=cid,
                )
            except ValueError as e:
                await self._record_command(command, f"refused: {e}")
                return CommandOutcome(cid, Outcome.REFUSED, str(e))
            await self._record_command(command, "applied")
            return CommandOutcome(cid, Outcome.APPLIED, "new parameters apply from the next pulse")
        targets = self._targets(command.symbol)
        if isinstance(command, PauseSymbol):
            reports = await asyncio.gather(*(w.pause(command.actor, command.why, tag) for w in targets))
        elif isinstance(command, ResumeSymbol):
            reports = await asyncio.gather(*(w.resume(command.actor, command.why, tag) for w in targets))
        elif isinstance(command, KillSymbol):
            reports = await asyncio.gather(*(w.kill(command.actor, command.why, tag) for w in targets))
        else:  # authorize refuses a bare Command; a new kind must be taught here
            raise TypeError(f"the engine cannot apply a {type(command).__name__}")
        for report in reports:
            self._emit(report)
        return CommandOutcome(cid, Outcome.APPLIED, ", ".join(f"{r.symbol} {r.status}" for r in reports))

    async def serve(self, inbox: CommandInbox, owner: str) -> None:
        """Claim this engine's symbols for ``owner`` and ``submit`` every command the inbox delivers.

        Runs until cancelled (run it beside ``run``). An outcome goes to the journal only. An inbox
        that cannot be read (Redis away) is tried again every ``INBOX_RETRY_S``, said once when it
        fails and once when it is back: ended by the first error, the symbol heard no command again
        (no pause, no kill) while it went on trading.
        """
        await inbox.claim(owner, list(self._workers))
        failing = False
        while True:
            try:
                command = await inbox.receive(owner)
            except Exception as e:  # the inbox's store, most likely: the commands wait there
                if not failing:
                    logger.warning(LogLine("inbox_unreadable", owner=owner, error=repr(e)))
                failing = True
                await asyncio.sleep(INBOX_RETRY_S)
                continue
            if failing:
                logger.warning(LogLine("inbox_read_again", owner=owner))
                failing = False
            if command is not None:
                await self.submit(command)

    async def _record_command(self, command: Command, result: str) -> None:
        """Journal a command that no worker journals itself (refused, proposed, parameters)."""
        symbol = command.symbol if command.symbol is not None else "*"
        # the tag, then the outcome, then the free text: neither is read from a reason
        detail = f"symbol={symbol} {_command_tag(command)} {result} why={command.why}"
        await self.journal_lane.call(self._journal.audit, command.actor, command.kind, detail, command.ts_ms)
        logger.info(
            LogLine("command", kind=command.kind, symbol=symbol, command=command.command_id, result=result)
        )


def journaled_outcome(command: Command, detail: str) -> tuple[Outcome, str]:
    """Return what a command id's journaled audit detail records: its outcome and, if refused, why.

    The one reader of the details ``_record_command`` writes (``app.fleet`` reads a worker's too).
    Only the outcome written right after the tag counts, never words in the sender's reason (a
    reason saying " refused: " made an applied command read as refused). A detail written before
    2026-12-08 has the reason before the tag, and the outcome last.
    """
    _, _, after = detail.partition(f"{TAG}{command.command_id}{TAG_END}")
    result = after.split(" ", 1)[1] if " " in after else ""  # past the role
    if result.startswith("grant="):
        result = result.split(" ", 1)[1] if " " in result else ""
    if result.startswith("refused: "):
        refusal = result.removeprefix("refused: ")
        return Outcome.REFUSED, refusal.split(" why=", 1)[0]
    if result.startswith("proposal=") or isinstance(command, DecideSuggestion):
        return Outcome.RECORDED, ""
    return Outcome.APPLIED, ""


def _journaled_outcome(command: Command, detail: str) -> CommandOutcome:
    """Return the outcome a command id's journaled audit detail records (it is not applied again)."""
    before = "journaled before, not applied again"
    outcome, why = journaled_outcome(command, detail)
    return CommandOutcome(command.command_id, outcome, f"{before}: {why}" if why else before)


def _command_tag(command: Command) -> str:
    """Return the audit's ``command=... role=...`` (and ``grant=...``) of a command."""
    tag = f"{TAG}{command.command_id}{TAG_END}{command.role.value}"
    return f"{tag} grant={command.grant_id}" if command.grant_id else tag
