"""Download closed candles from an exchange into the shared-data CSV layout: paginated, resumable.

Works with any object offering ccxt's *synchronous* interface::

    import ccxt  # optional dependency, only needed here

    exchange = ccxt.binance({"enableRateLimit": False})  # we pace the requests ourselves
    n = download_candles(exchange, "BTC/USDT", "1m", since_ms, "data/binance_BTC-USDT_1m.csv.gz")

- **Paginated**: each request asks for ``limit`` candles from ``since``; the next ``since`` is the
  last timestamp received plus one interval. Exchange gaps are skipped naturally.
- **Resumable**: when ``out_path`` exists its last timestamp is read and the download continues
  after it; rows are only ever appended, strictly increasing (never duplicated or reordered).
  Every page is made durable before the next request, so an exception (e.g. ccxt's
  ``NetworkError``) loses nothing: it propagates, and calling again resumes.
- **Rate-limited**: ``sleep(exchange.rateLimit / 1000)`` between two requests (injectable).
- **Closed candles only**: a candle is written when ``ts + interval <= now`` and ``ts < until_ms``.
- Floats from ccxt are written as their shortest round-trip decimal (never an exponent); with
  ``precision`` prices are rounded (half-even) to the tick.
- Plain CSV is appended in place (``fsync`` per page); ``.gz`` is rewritten atomically per page
  (the old gzip members + one new member in a temp file, then ``os.replace``: no recompression).
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Protocol

from nutcracker.core.units import Precision
from nutcracker.errors import DataError
from nutcracker.marketdata.candles import (
    CANDLE_HEADER,
    decimal_to_plain,
    float_to_plain,
    timeframe_to_ms,
)

_DAY_MS = 86_400_000


class OhlcvClient(Protocol):
    """The part of a synchronous ccxt exchange this module uses."""

    @property
    def rateLimit(self) -> float:  # noqa: N802 - ccxt's name
        """Milliseconds to wait between two requests."""
        ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None, /
    ) -> Sequence[Sequence[float | None]]:
        """Return ``[[ts_ms, open, high, low, close, volume], ...]`` with ``ts_ms >= since``, ascending."""
        ...


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_existing(path: Path, interval_ms: int) -> tuple[bytes, int | None]:
    """Return the file's raw bytes (``b""`` if absent or empty) and its last candle timestamp."""
    if not path.exists() or path.stat().st_size == 0:
        return b"", None
    raw = path.read_bytes()
    is_gz = raw[:2] == b"\x1f\x8b"
    if is_gz != path.name.endswith(".gz"):
        kind = "gzip" if is_gz else "plain text"
        raise DataError(f"{path}: the file is {kind} but its name says otherwise; fix: rename it")
    text = gzip.decompress(raw) if is_gz else raw
    if not text.endswith(b"\n"):
        raise DataError(
            f"{path}: the last line is incomplete (no newline at the end); "
            "fix: delete the partial last line, then resume"
        )
    lines = text.split(b"\n")
    if lines[0] != CANDLE_HEADER.encode():
        raise DataError(
            f"{path}:1: header is {lines[0][:200]!r}, expected {CANDLE_HEADER!r}; fix: use a new file"
        )
    body = [ln for ln in lines[1:] if ln]
    if not body:
        return raw, None
    last = body[-1]
    field = last.split(b",", 1)[0]
    if not field.isdigit():
        raise DataError(
            f"{path}:{len(body) + 1}: last timestamp {field[:40]!r} is not integer ms; fix: repair the file"
        )
    last_ts = int(field)
    if _DAY_MS % interval_ms == 0 and last_ts % interval_ms:
        raise DataError(
            f"{path}:{len(body) + 1}: last timestamp {last_ts} is not on the {interval_ms} ms grid; "
            "fix: resume with the file's own timeframe"
        )
    return raw, last_ts


