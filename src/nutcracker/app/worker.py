"""Scale-out workers: several processes share a config's symbols through Redis leases.

Every worker runs the same config against the same Redis (``--store redis://…``). Each tick
(a fifth of the lease time) a worker:

1. refreshes its heartbeat (``worker:OWNER``, expiring with the lease time): the live workers;
2. renews the leases it holds; a lease it could not renew is dropped at once: the symbol's engine
   is cancelled, so it starts no new pulse (a write it still tries is refused by the journal's
   fencing once another worker took the symbol);
3. balances: it holds at most its share, ``ceil(symbols / live workers)``, giving the extra ones
   back (their engines stopped first, resting orders left to the next owner), and claims free
   symbols up to its share, each worker trying them in its own order.

A claimed symbol is fenced in the journal with its new token, then run by an ``Engine`` of its
own, started as after a restart: state, status and open intents come from the journal, and open
intents are resolved by client order id before anything is placed (the new owner reconciles).
A symbol whose worker died (kill -9) or hangs (SIGSTOP) is claimed by another once its lease ran
out: within ``lease_ttl_ms`` plus one tick (15 s + 3 s by default).

About once a second a worker publishes the latest pulse report of each symbol it holds
(``RedisReports``), so that ``nutcracker serve --store`` can show them from another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Final

from nutcracker.app.kernel import symbol_params
from nutcracker.config import NutcrackerConfig, starting_balances
from nutcracker.core.model import Candle
from nutcracker.core.params import SymbolParams
from nutcracker.core.records import Lease, StaleTokenError
from nutcracker.engine.ports import HistoryExchange
from nutcracker.engine.report_codec import encode_report
from nutcracker.engine.reports import PulseReport
from nutcracker.engine.runtime import Engine, EngineSettings, WallClock
from nutcracker.engine.worker import LogLine
from nutcracker.errors import ConfigError, JournalError
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_budget import RedisQuoteBudget
from nutcracker.store.redis_connect import fsync_policy
from nutcracker.store.redis_inbox import RedisInbox
from nutcracker.store.redis_lease import RedisLease, server_ms
from nutcracker.store.redis_reports import RedisReports

__all__ = ["LEASE_TTL_MS", "ScaleOutWorker", "WorkerOptions", "default_owner", "run_worker"]

logger = logging.getLogger("nutcracker.worker")

LEASE_TTL_MS: Final = 15_000  # the longest a dead or hung worker's symbols wait for a new owner
_TICKS_PER_TTL: Final = 5  # renew five times per lease: a lease survives four missed renewals
REPORTS_S: Final = 1.0  # how often the held symbols' latest reports are published (when changed)
_CANDLES_KEPT: Final = 1_000  # candles kept for one publication (the API keeps as many per symbol)


def default_owner() -> str:
    """Return a worker name unique across machines and restarts: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    owner: str
    lease_ttl_ms: int = LEASE_TTL_MS
    prefix: str = "nc:"

    @property
    def tick_s(self) -> float:
        return self.lease_ttl_ms / _TICKS_PER_TTL / 1000


@dataclass(slots=True)
class _Held:
    lease: Lease
    engine: Engine
    task: asyncio.Task[None]
    deadline: float  # time.monotonic() after which the lease may have run out unrenewed


