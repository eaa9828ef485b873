"""Benchmark the live engine's pulse: 500 symbols on one core against the in-process SimExchange.

Run: ``.venv/bin/python bench/engine.py [--symbols 500] [--rounds 60] [--extra-pulses 1]``. Each
symbol (``S000/USDT`` ...) trades its own seeded synthetic candles (``marketdata.synthetic``) with
a 5-level trailing grid; the journal is a real ``SqliteJournal`` (WAL, ``synchronous=FULL``) in a
temporary directory. A round advances every market by one candle, then pulses every symbol once;
``--extra-pulses`` more pulses per round find no new candle, as when the pulse interval is
shorter than the candle interval (a 30 s pulse on 1 m candles by default).

Pass 1, symbols pulsed in turn: per pulse, the wall time and the time spent awaiting the exchange
(every port method is timed by a wrapper). The engine's *overhead* is the difference: hydrating,
deciding, journaling, dispatch bookkeeping, the report. Pulses are split into *idle* ones (no
intent: at most a buffered state save) and *dispatching* ones (one durable ``commit_pulse`` before
sending, one ``update_intents`` after); the durable writes are timed on their own, in the same run.

Passes 2 and 3, throughput the way the runtime runs: the runtime's workers (``Engine``), one
long-lived task per symbol, journal calls inline or in the journal's own thread
(``EngineSettings.journal_in_thread``). Both group-commit as the runtime does by default
(``EngineSettings.group_commit``; ``--no-group-commit`` to compare): the write-ahead commits and
outcomes that symbols reach in the same event-loop turn share one transaction and one fsync, each
symbol still sending nothing before its own commit is on disk; the batches, their staging and
their commit (fsync included, waited for in the lane's thread) are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit, Side
from nutcracker.core.params import (
    GateParams,
    GridParams,
    KeltnerParams,
    MarketMakingParams,
    MarketParams,
    MartingaleParams,
    MeanReversionParams,
    RailParams,
    Spacing,
    SymbolParams,
)
from nutcracker.core.records import IntentRecord, ParamsRow, PulseRecord, StoredSymbol
from nutcracker.core.units import Precision
from nutcracker.engine.runtime import Engine, EngineSettings
from nutcracker.engine.worker import SymbolWorker, WorkerSettings
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.exchange.simulated import SimExchange
from nutcracker.marketdata.candles import to_candles
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.store.redis import RedisJournal
from nutcracker.store.sqlite import SqliteJournal


class RoundTrips:
    """Counts the requests this process sends to Redis: a command, or a whole pipeline, is one.

    Installed by wrapping redis-py's ``Connection.send_packed_command`` (one call per request
    written), for the accounting of ``--store redis`` only.
    """

    sent = 0

    @classmethod
    def install(cls) -> None:
        import redis.connection

        original = redis.connection.AbstractConnection.send_packed_command
        if getattr(original, "_counted", False):
            return

        def counted(self: object, command: object, check_health: bool = True) -> None:
            cls.sent += 1
            original(self, command, check_health)  # type: ignore[arg-type,no-untyped-call]

        counted._counted = True  # type: ignore[attr-defined]
        redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def server_cpu_s(url: str) -> float:
    """Return the CPU seconds (user + system, every thread) the redis-server at ``url`` used so far."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def machine_jiffies() -> tuple[int, int]:
    """Return (busy, total) jiffies of every core of this machine so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


TARGET_PULSES_PER_S = 5_000
TARGET_IDLE_P99_US = 1_000.0
WARMUP_CANDLES = 80
PRECISION = Precision(Decimal("0.01"), Decimal("0.001"))


class TimedExchange:
    """The Exchange port around a SimExchange, adding up the time spent awaiting it."""

    def __init__(self, inner: SimExchange) -> None:
        self.inner = inner
        self.spent_ns = 0

    async def market(self, symbol: str) -> MarketInfo:
        t = time.perf_counter_ns()
        try:
            return await self.inner.market(symbol)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def server_time_ms(self) -> int:
        t = time.perf_counter_ns()
        try:
            return await self.inner.server_time_ms()
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        t = time.perf_counter_ns()
        try:
            return await self.inner.fetch_candles(symbol, since_ms, limit)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def fetch_book(self, symbol: str) -> Book:
        t = time.perf_counter_ns()
        try:
            return await self.inner.fetch_book(symbol)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        t = time.perf_counter_ns()
        try:
            return await self.inner.fetch_balances()
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]:
        t = time.perf_counter_ns()
        try:
            return await self.inner.fetch_open_orders(symbol)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        t = time.perf_counter_ns()
        try:
            return await self.inner.fetch_fills(symbol, since_ms)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        t = time.perf_counter_ns()
        try:
            return await self.inner.fetch_order(symbol, client_order_id)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        t = time.perf_counter_ns()
        try:
            return await self.inner.place(symbol, order)
        finally:
            self.spent_ns += time.perf_counter_ns() - t

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        t = time.perf_counter_ns()
        try:
            await self.inner.cancel(symbol, client_order_id)
        finally:
            self.spent_ns += time.perf_counter_ns() - t


class TimedJournal:
    """The Journal port around a SqliteJournal, timing its durable writes."""

    def __init__(self, inner: SqliteJournal | RedisJournal) -> None:
        self.inner = inner
        self.commits_us: list[float] = []
        self.updates_us: list[float] = []

    def commit_pulse(self, record: PulseRecord) -> None:
        t = time.perf_counter_ns()
        self.inner.commit_pulse(record)
        self.commits_us.append((time.perf_counter_ns() - t) / 1000)

    def update_intents(self, symbol: str, updates: Sequence[tuple[str, str, str]], ts_ms: int) -> None:
        t = time.perf_counter_ns()
        self.inner.update_intents(symbol, updates, ts_ms)
        if updates:
            self.updates_us.append((time.perf_counter_ns() - t) / 1000)

    def open_intents(self, symbol: str) -> list[IntentRecord]:
        return self.inner.open_intents(symbol)

    def load_symbol(self, symbol: str) -> StoredSymbol | None:
        return self.inner.load_symbol(symbol)

    def known_trade_ids(self, symbol: str, since_ms: int) -> set[str]:
        return self.inner.known_trade_ids(symbol, since_ms)

    def set_status(self, symbol: str, status: str, reason: str, ts_ms: int) -> None:
        self.inner.set_status(symbol, status, reason, ts_ms)

    def save_state(self, symbol: str, state_json: str, ts_ms: int) -> None:
        self.inner.save_state(symbol, state_json, ts_ms)

    def record_params(
        self, symbol: str, params_json: str, actor: str, why: str, ts_ms: int, config_json: str = ""
    ) -> None:
        self.inner.record_params(symbol, params_json, actor, why, ts_ms, config_json)

    def command_detail(self, command_id: str) -> str | None:
        return self.inner.command_detail(command_id)

    def params_history(self, symbol: str) -> list[ParamsRow]:
        return self.inner.params_history(symbol)

    def audit(self, actor: str, action: str, detail: str, ts_ms: int) -> None:
        self.inner.audit(actor, action, detail, ts_ms)

    def symbols(self) -> list[StoredSymbol]:
        return self.inner.symbols()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class SimClock:
    def __init__(self, sim: SimExchange) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return self.sim.now_ms

    async def sleep(self, seconds: float) -> None:  # the runtime's clock; the passes never wait on it
        await asyncio.sleep(0)


def params_of(symbol: str, base: str) -> SymbolParams:
    qu = PRECISION.quote_to_qu
    return SymbolParams(
        market=MarketParams("sim", symbol, base, "USDT", PRECISION, qu(Decimal(5)), 1000),
        rails=RailParams(
            max_base_lots=10**9, max_quote_qu=qu(Decimal(5000)), reserve_base_lots=0, reserve_quote_qu=0
        ),
        min_profit_ppm=1000,
        keltner=KeltnerParams(False, 20, 14, 2.0, 0, 0, 30),
        mean_reversion=MeanReversionParams(False),
        grid=GridParams(True, 5, Spacing.BPS, 3000, 0.0, qu(Decimal(100)), True, True),
        martingale=MartingaleParams(False, 1.5, 1.2, 4),
        market_making=MarketMakingParams(False, 2500, 0, 2000),
        gates=GateParams(0, 0, 0, 0, 0, 1000, 0),
        order_id_prefix=f"ncb{base}",
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


class Market:
    """The benchmark's market: symbols, rules and seeded candles (built once, replayed per pass)."""

    def __init__(self, n_symbols: int, rounds: int) -> None:
        self.symbols = [f"S{i:03d}/USDT" for i in range(n_symbols)]
        self.infos = {
            s: MarketInfo(
                s, s.split("/")[0], "USDT", PRECISION.tick, PRECISION.lot, Decimal(5), Decimal("0.001")
            )
            for s in self.symbols
        }
        self.candles = {
            s: to_candles(
                synthetic_candles(i, WARMUP_CANDLES + rounds + 1, Decimal(50 + i % 200), PRECISION, symbol=s)
            )
            for i, s in enumerate(self.symbols)
        }

    def simulator(self) -> SimExchange:
        sim = SimExchange(MatchingEngine(self.infos, {"USDT": Decimal(10**9)}), max_history=500)
        for s in self.symbols:
            for c in self.candles[s][:WARMUP_CANDLES]:
                sim.advance(s, c)
        return sim

    def params(self) -> list[SymbolParams]:
        return [params_of(s, self.infos[s].base) for s in self.symbols]

    def advance(self, sim: SimExchange, r: int) -> int:
        return sum(len(sim.advance(s, self.candles[s][WARMUP_CANDLES + r])) for s in self.symbols)


