"""A real engine process to kill: a fork server for ``test_crash_recovery.py``.

Run as a script (``python crash_engine.py``). It imports everything once (ccxt alone takes ~1.5 s),
prints ``ready`` and then reads one JSON command per line on stdin:

- ``{"cmd": "spawn", ...engine config...}``: fork a child that builds ``SqliteJournal`` +
  ``CcxtExchange`` (against the test's SimServer) + ``SymbolWorker`` and pulses in a loop,
  printing ``pulse <pid> <seq> <status> <intents> <fills>`` after each pulse; answers
  ``spawned <pid>``. The test kills the child with SIGKILL whenever it likes.
- ``{"cmd": "reap", "pid": N}``: wait for that child; answers ``reaped <pid> <status>``.
- ``{"cmd": "exit"}``.

Each child is a full engine process of its own (its own event loop, HTTP session and SQLite
connection, opened after the fork); only the imported modules are shared, copy-on-write.
Every line goes out in one ``os.write`` so children and the server never interleave a line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any

from nutcracker.core.serialize import loads_params
from nutcracker.engine.worker import SymbolWorker, WorkerSettings
from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.store.sqlite import SqliteJournal


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


async def engine(config: dict[str, Any]) -> None:
    pid = os.getpid()
    logging.basicConfig(filename=config["journal"] + ".log", level=logging.INFO, format=f"{pid} %(message)s")
    params = loads_params(config["params"])
    journal = SqliteJournal(config["journal"])
    exchange = CcxtExchange(
        "binance",
        api_key=config["api_key"],
        secret=config["secret"],
        api_url=config["url"],
        rate_limit_ms=1,
        timeout_ms=5_000,
        recv_window_ms=60_000,
    )
    settings = WorkerSettings(candle_interval_ms=60_000, history_margin_candles=10)
    worker = SymbolWorker(params, exchange, journal, WallClock(), settings=settings)
    await worker.start()
    while True:
        report = await worker.pulse()
        say(f"pulse {pid} {report.seq} {report.status} {len(report.intents)} {len(report.fills)}")
        await asyncio.sleep(config["pause_s"])


def child(config: dict[str, Any]) -> None:
    try:
        asyncio.run(engine(config))
    except BaseException:
        say(f"error {os.getpid()} " + traceback.format_exc().replace("\n", " | "))
        os._exit(1)
    os._exit(0)


def main() -> None:
    say("ready")
    for raw in sys.stdin:
        command = json.loads(raw)
        if command["cmd"] == "spawn":
            if threading.active_count() != 1:  # fork is only safe without other threads
                say(f"error {os.getpid()} the fork server has {threading.active_count()} threads")
                continue
            pid = os.fork()
            if pid == 0:
                child(command)
            say(f"spawned {pid}")
        elif command["cmd"] == "reap":
            _, status = os.waitpid(command["pid"], 0)
            say(f"reaped {command['pid']} {status}")
        elif command["cmd"] == "exit":
            return


if __name__ == "__main__":
    main()
