"""Candle download through a ccxt-like client: pagination, resume, rate limit, closed candles only."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from nutcracker.core.units import Precision
from nutcracker.errors import DataError
from nutcracker.marketdata import (
    CANDLE_HEADER,
    download_candles,
    load_candles_csv,
    synthetic_candles,
)

BTC = Precision(tick=Decimal("0.01"), lot=Decimal("0.00001"))
MINUTE = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
N = 2_500


class NetworkError(Exception):
    """Stands in for ccxt.NetworkError."""


class FakeExchange:
    """Serves 1m candles like ccxt's fetch_ohlcv: rows with ts >= since, at most ``limit``, ascending."""

    def __init__(
        self,
        rows: list[list[float]],
        *,
        rate_limit: int = 50,
        fail_on_calls: tuple[int, ...] = (),
        overlap: int = 0,
        max_limit: int = 1_000,
    ) -> None:
        self.rows = rows
        self.rateLimit = rate_limit
        self.fail_on_calls = fail_on_calls
        self.overlap = overlap  # also return this many rows before ``since`` (seen on some exchanges)
        self.max_limit = max_limit
        self.calls: list[tuple[str, str, int | None, int | None]] = []

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[float]]:
        self.calls.append((symbol, timeframe, since, limit))
        if len(self.calls) in self.fail_on_calls:
            raise NetworkError("binance GET https://api.binance.com/api/v3/klines: connection reset")
        first = next((i for i, r in enumerate(self.rows) if since is None or r[0] >= since), len(self.rows))
        first = max(0, first - self.overlap)
        count = min(limit or self.max_limit, self.max_limit)
        return [list(r) for r in self.rows[first : first + count]]


def _market_rows(n: int = N) -> list[list[float]]:
    """Exchange-like float rows built from a synthetic series (prices exact to the cent)."""
    a = synthetic_candles(9, n, Decimal("42000"), BTC, start_ts_ms=T0)
    columns = (a.ts_ms, a.open, a.high, a.low, a.close, a.volume)
    return [
        [int(t), o / 100, h / 100, lo / 100, c / 100, v]
        for t, o, h, lo, c, v in zip(*(col.tolist() for col in columns), strict=True)
    ]


