"""Benchmark the Redis command inbox of scale-out workers: what idle symbols cost, and delivery delay.

A worker holds N symbols; each symbol's engine waits on the inbox for its commands. This runs N
receivers in one process (as one worker), against a private ``redis-server``, while a sender
sends ``--commands`` pauses to random symbols, and measures redis-server's CPU, this process's
CPU and each command's delay from send to receipt. Two ways of waiting, in the same run:

- ``script every poll`` (the baseline, as the inbox waited before): each receiver runs its
  receive script every 20 ms;
- ``doorbell`` (``RedisInbox.receive`` now): one ``GET`` of the send counter every 20 ms for every
  receiver, each running its script only when the counter moved.

Passes alternate (baseline, doorbell, baseline, doorbell, ...); the table gives each way's median
and the ratio doorbell / baseline. Run: ``.venv/bin/python bench/inbox.py [--symbols 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import RedisServer
from nutcracker.core.commands import PauseSymbol, Role
from nutcracker.store import redis_inbox
from nutcracker.store.redis_inbox import RedisInbox


@dataclass
class Pass:
    way: str
    redis_cpu: float  # redis-server's CPU, share of a core
    own_cpu: float  # this process's CPU (the receivers and the sender), share of a core
    delays_ms: list[float]


def _redis_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _script_every_poll(
    inbox: RedisInbox, owner: str, stop: asyncio.Event, got: Callable[[str], None]
) -> None:
    """The baseline: the receive loop as it was, its script every poll (the inbox's own script)."""
    receive = inbox._receive
    while not stop.is_set():
        text = receive(args=[inbox._prefix, owner])
        if text is not None:
            got(json.loads(text)["command_id"])
            continue
        await asyncio.sleep(redis_inbox._POLL_S)


async def _doorbell(inbox: RedisInbox, owner: str, stop: asyncio.Event, got: Callable[[str], None]) -> None:
    while not stop.is_set():  # as a worker's symbol waits (``Engine.serve``): no timeout; cancelled
        command = await inbox.receive(owner)
        if command is not None:
            got(command.command_id)


Receiver = Callable[[RedisInbox, str, asyncio.Event, Callable[[str], None]], Coroutine[None, None, None]]


async def _one_pass(
    url: str, way: str, receiver: Receiver, symbols: int, seconds: float, commands: int
) -> Pass:
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    inbox = RedisInbox(client)
    names = [f"S{i}/USDT" for i in range(symbols)]
    for name in names:
        await inbox.claim(f"w:{name}", [name])
    sent: dict[str, float] = {}
    delays: list[float] = []

    def got(cid: str) -> None:
        delays.append((time.monotonic() - sent[cid]) * 1e3)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(receiver(inbox, f"w:{n}", stop, got)) for n in names]
    await asyncio.sleep(0.5)  # every receiver waiting
    rng = random.Random(7)
    redis_before, own_before, started = _redis_cpu_s(client), time.process_time(), time.monotonic()
    for k in range(commands):
        await asyncio.sleep(rng.uniform(0, 2 * seconds / commands))
        cid = f"{way}-{k}"
        sent[cid] = time.monotonic()
        await inbox.send(PauseSymbol(cid, rng.choice(names), "bench", Role.OPERATOR, "bench", 0))
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)) + 0.3)
    elapsed = time.monotonic() - started
    redis_cpu = (_redis_cpu_s(client) - redis_before) / elapsed
    own_cpu = (time.process_time() - own_before) / elapsed
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    client.close()
    if len(delays) != commands:
        sys.exit(f"{way}: {len(delays)} of {commands} commands received")
    return Pass(way, redis_cpu, own_cpu, delays)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=100, help="receivers (one worker's symbols)")
    parser.add_argument("--seconds", type=float, default=5.0, help="about how long each pass runs")
    parser.add_argument("--commands", type=int, default=50, help="commands sent in each pass")
    parser.add_argument("--repeat", type=int, default=2, help="passes of each way (alternating)")
    args = parser.parse_args(argv)
    if not 1 <= args.symbols <= 10_000:
        parser.error("--symbols: give 1 to 10000")
    if not 0.5 <= args.seconds <= 600:
        parser.error("--seconds: give 0.5 to 600")
    if not 1 <= args.commands <= 100_000:
        parser.error("--commands: give 1 to 100000")
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat: give 1 to 20")
    if shutil.which("redis-server") is None:
        sys.exit("bench/inbox.py needs redis-server on PATH (apt-get install -y redis-server)")
    ways: dict[str, Receiver] = {"script every poll": _script_every_poll, "doorbell": _doorbell}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", databases=1)
        try:
            passes = [
                asyncio.run(
                    _one_pass(server.url(0), way, receiver, args.symbols, args.seconds, args.commands)
                )
                for _ in range(args.repeat)
                for way, receiver in ways.items()
            ]
        finally:
            server.stop()

    def med(way: str, value: Callable[[Pass], float]) -> float:
        return statistics.median(value(p) for p in passes if p.way == way)

    def p99(p: Pass) -> float:
        return statistics.quantiles(p.delays_ms, n=100)[98] if len(p.delays_ms) > 1 else p.delays_ms[0]

    rows = [
        ("redis-server CPU, share of a core", lambda p: p.redis_cpu * 100, "%"),
        ("this process's CPU (receivers + sender)", lambda p: p.own_cpu * 100, "%"),
        ("delay send -> receipt p50", lambda p: statistics.median(p.delays_ms), "ms"),
        ("delay send -> receipt p99", p99, "ms"),
    ]
    base, now = ways
    print(
        f"{args.symbols} idle receivers in one process, {args.commands} commands per pass, "
        f"{args.repeat} passes of each way (median)"
    )
    print(f"{'measure':<42} {base:>18} {now:>12} {'ratio':>8}")
    for name, value, unit in rows:
        b, n = med(base, value), med(now, value)
        ratio = f"{n / b:.2f}x" if b > 0 else "n/a"
        print(f"{name:<42} {b:>15.1f} {unit:<2} {n:>9.1f} {unit:<2} {ratio:>8}")


if __name__ == "__main__":
    main()
