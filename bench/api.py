"""Benchmark the control API while the engine pulses 100 symbols in replay.

Run: ``.venv/bin/python bench/api.py [--symbols 100] [--seconds 10] [--clients 200] [--subscribers 100]
[--interval 2] [--repeat 3] [--fleet]``.
One process serves the API (real uvicorn on a loopback port, on ``nutcracker serve``'s loop: uvloop's
where installed) beside the engine, which replays
seeded synthetic candles for every symbol (``C000/USDT`` ...: the example grid, a real
``SqliteJournal``) as fast as it can: a round feeds every market one candle and pulses every symbol.
Two more processes (``--load``) are the clients: one runs ``--clients`` concurrent ``GET
/api/v1/status`` loops, the other ``--subscribers`` SSE streams (``/api/v1/events``), all logged in
through the real auth service, over a bare keep-alive HTTP/1.1 client.
Two loads, in one run:

- *saturation*: every client sends its next request as soon as the last one answered (closed loop,
  no think time). It takes whatever CPU the API can get, so it measures how the loop shares the
  machine at saturation, not what a user sees; on one core, Little's law ties its numbers together
  (latency = clients / throughput), and no share of the engine can keep both latency and loss low.
- *realistic*: every client polls once every ``--interval`` seconds (default: the console's refresh,
  ``console.overview.REFRESH_S`` = 2 s), phases spread over the interval: 200 open consoles;
  ``--repeat`` passes (default 3).

Both with the same ``--subscribers`` streams. Every loaded pass runs between two passes of the
engine alone, and is compared with their mean: on a shared machine the others' load drifts by tens
of percent within a minute, and a baseline measured minutes apart would measure the drift. The
realistic loss printed is the median of its passes', each listed. A last *control* pass runs the
engine alone beside a process that only keeps busy the share of a core the clients' processes used:
on a small machine (two vCPUs here) the load generator's own CPU slows the engine though it shares
nothing with it, and the control shows how much of the loss that is.

Printed, from one run: the engine's symbol-pulses/s alone and under that load (the ratio is the
loss), ``GET status`` latency p50/p99 as the clients see it, and the SSE delay p99: from the end of
the pulse that wrote an event (its report asks the event feed for a refresh; the first such ask
since the last refresh counts, so the feed's batching is inside the delay) to the event's arrival
at a subscriber (one clock: both processes run on this machine).
The loss is split in two: the loop thread's own CPU per round, loaded against alone (the API's work
on the loop), and the share of the wall time the loop was off its CPU (other processes, other
threads holding the GIL): on a shared two-vCPU machine the second can be as large as the first.
Targets (issue 14): status p99 <= 50 ms, SSE delay p99 <= 100 ms, throughput loss <= 10 %.

``--fleet`` measures fleet mode instead (and only it): the engine as ``nutcracker worker --store``
runs it, the API as ``nutcracker serve --store`` in a process of its own. A private ``redis-server``
(free loopback port, in the journals' directory: AOF with ``appendfsync always``, as the SQLite
journal's ``synchronous=FULL``; ``redis-server`` must be on PATH) holds a database per pass. This
process replays the same rounds on a ``RedisJournal`` and publishes each symbol's latest report to
``RedisReports`` every second on the engine's loop, as the worker does; a real ``serve --store``
process, started for each pass, reads them every 0.5 s. The baseline is the engine with that serve
process up and idle (its polling of Redis is in both), so the loss is the clients' load: each
realistic pass runs between two such alone passes (``--repeat``, the median loss; no saturation
pass, no control). Printed, ``[fleet]`` rows: the pulses/s alone and loaded, the loop's CPU per
round, serve's and redis-server's CPU, ``GET status`` p50/p99 and the SSE delay: from the end of
the pulse that journaled an event (its symbol's pulse in the round whose clock is the event's
``ts_ms``) to its arrival.
serve reads the journal's new events every 50 ms (``EventFeed.follow``), so an event does not wait
for the next published report, and the in-process target (100 ms) is this mode's too; the
subscribers stay on a few seconds after the rounds so that the last rounds' events are counted,
not cut off.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import httpx
import redis
import uvicorn
from argon2 import PasswordHasher

from nutcracker.api.app import create_app
from nutcracker.api.auth import AuthService, AuthStore, Passwords, UserAdmin
from nutcracker.api.collector import calm_collector
from nutcracker.api.plane import REFRESH_GAP_S, ControlPlane
from nutcracker.api.server import new_loop, run
from nutcracker.app.fleet import POLL_S
from nutcracker.app.kernel import build_replay
from nutcracker.app.worker import REPORTS_S
from nutcracker.backtest.data import load_data
from nutcracker.config import NutcrackerConfig, parse_config
from nutcracker.console.overview import REFRESH_S
from nutcracker.core.commands import Role
from nutcracker.core.model import Candle
from nutcracker.engine.ports import JournalStore
from nutcracker.engine.report_codec import encode_report
from nutcracker.engine.reports import PulseReport
from nutcracker.marketdata.candles import CandleArrays
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_reports import RedisReports
from nutcracker.store.sqlite import SqliteJournal

PASSWORD = "bench password of some length"
SYMBOL = """
[[symbol]]
[symbol.market]
exchange = "binance"
symbol = "C{i:03d}/USDT"
tick_size = "0.01"
lot_size = "0.001"
min_notional = "5"
maker_fee_bps = "10"
[symbol.rails]
max_base = "30"
max_quote = "2000"
[symbol.profit]
min_net_bps = "10"
[symbol.grid]
enabled = true
levels = 5
spacing_bps = "40"
order_fraction = "0.2"
trailing_up = true
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


