"""A real API server for the tests: uvicorn on a free loopback port, the engine replaying behind it.

``Served`` runs the event loop in a thread of its own (uvicorn, the engine, the journal), so a test
drives it with a plain ``httpx.Client`` and moves the replay one candle at a time with ``step``
(what ``replay.driver.run_replay`` does per candle: feed the simulated exchange, move the clock,
pulse every symbol). ``GatedExchange`` can hold a pulse open inside an exchange call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from nutcracker.api.app import create_app
from nutcracker.api.metrics import ApiMetrics, TimedExchange
from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import Authenticator
from nutcracker.app.kernel import build_replay
from nutcracker.backtest.data import load_data
from nutcracker.config import load_config
from nutcracker.core.model import Candle, PlaceLimit
from nutcracker.engine.ports import HistoryExchange
from nutcracker.engine.reports import PulseReport
from nutcracker.replay.driver import ReplaySetup
from nutcracker.store.sqlite import SqliteJournal

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[3]
MULTI = ROOT / "examples" / "multi-symbol.toml"
GRID = ROOT / "examples" / "grid-btc-usdt.toml"


class GatedExchange(TimedExchange):
    """The dispatch timer's wrapper, whose ``place`` can be made to wait (``close``/``open``)."""

    def __init__(self, inner: HistoryExchange, metrics: ApiMetrics) -> None:
        super().__init__(inner, metrics)
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()  # a place is held at the gate
        self.symbol = "BTC/USDT"  # whose places the gate holds

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        if symbol == self.symbol and not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
        return await super().place(symbol, order)


class Served:
    """The engine (replay, stepped by the test) and the API on ``base_url``."""

    def __init__(
        self,
        tmp: Path,
        authenticator: Authenticator,
        *,
        config: Path = MULTI,
        accounts: Mapping[str, str] | None = None,
        candles: int = 3_000,
        warmup: int = 300,
        heartbeat_s: float = 15.0,
        metrics_token: str | None = None,
        status_max_age_s: float = 0.0,
    ) -> None:
        self.journal_path = tmp / "journal.db"
        self.config = load_config(config)
        self.data = load_data(self.config, {}, synthetic=candles, seed=11)
        self._authenticator = authenticator
        self._accounts = accounts or {
            s.market.symbol: f"{s.market.exchange}/replay" for s in self.config.symbols
        }
        self._warmup = warmup
        self._heartbeat_s = heartbeat_s
        self._status_max_age_s = status_max_age_s
        self._metrics_token = metrics_token
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api-served", daemon=True)
        self.candle = 0

    def __enter__(self) -> Served:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop.is_closed():  # a test stopped it already (to reopen the journal)
            return
        try:
            self.call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` in the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Start ``coro`` in the server's loop; the returned future is a concurrent one."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[return-value]

    async def _start(self) -> None:
        self.journal = SqliteJournal(self.journal_path)
        self.metrics = ApiMetrics()
        self.gated: GatedExchange | None = None

        def wrap(exchange: HistoryExchange) -> HistoryExchange:
            self.gated = GatedExchange(exchange, self.metrics)
            return self.gated

        self.setup: ReplaySetup = build_replay(
            self.config, self.data, self.journal, warmup=self._warmup, wrap_exchange=wrap
        )
        self.candle = self.setup.warmup
        for i in range(self.candle):
            for symbol, c in self.data.items():
                self.setup.exchange.advance(symbol, _candle(c, i))
        self.plane = ControlPlane(
            self.setup.engine,
            self.journal,
            self.config,
            accounts=self._accounts,
            clock=self.setup.clock,
            mode="replay",
            # views as of the latest report: these tests read them pulse by pulse (serve's bounded
            # age, STATUS_MAX_AGE_S, has a test of its own)
            status_max_age_s=self._status_max_age_s,
        )
        self.app = create_app(
            self._authenticator,
            self.plane,
            metrics=self.metrics,
            heartbeat_s=self._heartbeat_s,
            metrics_token=self._metrics_token,
        )
        await self.setup.engine.start()
        # log_config None: never reconfigure the process's uvicorn loggers (other tests read the access log)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
        self.server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        self.server.should_exit = True
        await self._serving
        await self.setup.engine.shutdown("test over")
        self.journal.close()

    async def _step(self) -> list[PulseReport]:
        i = self.candle
        for symbol, c in self.data.items():
            self.setup.exchange.advance(symbol, _candle(c, i))
        self.setup.clock.advance_to(self.setup.exchange.now_ms)
        self.candle += 1
        return await self.setup.engine.pulse_all()

    def step(self, n: int = 1) -> list[PulseReport]:
        """Replay ``n`` candles (a pulse of every symbol after each); return the last pulse's reports."""
        reports: list[PulseReport] = []
        for _ in range(n):
            reports = self.call(self._step())
        return reports

    def step_async(self) -> asyncio.Future[list[PulseReport]]:
        return self.submit(self._step())


def _candle(c: Any, i: int) -> Candle:
    return Candle(
        int(c.ts_ms[i]), int(c.open[i]), int(c.high[i]), int(c.low[i]), int(c.close[i]), float(c.volume[i])
    )
