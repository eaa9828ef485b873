"""``SymbolWorker``: the pulse of one symbol (DESIGN.md §5), always under that symbol's ``asyncio.Lock``.

One pulse, in this order:

1. **resolve** the journal's open intents (``pending``/``ambiguous``) by client order id with
   ``Exchange.fetch_order``: found -> ``acked`` (or ``rejected`` if the exchange refused it), not
   found -> ``never_placed``. Nothing is ever resent blindly; a lost answer is looked up first.
2. **hydrate** fresh from the exchange (zero caching): its clock, the closed candles newer than
   the indicator state (a cold start pages back ``max(ema, atr + 1, long)`` candles plus a margin;
   while the next candle cannot have closed yet, none is asked for), the book, our open orders
   (client id ``{prefix}-...``) and then our fills since the journal's cursor minus an overlap,
   less the trade ids the journal already booked. A timeout or outage here is a **data-stall**:
   nothing is dispatched, status ``stalled`` with the reason, the next try waits an exponential
   backoff (capped), and the first good pulse resumes by itself. Stale candles are a stall too.
3. **decide** (``core.strategy.decide``, pure), after reading the free balances (floored to lots
   and quote units) and, under the quote asset's budget lock, the portfolio allowance
   (``portfolio.py``). When no fill came, our resting orders are the ones the last decision left
   and the market is inside that decision's *hold region* (``core.hold``: where deciding again
   provably changes nothing), the last decision stands and ``decide`` and the balance read are
   skipped: most idle pulses.
4. **journal, write-ahead**: one durable ``commit_pulse`` with the new state, the new fills and
   their cycles, closed cycles, the reasons and every cancel and placement as a ``pending``
   intent, *before* anything is sent. A pulse with no fill and no intent makes no durable commit:
   a changed ledger, anchor or ladder is ``save_state``d (buffered) at once, indicator-only
   progress every ``save_state_every_candles`` candles (a restart folds the missing candles again).
5. **dispatch**: cancels first (an unknown order is already gone: fine); if any other cancel
   fails, no placement is sent this pulse (the budget it would free is not certain). Then the
   post-only placements in order: refused (post-only, invalid, funds) -> ``rejected``, re-priced
   next pulse; ``AmbiguousOrderError`` -> ``ambiguous`` and no more placements until it is
   resolved (step 1 of the next pulse); ``ExchangeUnavailableError`` -> stop, the rest stay
   ``pending`` for step 1. An intent leaves ``pending`` only on an answer from the exchange.
   The outcomes go to ``update_intents``.

Parameter changes, pause, resume and kill take the same lock, so they happen between pulses.
A broken invariant (a fill the ledger cannot book, an order off the exchange's grid, a key that
is refused) halts the symbol: status ``paused`` with the reason, until a person resumes it.

Journal calls run inline, or, given a ``journal_executor`` (one thread; the runtime makes it for
a thread-safe journal such as ``SqliteJournal``), in that thread, so a durable commit's fsync
never holds up the other symbols' pulses. Calls stay in order: each is awaited before the next.
The runtime passes a ``journal_lane`` (``journaling.JournalLane``) shared by its workers instead:
the write-ahead commits (and outcomes) of the workers that reach them in the same event-loop turn
then share one transaction and one fsync (group commit); each worker still awaits its own
commit's durability before it sends anything.

The journal's ``state_json`` of a symbol is the worker's envelope
``{"engine": {"format": 1, "fills_from_ms": T}, "strategy": <core.serialize state>}``:
``fills_from_ms`` is where the fill cursor starts before the symbol's first booked fill, so a
restart never re-reads the account's whole trade history nor books fills older than the symbol.

Logs are ``key=value`` (``event=...``), never secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import ParamSpec, TypeVar

from nutcracker.core import indicators
from nutcracker.core.hold import Hold
from nutcracker.core.indicators import IndicatorState
from nutcracker.core.ledger import Ledger
from nutcracker.core.model import (
    Book,
    CancelOrder,
    Candle,
    Fill,
    OpenOrder,
    PlaceLimit,
    PlannedLevel,
    Side,
    Snapshot,
)
from nutcracker.core.orders import parse_slot
from nutcracker.core.params import Spacing, SymbolParams
from nutcracker.core.records import ClosedCycleRecord, IntentRecord, PulseRecord
from nutcracker.core.serialize import dumps_params, state_from_dict, state_to_dict
from nutcracker.core.strategy import Decision, StrategyState, decide, held_reasons, initial_state
from nutcracker.core.units import PPM, notional_qu
from nutcracker.engine.journaling import JournalLane
from nutcracker.engine.ports import Clock, Exchange, Journal, QuoteBudget
from nutcracker.engine.reports import Bands, IntentOutcome, PulseReport, SymbolStatus
from nutcracker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    ExchangeError,
    ExchangeUnavailableError,
    OrderNotFoundError,
    OrderRejectedError,
    ReconciliationError,
)
from nutcracker.explain import explain

__all__ = [
    "IDLE",
    "KILLED",
    "PAUSED",
    "STALLED",
    "TRADING",
    "Bands",
    "IntentOutcome",
    "LogLine",
    "PulseReport",
    "SymbolStatus",
    "SymbolWorker",
    "WorkerSettings",
    "decode_envelope",
    "encode_envelope",
]

logger = logging.getLogger("nutcracker.engine")

P = ParamSpec("P")
T = TypeVar("T")

TRADING, IDLE, STALLED, PAUSED, KILLED = (
    SymbolStatus.TRADING,
    SymbolStatus.IDLE,
    SymbolStatus.STALLED,
    SymbolStatus.PAUSED,
    SymbolStatus.KILLED,
)
ENVELOPE_FORMAT = 1
_MAX_REASON = 300  # characters of a status reason kept in logs and the journal


class LogLine:
    """A ``event=... key=value`` log line, formatted only if a handler emits it.

    Values with spaces, quotes or ``=`` are quoted and cut at 300 characters; never pass secrets.
    """

    __slots__ = ("event", "fields")

    def __init__(self, event: str, **fields: object) -> None:
        self.event = event
        self.fields = fields

    def __str__(self) -> str:
        parts = [f"event={self.event}"]
        for key, value in self.fields.items():
            text = str(value)
            if not text or any(c in text for c in ' "=\n'):
                text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
                text = '"' + text[:_MAX_REASON] + '"'
            parts.append(f"{key}={text}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker hydrates and backs off; the CLI builds it from ``[engine]``."""

    candle_interval_ms: int = 60_000  # the exchange adapter's timeframe
    history_margin_candles: int = 50  # fetched beyond the longest indicator period on a cold start
    candles_page_limit: int = 1000
    fill_overlap_ms: int = 60_000  # fills are re-read this far behind the cursor (late prints)
    stale_after_candles: int = 3  # data-stall when the newest closed candle is older (0: off)
    save_state_every_candles: int = 10  # idle pulses hand indicator-only progress to the journal this often
    reuse_hold: bool = True  # skip decide while the market stays inside the last decision's hold region
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.candle_interval_ms <= 0 or self.candles_page_limit <= 0:
            raise ValueError("candle_interval_ms and candles_page_limit must be positive")
        if self.save_state_every_candles < 1:
            raise ValueError("save_state_every_candles must be >= 1")
        if self.fill_overlap_ms < 0 or self.history_margin_candles < 0 or self.stale_after_candles < 0:
            raise ValueError("fill_overlap_ms, history_margin_candles and stale_after_candles must be >= 0")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("backoff needs 0 < backoff_initial_s <= backoff_max_s")