@dataclass
class Overheads:
    """The first pass: per-pulse overheads (µs) and the journal's durable writes (µs)."""

    cold: list[float] = field(default_factory=list)  # cold start: history + first ladder
    idle_new: list[float] = field(default_factory=list)  # idle pulses that folded a new candle
    idle_same: list[float] = field(default_factory=list)  # idle pulses with no new candle
    dispatch: list[float] = field(default_factory=list)  # pulses that journaled and sent intents
    walls: list[float] = field(default_factory=list)  # wall time of every pulse
    idle_walls: list[float] = field(default_factory=list)
    commits: list[float] = field(default_factory=list)
    updates: list[float] = field(default_factory=list)
    pulses: int = 0
    decided: int = 0  # pulses that ran decide (the others stayed inside a hold region)
    fills: int = 0
    rate: float = 0.0  # pulses per second of this pass


async def overhead_pass(market: Market, rounds: int, extra_pulses: int, tmp: Path) -> Overheads:
    """Pulse every symbol in turn, timing each pulse, its exchange calls and its journal writes."""
    sim = market.simulator()
    exchange = TimedExchange(sim)
    journal = TimedJournal(SqliteJournal(tmp / "overhead.sqlite"))
    clock = SimClock(sim)
    settings = WorkerSettings(candle_interval_ms=60_000)
    workers = [SymbolWorker(p, exchange, journal, clock, settings=settings) for p in market.params()]
    out = Overheads()
    for w in workers:
        await w.start()
        t = time.perf_counter_ns()
        await w.pulse()
        out.cold.append((time.perf_counter_ns() - t) / 1000)
    loop_s = 0.0
    for r in range(rounds):
        out.fills += market.advance(sim, r)
        for k in range(1 + extra_pulses):
            t_round = time.perf_counter()
            for w in workers:
                exchange.spent_ns = 0
                t = time.perf_counter_ns()
                report = await w.pulse()
                wall = (time.perf_counter_ns() - t) / 1000
                overhead = wall - exchange.spent_ns / 1000
                out.walls.append(wall)
                out.decided += report.decided
                if report.intents:
                    out.dispatch.append(overhead)
                    continue
                out.idle_walls.append(wall)
                (out.idle_new if k == 0 else out.idle_same).append(overhead)
            loop_s += time.perf_counter() - t_round
            out.pulses += len(workers)
    journal.close()
    out.commits, out.updates = journal.commits_us, journal.updates_us
    out.rate = out.pulses / loop_s
    return out