class ScaleOutWorker:
    """One worker process: claims symbols through leases and runs an engine per symbol it holds."""

    def __init__(
        self,
        params: Sequence[SymbolParams],
        exchange: HistoryExchange,
        journal: RedisJournal,
        settings: EngineSettings,
        options: WorkerOptions,
        *,
        budgets: Mapping[str, Decimal] | None = None,
        on_report: Callable[[PulseReport], None] | None = None,
    ) -> None:
        self._params = {p.market.symbol: p for p in params}
        self._exchange = exchange
        self._journal = journal
        self._settings = settings
        self._options = options
        self._budgets = dict(budgets or {})
        self._on_report = on_report
        self._client = journal.client
        self._leases = RedisLease(self._client, prefix=options.prefix)
        self._held: dict[str, _Held] = {}
        self._inbox: RedisInbox | None = None  # every held symbol's commands (made on the loop)
        # candles each held symbol's pulses read since its last published report: a published report
        # carries them all, so the API's candle history has no gap between publications
        self._unpublished: dict[str, list[Candle]] = {}
        self._background: set[asyncio.Task[None]] = set()  # engines being stopped, then released
        # engines of symbols this worker gave up that have not finished yet: the journal fences a
        # symbol per process (the last token it took), so a symbol is claimed again only once its
        # previous engine here is done, else that engine would write under the new lease's token
        self._stopping: dict[str, asyncio.Task[None]] = {}
        # each worker tries the symbols in its own order, so that claims rarely collide
        symbols = sorted(self._params)
        shift = int.from_bytes(options.owner.encode()[-4:].rjust(4, b"\0"), "big") % max(1, len(symbols))
        self._order = symbols[shift:] + symbols[:shift]

    @property
    def held(self) -> list[str]:
        """Return the symbols this worker holds now."""
        return sorted(self._held)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim, renew and balance every tick until ``stop``; then stop the engines, release the leases."""
        heartbeat = f"{self._options.prefix}worker:{self._options.owner}"
        publishing = asyncio.create_task(self._publish_reports(stop), name="reports")
        try:
            while not stop.is_set():
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._options.tick_s)
        finally:
            publishing.cancel()
            # every engine asked to stop at once, each lease released when its engine is done: one
            # after the other, a worker with 20 symbols took 87 s to stop (each waited for its
            # pulse while the others went on trading), past any supervisor's grace period
            for symbol in list(self._held):
                await self._give_back(symbol, wait=False)
            if self._background:
                await asyncio.wait(self._background)
            with contextlib.suppress(Exception):
                self._client.delete(heartbeat)

    async def tick(self) -> None:
        """One round: heartbeat, renewals, then give back or claim to this worker's share."""
        options = self._options
        try:
            now = server_ms(self._client)
            self._client.set(f"{options.prefix}worker:{options.owner}", now, px=options.lease_ttl_ms)
        except Exception as e:  # Redis unreachable: nothing can be renewed
            logger.warning(LogLine("store_unreachable", owner=options.owner, error=repr(e)))
            self._drop_expiring()
            return
        for symbol, held in list(self._held.items()):
            if held.task.done():  # its engine stopped on its own (a journal error): give it up
                await self._give_back(symbol, wait=False)
                continue
            renewed = await self._leases.renew(held.lease, options.lease_ttl_ms, now)
            if renewed is None:
                logger.warning(
                    LogLine("lease_lost", symbol=symbol, owner=options.owner, token=held.lease.token)
                )
                await self._drop(symbol)
            else:
                held.lease = renewed
                held.deadline = self._deadline()
        share = math.ceil(len(self._params) / max(1, self._live_workers()))
        for symbol in sorted(self._held, reverse=True)[: max(0, len(self._held) - share)]:
            await self._give_back(symbol, wait=False)
        for symbol in [s for s, task in self._stopping.items() if task.done()]:
            del self._stopping[symbol]
        for symbol in self._order:
            if len(self._held) >= share:
                break
            if symbol in self._held or symbol in self._stopping:
                continue
            lease = await self._leases.acquire(symbol, options.owner, options.lease_ttl_ms, now)
            if lease is not None:
                await self._take(lease)

    def _keep_candles(self, report: PulseReport) -> None:
        if report.candles:
            kept = self._unpublished.setdefault(report.symbol, [])
            kept.extend(report.candles)
            del kept[:-_CANDLES_KEPT]

    async def _publish_reports(self, stop: asyncio.Event) -> None:
        """Publish the held symbols' latest reports, those that changed, every ``REPORTS_S``."""
        board = RedisReports(self._client, prefix=self._options.prefix)
        sent: dict[str, PulseReport] = {}
        while not stop.is_set():
            fresh = {}
            for symbol, held in self._held.items():
                report = held.engine.latest().get(symbol)
                if report is not None and sent.get(symbol) is not report:
                    fresh[symbol] = report
            texts = {
                symbol: encode_report(replace(r, candles=tuple(self._unpublished.get(symbol, ()))))
                for symbol, r in fresh.items()
            }
            if fresh:
                try:
                    board.publish(texts)
                    sent.update(fresh)
                    for symbol in fresh:
                        self._unpublished.pop(symbol, None)
                except Exception as e:  # a view only: the next round tries again
                    logger.warning(LogLine("reports_not_published", owner=self._options.owner, error=repr(e)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORTS_S)

    def _deadline(self) -> float:
        return time.monotonic() + self._options.lease_ttl_ms / 1000 - self._options.tick_s

    def _live_workers(self) -> int:
        pattern = f"{self._options.prefix}worker:*"
        return sum(1 for _ in self._client.scan_iter(match=pattern, count=1000))

    def _drop_expiring(self) -> None:
        """Redis cannot be reached: cancel the engines whose lease may run out before the next tick.

        The leases' expiries are on the server's clock; this process counts on its own from its
        last renewal, less one tick.
        """
        for symbol, held in list(self._held.items()):
            if time.monotonic() >= held.deadline:
                held.task.cancel()
                del self._held[symbol]
                self._stopping[symbol] = held.task
                logger.warning(LogLine("lease_unconfirmed", symbol=symbol, owner=self._options.owner))

    async def _take(self, lease: Lease) -> None:
        symbol = lease.symbol
        try:
            self._journal.fence(symbol, lease.token)
        except StaleTokenError:  # a newer lease exists already: not ours after all
            return
        params = self._params[symbol]
        budget = RedisQuoteBudget(self._client, self._budgets, prefix=self._options.prefix)
        engine = Engine(
            [params], self._exchange, self._journal, WallClock(), settings=self._settings, quote_budget=budget
        )
        if self._on_report is not None:
            engine.add_observer(self._on_report)
        engine.add_observer(self._keep_candles)
        task = asyncio.create_task(self._run_engine(engine, symbol), name=f"engine {symbol}")
        self._held[symbol] = _Held(lease, engine, task, self._deadline())
        logger.info(LogLine("lease_taken", symbol=symbol, owner=self._options.owner, token=lease.token))

    async def _run_engine(self, engine: Engine, symbol: str) -> None:
        """Run the symbol's engine, applying the commands the Redis inbox delivers for it between pulses."""
        if self._inbox is None:  # one for every symbol: its doorbell polls once for them all
            self._inbox = RedisInbox(self._client, prefix=self._options.prefix)
        serving = asyncio.create_task(engine.serve(self._inbox, f"{self._options.owner}:{symbol}"))
        try:
            await engine.run(handle_signals=False)
        except asyncio.CancelledError:
            raise
        except (JournalError, StaleTokenError) as e:  # fenced out, or the store failed: give it up
            logger.warning(LogLine("engine_stopped", symbol=symbol, error=repr(e)))
        except Exception:
            logger.exception(LogLine("engine_failed", symbol=symbol))
        finally:
            serving.cancel()

    async def _drop(self, symbol: str) -> None:
        """The lease is lost: stop the symbol's engine at once; its journal writes are fenced anyway."""
        held = self._held.pop(symbol)
        held.task.cancel()
        self._stopping[symbol] = held.task
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(held.task), self._options.tick_s)

    async def _give_back(self, symbol: str, *, wait: bool = True) -> None:
        """Stop the symbol's engine (its orders stay for the next owner), then release the lease.

        ``wait`` False: the stop and release finish in a task of their own, so that the tick goes
        on renewing the other leases meanwhile.
        """
        held = self._held.pop(symbol)
        held.engine.request_stop("lease given back")
        self._stopping[symbol] = held.task
        if not wait:
            self._background.add(task := asyncio.create_task(self._finish_give_back(symbol, held)))
            task.add_done_callback(self._background.discard)
            return
        await self._finish_give_back(symbol, held)

    async def _finish_give_back(self, symbol: str, held: _Held) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(held.task), self._settings.shutdown_timeout_s)
        if not held.task.done():
            held.task.cancel()
        with contextlib.suppress(Exception):
            await self._leases.release(held.lease)
        logger.info(LogLine("lease_released", symbol=symbol, owner=self._options.owner))


