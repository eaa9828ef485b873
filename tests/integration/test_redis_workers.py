"""``nutcracker worker`` processes on one Redis, live on the simulated exchange through the real ccxt client.

Two workers share six symbols half and half; a kill -9 of one hands its symbols to the other
within the lease time, which resumes them (no client id sent twice); a pause sent through the
Redis inbox reaches the owning worker and is applied;
``nutcracker status --store --json`` shows every symbol with its owner and fencing token.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from nutcracker.app.worker import scale_out_status
from nutcracker.core.commands import PauseSymbol, Role
from nutcracker.core.model import MarketInfo
from nutcracker.core.units import Precision
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.secrets.keystore import PASSPHRASE_ENV, KeystoreSecretStore
from nutcracker.secrets.store import ApiCredentials
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_inbox import RedisInbox

KEY, SECRET = "PLANTEDKEYworker0123456789abcdefAB", "PLANTEDSECRETworker9876543210zyxw"
PASSPHRASE = "correct horse battery"
PRECISION = Precision(Decimal("0.01"), Decimal("0.001"))
SYMBOL_BLOCK = """
[[symbol]]
[symbol.market]
exchange = "binance"
symbol = "{symbol}"
tick_size = "0.01"
lot_size = "0.001"
min_notional = "5"
maker_fee_bps = "10"
[symbol.rails]
max_base = "100"
max_quote = "600"
[symbol.profit]
min_net_bps = "10"
[symbol.grid]
enabled = true
levels = 3
spacing_bps = "40"
order_fraction = "0.3"
trailing_up = true
"""


def symbols_of(n: int) -> list[str]:
    return [f"S{i}/USDT" for i in range(n)]


def sim_server(symbols: list[str], speed: float) -> SimServer:
    markets = {}
    for i, symbol in enumerate(symbols):
        info = MarketInfo(
            symbol, symbol.split("/")[0], "USDT", PRECISION.tick, PRECISION.lot, Decimal(5), Decimal("0.001")
        )
        candles = synthetic_candles(100 + i, 4_000, Decimal(100 + 10 * i), PRECISION, symbol=symbol)
        markets[symbol] = MarketSpec(info, candles)
    account = SimAccount(KEY, SECRET, {"USDT": Decimal(1_000_000)}, name="trader")
    return SimServer(markets, [account], manual=False, speed=speed, control=True)


def write_config(path: Path, symbols: list[str], budget: int) -> Path:
    text = '[engine]\nid = "workers"\ncancel_on_shutdown = false\npulse_interval_s = 1\n'
    text += f'\n[portfolio.USDT]\nmax_quote = "{budget}"\n'
    text += "".join(SYMBOL_BLOCK.format(symbol=s) for s in symbols)
    path.write_text(text)
    return path


def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    path = tmp_path / "keystore.json"
    KeystoreSecretStore(path).put(
        ApiCredentials(exchange_id="binance", name="w", api_key=SecretStr(KEY), secret=SecretStr(SECRET))
    )
    return path


def start_worker(
    owner: str,
    store: str,
    config: Path,
    exchange_url: str,
    keys: Path,
    log: Path,
    pulse: str = "0.2",
    *,
    trace: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``nutcracker worker`` OWNER, its output appended to ``log``.

    ``trace``: the worker's INFO log lines too (leases taken and lost, intents resolved, pulses
    with fills), each stamped with the wall time and the owner, so a failure can be traced.
    """
    argv = [
        "worker",
        "--store",
        store,
        "--config",
        str(config),
        "--mode",
        "live",
        "--exchange-url",
        exchange_url,
    ]
    argv += [
        "--key",
        "w",
        "--keystore",
        str(keys),
        "--pulse-interval",
        pulse,
        "--lease-ttl",
        "2",
        "--owner",
        owner,
    ]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", (_TRACE.format(owner=owner) if trace else "") + _MAIN, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, PASSPHRASE_ENV: PASSPHRASE},
        )


_MAIN = "from nutcracker.cli import app; app(prog_name='nutcracker')"
_TRACE = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout,"
    " format='%(created).3f {owner} %(message)s'); "
)


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float, log: Path) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(
                f"not within {timeout_s} s: {what}; the workers said:\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.05)
    return time.monotonic() - started


def owners(store: str) -> dict[str, object]:
    return {str(row["symbol"]): row["owner"] for row in scale_out_status(store)}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
        p.wait()


@pytest.mark.slow
def test_two_workers_share_the_symbols_and_one_takes_over_when_the_other_is_killed(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: list[subprocess.Popen[bytes]]
) -> None:
    symbols = symbols_of(6)
    server = sim_server(symbols, speed=2.0)
    server.start()
    server.advance(400)  # history enough for the indicators: the grids place at their first pulse
    try:
        config = write_config(tmp_path / "workers.toml", symbols, budget=4_000)
        keys = keystore(tmp_path, monkeypatch)
        log = tmp_path / "workers.log"
        processes += [start_worker(o, redis_url, config, server.url, keys, log) for o in ("wa", "wb")]
        wait_for(
            "every symbol owned, three each",
            lambda: sorted(map(str, owners(redis_url).values())) == ["wa"] * 3 + ["wb"] * 3,
            30,
            log,
        )
        journal = RedisJournal(redis_url)
        wait_for("every symbol placed orders", lambda: all(journal.intents(s) for s in symbols), 30, log)
        os.kill(processes[0].pid, signal.SIGKILL)
        killed_at = log.stat().st_size  # what follows is the survivor's
        taken = wait_for("wb owns every symbol", lambda: set(owners(redis_url).values()) == {"wb"}, 10, log)
        assert taken <= 3 + 0.6 + 2  # the lease time, a tick, and slack for this shared machine
        wait_for(
            "every symbol pulsing, trading, under its new owner (its report lines after the kill)",
            lambda: _trading_since(log, killed_at, symbols),
            20,
            log,
        )
        rows = [json.loads(line) for line in _status_json(redis_url).splitlines()]
        assert [(r["symbol"], r["owner"]) for r in rows] == [(s, "wb") for s in symbols]
        assert all(r["fencing_token"] >= 1 for r in rows)
        placed = [e.client_order_id for e in server.engine(KEY).events if e.event == "placed"]
        assert len(placed) == len(set(placed))  # no client id sent twice
        inbox = RedisInbox(journal.client)
        asyncio.run(inbox.send(PauseSymbol("ops-1", symbols[0], "ops", Role.OPERATOR, "maintenance", 1)))
        wait_for(  # the owning worker got it through Redis and applied it between two pulses
            "the pause sent through Redis applied by the owner",
            lambda: (row := journal.load_symbol(symbols[0])) is not None and row.status == "paused",
            10,
            log,
        )
        processes[1].send_signal(signal.SIGTERM)
        assert processes[1].wait(30) == 0, log.read_text()[-3000:]
        journal.close()
    finally:
        server.stop()


def _trading_since(log: Path, offset: int, symbols: list[str]) -> bool:
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    return all(
        any(line.startswith(f"symbol={s} ") and "status=trading" in line for line in lines) for s in symbols
    )


def _status_json(store: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nutcracker.cli import app; app(prog_name='nutcracker')",
            "status",
            "--store",
            store,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout
