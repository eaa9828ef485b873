"""Benchmark the control API while the engine pulses 100 symbols in replay.

Run: ``.venv/bin/python bench/api.py [--symbols 100] [--seconds 10] [--clients 200] [--subscribers 100]``.
One process serves the API (real uvicorn on a loopback port) beside the engine, which replays
seeded synthetic candles for every symbol (``C000/USDT`` ...: the example grid, a real
``SqliteJournal``) as fast as it can: a round feeds every market one candle and pulses every symbol.
A second process (``--load``) is the clients: ``--clients`` concurrent ``GET /api/v1/status`` loops
and ``--subscribers`` SSE streams (``/api/v1/events``), all logged in through the real auth service.

Printed, from one run: the engine's symbol-pulses/s alone and under that load (the ratio is the
loss), ``GET status`` latency p50/p99 as the clients see it, and the SSE delay p99: from the moment
the API read an event from the journal (the feed's refresh, right after the pulse that wrote it)
to its arrival at a subscriber (one clock: both processes run on this machine).
Targets (issue 14): status p99 <= 50 ms, SSE delay p99 <= 100 ms, throughput loss <= 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher

from nutcracker.api.app import create_app
from nutcracker.api.auth import AuthService, AuthStore, Passwords, UserAdmin
from nutcracker.api.plane import ControlPlane
from nutcracker.app.kernel import build_replay
from nutcracker.backtest.data import load_data
from nutcracker.config import parse_config
from nutcracker.core.commands import Role
from nutcracker.core.model import Candle
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


class Server:
    """The engine (replay, pulsing on demand) and the API in one event loop, in a thread."""

    def __init__(self, tmp: Path, n_symbols: int) -> None:
        text = '[engine]\nid = "bench"\n' + "".join(SYMBOL.format(i=i) for i in range(n_symbols))
        import tomllib

        self.config = parse_config(tomllib.loads(text), source="bench")
        self.data = load_data(self.config, {}, synthetic=20_000, seed=3)
        users = tmp / "users.db"
        store = AuthStore.open(users, create=True)
        cheap = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        UserAdmin(store, actor="bench", passwords=cheap).add("bench", Role.OWNER, ["*"], PASSWORD)
        store.close()
        users.chmod(0o600)
        self.auth = AuthService.open(users, passwords=cheap)
        self.journal = SqliteJournal(tmp / "journal.db")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.candle = 0
        self.refreshed: list[tuple[int, int, float]] = []  # (first seq, last seq, wall time) per refresh

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)

    async def _start(self) -> str:
        self.setup = build_replay(self.config, self.data, self.journal, warmup=200)
        self.candle = self.setup.warmup
        for i in range(self.candle):
            for symbol, c in self.data.items():
                self.setup.exchange.advance(symbol, _candle(c, i))
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
        refresh = feed.refresh

        def timed_refresh() -> None:
            before = feed.last_seq
            refresh()
            if feed.last_seq > before:
                self.refreshed.append((before + 1, feed.last_seq, time.time()))

        feed.refresh = timed_refresh  # type: ignore[method-assign]
        app = create_app(self.auth, plane, heartbeat_s=5.0)
        await self.setup.engine.start()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off", backlog=4096)
        )
        self.serving = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def pulse_for(self, seconds: float) -> float:
        """Replay candles as fast as the engine goes for ``seconds``; return symbol-pulses per second."""
        return asyncio.run_coroutine_threadsafe(self._pulse_for(seconds), self.loop).result(seconds + 120)

    async def _pulse_for(self, seconds: float) -> float:
        engine, exchange, clock = self.setup.engine, self.setup.exchange, self.setup.clock
        pulses, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            i = self.candle
            for symbol, c in self.data.items():
                exchange.advance(symbol, _candle(c, i))
            clock.advance_to(exchange.now_ms)
            self.candle += 1
            pulses += len(await engine.pulse_all())
        return pulses / (time.perf_counter() - started)

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


async def load(base: str, seconds: float, clients: int, subscribers: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients + subscribers + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        login = await http.post("/api/v1/auth/login", json={"username": "bench", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        latencies: list[float] = []
        received: dict[int, list[float]] = {}
        errors = 0
        stop = asyncio.Event()

        async def poll() -> None:
            nonlocal errors
            while not stop.is_set():
                t = time.perf_counter()
                r = await http.get("/api/v1/status", headers=headers)
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200

        async def subscribe(k: int) -> None:
            async with http.stream("GET", "/api/v1/events", headers=headers) as r:  # from now on
                async for line in r.aiter_lines():
                    if line.startswith("id: "):
                        received.setdefault(int(line[4:]), []).append(time.time())
                    if stop.is_set():
                        return

        subs = [asyncio.create_task(subscribe(k)) for k in range(subscribers)]
        await asyncio.sleep(1.0)  # the streams are open (and have caught up) before the clock starts
        started = time.time()
        polls = [asyncio.create_task(poll()) for _ in range(clients)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*polls, return_exceptions=True)
        for s in subs:
            s.cancel()
        await asyncio.gather(*subs, return_exceptions=True)
    return {"latencies": latencies, "errors": errors, "received": received, "started": started}


def main() -> None:
    logging.getLogger("asyncio").setLevel(
        logging.ERROR
    )  # "socket.send() raised": clients hanging up at the end
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)  # the clients' process
    args = parser.parse_args()
    if args.load:
        result = asyncio.run(load(args.load, args.seconds, args.clients, args.subscribers))
        json.dump(result, sys.stdout)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), args.symbols)
        base = server.start()
        alone = server.pulse_for(args.seconds)
        clients = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--load",
                base,
                "--seconds",
                str(args.seconds + 1.0),
                "--clients",
                str(args.clients),
                "--subscribers",
                str(args.subscribers),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # logins and streams open before the engine's measured pass
        mark = len(server.refreshed)
        loaded = server.pulse_for(args.seconds)
        out, _ = clients.communicate(timeout=args.seconds + 300)
        refreshed = server.refreshed[mark:]
        server.stop()
    result = json.loads(out)
    seen_at: dict[int, float] = {}
    for first, last, t in refreshed:
        for seq in range(first, last + 1):
            seen_at[seq] = t
    delays = [
        arrival - seen_at[int(seq)]
        for seq, arrivals in result["received"].items()
        if int(seq) in seen_at
        for arrival in arrivals
    ]
    lat = result["latencies"]
    rows = [
        ("engine symbol-pulses/s, no API load", f"{alone:,.0f}", "baseline"),
        ("engine symbol-pulses/s, under API load", f"{loaded:,.0f}", f"{loaded / alone:.2f}x baseline"),
        ("throughput loss under load", f"{(1 - loaded / alone) * 100:.1f} %", "target <= 10 %"),
        (
            f"GET status p50 ({args.clients} clients, {len(lat)} requests)",
            f"{percentile(lat, 0.5) * 1000:.1f} ms",
            "",
        ),
        ("GET status p99", f"{percentile(lat, 0.99) * 1000:.1f} ms", "target <= 50 ms"),
        ("GET status errors", str(result["errors"]), ""),
        (
            f"SSE delay p50 ({args.subscribers} subscribers, {len(delays)} deliveries)",
            f"{percentile(delays, 0.5) * 1000:.1f} ms",
            "",
        ),
        ("SSE delay p99", f"{percentile(delays, 0.99) * 1000:.1f} ms", "target <= 100 ms"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