async def run_worker(
    config: NutcrackerConfig,
    *,
    store_url: str,
    mode: str,
    exchange_url: str | None,
    key_name: str | None,
    keystore: Path | None,
    vault: bool,
    pulse_interval_s: float | None,
    owner: str | None,
    lease_ttl_ms: int,
    on_report: Callable[[PulseReport], None],
    on_notice: Callable[[str], None],
) -> None:
    """Run one worker until SIGINT/SIGTERM: the store is checked first, then the exchange, then trading.

    Raises:
        JournalError: the Redis URL, server or its durability is wrong (before anything trades).
        ConfigError, SecretsError, ExchangeError, PermissionRefusedError: as ``run --mode live``.
    """
    from nutcracker.app.connected import check_fees, check_markets, exchange_of, keyed_source
    from nutcracker.exchange.ccxt_exchange import CcxtExchange
    from nutcracker.exchange.key_probe import require_trade_only_key
    from nutcracker.exchange.paper import PaperExchange
    from nutcracker.secrets.redaction import install_redaction

    install_redaction()
    journal = RedisJournal(store_url)  # a wrong URL or server fails here, before the exchange
    try:
        policy = fsync_policy(journal.client)
        if policy != "always":  # the default we recommend: docs/scale-out.md, "Durability"
            on_notice(
                f"note: Redis at {journal.where} runs appendfsync {policy or '(unknown: CONFIG refused)'}: "
                "a power loss of its host can lose the last journaled intents; appendfsync always keeps them"
            )
        exchange_id = exchange_of(config)
        api = {"api_url": exchange_url} if exchange_url else {}
        if mode == "live":
            if key_name is None:
                raise ConfigError("--mode live needs --key NAME: a key stored with `nutcracker keys add`")
            source = keyed_source(config, key_name, keystore, vault, exchange_url)
        elif key_name is not None:
            source = keyed_source(config, key_name, keystore, vault, exchange_url)
        else:
            source = CcxtExchange.public(exchange_id, **api)
        async with source:
            if mode == "live":
                await require_trade_only_key(source)
            fees = await check_fees(config, source, on_notice)
            exchange: HistoryExchange = source
            if mode != "live":  # paper fills are simulated in this worker: see docs/scale-out.md
                same = set(fees.values())
                exchange = PaperExchange(
                    source,
                    [s.market.symbol for s in config.symbols],
                    starting_balances(config),
                    maker_fee=same.pop() if len(same) == 1 else None,
                )
            await check_markets(config, exchange)
            settings = EngineSettings(
                pulse_interval_s=pulse_interval_s or float(config.engine.pulse_interval_s),
                cancel_on_shutdown=False,  # a worker's orders stay for the symbol's next owner
            )
            budgets = {asset: rail.max_quote for asset, rail in config.portfolio.items()}
            options = WorkerOptions(owner or default_owner(), lease_ttl_ms)
            worker = ScaleOutWorker(
                symbol_params(config),
                exchange,
                journal,
                settings,
                options,
                budgets=budgets,
                on_report=on_report,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            on_notice(f"worker {options.owner}: {len(config.symbols)} symbols shared through {journal.where}")
            await worker.run(stop)
    finally:
        journal.close()


def scale_out_status(store_url: str, *, prefix: str = "nc:") -> list[dict[str, object]]:
    """Return one row per symbol the store knows: journal status, lease owner, token, lease age.

    Raises:
        JournalError: the Redis URL or server is wrong (one line).
    """
    journal = RedisJournal(store_url, prefix=prefix)
    try:
        client = journal.client
        leases = RedisLease(client, prefix=prefix)
        now = server_ms(client)
        stored = {row.symbol: row for row in journal.symbols()}
        leased = {key.removeprefix(f"{prefix}tok:") for key in client.scan_iter(match=f"{prefix}tok:*")}
        rows: list[dict[str, object]] = []
        for symbol in sorted(set(stored) | leased):
            row = stored.get(symbol)
            holder = leases.holder(symbol)
            rows.append(
                {
                    "symbol": symbol,
                    "status": row.status if row is not None else "idle",
                    "why": row.status_reason if row is not None else "",
                    "owner": holder[0] if holder is not None else None,
                    "fencing_token": leases.latest_token(symbol),
                    "lease_age_s": round((now - holder[3]) / 1000, 3) if holder is not None else None,
                    "lease_left_s": round((holder[2] - now) / 1000, 3) if holder is not None else None,
                    "open_intents": len(journal.open_intents(symbol)),
                    "updated_ms": row.updated_ts_ms if row is not None else None,
                }
            )
        return rows
    finally:
        journal.close()