CHEAP = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
WARMUP = 300  # candles of history before the first pulse: past the example grid's indicator warm-up


@dataclass(frozen=True)
class Market:
    """What every pass replays: the same config, candles and users (each pass a fresh engine)."""

    config: NutcrackerConfig
    data: Mapping[str, CandleArrays]
    users: Path
    journals: Path  # where each pass's journal goes

    text: str  # the config's TOML (``serve --config`` reads it in the fleet run)

    @classmethod
    def make(cls, tmp: Path, n_symbols: int, journals: Path) -> Market:
        text = '[engine]\nid = "bench"\n' + "".join(SYMBOL.format(i=i) for i in range(n_symbols))
        config = parse_config(tomllib.loads(text), source="bench")
        users = tmp / "users.db"
        store = AuthStore.open(users, create=True)
        UserAdmin(store, actor="bench", passwords=CHEAP).add("bench", Role.OWNER, ["*"], PASSWORD)
        store.close()
        users.chmod(0o600)
        return cls(config, load_data(config, {}, synthetic=20_000, seed=3), users, journals, text)


@dataclass(frozen=True, slots=True)
class Rounds:
    """The time elapsed at the end of each round replayed, on the wall clock and in the loop's CPU."""

    wall: list[float]
    cpu: list[float]
    started_at: float = 0.0  # time.time() when the first round began (the fleet run's SSE delays)


class _Replay:
    """A fresh engine replaying the market on demand, on its own event loop in a thread: the engine's
    side of every pass, with the API beside it (``Server``) or in another process (``FleetSide``)."""

    def __init__(self, market: Market) -> None:
        self.config, self.data = market.config, market.data
        self.loop = new_loop()  # as nutcracker serve's
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.candle = 0

    def _set_up(self, journal: JournalStore) -> None:
        """Wire the replay over ``journal`` and feed every market its warm-up candles."""
        self.setup = build_replay(self.config, self.data, journal, warmup=WARMUP)
        self.candle = self.setup.warmup
        for i in range(self.candle):
            for symbol, c in self.data.items():
                self.setup.exchange.advance(symbol, _candle(c, i))

    def run_rounds(self, rounds: int | None, seconds: float | None) -> Rounds:
        """Replay up to ``rounds`` rounds, for at most ``seconds``, as fast as the engine goes; return
        the time elapsed at the end of each round."""
        done = asyncio.run_coroutine_threadsafe(self._rounds(rounds, seconds), self.loop)
        return done.result(None if seconds is None else seconds + 600)

    async def _rounds(self, rounds: int | None, seconds: float | None) -> Rounds:
        """A round feeds every market its next candle and pulses every symbol."""
        engine, exchange, clock = self.setup.engine, self.setup.exchange, self.setup.clock
        marks: list[float] = []
        cpu_marks: list[float] = []  # the loop thread's own CPU, API work included
        started_at = time.time()
        started, cpu_started = time.perf_counter(), time.thread_time()
        while (rounds is None or len(marks) < rounds) and (
            seconds is None or time.perf_counter() - started < seconds
        ):
            i = self.candle
            for symbol, c in self.data.items():
                exchange.advance(symbol, _candle(c, i))
            clock.advance_to(exchange.now_ms)
            self.candle += 1
            await engine.pulse_all()
            marks.append(time.perf_counter() - started)
            cpu_marks.append(time.thread_time() - cpu_started)
        return Rounds(marks, cpu_marks, started_at)


class Server(_Replay):
    """The engine (replay, pulsing on demand) and the API in one event loop, in a thread."""

    def __init__(self, name: str, market: Market) -> None:
        super().__init__(market)
        self.auth = AuthService.open(market.users, passwords=CHEAP)
        self.journal = SqliteJournal(market.journals / f"{name}.db")
        self.base = ""
        self.refreshed: list[tuple[int, int, float]] = []  # (first seq, last seq, wall time) per refresh
        self.taken: list[
            tuple[int, int, float]
        ] = []  # (first seq, last seq, wall time) per chunk a stream took

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)

    async def _start(self) -> str:
        self._set_up(self.journal)
        accounts = dict.fromkeys(self.data, "binance/replay")
        plane = ControlPlane(
            self.setup.engine,
            self.journal,
            self.config,
            accounts=accounts,
            clock=self.setup.clock,
            mode="replay",
        )
        feed = plane.feed
        refresh, refresh_soon = feed.refresh, feed.refresh_soon
        asked: list[float] = []  # when the first pulse since the last refresh asked for one

        def timed_refresh_soon() -> None:
            if not asked:
                asked.append(time.time())
            refresh_soon()

        def timed_refresh() -> None:
            before = feed.last_seq
            t = asked.pop() if asked else time.time()
            refresh()
            if feed.last_seq > before:
                self.refreshed.append((before + 1, feed.last_seq, t))

        chunk_after = feed.chunk_after

        def timed_chunk_after(
            seq: int, symbols: frozenset[str], everything: bool, limit: int = 500
        ) -> tuple[bytes, int]:
            text, after = chunk_after(seq, symbols, everything, limit)
            if after > seq:  # a stream's task takes these events to write them to its subscriber
                self.taken.append((seq + 1, after, time.time()))
            return text, after

        feed.refresh = timed_refresh  # type: ignore[method-assign]
        feed.refresh_soon = timed_refresh_soon  # type: ignore[method-assign]
        feed.chunk_after = timed_chunk_after  # type: ignore[method-assign]
        app = create_app(self.auth, plane, heartbeat_s=5.0)
        await self.setup.engine.start()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="error",
                lifespan="off",
                backlog=4096,
                proxy_headers=False,  # as serve without --behind-proxy
                http="httptools",  # as nutcracker serve
            )
        )
        self.serving = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        calm_collector()  # as serve does once it listens
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        async def _stop() -> None:
            self.server.should_exit = True
            await self.serving
            await self.setup.engine.shutdown("bench over")

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.journal.close()
        self.auth.close()