@dataclass
class Throughput:
    """A throughput pass: pulses per second, and how its journal writes were grouped."""

    rate: float  # pulses per second, less the time the simulator spent advancing the markets
    with_market: float  # pulses per second, counting that time
    batches: int  # commits the journal made for the grouped writes (0: no group commit)
    durable_batches: int  # of those, the fsynced ones (holding write-ahead commits)
    writes: int  # grouped writes: write-ahead commits and intent outcomes
    stage_us: float  # mean time to stage a batch (in the event loop's thread), µs
    commit_us: float  # mean time to commit a batch, fsync included (in the lane's commit thread), µs
    pulses: int = 0
    elapsed_s: float = 0.0  # wall time of the timed pulses
    cpu_s: float = 0.0  # this process's CPU time meanwhile (every thread)
    round_trips: int = 0  # requests sent to Redis meanwhile (a pipeline is one)
    window: tuple[float, float] = (0.0, 0.0)  # time.time() at the start and end of the timed pulses


async def throughput_pass(
    market: Market,
    rounds: int,
    extra_pulses: int,
    tmp: Path,
    *,
    journal_thread: bool,
    group_commit: bool = True,
    redis_url: str = "",
    only: slice = slice(None),
    start_at: float = 0.0,
) -> Throughput:
    """Run the engine's workers as the runtime does: one long-lived task per symbol, no barrier.

    The workers are the runtime's (``Engine``, with its journal lane: journal calls inline or in
    their own thread, group commit as configured). Each task advances its own market by a candle
    and pulses ``1 + extra_pulses`` times, yielding to the others in between, as interval-driven
    tasks would. Return pulses per second without and with the time the simulator spent advancing
    the markets.
    """
    sim = market.simulator()
    opened: SqliteJournal | RedisJournal = (
        RedisJournal(redis_url, prefix=f"bench{time.perf_counter_ns()}:")
        if redis_url
        else SqliteJournal(tmp / f"throughput-{journal_thread}-{group_commit}.sqlite")
    )
    with contextlib.closing(opened) as journal:
        clock = SimClock(sim)
        # the simulator has one clock for every market and the tasks drift apart by a few candles
        # (a task waiting on the journal falls behind): no staleness check here
        settings = EngineSettings(
            monitor_interval_s=None,
            cancel_on_shutdown=False,
            journal_in_thread=journal_thread,
            group_commit=group_commit,
            worker=WorkerSettings(candle_interval_ms=60_000, stale_after_candles=0),
        )
        engine = Engine(market.params()[only], sim, journal, clock, settings=settings)
        workers = list(engine.workers.values())
        await engine.start()
        for w in workers:
            await w.pulse()  # cold start, not timed
        lane = engine.journal_lane
        batches, durable, writes = lane.batches, lane.durable_batches, lane.writes
        stage_ns, commit_ns = lane.stage_ns, lane.commit_ns
        advance_ns = 0

        async def symbol_task(i: int, worker: SymbolWorker) -> None:
            nonlocal advance_ns
            symbol = market.symbols[only][i]
            candles = market.candles[symbol]
            for r in range(rounds):
                t = time.perf_counter_ns()
                sim.advance(symbol, candles[WARMUP_CANDLES + r])
                advance_ns += time.perf_counter_ns() - t
                for _ in range(1 + extra_pulses):
                    await worker.pulse()
                    await asyncio.sleep(0)  # the next pulse comes after the others had their turn

        if start_at:  # the other worker processes start their timed pulses at the same moment
            await asyncio.sleep(max(0.0, start_at - time.time()))
        trips = RoundTrips.sent
        cpu0, wall0, t0 = time.process_time(), time.time(), time.perf_counter()
        await asyncio.gather(*(symbol_task(i, w) for i, w in enumerate(workers)))
        elapsed = time.perf_counter() - t0
        cpu, wall1, trips = time.process_time() - cpu0, time.time(), RoundTrips.sent - trips
        await engine.shutdown()  # flushes the journal, stops its thread
    pulses = len(workers) * rounds * (1 + extra_pulses)
    n = max(1, lane.batches - batches)
    return Throughput(
        pulses / (elapsed - advance_ns / 1e9),
        pulses / elapsed,
        lane.batches - batches,
        lane.durable_batches - durable,
        lane.writes - writes,
        (lane.stage_ns - stage_ns) / n / 1000,
        (lane.commit_ns - commit_ns) / n / 1000,
        pulses,
        elapsed,
        cpu,
        trips,
        (wall0, wall1),
    )


