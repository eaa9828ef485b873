"""``cancel_on_shutdown`` under server errors, through the real ccxt client and the SimServer.

With 30 % of requests failing (HTTP 5xx) at stop time, the engine retries with backoff until every
order of ours is cancelled. With a server that refuses every cancel, it gives up after its bounded
time and ``nutcracker run`` exits non-zero, naming what still rests (client id, side, price).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from nutcracker.cli import app
from nutcracker.core.model import MarketInfo
from nutcracker.core.params import SymbolParams
from nutcracker.core.units import Precision
from nutcracker.engine.runtime import Engine, EngineSettings, WallClock
from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.secrets.keystore import PASSPHRASE_ENV, KeystoreSecretStore
from nutcracker.secrets.redaction import forget_all_secrets
from nutcracker.secrets.store import ApiCredentials
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import FaultRule, SimServer
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[3]
GRID = str(ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml")
SYMBOL = "BTC/USDT"
PRECISION = Precision(Decimal("0.01"), Decimal("0.00001"))
MARKET = MarketInfo(SYMBOL, "BTC", "USDT", PRECISION.tick, PRECISION.lot, Decimal(5), Decimal("0.001"))
ACCOUNT = SimAccount("shutdown-key", "shutdown-secret", {"USDT": Decimal(10_000)})
NO_CANCELS = "5xx=1@DELETE:/api/v3/order,DELETE:/api/v3/openOrders"  # as `sim-exchange --fault`


@pytest.fixture
def server() -> Iterator[SimServer]:
    candles = synthetic_candles(11, 800, Decimal(100_000), PRECISION, symbol=SYMBOL)
    sim = SimServer({SYMBOL: MarketSpec(MARKET, candles)}, [ACCOUNT], manual=True, seed=5)
    sim.start()
    sim.advance(400)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    forget_all_secrets()


def _params() -> SymbolParams:
    sys.path.insert(0, str(ROOT / "tests"))
    from factories import symbol_params

    return replace(symbol_params(), order_id_prefix="ncshutBTCUSDT")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shutdown_cancels_every_resting_order_despite_30_percent_server_errors(
    server: SimServer, tmp_path: Path, seed: int
) -> None:
    account = server.engine(ACCOUNT.api_key)
    settings = EngineSettings(pulse_interval_s=0.05, monitor_interval_s=None, shutdown_cancel_s=20.0)

    async def main() -> None:
        async with CcxtExchange(
            "binance", api_key=ACCOUNT.api_key, secret=ACCOUNT.secret, api_url=server.url, rate_limit_ms=1
        ) as exchange:
            with SqliteJournal(tmp_path / "j.db") as journal:
                engine = Engine([_params()], exchange, journal, WallClock(), settings=settings)
                run = asyncio.create_task(engine.run(handle_signals=False))
                for _ in range(400):
                    if len(account.open_orders(SYMBOL)) >= 5:
                        break
                    await asyncio.sleep(0.01)
                assert len(account.open_orders(SYMBOL)) >= 5
                server.set_faults([FaultRule.parse("5xx=0.3@*")], seed=seed)
                engine.request_stop("test")
                await run

    asyncio.run(main())
    assert account.open_orders(SYMBOL) == ()


def test_a_server_refusing_every_cancel_makes_run_exit_non_zero_listing_what_rests(
    server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery")
    keystore = tmp_path / "keystore.json"
    KeystoreSecretStore(keystore).put(
        ApiCredentials(
            exchange_id="binance",
            name="k",
            api_key=SecretStr(ACCOUNT.api_key),
            secret=SecretStr(ACCOUNT.secret),
        )
    )
    server.set_faults([FaultRule.parse(NO_CANCELS)])
    args = ["run", "--config", GRID, "--mode", "live", "--key", "k", "--keystore", str(keystore)]
    args += ["--exchange-url", server.url, "--pulse-interval", "0.05", "--pulses", "3"]
    args += ["--journal", str(tmp_path / "live.db"), "--cancel-timeout", "1.5"]
    result = CliRunner().invoke(app, args)
    resting = server.engine(ACCOUNT.api_key).open_orders(SYMBOL)
    assert len(resting) == 6  # the example grid's ladder: nothing could be cancelled
    assert result.exit_code == 1, result.output
    assert "still resting" in result.output
    for order in resting:
        price = PRECISION.ticks_to_price(order.price)
        assert f"{order.client_order_id} {order.side.value} {price}" in result.output


def test_a_second_ctrl_c_cuts_the_cancel_retries_short_and_still_lists_what_rests(
    server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery")
    keystore = tmp_path / "keystore.json"
    KeystoreSecretStore(keystore).put(
        ApiCredentials(
            exchange_id="binance",
            name="k",
            api_key=SecretStr(ACCOUNT.api_key),
            secret=SecretStr(ACCOUNT.secret),
        )
    )
    server.set_faults([FaultRule.parse(NO_CANCELS)])
    command = [sys.executable, "-c", "from nutcracker.cli import app; app()", "run", "--config", GRID]
    command += ["--mode", "live", "--key", "k", "--keystore", str(keystore), "--exchange-url", server.url]
    command += ["--pulse-interval", "0.05", "--journal", str(tmp_path / "live.db"), "--cancel-timeout", "300"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    account = server.engine(ACCOUNT.api_key)
    try:
        deadline = time.monotonic() + 60
        while len(account.open_orders(SYMBOL)) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(account.open_orders(SYMBOL)) == 6
        proc.send_signal(signal.SIGINT)  # stop: the cancels fail, the retries begin (for up to 300 s)
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)  # enough
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - started < 15
    assert proc.returncode == 1, err
    assert "still resting" in err
    for order in account.open_orders(SYMBOL):
        assert order.client_order_id in err
