"""Fixtures for the sim-exchange tests: small BTC/USDT data, a running server with two accounts,
and sync ccxt clients (``ccxt_binance`` from ``sim_clients`` builds them)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_clients import ALICE, READ_ONLY, ccxt_binance

from nutcracker.core.units import Precision
from nutcracker.marketdata.candles import write_candles_csv
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, load_market
from nutcracker.simexchange.server import SimServer

__all__ = ["ccxt_binance"]

ROWS = 2000
SHARED_BTC = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "binance_BTC-USDT_1m.csv.gz"


@pytest.fixture(scope="session")
def btc_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the first 2000 one-minute BTC/USDT candles of the shared data (synthetic ones without it)."""
    path = tmp_path_factory.mktemp("sim-data") / "binance_BTC-USDT_1m.csv"
    if SHARED_BTC.is_file():
        with gzip.open(SHARED_BTC, "rt") as source:
            lines = [next(source) for _ in range(ROWS + 1)]
        path.write_text("".join(lines))
    else:
        precision = Precision(Decimal("0.01"), Decimal("0.00001"))
        arrays = synthetic_candles(7, ROWS, Decimal(60000), precision, symbol="BTC/USDT")
        write_candles_csv(path, arrays, precision)
    return path


@pytest.fixture(scope="session")
def btc_market(btc_csv: Path) -> MarketSpec:
    return load_market(btc_csv)


@pytest.fixture
def sim(btc_market: MarketSpec) -> Iterator[SimServer]:
    """A running sim-exchange, manual clock, BTC/USDT with 100 closed candles, accounts alice and bob."""
    server = SimServer({btc_market.symbol: btc_market}, [ALICE, READ_ONLY], warmup=100, seed=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def alice(sim: SimServer) -> Iterator[Any]:
    """A sync ccxt.binance client of account alice, markets loaded."""
    exchange = ccxt_binance(sim.url, ALICE.api_key, ALICE.secret)
    exchange.load_markets()
    yield exchange
    exchange.close()