async def run(n_symbols: int, rounds: int, extra_pulses: int, group_commit: bool) -> None:
    t0 = time.perf_counter()
    market = Market(n_symbols, rounds)
    setup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        o = await overhead_pass(market, rounds, extra_pulses, Path(tmp))
        inline, threaded = [
            await throughput_pass(
                market, rounds, extra_pulses, Path(tmp), journal_thread=thread, group_commit=group_commit
            )
            for thread in (False, True)
        ]
    shape = f"{n_symbols} symbols x {rounds} rounds x {1 + extra_pulses} pulses"
    print(
        f"engine pulse benchmark: {shape}, one core, SimExchange in process,\n"
        f"SqliteJournal (WAL, synchronous=FULL) on this machine's disk; "
        f"python {sys.version.split()[0]}; set-up {setup_s:.1f} s"
    )
    print(
        f"cold-start pulse (history of {WARMUP_CANDLES} candles, first ladder): median "
        f"{statistics.median(o.cold):.0f} µs; fills {o.fills}; decide ran on {o.decided / o.pulses:.1%} "
        "of pulses, the others stayed inside the last decision's hold region\n"
    )
    print("engine overhead per pulse = wall time less time awaiting the exchange (symbols pulsed in turn):")
    print(f"{'':60} {'median':>8} {'p99':>8} {'count':>7} {'target':>11} {'x target':>8}")

    def row(name: str, samples: list[float], target: float | None = None) -> None:
        med, p99 = statistics.median(samples), percentile(samples, 0.99)
        tgt, ratio = (f"p99 <= {target:.0f}", f"{p99 / target:8.2f}") if target else ("", "")
        print(f"{name:60} {med:8.1f} {p99:8.1f} {len(samples):7d} {tgt:>11} {ratio:>8}")

    row("idle pulse, µs", o.idle_new + o.idle_same, TARGET_IDLE_P99_US)
    row("  idle, folding a new candle", o.idle_new)
    if o.idle_same:
        row("  idle, no new candle", o.idle_same)
    row("dispatching pulse, µs (with its 2 journal writes)", o.dispatch)
    row("  durable commit_pulse, µs (write-ahead, before sending)", o.commits)
    row("  update_intents, µs (outcomes, after sending, no fsync)", o.updates)
    row("pulse wall time, µs (engine + in-process exchange)", o.walls)
    print()
    print(f"{'symbol-pulses per second':60} {'value':>8} {'target':>28} {'x target':>8}")
    target = f">= {TARGET_PULSES_PER_S}"
    grouping = "group commit" if group_commit else "no group commit"
    rows = (
        ("symbols pulsed in turn, journal calls inline", o.rate, None),
        (f"a task per symbol, journal calls inline, {grouping}", inline.rate, inline),
        (f"a task per symbol, journal in its own thread, {grouping}", threaded.rate, threaded),
    )
    for name, value, tp in rows:
        print(f"{name:60} {value:8.0f} {target:>28} {value / TARGET_PULSES_PER_S:8.2f}")
        if tp is not None:
            print(f"{'  counting the simulator advancing the markets':60} {tp.with_market:8.0f}")
            if tp.batches:
                print(
                    f"{'  grouped writes (commits + outcomes) per journal commit':60} "
                    f"{tp.writes / tp.batches:8.1f}   ({tp.writes} writes, {tp.batches} commits, "
                    f"{tp.durable_batches} fsynced)"
                )
                print(
                    f"{'  a grouped commit: staging (loop) + commit (own thread), µs':60} "
                    f"{tp.stage_us + tp.commit_us:8.0f}   (means: staging {tp.stage_us:.0f}, "
                    f"commit and fsync {tp.commit_us:.0f})"
                )
    idle_rate = 1e6 / statistics.mean(o.idle_walls)
    print(f"{'idle pulses alone (1 / mean idle wall time)':60} {idle_rate:8.0f}")
    waits = statistics.median(o.commits) + statistics.median(o.updates)
    durable_s = (sum(o.commits) + sum(o.updates)) / 1e6
    print(
        f"\ndispatching pulses: {len(o.dispatch)} of {o.pulses} ({len(o.dispatch) / o.pulses:.1%}), each "
        f"waiting ~{waits:.0f} µs (medians) on two SQLite commits (one durable): {durable_s:.1f} s of the "
        f"pass's {o.pulses / o.rate:.1f} s"
    )
    rate = max(o.rate, inline.rate, threaded.rate)
    idle_p99 = percentile(o.idle_new + o.idle_same, 0.99)
    rate_ok = "met" if rate >= TARGET_PULSES_PER_S else "NOT met"
    idle_ok = "met" if idle_p99 <= TARGET_IDLE_P99_US else "NOT met"
    print(
        f"targets: >= {TARGET_PULSES_PER_S} symbol-pulses/s: {rate_ok} ({rate:.0f}); "
        f"idle-pulse p99 <= {TARGET_IDLE_P99_US:.0f} µs: {idle_ok} ({idle_p99:.0f} µs)"
    )


