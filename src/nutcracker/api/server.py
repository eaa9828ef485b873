"""``nutcracker serve``: the engine and the API in one process and one event loop.

uvicorn's ``Server.serve()`` runs as a task beside the engine (a replay driven candle by candle,
or paper and live on the wall clock). The process owns the signals: SIGINT/SIGTERM stop the
engine gracefully first (its shutdown cancels and journals as ``run`` does), then the server. When
the engine stops by itself (the replay's data ends), the server stops with it.

The loop is uvloop's where it is installed (``run``): the API's requests and the event stream's
writes share the engine's loop, and uvloop's callbacks and socket writes cost a fraction of
asyncio's (``bench/api.py`` measures the engine's loss under API load).

Listening is refused, before anything starts, on a non-loopback address without TLS
(``--tls-cert``/``--tls-key``) or an explicit ``--behind-proxy`` (a TLS-terminating proxy in front):
tokens and passwords must never cross a network in clear text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from nutcracker.api.app import attach, create_app
from nutcracker.api.collector import calm_collector
from nutcracker.api.metrics import ApiMetrics, TimedExchange
from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import Authenticator
from nutcracker.api.routers import suggestions
from nutcracker.app.fleet import FleetEngine
from nutcracker.app.kernel import Mode, build_replay, symbol_params
from nutcracker.backtest.runner import BacktestResult
from nutcracker.config import NutcrackerConfig
from nutcracker.engine.ports import HistoryExchange
from nutcracker.engine.reports import PulseReport
from nutcracker.engine.runtime import Engine, WallClock
from nutcracker.errors import ConfigError
from nutcracker.marketdata.candles import CandleArrays
from nutcracker.replay.driver import run_replay
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_suggestions import RedisSuggestions
from nutcracker.store.sqlite import SqliteJournal

__all__ = [
    "Listen",
    "accounts_of",
    "check_listen",
    "new_loop",
    "run",
    "serve_connected",
    "serve_fleet",
    "serve_replay",
]

T = TypeVar("T")


def new_loop() -> asyncio.AbstractEventLoop:
    """Return a new uvloop event loop, or asyncio's own where uvloop is not installed (Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop from ``new_loop``."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)