def _candle(c: Any, i: int) -> Candle:
    return Candle(
        int(c.ts_ms[i]), int(c.open[i]), int(c.high[i]), int(c.low[i]), int(c.close[i]), float(c.volume[i])
    )


# --- the clients' process --------------------------------------------------------------------------


_EVENT_ID = re.compile(rb"^id: (\d+)\n", re.MULTILINE)


class _Stream(asyncio.Protocol):
    """One SSE subscriber that only notes what arrived when; the ids are read after the pass.

    This process shares the machine with the server: reading the ids as the bytes came (a
    ``StreamReader`` per stream, a regex per read) cost it a quarter of a core, and its own lateness
    was measured as event delay.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.times: list[float] = []
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        self.times.append(time.time())  # what one read brings arrived together
        self.chunks.append(data)

    def arrivals(self) -> list[tuple[int, float]]:
        """Each event id, with when its ``id:`` line had come whole (the read that brought its newline)."""
        ends = list(itertools.accumulate(len(c) for c in self.chunks))
        text = b"".join(self.chunks)
        return [
            (int(m[1]), self.times[bisect.bisect_right(ends, m.end() - 1)]) for m in _EVENT_ID.finditer(text)
        ]


def _address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


async def _connect(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*_address(base), limit=2**22)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one keep-alive GET and read its whole response; return the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return int(head[9:12])


async def load(base: str, clients: int, subscribers: int, interval_s: float) -> dict[str, Any]:
    """The clients: a bare HTTP/1.1 keep-alive client (httpx cost more CPU than the server's answer,
    and on a shared machine the clients' own queueing would have been measured as latency)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        login = await http.post("/api/v1/auth/login", json={"username": "bench", "password": PASSWORD})
    tokens = login.json()

    def request(path: str) -> bytes:
        # as the console's client (httpx) and browsers ask: a compressed body when the server has one
        auth = f"Authorization: Bearer {tokens['access_token']}\r\nAccept-Encoding: gzip, deflate"
        return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n\r\n".encode()

    status_request = request("/api/v1/status")
    events_request = request("/api/v1/events")  # from now on

    async def refresh() -> None:  # access tokens last 5 minutes; a starved saturation pass, longer
        nonlocal tokens, status_request
        while True:
            await asyncio.sleep(120)
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                r = await http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            tokens = r.json()
            status_request = request("/api/v1/status")

    refreshing = asyncio.create_task(refresh())
    latencies: list[float] = []
    errors = 0
    stop = asyncio.Event()

    async def poll(k: int) -> None:
        nonlocal errors
        reader, writer = await _connect(base)
        # closed loop (interval 0): the next request as soon as the last answered; otherwise
        # one request every interval_s, the clients' phases spread over the interval
        next_at = time.perf_counter() + interval_s * k / max(1, clients)
        try:
            while not stop.is_set():
                if interval_s:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval_s
                    if stop.is_set():
                        return
                t = time.perf_counter()
                status = await _get(reader, writer, status_request)
                latencies.append(time.perf_counter() - t)
                errors += status != 200
        finally:
            writer.close()

    async def subscribe() -> _Stream:
        _, stream = await asyncio.get_running_loop().create_connection(_Stream, *_address(base))
        stream.transport.write(events_request)
        return stream

    lag_max = 0.0  # how late this process's own loop ran: its stalls are in the delays it measures

    async def probe() -> None:
        nonlocal lag_max
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lag_max = max(lag_max, time.perf_counter() - t - 0.01)

    probing = asyncio.create_task(probe())
    streams = await asyncio.gather(*(subscribe() for _ in range(subscribers)))
    await asyncio.sleep(1.0)  # the streams are open (and have caught up) before the clock starts
    started = time.time()
    polls = [asyncio.create_task(poll(k)) for k in range(clients)]
    await asyncio.sleep(0.5)  # every poller connected and sent its first request (or is on its schedule)
    print("ready", flush=True)  # the engine's measured pass starts now
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the engine is done
    cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)  # of one core
    stop.set()
    await asyncio.gather(*polls, return_exceptions=True)
    for stream in streams:
        stream.transport.close()
    refreshing.cancel()
    probing.cancel()
    received: dict[int, list[float]] = {}
    for stream in streams:
        for seq, now in stream.arrivals():
            received.setdefault(seq, []).append(now)
    return {
        "latencies": latencies,
        "errors": errors,
        "received": received,
        "started": started,
        "cpu_share": cpu_share,
        "lag_max": lag_max,
    }


@dataclass(frozen=True)
class Pass:
    """One loaded pass: what the clients did and what the engine and they measured."""

    name: str
    interval_s: float  # 0: closed loop
    rounds: Rounds  # the time elapsed at the end of each round
    latencies: tuple[float, ...] = ()
    errors: int = 0
    delays: tuple[float, ...] = ()
    client_cpu: float = 0.0  # the clients' processes' CPU while the engine was measured, in cores
    in_server: tuple[
        float, ...
    ] = ()  # the SSE delays' part in the server: until a stream's task took the event
    lag_max: float = 0.0  # the subscribers' process: the longest its own event loop ran late