# -- --store redis: SQLite and Redis journals in one run --------------------------------------------


def start_redis(directory: Path, appendfsync: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a redis-server (AOF on, ``appendfsync``) on a free loopback port in ``directory``."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench/engine.py --store redis needs redis-server (apt-get install -y redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    directory.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", appendfsync, "--logfile", str(directory / "log")]
    server = subprocess.Popen(args)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(500):
        try:
            RedisJournal(url).close()
            return server, url
        except Exception:  # not up yet
            time.sleep(0.02)
    server.kill()
    sys.exit(f"redis-server did not start; see {directory / 'log'}")


def write_latencies(journal: SqliteJournal | RedisJournal, n: int) -> tuple[list[float], list[float]]:
    """Time ``n`` write-ahead commits (a fill and an intent each) and their outcomes, µs."""
    commits, updates = [], []
    for k in range(n):
        symbol = f"W{k % 50:02d}/USDT"
        intent = IntentRecord(symbol, f"ncb-{k}", "place", "buy", 10_000 - k % 7, 5, "pending", "grid", k)
        fill = Fill(f"t{k}", f"ncb-{k - 1}", Side.BUY, 10_000, 5, 1, k)
        record = PulseRecord(symbol, k, '{"s": 1}', (fill,), (1,), (), (intent,), ("grid",))
        t = time.perf_counter_ns()
        journal.commit_pulse(record)
        commits.append((time.perf_counter_ns() - t) / 1000)
        t = time.perf_counter_ns()
        journal.update_intents(symbol, [(f"ncb-{k}", "acked", "")], k)
        updates.append((time.perf_counter_ns() - t) / 1000)
    return commits, updates