@dataclass(frozen=True, slots=True)
class Listen:
    """Where and how the API listens."""

    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_proxy: bool = False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def check_listen(listen: Listen) -> None:
    """Refuse a listening set-up that would expose tokens, or name TLS files that are not there.

    Raises:
        ConfigError: one line saying what is wrong and what to do.
    """
    if (listen.tls_cert is None) != (listen.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both (PEM files) or neither")
    for option, path in (("--tls-cert", listen.tls_cert), ("--tls-key", listen.tls_key)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{option} {path}: no such file; give the PEM file's path")
    if not _is_loopback(listen.host) and listen.tls_cert is None and not listen.behind_proxy:
        raise ConfigError(
            f"--host {listen.host} is reachable from other machines and the API would send tokens in "
            "clear text: give --tls-cert and --tls-key, or --behind-proxy when a TLS proxy fronts it, "
            "or bind 127.0.0.1"
        )


def accounts_of(config: NutcrackerConfig, mode: Mode, key_name: str | None) -> dict[str, str]:
    """Return each symbol's account, ``"{exchange}/{key name}"``.

    The key name is ``replay`` in a replay and ``paper`` in paper mode without ``--key``.
    """
    name = "replay" if mode == Mode.REPLAY else key_name or "paper"
    return {s.market.symbol: f"{s.market.exchange}/{name}" for s in config.symbols}


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the engine stops first, then the server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: FastAPI, listen: Listen) -> _Server:
    config = uvicorn.Config(
        app,
        host=listen.host,
        port=listen.port,
        ssl_certfile=str(listen.tls_cert) if listen.tls_cert else None,
        ssl_keyfile=str(listen.tls_key) if listen.tls_key else None,
        proxy_headers=listen.behind_proxy,  # trust X-Forwarded-For only from the proxy in front
        forwarded_allow_ips="127.0.0.1" if listen.behind_proxy else None,
        server_header=False,
        http="httptools",  # C parser and plain chunk writes: h11 took most of the API's CPU (bench/api.py)
        log_level="warning",
        timeout_graceful_shutdown=2,
        lifespan="off",
    )
    return _Server(config)


def bound_port(server: uvicorn.Server) -> int:
    """Return the port the server listens on (``--port 0`` picks a free one)."""
    for s in server.servers:
        for sock in s.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("the server is not listening")


async def _run_beside(
    server: _Server,
    engine_run: Awaitable[object],
    stop_engine: Callable[[], None],
    on_listening: Callable[[int], None],
    plane: Callable[[], ControlPlane | None],
) -> object:
    """Run the server and the engine together; whichever ends first ends the other."""
    serving = asyncio.create_task(server.serve(), name="api")
    while not server.started:
        if serving.done():
            await serving  # the bind failed: its error, nothing of the engine started
            raise OSError(f"could not listen on {server.config.host}:{server.config.port}")
        await asyncio.sleep(0.02)
    on_listening(bound_port(server))
    calm_collector()  # what was built so far lives as long as the process
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop_engine)
    running = asyncio.ensure_future(engine_run)
    try:
        await asyncio.wait({serving, running}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():  # the server died: stop the engine gracefully
            stop_engine()
        return await running
    finally:
        current = plane()
        if current is not None:
            current.stopped = True
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def serve_replay(
    config: NutcrackerConfig,
    data: Mapping[str, CandleArrays],
    journal_path: Path,
    authenticator: Authenticator,
    listen: Listen,
    *,
    speed: float,
    candles: int | None,
    on_listening: Callable[[int], None],
    on_report: Callable[[PulseReport], None] = lambda report: None,
    heartbeat_s: float = 15.0,
    metrics_token: str | None = None,
) -> BacktestResult:
    """Serve the API over a replay of ``data`` (simulated exchange and clock) until it ends or a signal."""
    metrics = ApiMetrics()
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal = SqliteJournal(journal_path)
    try:
        setup = build_replay(config, data, journal, wrap_exchange=lambda x: TimedExchange(x, metrics))
        plane = ControlPlane(
            setup.engine,
            journal,
            config,
            accounts=accounts_of(config, Mode.REPLAY, None),
            clock=setup.clock,
            mode=str(Mode.REPLAY),
        )
        app = create_app(
            authenticator, plane, metrics=metrics, heartbeat_s=heartbeat_s, metrics_token=metrics_token
        )
        suggestions.enable(app, journal_path)
        stop = asyncio.Event()
        replay = run_replay(setup, data, speed=speed, candles=candles, stop=stop, on_report=on_report)
        result = await _run_beside(_uvicorn(app, listen), replay, stop.set, on_listening, lambda: plane)
        assert isinstance(result, BacktestResult)
        return result
    finally:
        journal.close()


async def serve_connected(
    config: NutcrackerConfig,
    mode: Mode,
    journal_path: Path,
    authenticator: Authenticator,
    listen: Listen,
    *,
    on_listening: Callable[[int], None],
    run_connected: Callable[..., Awaitable[None]],
    key_name: str | None,
    heartbeat_s: float = 15.0,
    metrics_token: str | None = None,
    **options: object,
) -> None:
    """Serve the API over a paper or live engine (``app.connected.run_connected`` builds and runs it)."""
    metrics = ApiMetrics()
    app = create_app(authenticator, metrics=metrics, heartbeat_s=heartbeat_s, metrics_token=metrics_token)
    suggestions.enable(app, journal_path)
    holder: dict[str, Engine] = {}

    def on_engine(engine: Engine, journal: SqliteJournal) -> None:
        holder["engine"] = engine
        plane = ControlPlane(
            engine,
            journal,
            config,
            accounts=accounts_of(config, mode, key_name),
            clock=WallClock(),
            mode=str(mode),
        )
        attach(app, plane)
        calm_collector()  # the engine, built after the server started, lives as long as the process

    def stop_engine() -> None:
        engine = holder.get("engine")
        if engine is not None:
            engine.request_stop("signal")

    def wrap(exchange: HistoryExchange) -> HistoryExchange:
        return TimedExchange(exchange, metrics)

    run = run_connected(
        config,
        mode=str(mode),
        journal_path=journal_path,
        key_name=key_name,
        on_engine=on_engine,
        wrap_exchange=wrap,
        **options,
    )
    await _run_beside(_uvicorn(app, listen), run, stop_engine, on_listening, lambda: app.state.plane)


async def serve_fleet(
    config: NutcrackerConfig,
    store_url: str,
    authenticator: Authenticator,
    listen: Listen,
    *,
    on_listening: Callable[[int], None],
    key_name: str | None,
    heartbeat_s: float = 15.0,
    metrics_token: str | None = None,
    prefix: str = "nc:",
) -> None:
    """Serve the API for the symbols ``nutcracker worker`` processes trade on ``store_url``; no engine here.

    Reads come from the Redis journal (its events as they are journaled: ``EventFeed.follow``) and
    the reports the workers publish (about once a second); commands go through the Redis inbox to
    each symbol's owner (``app.fleet``). Runs until a signal.
    """
    journal = RedisJournal(store_url, prefix=prefix)
    try:
        fleet = FleetEngine(symbol_params(config), journal, prefix=prefix)
        plane = ControlPlane(
            fleet,
            journal,
            config,
            accounts=accounts_of(config, Mode.LIVE, key_name),
            clock=WallClock(),
            mode="workers",
        )
        fleet.refresh()
        app = create_app(
            authenticator, plane, metrics=ApiMetrics(), heartbeat_s=heartbeat_s, metrics_token=metrics_token
        )
        suggestions.enable(app, RedisSuggestions(store_url, prefix=prefix, client=journal.client))
        stop = asyncio.Event()

        async def follow() -> None:  # the reports once a second, the journal's events as they come
            await asyncio.gather(fleet.run(stop), plane.feed.follow(stop))

        await _run_beside(_uvicorn(app, listen), follow(), stop.set, on_listening, lambda: plane)
    finally:
        journal.close()
