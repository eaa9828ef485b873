"""``nutcracker sim-exchange``: serve candle files as a Binance Spot REST API on 127.0.0.1.

The main CLI mounts ``sim_exchange`` with ``app.command("sim-exchange")(sim_exchange)``; until
then ``python -m nutcracker.simexchange.cli --help`` runs the same command. The server prints
one line ``sim-exchange: serving http://127.0.0.1:PORT ...`` once it accepts connections (handy
with ``--port 0``), then serves until interrupted (Ctrl-C or SIGTERM: exit 0). A bad accounts
file, data file or option exits with ``EXIT_CONFIG`` and a message naming what to fix.

It serves the market re-stamped to the wall clock at start (``--data-clock``: the data's own
times), Binance's rate limits (``--weight-limit``, ``--orders-10s-limit``, ``--orders-1d-limit``)
and the ``/sim/`` test controls only with ``--manual`` or ``--control``.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from nutcracker.errors import EXIT_CONFIG, ConfigError, DataError
from nutcracker.marketdata.candles import symbol_from_filename
from nutcracker.ranges import FAULT_TIMEOUT_MS, SEED, SIM_SPEED, WARMUP, check_option
from nutcracker.simexchange.accounts import MarketSpec, load_market, load_sim_setup
from nutcracker.simexchange.limits import RateLimits
from nutcracker.simexchange.server import DEFAULT_TIMEOUT_MS, FaultRule, SimServer

_SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+$")


def sim_exchange(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            help="Candle CSV (gzip or plain); the symbol comes from the file name "
            "(binance_BTC-USDT_1m.csv.gz -> BTC/USDT) unless written BTC/USDT=FILE. Repeat for more symbols.",
            metavar="[SYMBOL=]FILE",
        ),
    ],
    accounts: Annotated[
        Path,
        typer.Option(
            "--accounts",
            help="Accounts TOML: account tables (keys, balances, permissions), optional market rules.",
        ),
    ],
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0: any free port).")] = 8765,
    speed: Annotated[
        float | None,
        typer.Option("--speed", help="Advance the market clock by N candles per second (default 1)."),
    ] = None,
    manual: Annotated[
        bool, typer.Option("--manual", help="Move the clock only by POST /sim/advance?candles=N (tests).")
    ] = False,
    control: Annotated[
        bool,
        typer.Option(
            "--control", help="Serve the /sim/ test controls (advance, state, faults); on with --manual."
        ),
    ] = False,
    data_clock: Annotated[
        bool,
        typer.Option(
            "--data-clock",
            help="Serve the data's own timestamps; by default they are shifted so that the market "
            "starts at the wall clock (what clients that sync to the server's time need).",
        ),
    ] = False,
    weight_limit: Annotated[
        int, typer.Option("--weight-limit", help="Request weight per minute before HTTP 429 (Binance: 6000).")
    ] = 6000,
    orders_limit_10s: Annotated[
        int, typer.Option("--orders-10s-limit", help="New orders per 10 s per account (Binance: 100).")
    ] = 100,
    orders_limit_1d: Annotated[
        int, typer.Option("--orders-1d-limit", help="New orders per day per account (Binance: 200000).")
    ] = 200_000,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="KIND=VALUE, optionally @ENDPOINT,ENDPOINT: latency_ms=MS, or a probability for timeout, "
            "5xx, 502, 429, 418, drop_after_accept; endpoints default to the signed /api/v3 ones ('*': all, "
            "'POST:/api/v3/order': one). Repeatable.",
            metavar="KIND=VALUE",
        ),
    ] = None,
    fault_timeout_ms: Annotated[
        int, typer.Option("--fault-timeout-ms", help="How long a 'timeout' fault holds the request.")
    ] = DEFAULT_TIMEOUT_MS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fault draws.")] = 0,
    warmup: Annotated[
        int, typer.Option("--warmup", help="Candles closed before serving (history for indicators).")
    ] = 1,
) -> None:
    """Serve candle files as a Binance Spot REST API on 127.0.0.1, one matching engine per account."""
    err = typer.echo
    try:
        limits = _limits(weight_limit, orders_limit_10s, orders_limit_1d)
        server = _build(
            data,
            accounts,
            port,
            speed,
            manual,
            fault or [],
            fault_timeout_ms,
            seed,
            warmup,
            control=control,
            data_clock=data_clock,
            limits=limits,
        )
    except (ConfigError, DataError, ValueError) as e:
        err(f"✗ sim-exchange: {e}", err=True)
        raise typer.Exit(code=EXIT_CONFIG) from e
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
    try:
        url = server.start()
    except OSError as e:
        err(
            f"✗ sim-exchange: cannot listen on 127.0.0.1:{port}: {e.strerror}; choose another --port",
            err=True,
        )
        raise typer.Exit(code=EXIT_CONFIG) from e
    clock = "manual (POST /sim/advance?candles=N)" if manual else f"{speed or 1.0:g} candles/s"
    if control or manual:
        clock += " controls=/sim/"
    typer.echo(
        f"sim-exchange: serving {url} symbols={','.join(server.state()['candles'])} "
        f"accounts={len(server.state()['accounts'])} clock={clock} market_time={server.now_ms}"
    )
    sys.stdout.flush()
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    typer.echo("sim-exchange: stopped")


def _build(
    data: list[str],
    accounts: Path,
    port: int,
    speed: float | None,
    manual: bool,
    faults: list[str],
    timeout_ms: int,
    seed: int,
    warmup: int,
    *,
    control: bool = False,
    data_clock: bool = False,
    limits: RateLimits | None = None,
) -> SimServer:
    if manual and speed is not None:
        raise ConfigError("--speed and --manual exclude each other; choose one")
    if speed is not None and speed <= 0:
        raise ConfigError(f"--speed {speed}: give a positive number of candles per second")
    if not 0 <= timeout_ms <= 600_000:
        raise ConfigError(f"--fault-timeout-ms {timeout_ms}: give a number of ms between 0 and 600000")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: give a TCP port between 0 and 65535")
    check_option("--speed", speed, SIM_SPEED)  # NaN and infinities too
    check_option("--fault-timeout-ms", timeout_ms, FAULT_TIMEOUT_MS)
    check_option("--seed", seed, SEED)
    check_option("--warmup", warmup, WARMUP)
    if not data:
        raise ConfigError("--data: give at least one candle file")
    setup = load_sim_setup(accounts)
    markets: dict[str, MarketSpec] = {}
    for item in data:
        symbol, path = _data_arg(item)
        if symbol is None:
            try:
                symbol = symbol_from_filename(path)
            except ValueError as e:
                raise ConfigError(f"--data {item}: {e}; or write --data BASE/QUOTE=FILE") from e
        spec = load_market(path, symbol, setup.markets.get(symbol))
        if spec.symbol in markets:
            raise ConfigError(f"--data {item}: {spec.symbol} is given twice; one file per symbol")
        markets[spec.symbol] = spec
    shortest = min(len(m.candles.ts_ms) for m in markets.values())
    if warmup > shortest:
        raise ConfigError(
            f"--warmup {warmup}: the shortest data file has {shortest} candles; give at most that"
        )
    starts = {s: int(m.candles.ts_ms[0]) for s, m in markets.items()}
    ends = {s: int(m.candles.ts_ms[-1]) for s, m in markets.items()}
    if max(starts.values()) > min(ends.values()):
        typer.echo(
            "sim-exchange: warning: the data files do not overlap in time; the clock walks from the earliest "
            "candle, so some symbols have no candles for a long while",
            err=True,
        )
    unused = sorted(set(setup.markets) - set(markets))
    if unused:
        raise ConfigError(
            f"{accounts}: [[market]] {', '.join(unused)} has no --data file; remove it or add the data"
        )
    rules = []
    for text in faults:
        try:
            rules.append(FaultRule.parse(text))
        except ValueError as e:
            raise ConfigError(f"--fault {e}") from e
    return SimServer(
        markets,
        setup.accounts,
        speed=None if manual else (speed or 1.0),
        manual=manual,
        port=port,
        seed=seed,
        warmup=warmup,
        faults=rules,
        timeout_ms=timeout_ms,
        time_offset_ms=0 if data_clock else None,
        control=control,
        rate_limits=limits,
    )


def _limits(weight: int, orders_10s: int, orders_1d: int) -> RateLimits:
    for option, value in (
        ("--weight-limit", weight),
        ("--orders-10s-limit", orders_10s),
        ("--orders-1d-limit", orders_1d),
    ):
        if not 1 <= value <= 10**9:
            raise ConfigError(f"{option} {value}: give a whole number between 1 and 1000000000")
    return RateLimits(weight, orders_10s, orders_1d)


def _data_arg(item: str) -> tuple[str | None, Path]:
    """Split ``BTC/USDT=FILE`` into the symbol and the path; a plain ``FILE`` has no symbol."""
    symbol, sep, path = item.partition("=")
    if sep and _SYMBOL_RE.match(symbol.strip()):
        return symbol.strip(), Path(path)
    return None, Path(item)


def main() -> None:
    """Run ``sim-exchange`` as a stand-alone command (``python -m nutcracker.simexchange.cli``)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    typer.run(sim_exchange)


if __name__ == "__main__":
    main()