def _worker_process(args: tuple[int, int, int, str, int, int, float]) -> Throughput:
    """One of N worker processes: its share of the symbols, its own engine, the shared Redis.

    Every process builds its market and starts its engine, then waits for ``start_at``
    (``time.time()``) so that the timed pulses of all of them run at the same time.
    """
    n_symbols, rounds, extra_pulses, url, index, workers, start_at = args
    RoundTrips.install()
    market = Market(n_symbols, rounds)
    only = slice(index, None, workers)
    return asyncio.run(
        throughput_pass(
            market,
            rounds,
            extra_pulses,
            Path("."),
            journal_thread=False,
            redis_url=url,
            only=only,
            start_at=start_at,
        )
    )


@dataclass
class Accounting:
    """Where the CPU went during one pass: the workers, redis-server and the whole machine."""

    name: str
    pulses: int
    elapsed_s: float  # from the first worker's start to the last one's end
    worker_cpu_s: float
    server_cpu_s: float
    machine_busy_cores: float  # mean busy cores of the whole machine (every process, ours or not)
    round_trips: int
    writes_per_commit: float  # grouped writes (write-ahead commits, outcomes) per group commit

    def row(self) -> str:
        per = 1e6 / self.pulses
        return (
            f"{self.name:44} {self.pulses / self.elapsed_s:8.0f} {self.worker_cpu_s * per:9.1f}"
            f" {self.server_cpu_s * per:9.1f} {(self.worker_cpu_s + self.server_cpu_s) / self.elapsed_s:8.2f}"
            f" {self.machine_busy_cores:8.2f} {self.round_trips / self.pulses:8.3f}"
            f" {self.writes_per_commit:8.1f}"
        )