def _clients(base: str, clients: int, subscribers: int, interval_s: float) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--load", base, str(clients), str(subscribers), str(interval_s)]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def engine_alone(market: Market, name: str, rounds: int) -> Rounds:
    """A fresh engine replays ``rounds`` rounds with the API up and no client (``Server.run_rounds``)."""
    server = Server(name, market)
    server.base = server.start()
    try:
        return server.run_rounds(rounds, None)
    finally:
        server.stop()


# A process that keeps a share of one core busy (10 ms periods) and does nothing else
BUSY = """import sys, time
share = float(sys.argv[1])
while True:
    t = time.perf_counter()
    while time.perf_counter() - t < 0.01 * share:
        pass
    time.sleep(0.01 * (1 - share))
"""


def engine_beside_busy(market: Market, name: str, rounds: int, share: float) -> Rounds:
    """The engine alone while another process, sharing nothing with it, keeps ``share`` of a core busy:
    what the clients' own processes cost the engine on this machine, apart from the API's work."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY, str(min(1.0, share))])
    try:
        return engine_alone(market, name, rounds)
    finally:
        busy.kill()
        busy.wait()


def loaded_pass(market: Market, name: str, interval_s: float, rounds: int, args: argparse.Namespace) -> Pass:
    """A fresh engine replays the same ``rounds`` rounds while the clients' process keeps its load on."""
    server = Server(name, market)
    server.base = server.start()
    # pollers and subscribers in processes of their own: parsing the streams' lines must not delay
    # the pollers' clocks (each process's own event loop would otherwise be measured as latency)
    loads = [
        _clients(server.base, args.clients, 0, interval_s),
        _clients(server.base, 0, args.subscribers, 0.0),
    ]
    try:
        for p in loads:  # logins, connections and streams open before the engine's measured pass
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        mark, taken_mark = len(server.refreshed), len(server.taken)
        # the same rounds, but at most 3x --seconds: a starved engine is compared over the rounds it did
        replayed = server.run_rounds(rounds, 3 * args.seconds)
        outs = [p.communicate("", timeout=300)[0] for p in loads]  # their stdin closes: the load stops
    finally:
        server.stop()
    polled, streamed = (json.loads(out) for out in outs)
    result = {**streamed, "latencies": polled["latencies"], "errors": polled["errors"]}
    seen_at: dict[int, float] = {}
    for first, last, t in server.refreshed[mark:]:
        for seq in range(first, last + 1):
            seen_at[seq] = t
    delays = [
        arrival - seen_at[int(seq)]
        for seq, arrivals in result["received"].items()
        if int(seq) in seen_at
        for arrival in arrivals
    ]
    in_server = [
        t - seen_at[seq]
        for first, last, t in server.taken[taken_mark:]
        for seq in range(first, last + 1)
        if seq in seen_at
    ]
    client_cpu = float(polled["cpu_share"]) + float(streamed["cpu_share"])
    latencies = tuple(result["latencies"])
    return Pass(
        name,
        interval_s,
        replayed,
        latencies,
        result["errors"],
        tuple(delays),
        client_cpu,
        tuple(in_server),
        float(streamed["lag_max"]),
    )


# --- the fleet run (--fleet): the engine as a worker runs it, the API in a process of its own ------


# the subscribers stay this long after the rounds: what the last rounds journaled is counted,
# whether it comes with the journal's events or (as status does) with the reports (REPORTS_S, POLL_S)
DRAIN_S = REPORTS_S + POLL_S + 1.0
SETTLE_S = 1.0  # every pass waits this long after serve listens, loaded or not
_CANDLES_KEPT = 1_000  # candles kept for one publication, as the worker keeps (app/worker.py)


class FleetSide(_Replay):
    """The engine as ``nutcracker worker --store`` runs it: the journal in Redis, and every
    ``REPORTS_S`` each symbol's latest report published to ``RedisReports`` (with the candles its
    pulses read since the last publication); no API in this process.

    The publisher is the worker's ``ScaleOutWorker._publish_reports`` restated: that one is a method
    of the lease-holding worker (it reads the engines of the symbols it holds), not importable alone.
    """

    def __init__(self, market: Market, url: str) -> None:
        super().__init__(market)
        self.journal = RedisJournal(url)  # checked as the worker's: reachable, 7.0+, AOF on
        self.unpublished: dict[str, list[Candle]] = {}
        # (symbol, round clock) -> when that symbol's pulse in that round ended, its events journaled
        self.pulsed: dict[tuple[str, int], float] = {}

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)

    async def _start(self) -> None:
        self._set_up(self.journal)
        self.setup.engine.add_observer(self._observe)
        for symbol, worker in self.setup.engine.workers.items():
            worker.pulse = self._timed(symbol, worker.pulse)  # type: ignore[method-assign]
        await self.setup.engine.start()
        self.publishing = asyncio.create_task(self._publish())

    def _timed(
        self, symbol: str, pulse: Callable[[], Coroutine[Any, Any, PulseReport]]
    ) -> Callable[[], Coroutine[Any, Any, PulseReport]]:
        """``pulse``, noting when it ended: its journal writes are in Redis then, serve may read them
        (the engine tells its observers only at the end of the round)."""

        async def timed() -> PulseReport:
            report = await pulse()
            self.pulsed[(symbol, self.setup.clock.now_ms())] = time.time()
            return report

        return timed

    def _observe(self, report: PulseReport) -> None:
        if report.candles:
            kept = self.unpublished.setdefault(report.symbol, [])
            kept.extend(report.candles)
            del kept[:-_CANDLES_KEPT]

    async def _publish(self) -> None:
        """Publish the symbols' latest reports, those that changed, every ``REPORTS_S`` (on this loop,
        as the worker does: its cost is the engine's in every pass)."""
        board = RedisReports(self.journal.client)
        sent: dict[str, PulseReport] = {}
        while True:
            fresh = {s: r for s, r in self.setup.engine.latest().items() if sent.get(s) is not r}
            if fresh:
                board.publish(
                    {
                        s: encode_report(replace(r, candles=tuple(self.unpublished.pop(s, ()))))
                        for s, r in fresh.items()
                    }
                )
                sent.update(fresh)
            await asyncio.sleep(REPORTS_S)

    def round_ends(self, first: int, rounds: Rounds) -> dict[int, float]:
        """Each round's clock (the ``ts_ms`` its journal events carry) -> when the round ended
        (``time.time()``); ``first``: the candle of the first round."""
        interval = next(iter(self.data.values())).interval_ms
        ends = {
            max(int(c.ts_ms[first + j]) for c in self.data.values()) + interval - 1: rounds.started_at + wall
            for j, wall in enumerate(rounds.wall)
        }
        # the simulated exchange's clock is the close of the latest candle: the last round's is known
        assert max(ends) == self.setup.clock.now_ms(), "a round's clock is not its candles' close"
        return ends

    def event_times(self) -> dict[int, tuple[str, int]]:
        """Every journaled event's seq -> its symbol and ``ts_ms`` (the clock of the round that wrote it)."""
        times: dict[int, tuple[str, int]] = {}
        seq = 0
        while rows := self.journal.events_since(seq, 10_000):
            times.update((row.seq, (row.symbol, row.ts_ms)) for row in rows)
            seq = rows[-1].seq
        return times

    def stop(self) -> None:
        async def _stop() -> None:
            self.publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.publishing  # a publisher that failed raises here
            await self.setup.engine.shutdown("bench over")

        try:
            asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.journal.close()