# now: the last row (T0 + (N-1) min) opened 30 s ago, so it is still open
NOW = T0 + (N - 1) * MINUTE + 30_000


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _text(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode()


def _timestamps(path: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in _text(path).splitlines()[1:]]


@pytest.fixture(params=["binance_BTC-USDT_1m.csv.gz", "binance_BTC-USDT_1m.csv"])
def out(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / request.param


def test_a_full_download_pages_through_everything_and_skips_the_open_candle(out: Path) -> None:
    rows = _market_rows()
    ex = FakeExchange(rows)
    sleeps = Sleeps()
    written = download_candles(ex, "BTC/USDT", "1m", T0, out, sleep=sleeps, now_ms=NOW, precision=BTC)
    assert written == N - 1
    assert [c[2] for c in ex.calls] == [T0, T0 + 1000 * MINUTE, T0 + 2000 * MINUTE]
    assert all(c[:2] == ("BTC/USDT", "1m") and c[3] == 1000 for c in ex.calls)
    assert sleeps == [0.05, 0.05]  # rateLimit ms between requests, none before the first
    arrays = load_candles_csv(out, BTC)
    assert arrays.ts_ms.tolist() == [r[0] for r in rows[:-1]]
    assert arrays.open.tolist() == [round(r[1] * 100) for r in rows[:-1]]
    assert arrays.volume.tolist() == [r[5] for r in rows[:-1]]
    assert _text(out).startswith(CANDLE_HEADER + "\n")


def test_a_candle_is_closed_exactly_when_its_open_plus_one_interval_is_not_after_now(tmp_path: Path) -> None:
    rows = _market_rows(10)
    last = rows[-1][0]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert (
        download_candles(
            FakeExchange(rows), "BTC/USDT", "1m", T0, a, sleep=Sleeps(), now_ms=last + MINUTE - 1
        )
        == 9
    )
    assert (
        download_candles(FakeExchange(rows), "BTC/USDT", "1m", T0, b, sleep=Sleeps(), now_ms=last + MINUTE)
        == 10
    )


def test_a_second_run_resumes_after_the_last_row_and_appends_only_new_candles(
    out: Path, tmp_path: Path
) -> None:
    rows = _market_rows()
    until = T0 + 1_234 * MINUTE
    first = download_candles(
        FakeExchange(rows), "BTC/USDT", "1m", T0, out, until_ms=until, sleep=Sleeps(), now_ms=NOW
    )
    assert first == 1_234
    assert _timestamps(out)[-1] == until - MINUTE
    ex = FakeExchange(rows)
    second = download_candles(ex, "BTC/USDT", "1m", T0, out, sleep=Sleeps(), now_ms=NOW)
    assert second == N - 1 - 1_234
    assert ex.calls[0][2] == until  # continued after the last row, not from since_ms
    once = tmp_path / ("once" + out.name)
    download_candles(FakeExchange(rows), "BTC/USDT", "1m", T0, once, sleep=Sleeps(), now_ms=NOW)
    assert _text(out) == _text(once)
    ts = _timestamps(out)
    assert len(ts) == len(set(ts)) == N - 1
    assert ts == sorted(ts)


def test_a_network_error_loses_no_page_and_a_rerun_finishes_the_file(out: Path, tmp_path: Path) -> None:
    rows = _market_rows()
    flaky = FakeExchange(rows, fail_on_calls=(2,))
    with pytest.raises(NetworkError):
        download_candles(flaky, "BTC/USDT", "1m", T0, out, sleep=Sleeps(), now_ms=NOW, precision=BTC)
    assert len(_timestamps(out)) == 1_000  # the first page is on disk, the file is valid
    assert len(load_candles_csv(out, BTC)) == 1_000
    assert not list(out.parent.glob("*.tmp"))
    assert (
        download_candles(FakeExchange(rows), "BTC/USDT", "1m", T0, out, sleep=Sleeps(), now_ms=NOW)
        == N - 1_001
    )
    once = tmp_path / ("once" + out.name)
    download_candles(
        FakeExchange(rows), "BTC/USDT", "1m", T0, once, sleep=Sleeps(), now_ms=NOW, precision=BTC
    )
    assert _text(out) == _text(once)


def test_overlapping_pages_never_duplicate_a_row_at_the_page_boundary(out: Path) -> None:
    rows = _market_rows()
    ex = FakeExchange(rows, overlap=3, max_limit=500)
    written = download_candles(ex, "BTC/USDT", "1m", T0, out, limit=1000, sleep=Sleeps(), now_ms=NOW)
    ts = _timestamps(out)
    assert written == len(ts) == N - 1
    assert (np.diff(ts) == MINUTE).all()
    assert len(ex.calls) == 6  # pages capped at 500, 3 of them old: 500 + 4 * 497 < 2,499 <= 500 + 5 * 497


def test_an_exchange_repeating_the_same_page_stops_the_download(tmp_path: Path) -> None:
    rows = _market_rows(20)

    class Stuck(FakeExchange):
        def fetch_ohlcv(
            self, symbol: str, timeframe: str, since: int | None, limit: int | None
        ) -> list[list[float]]:
            return super().fetch_ohlcv(symbol, timeframe, T0, 5)  # ignores since

    ex = Stuck(rows)
    assert download_candles(ex, "BTC/USDT", "1m", T0, tmp_path / "x.csv", sleep=Sleeps(), now_ms=NOW) == 5
    assert len(ex.calls) == 2


def test_an_empty_answer_writes_nothing_and_creates_no_file(tmp_path: Path) -> None:
    ex = FakeExchange([])
    path = tmp_path / "binance_BTC-USDT_1m.csv.gz"
    assert download_candles(ex, "BTC/USDT", "1m", T0, path, sleep=Sleeps(), now_ms=NOW) == 0
    assert not path.exists()
    assert len(ex.calls) == 1


def test_a_complete_file_makes_no_request(out: Path) -> None:
    rows = _market_rows(50)
    now = rows[-1][0] + MINUTE
    download_candles(FakeExchange(rows), "BTC/USDT", "1m", T0, out, sleep=Sleeps(), now_ms=now)
    ex = FakeExchange(rows)
    assert download_candles(ex, "BTC/USDT", "1m", T0, out, sleep=Sleeps(), now_ms=now) == 0
    assert ex.calls == []


def test_floats_are_written_without_exponent_and_prices_rounded_to_the_tick(tmp_path: Path) -> None:
    rows = [[T0, 0.1 + 0.2, 0.31, 0.29, 0.3, 1e-05], [T0 + MINUTE, 0.3, 1e-07 + 0.3, 0.3, 0.3, 12.0]]
    plain, ticked = tmp_path / "plain.csv", tmp_path / "ticked.csv"
    now = T0 + 2 * MINUTE
    download_candles(FakeExchange(rows), "X/Y", "1m", T0, plain, sleep=Sleeps(), now_ms=now)
    download_candles(FakeExchange(rows), "X/Y", "1m", T0, ticked, sleep=Sleeps(), now_ms=now, precision=BTC)
    assert _text(plain).splitlines()[1:] == [
        f"{T0},0.30000000000000004,0.31,0.29,0.3,0.00001",
        f"{T0 + MINUTE},0.3,0.3000001,0.3,0.3,12",
    ]
    assert _text(ticked).splitlines()[1:] == [
        f"{T0},0.3,0.31,0.29,0.3,0.00001",
        f"{T0 + MINUTE},0.3,0.3,0.3,0.3,12",
    ]


def test_an_incomplete_last_line_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{CANDLE_HEADER}\n{T0},1,1,1,1,1\n{T0 + MINUTE},1,1")
    with pytest.raises(DataError, match=r"last line is incomplete.*fix: delete the partial last line"):
        download_candles(FakeExchange(_market_rows(5)), "X/Y", "1m", T0, path, sleep=Sleeps(), now_ms=NOW)


def test_resuming_a_file_of_another_timeframe_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(f"{CANDLE_HEADER}\n{T0 + MINUTE},1,1,1,1,1\n")
    with pytest.raises(DataError, match="not on the 300000 ms grid"):
        download_candles(FakeExchange(_market_rows(5)), "X/Y", "5m", T0, path, sleep=Sleeps(), now_ms=NOW)


def test_a_header_only_file_is_filled_from_since(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(CANDLE_HEADER + "\n")
    rows = _market_rows(5)
    assert download_candles(FakeExchange(rows), "X/Y", "1m", T0, path, sleep=Sleeps(), now_ms=NOW) == 5
    assert _text(path).count(CANDLE_HEADER) == 1


def test_an_inconsistent_candle_from_the_exchange_is_refused(tmp_path: Path) -> None:
    rows = [[T0, 10.0, 9.0, 8.0, 9.5, 1.0]]  # high below open
    with pytest.raises(DataError, match="inconsistent candle"):
        download_candles(FakeExchange(rows), "X/Y", "1m", T0, tmp_path / "x.csv", sleep=Sleeps(), now_ms=NOW)


def test_rows_before_since_are_not_written_even_if_the_exchange_sends_them(tmp_path: Path) -> None:
    rows = _market_rows(20)
    path = tmp_path / "x.csv"
    since = T0 + 10 * MINUTE
    ex = FakeExchange(rows, overlap=4)
    assert download_candles(ex, "X/Y", "1m", since, path, sleep=Sleeps(), now_ms=NOW) == 10
    assert _timestamps(path)[0] == since


def test_a_candle_off_the_timeframe_grid_is_refused(tmp_path: Path) -> None:
    rows = [[T0 + 1_000, 1.0, 1.0, 1.0, 1.0, 1.0]]
    with pytest.raises(DataError, match="off the 1m grid"):
        download_candles(FakeExchange(rows), "X/Y", "1m", T0, tmp_path / "x.csv", sleep=Sleeps(), now_ms=NOW)