def accounted(
    name: str, url: str, run: Callable[[], Sequence[Throughput]]
) -> tuple[Sequence[Throughput], Accounting]:
    """Run a pass (one or several workers) and account for the CPU of its workers and of Redis."""
    server0, (busy0, total0) = server_cpu_s(url), machine_jiffies()
    passes = run()
    server1, (busy1, total1) = server_cpu_s(url), machine_jiffies()
    start = min(tp.window[0] for tp in passes)
    end = max(tp.window[1] for tp in passes)
    cores = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
    return passes, Accounting(
        name,
        sum(tp.pulses for tp in passes),
        end - start,
        sum(tp.cpu_s for tp in passes),
        server1 - server0,
        cores,
        sum(tp.round_trips for tp in passes),
        sum(tp.writes for tp in passes) / max(1, sum(tp.batches for tp in passes)),
    )


def compare_stores(n_symbols: int, rounds: int, extra_pulses: int, market: Market, tmp: Path) -> None:
    """Print pulses/s and write latencies of SQLite, Redis (everysec, always) and Redis with 2 workers.

    Each Redis pass is also accounted: CPU per pulse of the workers and of redis-server, the
    machine's busy cores, and round trips to Redis per pulse; the 2-worker processes build their
    markets first and start their timed pulses at the same moment.
    """
    RoundTrips.install()
    servers = {policy: start_redis(tmp / f"redis-{policy}", policy) for policy in ("everysec", "always")}
    try:
        rows: list[tuple[str, float]] = []
        accounts: list[Accounting] = []
        latencies: dict[str, tuple[list[float], list[float]]] = {}
        sqlite = asyncio.run(throughput_pass(market, rounds, extra_pulses, tmp, journal_thread=False))
        rows.append(("SQLite (WAL, synchronous=FULL), 1 process", sqlite.rate))
        one: dict[str, float] = {}
        for policy, (_, url) in servers.items():
            passes, account = accounted(
                f"Redis {policy}, 1 worker",
                url,
                lambda url=url: [  # type: ignore[misc]
                    asyncio.run(
                        throughput_pass(
                            market, rounds, extra_pulses, tmp, journal_thread=False, redis_url=url
                        )
                    )
                ],
            )
            one[policy] = passes[0].rate
            rows.append((f"Redis (appendfsync {policy}), 1 worker", passes[0].rate))
            accounts.append(account)
        url = servers["everysec"][1]

        def two_workers() -> list[Throughput]:
            start_at = time.time() + 3.0 + n_symbols * rounds / 20_000  # after both built their markets
            jobs = [(n_symbols, rounds, extra_pulses, url, i, 2, start_at) for i in range(2)]
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                return pool.map(_worker_process, jobs)

        shares, account = accounted("Redis everysec, 2 worker processes", url, two_workers)
        accounts.append(account)
        # as the 1-worker rows: pulses per second of the slower worker, less the time its simulator
        # spent advancing the markets (both ran at the same time)
        two = sum(tp.pulses for tp in shares) / max(tp.pulses / tp.rate for tp in shares)
        rows.append(("Redis (appendfsync everysec), 2 worker processes", two))
        with SqliteJournal(tmp / "latency.sqlite") as journal:
            latencies["SQLite (WAL, synchronous=FULL)"] = write_latencies(journal, 2000)
        for policy, (_, url) in servers.items():
            with contextlib.closing(RedisJournal(url, prefix="latency:")) as redis_journal:
                latencies[f"Redis (appendfsync {policy})"] = write_latencies(redis_journal, 2000)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait()
    base = rows[0][1]
    print(
        f"\nstores compared in one run: {n_symbols} symbols x {rounds} rounds,"
        f" a task per symbol, group commit; {os.cpu_count()} cores, shared with whatever else runs"
    )
    print(f"{'symbol-pulses per second':60} {'value':>8} {'x SQLite':>9}")
    for name, value in rows:
        print(f"{name:60} {value:8.0f} {value / base:9.2f}")
    print(f"{'  2 workers / 1 worker (Redis everysec)':60} {two / one['everysec']:8.2f}   (target >= 1.6)")
    print(
        "\nwhere the CPU went (the simulator advancing the markets included, in each worker):\n"
        f"{'pass':44} {'pulses/s':>8} {'worker':>9} {'redis':>9} {'ours':>8} {'machine':>8} {'trips':>8}"
        f" {'writes':>8}\n"
        f"{'':44} {'':8} {'µs/pulse':>9} {'µs/pulse':>9} {'cores':>8} {'cores':>8} {'/pulse':>8}"
        f" {'/commit':>8}"
    )
    for account in accounts:
        print(account.row())
    print(
        "  worker, redis: CPU per pulse of the worker processes and of redis-server; ours: the cores"
        " they kept busy;\n  machine: busy cores of the whole machine meanwhile (every process);"
        " trips: requests to Redis per pulse;\n  writes/commit: write-ahead commits and outcomes"
        " sent together in one group commit"
    )
    ceiling = ceiling_ratio(accounts[0], accounts[-1])
    print(
        f"  2 cores / (worker + redis CPU per pulse) = {ceiling[0]:.0f} pulses/s at most on this machine:"
        f" {ceiling[1]:.2f} x the 1-worker pass"
    )
    print(f"\n{'journal write latency, µs (2,000 each)':60} {'median':>8} {'p99':>8} {'x SQLite':>9}")
    base_commit = statistics.median(next(iter(latencies.values()))[0])
    for name, (commits, updates) in latencies.items():
        med = statistics.median(commits)
        print(
            f"{'commit_pulse (durable write-ahead), ' + name:60} {med:8.0f} {percentile(commits, 0.99):8.0f}"
            f" {med / base_commit:9.2f}"
        )
        print(
            f"{'update_intents, ' + name:60} {statistics.median(updates):8.0f}"
            f" {percentile(updates, 0.99):8.0f}"
        )


def ceiling_ratio(one: Accounting, two: Accounting) -> tuple[float, float]:
    """Return the most pulses/s two cores can give at the 2-worker pass's CPU cost per pulse, and
    that as a multiple of the 1-worker pass's pulses/s (both counting the simulator)."""
    per_pulse = (two.worker_cpu_s + two.server_cpu_s) / two.pulses
    most = (os.cpu_count() or 1) / per_pulse
    return most, most / (one.pulses / one.elapsed_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument(
        "--extra-pulses", type=int, default=1, help="pulses per round that find no new candle"
    )
    parser.add_argument(
        "--group-commit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the runtime's group commit in the task-per-symbol passes (EngineSettings.group_commit)",
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "redis"),
        default="sqlite",
        help="redis: also compare SQLite with Redis journals (everysec, always; 1 and 2 workers) in one run",
    )
    args = parser.parse_args()
    if args.store == "redis":
        market = Market(args.symbols, args.rounds)
        with tempfile.TemporaryDirectory() as tmp:
            compare_stores(args.symbols, args.rounds, args.extra_pulses, market, Path(tmp))
        return
    asyncio.run(run(args.symbols, args.rounds, args.extra_pulses, args.group_commit))


if __name__ == "__main__":
    main()
