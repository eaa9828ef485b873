"""``nutcracker data download`` end to end: a real sync ``ccxt.binance`` downloads the sim server's klines.

The client is pointed at the loopback server with the connector's ``api_url`` rewrite; the file it
writes must hold exactly the candles the server was given.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ccxt
import numpy as np
import pytest

from nutcracker.core.model import MarketInfo
from nutcracker.core.units import Precision
from nutcracker.exchange.ccxt_exchange import rebase_urls
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv
from nutcracker.marketdata.download import download_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer

SYMBOL = "ETH/USDT"
ETH = Precision(tick=Decimal("0.01"), lot=Decimal("0.0001"))
MINUTE = 60_000
T0 = 1_700_000_040_000  # a minute boundary
N = 25


def source_candles() -> CandleArrays:
    """Return 25 one-minute candles with varied prices (ticks) and volumes (exact in 8 decimals)."""
    rng = np.random.default_rng(7)
    close = 300_000 + np.cumsum(rng.integers(-250, 251, N)).astype(np.int64)  # around 3000.00
    open_ = np.concatenate([[300_000], close[:-1]]).astype(np.int64)
    high = np.maximum(open_, close) + rng.integers(0, 100, N)
    low = np.minimum(open_, close) - rng.integers(0, 100, N)
    volume = rng.integers(1, 10**9, N) / 10**4  # 4 decimals
    ts = T0 + MINUTE * np.arange(N, dtype=np.int64)
    return CandleArrays(ts, open_, high, low, close, volume, MINUTE, SYMBOL)


@pytest.fixture
def server() -> Iterator[SimServer]:
    market = MarketInfo(SYMBOL, "ETH", "USDT", ETH.tick, ETH.lot, Decimal(5), Decimal("0.001"))
    account = SimAccount("reader-key", "reader-secret", {})
    sim = SimServer({SYMBOL: MarketSpec(market, source_candles())}, [account], warmup=N)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def sync_binance(url: str) -> ccxt.binance:
    exchange = ccxt.binance(
        {
            "enableRateLimit": False,  # download_candles paces the requests itself
            "options": {"fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}},
        }
    )
    exchange.urls["api"] = rebase_urls(exchange.urls["api"], url)
    return exchange


@pytest.mark.parametrize("name", ["ETH-USDT_1m.csv", "ETH-USDT_1m.csv.gz"])
def test_download_writes_exactly_the_servers_candles_across_pages(
    server: SimServer, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    pauses: list[float] = []
    exchange = sync_binance(server.url)

    written = download_candles(
        exchange, SYMBOL, "1m", T0, out, limit=7, sleep=pauses.append, now_ms=server.now_ms, precision=ETH
    )

    assert written == N
    assert len(pauses) == 3  # four pages of at most 7 candles, paced by rateLimit in between
    assert pauses[0] == exchange.rateLimit / 1000
    got = load_candles_csv(out, ETH, SYMBOL)
    want = source_candles()
    for column in ("ts_ms", "open", "high", "low", "close"):
        assert getattr(got, column).tolist() == getattr(want, column).tolist(), column
    assert got.volume.tolist() == want.volume.tolist()
    assert got.interval_ms == MINUTE


def test_download_resumes_after_the_last_row_and_keeps_only_closed_candles(
    server: SimServer, tmp_path: Path
) -> None:
    out = tmp_path / "ETH-USDT_1m.csv"
    exchange = sync_binance(server.url)
    now_ms = T0 + 10 * MINUTE  # as if the clock stood after candle 9: candle 10 is still open

    first = download_candles(
        exchange, SYMBOL, "1m", T0, out, sleep=lambda _: None, now_ms=now_ms, precision=ETH
    )
    second = download_candles(
        exchange, SYMBOL, "1m", T0, out, sleep=lambda _: None, now_ms=server.now_ms, precision=ETH
    )

    assert (first, second) == (10, N - 10)
    got = load_candles_csv(out, ETH, SYMBOL)
    assert got.ts_ms.tolist() == source_candles().ts_ms.tolist()
    assert got.close.tolist() == source_candles().close.tolist()