@dataclass(slots=True)
class _Hydrated:
    ts_ms: int
    candles: tuple[Candle, ...]
    book: Book
    open_orders: tuple[OpenOrder, ...]  # ours
    fills: tuple[Fill, ...]  # ours, not booked yet


class SymbolWorker:
    """Pulse one symbol: resolve, hydrate, decide, journal (write-ahead), dispatch.

    The worker owns the symbol's lock, strategy state and status; the exchange and the journal are
    ports passed in by the composition root. ``start`` loads what the journal holds; ``pulse`` is
    called by the runtime's loop (or by a test or a replay driver) and returns a ``PulseReport``.
    """

    def __init__(
        self,
        params: SymbolParams,
        exchange: Exchange,
        journal: Journal,
        clock: Clock,
        *,
        settings: WorkerSettings | None = None,
        portfolio: QuoteBudget | None = None,
        journal_executor: Executor | None = None,
        journal_lane: JournalLane | None = None,
    ) -> None:
        self._params = params
        self._exchange = exchange
        self._journal = journal
        self._clock = clock
        self._settings = settings or WorkerSettings()
        self._portfolio = portfolio
        if journal_lane is None:
            journal_lane = JournalLane(journal, journal_executor, group_commit=False)
        elif journal_lane.journal is not journal or journal_executor is not None:
            raise ValueError("a journal lane brings its journal and executor: pass the lane's journal only")
        self._lane = journal_lane
        self._symbol = params.market.symbol
        self._our_prefix = params.order_id_prefix + "-"
        self.lock = asyncio.Lock()
        self._state = initial_state()
        self._state_json = ""  # the envelope last handed to the journal (or loaded)
        self._unsaved_candles = 0  # indicator-only progress not handed to the journal yet
        self._fills_from_ms = -1  # -1: set at the first hydrate
        self._last_fill_ts_ms = -1
        self._booked: dict[str, int] = {}  # trade id -> fill time of the fills this worker committed
        self._status = IDLE
        self._status_reason = "not started"
        self._status_key: tuple[str, ...] = ()  # what the journaled status reason explains
        self._journaled_status = ("", "")
        self._started = False
        self._may_have_open_intents = True
        self._kill_pending = False
        self._unreadable = ""  # why the journaled state could not be read ("" when it could)
        self._stalls = 0  # consecutive data-stalls
        self._seq = 0
        self._open_orders: tuple[OpenOrder, ...] = ()
        self._book: Book | None = None
        self._last_report: PulseReport | None = None
        # the hold region of the last decision and the resting orders it assumed (_held_decision)
        self._hold: Hold | None = None
        self._hold_reasons: tuple[str, ...] = ()
        self._hold_levels: tuple[PlannedLevel, ...] = ()
        self._hold_orders: frozenset[OpenOrder] = frozenset()
        self._reused: Decision | None = None  # the decision _held_decision last returned
        # report caches: the same indicators give the same bands, the same book the same commitment
        self._bands: Bands | None = None
        self._bands_of: IndicatorState | None = None
        self._committed_key: tuple[Ledger, tuple[OpenOrder, ...]] | None = None
        self._committed_qu = 0
        if portfolio is not None:
            portfolio.register(self._symbol, params.market.quote, params.market.precision)

    # -- read-only views ----------------------------------------------------------------------

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def params(self) -> SymbolParams:
        return self._params

    @property
    def state(self) -> StrategyState:
        """Return the strategy state after the last pulse."""
        return self._state

    @property
    def status(self) -> SymbolStatus:
        return self._status

    @property
    def status_reason(self) -> str:
        return self._status_reason

    @property
    def open_orders(self) -> tuple[OpenOrder, ...]:
        """Return our orders resting after the last pulse, as far as the worker knows."""
        return self._open_orders

    @property
    def last_report(self) -> PulseReport | None:
        return self._last_report

    @property
    def active(self) -> bool:
        """Return whether the symbol pulses (neither paused nor killed)."""
        return self._status not in (PAUSED, KILLED)

    def retry_in_s(self) -> float | None:
        """Return the backoff before the next try while data-stalled, else None."""
        if self._status != STALLED or self._stalls == 0:
            return None
        s = self._settings
        return float(min(s.backoff_max_s, s.backoff_initial_s * 2 ** min(self._stalls - 1, 62)))

    def next_delay_s(self, interval_s: float) -> float:
        """Return how long the loop should wait before this symbol's next pulse."""
        retry = self.retry_in_s()
        return interval_s if retry is None else retry

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the symbol's state and status from the journal (a restart resumes from them)."""
        async with self.lock:
            await self._load()

    async def _load(self) -> None:
        stored = await self._j(self._journal.load_symbol, self._symbol)
        self._started = True
        await self._record_starting_params()
        if stored is None:
            return
        self._last_fill_ts_ms = stored.last_fill_ts_ms
        if stored.state_json:
            try:
                self._state, self._fills_from_ms = decode_envelope(stored.state_json, self._symbol)
            except ReconciliationError as e:
                # never trade (nor overwrite the journaled state) on a ledger that could not be read
                self._unreadable = f"{e}; rebuild it from the exchange with `nutcracker recover`"
                self._journaled_status = (stored.status, stored.status_reason)
                await self._halt(self._unreadable)
                return
            self._state_json = stored.state_json
        if stored.status in (PAUSED, KILLED):
            self._status, self._status_reason = SymbolStatus(stored.status), stored.status_reason
            self._kill_pending = stored.status == KILLED  # make sure nothing of ours still rests
        self._journaled_status = (stored.status, stored.status_reason)

    async def _record_starting_params(self) -> None:
        """Journal the parameters this run starts with, when they differ from the last recorded."""
        params_json = dumps_params(self._params)
        history = await self._j(self._journal.params_history, self._symbol)
        if not history or history[-1].params_json != params_json:
            why = "engine start" if not history else "engine restart with other parameters"
            await self._j(
                self._journal.record_params, self._symbol, params_json, "config", why, self._clock.now_ms()
            )

    async def _j(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the journal inline, or in the journal's thread when there is one."""
        return await self._lane.call(fn, *args, **kwargs)

    async def pulse(self) -> PulseReport:
        """Run one pulse under the symbol's lock and return its report."""
        async with self.lock:
            if not self._started:
                await self._load()
            self._seq += 1
            if self._status == KILLED:
                if self._kill_pending:
                    await self._cancel_all_locked("kill")
                return self._report_only()
            if self._status == PAUSED:
                await self._observe()
                return self._report_only()
            return await self._pulse_locked()

    async def _pulse_locked(self) -> PulseReport:
        symbol = self._symbol
        try:
            if self._may_have_open_intents and await self._resolve_open_intents():
                self._hold = None
            hydrated = await self._hydrate()
            decision = self._held_decision(hydrated)
            balances = None if decision is not None else await self._free_balances()
        except (ReconciliationError, AuthenticationError) as e:
            return await self._halt(f"{type(e).__name__}: {e}")
        except ExchangeError as e:  # ExchangeUnavailableError and anything else the exchange says
            return await self._stall(str(e) or type(e).__name__)
        if self._status == STALLED:
            logger.info(LogLine("data_stall_end", symbol=symbol, stalls=self._stalls))
        self._stalls = 0
        self._book = hydrated.book
        old_state = self._state
        portfolio = self._portfolio
        allowance: int | None = None
        cancels: list[CancelOrder] = []
        placements: list[PlaceLimit] = []
        if decision is None:
            assert balances is not None
            # decide under the quote asset's budget; the reservation is recorded before the lock goes
            async with portfolio.hold(symbol) if portfolio is not None else contextlib.nullcontext():
                if portfolio is not None:
                    own_now = _committed(old_state.ledger, hydrated.open_orders, hydrated.fills)
                    allowance = portfolio.allowance(symbol, own_now)
                snap = Snapshot(
                    symbol,
                    hydrated.ts_ms,
                    hydrated.candles,
                    hydrated.book,
                    balances[0],
                    balances[1],
                    hydrated.open_orders,
                    hydrated.fills,
                    allowance,
                )
                try:
                    decision = decide(snap, self._params, old_state, with_hold=True, with_levels=True)
                except ValueError as e:  # the core refuses a broken invariant (a fill it cannot book)
                    return await self._halt(f"decide refused the snapshot: {e}")
                if len(decision.bookings) != len(hydrated.fills):
                    return await self._halt(
                        f"{len(hydrated.fills)} fills of ours, {len(decision.bookings)} booked"
                    )
                for intent in decision.intents:
                    if isinstance(intent, CancelOrder):
                        cancels.append(intent)
                    else:
                        placements.append(intent)
                if portfolio is not None:
                    cancelled = {c.client_order_id for c in cancels}
                    kept = [o for o in hydrated.open_orders if o.client_order_id not in cancelled]
                    reserved = _committed(decision.state.ledger, kept) + _buy_notional(placements)
                    portfolio.reserve(symbol, reserved)

        # _write_ahead has nothing to do when the state is the very same and nothing is to be sent
        if (
            decision.state is not old_state
            or decision.intents
            or hydrated.fills
            or decision.closed_cycles
            or not self._state_json
        ):
            try:
                await self._write_ahead(hydrated, decision, cancels, placements)
            except BaseException:
                if portfolio is not None:  # nothing is sent: give the reservation back
                    portfolio.reserve(symbol, _committed(decision.state.ledger, hydrated.open_orders))
                raise
        self._state = decision.state
        if hydrated.fills:
            self._remember_booked(hydrated.fills)

        outcomes = await self._dispatch(cancels, placements, hydrated.ts_ms) if decision.intents else ()
        resting = _resting_after(hydrated.open_orders, outcomes)
        if resting == self._open_orders:
            resting = self._open_orders  # the same orders: keep the tuple the caches know
        self._open_orders = resting
        committed = self._committed_now(decision.state.ledger, resting)
        if portfolio is not None:
            # placements still unanswered count as resting: a lost answer may hide a live order
            unsure = sum(
                notional_qu(o.price, o.qty)
                for o in outcomes
                if o.action == "place" and o.status in ("pending", "ambiguous") and o.side == "buy"
            )
            portfolio.reserve(symbol, committed + unsure)
        self._keep_hold(decision, outcomes, resting)

        # the status reason in the user's units; journaled when the state or its reason changes,
        # not on every move of the market its percentages follow
        last_close = decision.state.indicators.prev_close
        shown = explain(
            self._params,
            held_lots=decision.state.ledger.held,
            committed_qu=committed,
            close=int(last_close) if last_close == last_close else 0,
            open_orders=resting,
            reasons=decision.reasons,
        )
        status = TRADING if resting or any(o.status == "acked" for o in outcomes) else IDLE
        changed = shown.key != self._status_key
        self._status_key = shown.key
        await self._set_status(status, shown.text, journal_reason=changed)
        report = self._report(
            hydrated.ts_ms, decision, outcomes, hydrated.fills, allowance, committed, hydrated.candles
        )
        if (outcomes or hydrated.fills) and logger.isEnabledFor(logging.INFO):
            logger.info(
                LogLine(
                    "pulse",
                    symbol=symbol,
                    seq=self._seq,
                    fills=len(hydrated.fills),
                    cancels=len(cancels),
                    placements=len(placements),
                    acked=sum(o.status == "acked" for o in outcomes),
                    rejected=sum(o.status == "rejected" for o in outcomes),
                    ambiguous=sum(o.status == "ambiguous" for o in outcomes),
                    pending=sum(o.status == "pending" for o in outcomes),
                )
            )
        return report

    # -- 1. resolve -----------------------------------------------------------------------------

    async def _resolve_open_intents(self) -> bool:
        """Settle every pending or ambiguous intent by its client order id; return whether any was."""
        if not self._may_have_open_intents:
            return False
        symbol = self._symbol
        updates: list[tuple[str, str, str]] = []
        try:
            for intent in await self._j(self._journal.open_intents, symbol):
                cid = intent.client_order_id
                found = await self._exchange.fetch_order(symbol, cid)
                if intent.action == "place":
                    if found is None:
                        updates.append((cid, "never_placed", "unknown to the exchange"))
                    elif found.status == "rejected":
                        updates.append((cid, "rejected", "the exchange refused it"))
                    else:
                        updates.append((cid, "acked", f"found {found.status}"))
                elif found is not None and found.status == "open":
                    updates.append((cid, "never_placed", "the order is still open"))
                else:
                    updates.append((cid, "done", f"order {'unknown' if found is None else found.status}"))
        finally:
            if updates:
                await self._lane.update_intents(symbol, updates, self._clock.now_ms())
                logger.info(
                    LogLine(
                        "intents_resolved",
                        symbol=symbol,
                        resolved=len(updates),
                        detail=",".join(f"{cid}:{status}" for cid, status, _ in updates),
                    )
                )
        self._may_have_open_intents = False
        return bool(updates)

    # -- 2. hydrate -----------------------------------------------------------------------------

    async def _hydrate(self) -> _Hydrated:
        ex, symbol = self._exchange, self._symbol
        now = await ex.server_time_ms()
        last = self._state.indicators.last_ts_ms
        if last >= 0 and now < last + 2 * self._settings.candle_interval_ms - 1:
            candles: tuple[Candle, ...] = ()  # as _new_candles: the next candle has not closed yet
        else:
            candles = await self._new_candles(now)
        book = await ex.fetch_book(symbol)
        # open orders before fills: an order gone from the list has its fills in the next read
        orders = await ex.fetch_open_orders(symbol)
        prefix = self._our_prefix
        ours = tuple([o for o in orders if o.client_order_id.startswith(prefix)])
        if self._fills_from_ms < 0:
            self._fills_from_ms = max(0, now - self._settings.fill_overlap_ms)
        fills = await self._new_fills()
        return _Hydrated(now, candles, book, ours, fills)

    async def _free_balances(self) -> tuple[int, int]:
        """Return the free base (lots) and quote (quote units), floored to the market's grid."""
        market = self._params.market
        balances = await self._exchange.fetch_balances()
        zero = Decimal(0)
        return (
            market.precision.qty_to_lots(balances.get(market.base, zero)),
            market.precision.quote_to_qu(balances.get(market.quote, zero)),
        )

    async def _new_candles(self, now: int) -> tuple[Candle, ...]:
        """Return the closed candles newer than the indicator state (a cold start reads history)."""
        s, k = self._settings, self._params.keltner
        interval = s.candle_interval_ms
        last = self._state.indicators.last_ts_ms
        if last >= 0 and now < last + 2 * interval - 1:
            return ()  # the candle after the last applied one has not closed yet: nothing to read
        if last >= 0:
            since = last + 1
        else:
            # the long average too: not traded on, but shown from the first pulse
            need = max(k.ema_period, k.atr_period + 1, k.long_period) + s.history_margin_candles
            since = max(0, (now // interval - need - 1) * interval)
        page = s.candles_page_limit
        out: list[Candle] = []
        while True:
            batch = await self._exchange.fetch_candles(self._symbol, since, page)
            fresh = [c for c in batch if c.ts_ms >= since and (not out or c.ts_ms > out[-1].ts_ms)]
            out.extend(fresh)
            if len(batch) < page or not fresh:
                break
            since = out[-1].ts_ms + 1
        newest = out[-1].ts_ms if out else last
        if s.stale_after_candles and (newest < 0 or now - newest > (s.stale_after_candles + 1) * interval):
            seen = "none" if newest < 0 else str(newest)
            raise ExchangeUnavailableError(
                f"no fresh closed candle (newest open time {seen}, exchange time {now})"
            )
        return tuple(out)

    async def _new_fills(self) -> tuple[Fill, ...]:
        """Return our fills the journal has not booked, oldest first (idempotent by trade id).

        The overlap re-reads recent fills every pulse; the ones this worker itself committed are
        known without asking the journal, which is asked only about the others.
        """
        overlap = self._settings.fill_overlap_ms
        since = self._last_fill_ts_ms - overlap if self._last_fill_ts_ms >= 0 else self._fills_from_ms
        since = max(0, since)
        fetched = await self._exchange.fetch_fills(self._symbol, since)
        if not fetched:
            return ()
        prefix, booked = self._params.order_id_prefix, self._booked
        unseen = [
            f
            for f in fetched
            if f.trade_id not in booked and parse_slot(prefix, f.client_order_id) is not None
        ]
        if not unseen:
            return ()
        known = await self._j(self._journal.known_trade_ids, self._symbol, since)
        new: list[Fill] = []
        for fill in unseen:
            if fill.trade_id not in known:
                known.add(fill.trade_id)
                new.append(fill)
        new.sort(key=lambda f: f.ts_ms)  # stable: the exchange's order within a millisecond
        return tuple(new)

    def _remember_booked(self, fills: tuple[Fill, ...]) -> None:
        """Remember the trade ids just committed, forgetting those the overlap no longer re-reads."""
        booked = self._booked
        for fill in fills:
            booked[fill.trade_id] = fill.ts_ms
        self._last_fill_ts_ms = max(self._last_fill_ts_ms, max(f.ts_ms for f in fills))
        horizon = self._last_fill_ts_ms - self._settings.fill_overlap_ms
        for trade_id in [t for t, ts in booked.items() if ts < horizon]:
            del booked[trade_id]

    # -- 3. decide, or keep the last decision inside its hold region ------------------------------

    def _held_decision(self, hydrated: _Hydrated) -> Decision | None:
        """Return the last decision again when the market is inside its hold region, else None.

        ``core.hold``: while no fill arrives and our resting orders are the ones that decision
        left, deciding again on a market inside the region gives no intents and the same state
        (indicators aside); a property test of the core proves it. Neither the balances nor the
        portfolio allowance matter there: a region ends wherever a placement would be tried.
        """
        hold = self._hold
        if hold is None or hydrated.fills or not self._settings.reuse_hold:
            return None
        orders = hydrated.open_orders
        if orders == self._open_orders:
            hydrated.open_orders = self._open_orders  # the same orders: later comparisons by identity
        elif frozenset(orders) != self._hold_orders:
            return None
        params, state = self._params, self._state
        ind = (
            indicators.update(state.indicators, hydrated.candles, params.keltner)
            if hydrated.candles
            else state.indicators
        )
        grid = params.grid
        if grid.spacing is Spacing.BPS:
            step = grid.spacing_ppm / PPM
        else:
            step = grid.spacing_atr * ind.atr / ind.ema if ind.ready else math.nan
        book = hydrated.book
        values = (float(book.best_bid), float(book.best_ask), ind.ema, ind.lower, step, ind.atr_ppm)
        flags = (ind.ready, ind.above_run > 0, ind.buy_armed, ind.sell_armed)
        if not hold.contains(values, flags, hydrated.ts_ms):
            return None
        reused = self._reused
        if ind is not state.indicators:
            state = StrategyState(ind, state.ledger, state.anchor, state.ladder, state.next_seq)
        elif reused is not None and reused.state is state and reused.hold is hold:
            return reused  # nothing moved since: the very same decision
        self._reused = Decision(
            (), state, held_reasons(self._hold_reasons, ind), (), (), hold, self._hold_levels
        )
        return self._reused

    def _keep_hold(
        self, decision: Decision, outcomes: tuple[IntentOutcome, ...], resting: tuple[OpenOrder, ...]
    ) -> None:
        """Keep the decision's hold region when its intents all went through as intended."""
        if decision.hold is None or any(o.status not in ("acked", "done") for o in outcomes):
            self._hold = None
        elif decision.hold is not self._hold:
            self._hold, self._hold_reasons = decision.hold, decision.reasons
            self._hold_levels = decision.levels
            self._hold_orders = frozenset(resting)

    # -- 4. journal -----------------------------------------------------------------------------

    async def _write_ahead(
        self,
        hydrated: _Hydrated,
        decision: Decision,
        cancels: Sequence[CancelOrder],
        placements: Sequence[PlaceLimit],
    ) -> None:
        """Journal the pulse before anything is sent: one durable commit, or a buffered state save."""
        # journal stamps come from the engine's clock, as every other write's: one clock in the journal
        symbol, ts = self._symbol, self._clock.now_ms()
        fills = hydrated.fills
        new = decision.state
        if not (fills or decision.intents or decision.closed_cycles):
            old = self._state
            if new is old and self._state_json:
                return
            if self._state_json and (new.ledger, new.anchor, new.ladder, new.next_seq) == (
                old.ledger,
                old.anchor,
                old.ladder,
                old.next_seq,
            ):
                # only indicator progress, which a restart rebuilds from candles: saved now and then
                self._unsaved_candles += 1
                if self._unsaved_candles < self._settings.save_state_every_candles:
                    return
            self._state_json = self._encode(new)
            self._unsaved_candles = 0
            await self._j(self._journal.save_state, symbol, self._state_json, ts)
            return
        intents = [
            IntentRecord(symbol, c.client_order_id, "cancel", "", 0, 0, "pending", c.reason, ts)
            for c in cancels
        ]
        intents.extend(
            IntentRecord(
                symbol, p.client_order_id, "place", p.side.value, p.price, p.qty, "pending", p.reason, ts
            )
            for p in placements
        )
        closed = tuple(
            ClosedCycleRecord(c.cycle_id, c.cost, c.proceeds, c.fees, c.pnl, c.opened_ts_ms, c.closed_ts_ms)
            for c in decision.closed_cycles
        )
        state_json = self._encode(new)
        record = PulseRecord(
            symbol,
            ts,
            state_json,
            fills,
            tuple(b.cycle_id for b in decision.bookings),
            closed,
            tuple(intents),
            decision.reasons,
        )
        try:
            await self._lane.commit_pulse(record)
        except BaseException:
            self._may_have_open_intents = True  # a commit cut short (cancelled) may still land
            raise
        self._state_json = state_json
        self._unsaved_candles = 0

    def _encode(self, state: StrategyState) -> str:
        return encode_envelope(state, self._fills_from_ms)

    # -- 5. dispatch ----------------------------------------------------------------------------

    async def _dispatch(
        self, cancels: Sequence[CancelOrder], placements: Sequence[PlaceLimit], ts_ms: int
    ) -> tuple[IntentOutcome, ...]:
        """Send cancels, then placements; return every intent's outcome (cancels first)."""
        ex, symbol = self._exchange, self._symbol
        answers: dict[str, tuple[str, str]] = {}  # client_order_id -> (status, detail)
        stop = False
        for cancel in cancels:
            cid = cancel.client_order_id
            try:
                await ex.cancel(symbol, cid)
            except OrderNotFoundError:
                answers[cid] = ("done", "already gone")
            except ExchangeError as e:  # unavailable, or refused: the order may still rest
                logger.warning(LogLine("cancel_failed", symbol=symbol, cid=cid, error=e))
                stop = True  # no placement: the budget this cancel would free is not certain
                break
            else:
                answers[cid] = ("done", "cancelled")
        for placement in placements:
            if stop:
                break
            cid = placement.client_order_id
            try:
                order_id = await ex.place(symbol, placement)
            except AmbiguousOrderError as e:
                answers[cid] = ("ambiguous", str(e)[:_MAX_REASON])
                logger.warning(LogLine("placement_ambiguous", symbol=symbol, cid=cid, error=e))
                stop = True
            except OrderRejectedError as e:  # post-only, invalid, funds, duplicate: re-priced next pulse
                answers[cid] = ("rejected", f"{type(e).__name__}: {e}"[:_MAX_REASON])
            except ExchangeError as e:  # unavailable (or refused key): stays pending, resolved next pulse
                logger.warning(LogLine("placement_unsent", symbol=symbol, cid=cid, error=e))
                stop = True
            else:
                answers[cid] = ("acked", order_id)
        if len(answers) < len(cancels) + len(placements) or any(
            s == "ambiguous" for s, _ in answers.values()
        ):
            self._may_have_open_intents = True
        updates = [(cid, status, detail) for cid, (status, detail) in answers.items()]
        await self._lane.update_intents(symbol, updates, self._clock.now_ms())  # the journal's one clock
        outcomes: list[IntentOutcome] = []
        for c in cancels:
            status, detail = answers.get(c.client_order_id, ("pending", ""))
            outcomes.append(IntentOutcome(c.client_order_id, "cancel", "", 0, 0, status, c.reason, detail))
        for p in placements:
            status, detail = answers.get(p.client_order_id, ("pending", ""))
            outcomes.append(
                IntentOutcome(
                    p.client_order_id, "place", p.side.value, p.price, p.qty, status, p.reason, detail
                )
            )
        return tuple(outcomes)

    # -- data-stall, halt, status ---------------------------------------------------------------

    async def _stall(self, reason: str) -> PulseReport:
        self._stalls += 1
        self._hold = None
        await self._set_status(STALLED, f"data-stall: {reason}")
        logger.warning(
            LogLine(
                "data_stall",
                symbol=self._symbol,
                stalls=self._stalls,
                retry_in_s=self.retry_in_s(),
                reason=reason,
            )
        )
        return self._report_only()

    async def _halt(self, reason: str) -> PulseReport:
        self._hold = None
        await self._set_status(PAUSED, f"halted: {reason}")
        logger.error(LogLine("halt", symbol=self._symbol, reason=reason))
        return self._report_only()

    async def _set_status(self, status: SymbolStatus, reason: str, *, journal_reason: bool = False) -> None:
        reason = reason[:_MAX_REASON]
        self._status, self._status_reason = status, reason
        journaled_status, journaled_reason = self._journaled_status
        # a status change is journaled; an idle/trading reason only when what it explains changed
        # (``journal_reason``), not on every move of the market its percentages follow
        if status != journaled_status or (
            (journal_reason or status not in (TRADING, IDLE)) and reason != journaled_reason
        ):
            self._journaled_status = (status, reason)
            await self._j(self._journal.set_status, self._symbol, status, reason, self._clock.now_ms())

    # -- paused: keep the portfolio's view of this symbol current --------------------------------

    async def _observe(self) -> None:
        """Read our open orders and unbooked fills (nothing else) so shared budgets stay exact."""
        portfolio = self._portfolio
        if portfolio is None or not portfolio.has_budget(self._symbol):
            return
        try:
            orders = await self._exchange.fetch_open_orders(self._symbol)
            ours = tuple(o for o in orders if o.client_order_id.startswith(self._our_prefix))
            if self._fills_from_ms < 0:
                now = await self._exchange.server_time_ms()
                self._fills_from_ms = max(0, now - self._settings.fill_overlap_ms)
            fills = await self._new_fills()
        except ExchangeError as e:
            logger.info(LogLine("observe_failed", symbol=self._symbol, error=e))
            return
        self._open_orders = ours
        portfolio.reserve(self._symbol, _committed(self._state.ledger, ours, fills))

    # -- control: parameters, pause, resume, kill, purge, cancel all ------------------------------

    async def apply_params(
        self, params: SymbolParams, actor: str, why: str, *, config_json: str = "", command_id: str = ""
    ) -> None:
        """Replace the parameters between pulses and journal who changed them and why.

        ``config_json`` (the change in the user's units) is journaled beside the core parameters.
        Changed Keltner periods restart the indicators from history (their state folds the old ones).
        The engine calls this for a ``ChangeParams`` (``Engine.submit``); nothing else should.

        Raises:
            ValueError: the new params are for another market or another client order id prefix.
        """
        async with self.lock:
            old = self._params
            if params.market != old.market or params.order_id_prefix != old.order_id_prefix:
                raise ValueError(
                    f"{self._symbol}: new params must keep the market and the order id prefix "
                    f"({old.order_id_prefix!r}); restart the engine to change them"
                )
            params_json = dumps_params(params)
            await self._j(
                self._journal.record_params,
                self._symbol,
                params_json,
                actor,
                why,
                self._clock.now_ms(),
                config_json,
            )
            if params.keltner != old.keltner:
                self._state = replace(self._state, indicators=indicators.initial_state())
            self._params = params
            self._hold = None
            logger.info(
                LogLine("params_applied", symbol=self._symbol, actor=actor, why=why, command=command_id)
            )

    async def pause(self, actor: str, why: str, tag: str = "") -> PulseReport:
        """Stop deciding and dispatching on this symbol (resting orders stay) until ``resume``.

        ``tag`` (the command's id, role and grant) is added to the audit entry. The engine calls
        this for a ``PauseSymbol`` (``Engine.submit``), as ``resume`` and ``kill`` for theirs.
        """
        async with self.lock:
            await self._control("pause", actor, why, tag)
            await self._set_status(PAUSED, f"paused by {actor}: {why}")
            return self._report_only()

    async def resume(self, actor: str, why: str, tag: str = "") -> PulseReport:
        """Resume pulsing a paused or killed symbol."""
        async with self.lock:
            if self._unreadable:  # resuming would trade on an empty ledger and overwrite the journal's
                logger.error(LogLine("resume_refused", symbol=self._symbol, reason=self._unreadable))
                return self._report_only()
            if self._status in (PAUSED, KILLED):
                await self._control("resume", actor, why, tag)
                self._kill_pending = False
                self._stalls = 0
                self._may_have_open_intents = True
                await self._set_status(IDLE, f"resumed by {actor}: {why}")
            return self._report_only()

    async def kill(self, actor: str, why: str, tag: str = "") -> PulseReport:
        """Cancel all our resting orders on this symbol, then stop pulsing it (until ``resume``)."""
        async with self.lock:
            await self._control("kill", actor, why, tag)
            await self._set_status(KILLED, f"killed by {actor}: {why}")
            self._kill_pending = True
            await self._cancel_all_locked(f"kill by {actor}: {why}")
            return self._report_only()

    async def cancel_all(self, reason: str) -> bool:
        """Cancel all our resting orders (write-ahead); return whether none is left."""
        async with self.lock:
            return await self._cancel_all_locked(reason)

    async def purge(self, orders: Sequence[tuple[str, str]]) -> tuple[str, ...]:
        """Cancel the given (client_order_id, reason) orders for the monitor; return those gone.

        Takes the lock for the cancels only; a paused or killed symbol is left alone.
        """
        async with self.lock:
            if not self.active or not orders:
                return ()
            return await self._cancel_locked(list(orders), "purge")

    async def _control(self, action: str, actor: str, why: str, tag: str) -> None:
        self._hold = None
        # the tag before the free text: a reason is never read as a tag (``tagged_command_id``)
        detail = f"symbol={self._symbol}" + (f" {tag}" if tag else "") + f" why={why}"
        await self._j(self._journal.audit, actor, action, detail, self._clock.now_ms())
        logger.info(LogLine(action, symbol=self._symbol, actor=actor, why=why))

    async def _cancel_all_locked(self, reason: str) -> bool:
        try:
            await self._resolve_open_intents()
            orders = await self._exchange.fetch_open_orders(self._symbol)
        except ExchangeError as e:
            logger.warning(LogLine("cancel_all_failed", symbol=self._symbol, error=e))
            return False
        # what rests is what the exchange has: orders of a paused symbol may have filled unseen
        self._open_orders = tuple(o for o in orders if o.client_order_id.startswith(self._our_prefix))
        ours = [(o.client_order_id, reason) for o in self._open_orders]
        gone = await self._cancel_locked(ours, reason) if ours else ()
        if self._status in (PAUSED, KILLED):  # a shared budget counts the buys filled unbooked too
            await self._observe()
        done = len(gone) == len(ours)
        if done and self._status == KILLED:
            self._kill_pending = False
        return done

    async def _cancel_locked(self, orders: list[tuple[str, str]], why: str) -> tuple[str, ...]:
        """Journal cancel intents (write-ahead), send them, record the outcomes; return those gone."""
        symbol, ts = self._symbol, self._clock.now_ms()
        self._hold = None
        records = tuple(
            IntentRecord(symbol, cid, "cancel", "", 0, 0, "pending", reason, ts) for cid, reason in orders
        )
        self._state_json = self._encode(self._state)
        self._unsaved_candles = 0
        try:
            await self._lane.commit_pulse(
                PulseRecord(symbol, ts, self._state_json, (), (), (), records, (why,))
            )
        except BaseException:
            self._may_have_open_intents = True  # a commit cut short (cancelled) may still land
            raise
        updates: list[tuple[str, str, str]] = []
        try:
            for cid, _ in orders:
                try:
                    await self._exchange.cancel(symbol, cid)
                except OrderNotFoundError:
                    updates.append((cid, "done", "already gone"))
                else:
                    updates.append((cid, "done", "cancelled"))
        except ExchangeError as e:
            self._may_have_open_intents = True
            logger.warning(LogLine("cancel_failed", symbol=symbol, why=why, error=e))
        finally:
            await self._lane.update_intents(symbol, updates, ts)
        gone = tuple(cid for cid, _, _ in updates)
        self._open_orders = tuple(o for o in self._open_orders if o.client_order_id not in gone)
        if self._portfolio is not None:
            self._portfolio.reserve(symbol, _committed(self._state.ledger, self._open_orders))
        logger.info(LogLine("cancelled", symbol=symbol, why=why, orders=len(gone), asked=len(orders)))
        return gone

    # -- reports --------------------------------------------------------------------------------

    def _committed_now(self, ledger: Ledger, resting: tuple[OpenOrder, ...]) -> int:
        """Return ``_committed(ledger, resting)``, remembered while both stay the same objects."""
        key = self._committed_key
        if key is None or key[0] is not ledger or key[1] is not resting:
            self._committed_qu = _committed(ledger, resting)
            self._committed_key = (ledger, resting)
        return self._committed_qu

    def _report(
        self,
        ts_ms: int,
        decision: Decision | None,
        outcomes: tuple[IntentOutcome, ...],
        fills: tuple[Fill, ...],
        allowance: int | None,
        committed_qu: int | None = None,
        candles: tuple[Candle, ...] = (),
    ) -> PulseReport:
        params, state = self._params, self._state
        ind = state.indicators
        ledger = state.ledger
        closed: tuple[ClosedCycleRecord, ...] = ()
        if decision is not None and decision.closed_cycles:
            closed = tuple(
                ClosedCycleRecord(
                    c.cycle_id, c.cost, c.proceeds, c.fees, c.pnl, c.opened_ts_ms, c.closed_ts_ms
                )
                for c in decision.closed_cycles
            )
        bands = self._bands
        if bands is None or self._bands_of is not ind:
            bands = self._bands = Bands(
                ind.ema, ind.lower, ind.upper, ind.long, ind.atr, ind.atr_ppm, ind.ready, ind.last_ts_ms
            )
            self._bands_of = ind
        close = ind.prev_close
        rails = params.rails
        report = PulseReport(
            self._symbol,
            self._seq,
            ts_ms,
            self._status,
            self._status_reason,
            decision.reasons if decision is not None else (),
            outcomes,
            fills,
            closed,
            self._book,
            int(close) if close == close else 0,
            bands,
            ledger.held,
            rails.max_base_lots,
            self._committed_now(ledger, self._open_orders) if committed_qu is None else committed_qu,
            rails.max_quote_qu,
            allowance,
            ledger.realized_pnl,
            self._open_orders,
            params.market.precision,
            self.retry_in_s() if self._stalls else None,
            decision is not None and decision is not self._reused,
            candles,
            decision.levels if decision is not None else (),
        )
        self._last_report = report
        return report

    def _report_only(self) -> PulseReport:
        return self._report(self._clock.now_ms(), None, (), (), None)


# -- helpers ----------------------------------------------------------------------------------------


def _buy_notional(placements: Iterable[PlaceLimit]) -> int:
    return sum(notional_qu(p.price, p.qty) for p in placements if p.side is Side.BUY)


def _committed(ledger: Ledger, orders: Iterable[OpenOrder], unbooked: Iterable[Fill] = ()) -> int:
    """Return the quote committed by a symbol: cost of held lots, open buys, unbooked buy fills."""
    total = ledger.held_cost
    for order in orders:
        if order.side is Side.BUY:
            total += notional_qu(order.price, order.remaining)
    for fill in unbooked:
        if fill.side is Side.BUY:
            total += notional_qu(fill.price, fill.qty)
    return total


def _resting_after(
    orders: tuple[OpenOrder, ...], outcomes: tuple[IntentOutcome, ...]
) -> tuple[OpenOrder, ...]:
    """Return our orders resting after dispatch: the ones not cancelled, plus the acked placements."""
    if not outcomes:
        return orders
    gone = {o.client_order_id for o in outcomes if o.action == "cancel" and o.status == "done"}
    resting = [o for o in orders if o.client_order_id not in gone]
    resting.extend(
        OpenOrder(o.client_order_id, Side(o.side), o.price, o.qty)
        for o in outcomes
        if o.action == "place" and o.status == "acked"
    )
    return tuple(resting)


def encode_envelope(state: StrategyState, fills_from_ms: int) -> str:
    """Return the journal's ``state_json`` of a symbol: the worker's envelope around ``state``."""
    envelope = {
        "engine": {"format": ENVELOPE_FORMAT, "fills_from_ms": fills_from_ms},
        "strategy": state_to_dict(state),
    }
    return json.dumps(envelope, separators=(",", ":"), allow_nan=False)


def decode_envelope(text: str, symbol: str) -> tuple[StrategyState, int]:
    """Return (state, fills_from_ms) of a journaled envelope (or of a bare state document)."""
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "strategy" in doc:
            engine = doc.get("engine")
            if not isinstance(engine, dict) or engine.get("format") != ENVELOPE_FORMAT:
                raise ValueError(f"unknown engine envelope {engine!r}")
            fills_from = engine.get("fills_from_ms")
            if type(fills_from) is not int:
                raise ValueError(f"engine.fills_from_ms must be an integer, got {fills_from!r}")
            return state_from_dict(doc["strategy"]), fills_from
        return state_from_dict(doc), 0
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        raise ReconciliationError(f"{symbol}: the journaled state cannot be read: {e}") from e