class RedisServer:
    """A private ``redis-server`` on a free loopback port, its append-only file in ``directory``.

    ``RedisJournal`` refuses a server without AOF; ``appendfsync always`` fsyncs every write before
    it answers, as the in-process run's ``SqliteJournal`` (``synchronous=FULL``) does, and is the
    policy the worker asks for (it warns under any other). AOF rewrites are off: a rewrite is a fork
    that would land in a measured pass at random. No RDB snapshots. A database per pass (``--store``
    takes no key prefix, the URL takes a database): no pass sees another's state.
    """

    def __init__(self, directory: Path, databases: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("bench/api.py --fleet needs redis-server on PATH (apt-get install -y redis-server)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        directory.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(directory)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0"]
        args += ["--save", "", "--databases", str(databases), "--daemonize", "no"]
        args += ["--logfile", str(directory / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(redis.RedisError):
                    if client.ping() and client.info("persistence").get("loading") == 0:
                        return
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    sys.exit(f"redis-server did not start; see {directory / 'redis.log'}")
                time.sleep(0.02)
        finally:
            client.close()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _cpu_s(pid: int) -> float:
    """The CPU seconds (user + system, every thread) process ``pid`` used so far (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _serve(url: str, config: Path, users: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``nutcracker serve --store url`` (any free port); return it and its base URL."""
    argv = [sys.executable, "-m", "nutcracker.cli", "serve", "--store", url, "--config", str(config)]
    argv += ["--users", str(users), "--port", "0"]
    with log.open("a") as err:
        api = subprocess.Popen(argv, cwd=log.parent, stdout=subprocess.PIPE, stderr=err, text=True)
    assert api.stdout is not None
    line = (
        api.stdout.readline()
    )  # "serving the API on http://127.0.0.1:PORT/api/v1 ...", as the tests read it
    found = re.search(r"(http://127\.0\.0\.1:\d+)/api/v1", line)
    if found is None:
        api.kill()
        api.wait()
        said = line.strip() or (log.read_text().strip().splitlines() or ["(nothing)"])[-1]
        sys.exit(f"nutcracker serve --store did not start: {said}")
    return api, found[1]


def _stop_serve(api: subprocess.Popen[str]) -> None:
    api.send_signal(signal.SIGINT)  # as a person stops it: the uvicorn server and the poller end
    try:
        api.wait(30)
    except subprocess.TimeoutExpired:
        api.kill()
        api.wait()


@dataclass(frozen=True)
class FleetPass:
    """One fleet pass: the engine's rounds, the other processes' CPU and, loaded, what the clients saw."""

    rounds: Rounds
    api_cpu: float  # the serve process's CPU while the engine replayed, in cores
    redis_cpu: float  # redis-server's, the same
    latencies: tuple[float, ...] = ()
    errors: int = 0
    delays: tuple[float, ...] = ()
    events: int = 0  # events the pass's rounds journaled: every subscriber should receive each
    client_cpu: float = 0.0  # the clients' processes' CPU, in cores


def fleet_pass(
    market: Market,
    redis_server: RedisServer,
    db: int,
    rounds: int | None,
    seconds: float | None,
    args: argparse.Namespace,
    interval_s: float | None,
) -> FleetPass:
    """A fresh engine (Redis journal, reports published) replays ``rounds`` rounds, for at most
    ``seconds``, with a ``serve --store`` process up; with ``interval_s``, the clients' processes
    poll it every ``interval_s`` and hold ``--subscribers`` streams meanwhile."""
    url = redis_server.url(db)
    engine = FleetSide(market, url)
    engine.start()  # journaled and fenced before serve reads the symbols, as workers' are
    api: subprocess.Popen[str] | None = None
    loads: list[subprocess.Popen[str]] = []
    try:
        here = market.users.parent
        api, base = _serve(url, here / "bench.toml", market.users, here / "serve.log")
        # serve still works for a moment after it says it listens (0.13 s of CPU measured): not in a pass
        time.sleep(SETTLE_S)
        if interval_s is not None:
            loads = [
                _clients(base, args.clients, 0, interval_s),
                _clients(base, 0, args.subscribers, 0.0),
            ]
            for p in loads:
                assert p.stdout is not None
                assert p.stdout.readline().strip() == "ready"
        first = engine.candle
        before = (_cpu_s(api.pid), _cpu_s(redis_server.process.pid), time.perf_counter())
        replayed = engine.run_rounds(rounds, seconds)
        after = (_cpu_s(api.pid), _cpu_s(redis_server.process.pid), time.perf_counter())
        wall = after[2] - before[2]
        api_cpu, redis_cpu = (after[0] - before[0]) / wall, (after[1] - before[1]) / wall
        if not loads:
            return FleetPass(replayed, api_cpu, redis_cpu)
        polled = json.loads(loads[0].communicate("", timeout=300)[0])
        time.sleep(DRAIN_S)  # the last rounds' events on their way: their delays are not cut short
        streamed = json.loads(loads[1].communicate("", timeout=300)[0])
        ends = engine.round_ends(first, replayed)
        # when each event was journaled: the end of its symbol's pulse (an account's event: its round's)
        written = {
            seq: engine.pulsed.get(at, ends[at[1]])
            for seq, at in engine.event_times().items()
            if at[1] in ends
        }
    finally:
        for p in loads:
            if p.poll() is None:
                p.kill()
                p.wait()
        if api is not None:
            _stop_serve(api)
        engine.stop()
    delays = [
        arrival - written[int(seq)]
        for seq, arrivals in streamed["received"].items()
        if int(seq) in written
        for arrival in arrivals
    ]
    return FleetPass(
        replayed,
        api_cpu,
        redis_cpu,
        tuple(polled["latencies"]),
        polled["errors"],
        tuple(delays),
        len(written),
        float(polled["cpu_share"]) + float(streamed["cpu_share"]),
    )


def fleet_run(args: argparse.Namespace) -> None:
    """The fleet run: alone passes (engine + idle serve) around each realistic pass; print its table."""
    with (
        tempfile.TemporaryDirectory() as name,
        tempfile.TemporaryDirectory(dir=args.journal_dir) as journals,
    ):
        market = Market.make(Path(name), args.symbols, Path(journals))
        (market.users.parent / "bench.toml").write_text(market.text)
        databases = itertools.count()  # one per pass: the probe, the alone and the loaded passes
        redis_server = RedisServer(market.journals / "redis", databases=2 * args.repeat + 2)
        try:
            # how many rounds the engine replays in --seconds
            probe = fleet_pass(market, redis_server, next(databases), None, args.seconds, args, None)
            rounds = len(probe.rounds.wall)
            alone = [fleet_pass(market, redis_server, next(databases), rounds, None, args, None)]
            loaded = []
            for _ in range(args.repeat):
                db = next(databases)
                loaded.append(
                    fleet_pass(market, redis_server, db, rounds, 3 * args.seconds, args, args.interval)
                )
                alone.append(fleet_pass(market, redis_server, next(databases), rounds, None, args, None))
        finally:
            redis_server.stop()
    _fleet_report(args, rounds, alone, loaded)


def _ms(samples: tuple[float, ...]) -> str:
    """p50 / p99 in milliseconds."""
    return f"{percentile(list(samples), 0.5) * 1000:.1f} / {percentile(list(samples), 0.99) * 1000:.1f} ms"


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1 (its error is argparse's one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too few: give at least 1")
    return value


def _positive(text: str) -> float:
    """An argparse type: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} seconds: give a number above 0")
    return value


def _directory(text: str) -> str:
    """An argparse type: a directory that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory; give one that exists (e.g. /dev/shm)")
    return text


def main() -> None:
    logging.getLogger("asyncio").setLevel(
        logging.ERROR
    )  # "socket.send() raised": clients hanging up at the end
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=_at_least_one, default=100)
    parser.add_argument("--seconds", type=_positive, default=10.0, help="about how long each pass replays")
    parser.add_argument("--clients", type=_at_least_one, default=200)
    parser.add_argument("--subscribers", type=_at_least_one, default=100)
    parser.add_argument(
        "--interval",
        type=_positive,
        default=REFRESH_S,
        help="the realistic load: each client polls this often (s)",
    )
    parser.add_argument(
        "--journal-dir",
        type=_directory,
        help="where the journals go (default: the system's temporary directory, on disk); /dev/shm "
        "takes the disk's fsync, and other processes' disk traffic, out of the engine's times",
    )
    parser.add_argument(
        "--repeat",
        type=_at_least_one,
        default=3,
        help="realistic passes, each between two alone ones (median loss)",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="measure fleet mode instead: the engine on a Redis journal publishing its reports, the API "
        "a `nutcracker serve --store` process (needs redis-server on PATH)",
    )
    # the clients' process: URL, pollers, subscribers, interval (either count may be 0 there)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        base, clients, subscribers, interval_s = args.load
        result = run(load(base, int(clients), int(subscribers), float(interval_s)))
        json.dump(result, sys.stdout)
        return
    if args.fleet:
        if shutil.which("redis-server") is None:  # before minutes of set-up
            sys.exit("bench/api.py --fleet needs redis-server on PATH (apt-get install -y redis-server)")
        fleet_run(args)
        return
    with (
        tempfile.TemporaryDirectory() as name,
        tempfile.TemporaryDirectory(dir=args.journal_dir) as journals,
    ):
        market = Market.make(Path(name), args.symbols, Path(journals))
        probe = Server("probe", market)  # how many rounds the engine replays in --seconds
        probe.start()
        rounds = len(probe.run_rounds(None, args.seconds).wall)
        probe.stop()
        # every loaded pass between two alone ones: the machine's own drift (other processes) is
        # shared by a pass and the baseline it is compared with
        alone = [engine_alone(market, "alone-0", rounds)]
        passes = [loaded_pass(market, "saturation", 0.0, rounds, args)]
        alone.append(engine_alone(market, "alone-1", rounds))
        for k in range(args.repeat):
            passes.append(loaded_pass(market, f"realistic-{k + 1}", args.interval, rounds, args))
            alone.append(engine_alone(market, f"alone-{k + 2}", rounds))
        share = statistics.mean(p.client_cpu for p in passes[1:])
        control = engine_beside_busy(market, "control", rounds, share)
        alone.append(engine_alone(market, f"alone-{len(alone)}", rounds))
    _report(args, rounds, alone, passes, (share, control))


def _rate(pulses: int, marks: list[float], done: int) -> float:
    """Symbol-pulses per second over the first ``done`` rounds."""
    return float(pulses * done / marks[done - 1])


def _loss(pulses: int, loaded: Rounds, before: Rounds, after: Rounds) -> tuple[float, float, float]:
    """A loaded pass's rate, its baseline (the alone passes before and after it, over the same rounds)
    and its loss."""
    done = len(loaded.wall)
    baseline = (_rate(pulses, before.wall, done) + _rate(pulses, after.wall, done)) / 2
    rate = _rate(pulses, loaded.wall, done)
    return rate, baseline, 1 - rate / baseline


def _on_loop(loaded: Rounds, before: Rounds, after: Rounds) -> tuple[float, float, float, float]:
    """A loaded pass's loop CPU per round, its alone passes' (the same rounds), and the share of the
    wall time the loop was off its CPU (waiting: other processes, other threads' GIL), loaded and
    alone."""
    done = len(loaded.wall)
    cpu_alone = [a.cpu[done - 1] for a in (before, after)]
    wall_alone = [a.wall[done - 1] for a in (before, after)]
    return (
        loaded.cpu[done - 1] / done,
        statistics.mean(cpu_alone) / done,
        1 - loaded.cpu[done - 1] / loaded.wall[done - 1],
        1 - sum(cpu_alone) / sum(wall_alone),
    )


def _report(
    args: argparse.Namespace,
    rounds: int,
    alone: list[Rounds],
    passes: list[Pass],
    control: tuple[float, Rounds],
) -> None:
    pulses = args.symbols  # a round pulses every symbol

    def rate(marks: list[float], done: int) -> float:
        return _rate(pulses, marks, done)

    def loss(k: int) -> tuple[float, float, float]:
        return _loss(pulses, passes[k].rounds, alone[k], alone[k + 1])

    def on_loop(k: int) -> tuple[float, float, float, float]:
        return _on_loop(passes[k].rounds, alone[k], alone[k + 1])

    alone_rates = [rate(a.wall, rounds) for a in alone]
    rows = [
        (
            f"engine symbol-pulses/s, no API load ({rounds} rounds x {pulses} symbols)",
            f"{statistics.median(alone_rates):,.0f}",
            f"median of {len(alone)} passes, one before and after every loaded pass: "
            + ", ".join(f"{r:,.0f}" for r in alone_rates),
        ),
        (
            f"journals in {args.journal_dir or tempfile.gettempdir()} (written on the loop, as serve does)",
            "",
            "",
        ),
    ]
    groups = [("saturation", [0]), ("realistic", list(range(1, len(passes))))]
    for name, ks in groups:
        first = passes[ks[0]]
        load_text = (
            f"{args.clients} clients polling status with no think time (closed loop)"
            if not first.interval_s
            else f"{args.clients} clients each polling status every {first.interval_s:g} s (console refresh)"
        )
        measured = [loss(k) for k in ks]
        losses = [m[2] for m in measured]
        cpus = [on_loop(k) for k in ks]
        latencies = tuple(x for k in ks for x in passes[k].latencies)
        delays = tuple(x for k in ks for x in passes[k].delays)
        rows += [
            (
                f"[{name}] load: {load_text} + {args.subscribers} SSE subscribers",
                "",
                f"the clients' own processes used {statistics.mean(passes[k].client_cpu for k in ks):.2f} "
                "of a core on this machine",
            ),
            (
                f"[{name}] engine symbol-pulses/s under that load ({len(ks)} passes, "
                f"{min(len(passes[k].rounds.wall) for k in ks)}+ rounds)",
                f"{statistics.median(m[0] for m in measured):,.0f}",
                f"loss {statistics.median(losses) * 100:.1f} % (target <= 10 %), the median of "
                + ", ".join(f"{x * 100:.1f}" for x in losses)
                + " %: each pass against the alone passes beside it",
            ),
            (
                f"[{name}]   the loop's CPU per round, loaded / alone",
                f"{statistics.median(c[0] for c in cpus) * 1000:.1f} / "
                f"{statistics.median(c[1] for c in cpus) * 1000:.1f} ms",
                f"+{statistics.median(c[0] / c[1] - 1 for c in cpus) * 100:.1f} %: the API's work on the "
                f"loop (and the engine slowed by sharing the caches); the loop was off its CPU "
                f"{statistics.median(c[2] for c in cpus) * 100:.1f} % of the time "
                f"({statistics.median(c[3] for c in cpus) * 100:.1f} % alone): other processes, threads",
            ),
            (
                f"[{name}] GET status p50 / p99 ({len(latencies)} requests, "
                f"{sum(passes[k].errors for k in ks)} errors)",
                _ms(latencies),
                "target p99 <= 50 ms",
            ),
            (
                f"[{name}] SSE delay p50 / p99 ({len(delays)} deliveries)",
                _ms(delays),
                "target p99 <= 100 ms",
            ),
            (
                f"[{name}]   of which in the server: until a stream's task took the event",
                _ms(tuple(x for k in ks for x in passes[k].in_server)),
                "the rest is the socket and the subscribers' process, whose own loop ran up to "
                f"{max(passes[k].lag_max for k in ks) * 1000:.0f} ms late",
            ),
        ]
    share, busy = control
    beside = (rate(alone[-2].wall, rounds) + rate(alone[-1].wall, rounds)) / 2
    rows.append(
        (
            f"[control] engine alone beside a busy process using {share:.2f} of a core (the clients' share)",
            f"{rate(busy.wall, rounds):,.0f}",
            f"loss {(1 - rate(busy.wall, rounds) / beside) * 100:.1f} % against the alone passes beside it: "
            "what sharing this machine with the load generator costs, with no API work at all",
        )
    )
    _print_rows(rows)


def _print_rows(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>{vwidth}}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {note}")


def _fleet_report(
    args: argparse.Namespace, rounds: int, alone: list[FleetPass], loaded: list[FleetPass]
) -> None:
    pulses = args.symbols  # a round pulses every symbol
    beside = [(alone[k].rounds, alone[k + 1].rounds) for k in range(len(loaded))]
    measured = [_loss(pulses, p.rounds, *b) for p, b in zip(loaded, beside, strict=True)]
    losses = [m[2] for m in measured]
    cpus = [_on_loop(p.rounds, *b) for p, b in zip(loaded, beside, strict=True)]
    alone_rates = [_rate(pulses, a.rounds.wall, rounds) for a in alone]
    latencies = tuple(x for p in loaded for x in p.latencies)
    delays = tuple(x for p in loaded for x in p.delays)
    events = sum(p.events for p in loaded)
    rows = [
        (
            f"[fleet] engine symbol-pulses/s, serve --store up, no client "
            f"({rounds} rounds x {pulses} symbols)",
            f"{statistics.median(alone_rates):,.0f}",
            f"median of {len(alone)} passes, one before and after every loaded pass: "
            + ", ".join(f"{r:,.0f}" for r in alone_rates),
        ),
        (
            f"[fleet] journal: RedisJournal, redis-server appendfsync always, AOF in "
            f"{args.journal_dir or tempfile.gettempdir()}",
            "",
            f"reports published every {REPORTS_S:g} s on the engine's loop (as nutcracker worker); "
            f"serve reads them every {POLL_S:g} s",
        ),
        (
            f"[fleet] load: {args.clients} clients each polling status every {args.interval:g} s "
            f"+ {args.subscribers} SSE subscribers, on `nutcracker serve --store` (its own process)",
            "",
            f"the clients' own processes used {statistics.mean(p.client_cpu for p in loaded):.2f} "
            "of a core on this machine",
        ),
        (
            f"[fleet] engine symbol-pulses/s under that load ({len(loaded)} passes, "
            f"{min(len(p.rounds.wall) for p in loaded)}+ rounds)",
            f"{statistics.median(m[0] for m in measured):,.0f}",
            f"loss {statistics.median(losses) * 100:.1f} % (target <= 10 %), the median of "
            + ", ".join(f"{x * 100:.1f}" for x in losses)
            + " %: each pass against the alone passes beside it",
        ),
        (
            "[fleet]   the loop's CPU per round, loaded / alone",
            f"{statistics.median(c[0] for c in cpus) * 1000:.1f} / "
            f"{statistics.median(c[1] for c in cpus) * 1000:.1f} ms",
            f"{statistics.median(c[0] / c[1] - 1 for c in cpus) * 100:+.1f} %: no API on this loop; "
            f"the loop was off its CPU {statistics.median(c[2] for c in cpus) * 100:.1f} % of the time "
            f"({statistics.median(c[3] for c in cpus) * 100:.1f} % alone): Redis' fsynced answers, "
            "other processes, threads",
        ),
        (
            "[fleet]   serve / redis-server CPU while the engine replayed, loaded",
            f"{statistics.median(p.api_cpu for p in loaded):.2f} / "
            f"{statistics.median(p.redis_cpu for p in loaded):.2f} cores",
            f"alone: {statistics.median(a.api_cpu for a in alone):.2f} / "
            f"{statistics.median(a.redis_cpu for a in alone):.2f} cores (medians of the passes)",
        ),
        (
            f"[fleet] GET status p50 / p99 ({len(latencies)} requests, "
            f"{sum(p.errors for p in loaded)} errors)",
            _ms(latencies),
            "target p99 <= 50 ms",
        ),
        (
            f"[fleet] SSE delay p50 / p99 ({len(delays)} deliveries of {events} events x "
            f"{args.subscribers} subscribers)",
            _ms(delays),
            "target p99 <= 100 ms: from the end of the pulse that journaled the event (its symbol's, in "
            f"the round of its ts_ms) to its arrival; serve reads the journal's events every "
            f"{REFRESH_GAP_S * 1000:.0f} ms",
        ),
    ]
    _print_rows(rows)


if __name__ == "__main__":
    main()