def _format_rows(rows: list[Sequence[float | None]], precision: Precision | None, symbol: str) -> str:
    out: list[str] = []
    for row in rows:
        if len(row) < 6 or any(v is None for v in row[:6]):
            raise DataError(
                f"{symbol}: the exchange sent an incomplete candle {list(row)!r}; fix: retry later"
            )
        ts = int(row[0])  # type: ignore[arg-type]
        values = [float(v) for v in row[1:6]]  # type: ignore[arg-type]
        if precision is None:
            o, h, lo, c = (float_to_plain(v) for v in values[:4])
            ticks = [Decimal(s) for s in (o, h, lo, c)]
        else:
            ticks = [
                Decimal(precision.price_to_ticks(Decimal(float_to_plain(v)), ROUND_HALF_EVEN))
                for v in values[:4]
            ]
            o, h, lo, c = (decimal_to_plain(precision.ticks_to_price(int(t))) for t in ticks)
        t_o, t_h, t_l, t_c = ticks
        if min(ticks) <= 0 or t_h < max(t_o, t_c) or t_l > min(t_o, t_c) or not values[4] >= 0:
            raise DataError(f"{symbol}: the exchange sent an inconsistent candle {list(row)!r} at {ts}")
        out.append(f"{ts},{o},{h},{lo},{c},{float_to_plain(values[4])}\n")
    return "".join(out)


def _append(path: Path, existing: bytes, chunk: str) -> bytes:
    """Make ``chunk`` durable at the end of ``path``; return the file's new raw bytes."""
    data = chunk.encode()
    if path.name.endswith(".gz"):
        new = existing + gzip.compress(data, compresslevel=6, mtime=0)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return new
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return existing + data


def download_candles(
    exchange: OhlcvClient,
    symbol: str,
    timeframe: str,
    since_ms: int,
    out_path: str | os.PathLike[str],
    *,
    limit: int = 1000,
    until_ms: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now_ms: Callable[[], int] | int | None = None,
    precision: Precision | None = None,
) -> int:
    """Download closed ``timeframe`` candles of ``symbol`` from ``since_ms`` into ``out_path``.

    Resumes after the last row of an existing file, stops when a page brings nothing new, at
    ``until_ms`` (exclusive, on candle open times) or at the last closed candle (``ts + interval
    <= now``; ``now_ms`` defaults to the wall clock, read once at the start). Returns the number of
    rows appended. Exceptions from the exchange propagate after the pages already received were
    written; call again to resume.
    """
    if limit <= 0:
        raise ValueError(f"limit must be > 0, got {limit}")
    interval = timeframe_to_ms(timeframe)
    now = now_ms() if callable(now_ms) else (_wall_clock_ms() if now_ms is None else now_ms)
    stop_ts = now - interval + 1  # exclusive: the candle opened at stop_ts - 1 closed at <= now
    if until_ms is not None:
        stop_ts = min(stop_ts, until_ms)
    path = Path(out_path)
    existing, last_ts = _read_existing(path, interval)
    since = since_ms if last_ts is None else max(since_ms, last_ts + interval)
    pause = float(exchange.rateLimit) / 1000.0
    requests = 0
    written = 0
    while since < stop_ts:
        if requests:
            sleep(pause)
        page = exchange.fetch_ohlcv(symbol, timeframe, since, limit)
        requests += 1
        fresh: list[Sequence[float | None]] = []
        prev = since - 1 if last_ts is None else last_ts
        beyond = False
        for row in page:
            ts = int(row[0])  # type: ignore[arg-type]
            if ts >= stop_ts:
                beyond = True
                break
            if ts <= prev:
                continue  # before since, overlap with what we have, or the exchange repeating itself
            if _DAY_MS % interval == 0 and ts % interval:
                raise DataError(f"{symbol}: the exchange sent a candle at {ts}, off the {timeframe} grid")
            fresh.append(row)
            prev = ts
        if not fresh:
            break
        chunk = _format_rows(fresh, precision, symbol)
        if not existing:
            chunk = CANDLE_HEADER + "\n" + chunk
        existing = _append(path, existing, chunk)
        written += len(fresh)
        last_ts = prev
        since = last_ts + interval
        if beyond:
            break
    return written


__all__ = ["OhlcvClient", "download_candles"]
