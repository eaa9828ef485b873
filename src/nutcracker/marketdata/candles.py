"""Candle and trade files: exact, fast, validated loading and writing.

Layout (see ``../shared/data/README.md``): gzip or plain CSV, one header line, ``\\n`` line
endings, plain decimals (no exponent).

- candles: ``timestamp,open,high,low,close,volume``; ``timestamp`` = epoch ms of the candle
  open, strictly increasing and aligned to the bar; gaps are left as gaps.
- trades: ``timestamp,price,amount,side``; ``side`` is the taker (aggressor) side.
- best bid and offer (BBO): ``timestamp,bid,bid_size,ask,ask_size``, one row per top-of-book update.

Prices become integer ticks *exactly*: the decimal strings are parsed digit by digit (vectorised
with numpy over the raw bytes, no binary float on the way), and a price off the tick grid is an
error naming the file, the line and the value. Volumes stay ``float64`` (base units). Candle files
are read and parsed in blocks of lines, so memory stays near the size of the resulting arrays.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from nutcracker.core.model import Candle
from nutcracker.core.units import Precision
from nutcracker.errors import DataError

I64: TypeAlias = npt.NDArray[np.int64]
F64: TypeAlias = npt.NDArray[np.float64]
U8: TypeAlias = npt.NDArray[np.uint8]
BoolArr: TypeAlias = npt.NDArray[np.bool_]
_G = TypeVar("_G", bound=np.generic)

CANDLE_HEADER = "timestamp,open,high,low,close,volume"
TRADE_HEADER = "timestamp,price,amount,side"
BBO_HEADER = "timestamp,bid,bid_size,ask,ask_size"

FILENAME_RE = re.compile(
    r"^(?P<ex>[a-z]+)_(?P<base>[A-Z0-9]+)-(?P<quote>[A-Z0-9]+)_(?P<kind>1m|5m|trades|bbo|book)"
    r"(?:_(?P<d0>\d{8})(?:-(?P<d1>\d{8}))?)?\.csv(?:\.gz)?$"
)
"""The data README's file-name regex, also accepting an uncompressed ``.csv``."""

_DAY_MS = 86_400_000
_TIMEFRAME_RE = re.compile(r"^(?P<n>[1-9][0-9]*)(?P<unit>[smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": _DAY_MS, "w": 7 * _DAY_MS}
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_POW10_F = np.array([float(10**k) for k in range(23)])  # exact: 10**22 < 2**53 * 2**22
_MAX_POWER = 17  # values are < 10**18, far from the int64 limit (9.2e18)
_MAX_FIELD = 40  # longer numeric fields (rare: tiny floats, float noise) take a slow exact path
_PLAIN_RE = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")

# codes of _parse_fixed
_OK, _MALFORMED, _BEYOND_SCALE, _TOO_BIG, _LONG = 0, 1, 2, 3, 4


# --------------------------------------------------------------------------------------------
# value types


def _freeze_columns(value: object, names: tuple[str, ...]) -> None:
    """Check that the named arrays of ``value`` are 1-d of one length, and make them read-only."""
    n = len(getattr(value, names[0]))
    for name in names:
        a = getattr(value, name)
        if a.ndim != 1 or len(a) != n:
            raise ValueError(f"{type(value).__name__}.{name} must be 1-d of length {n}, got shape {a.shape}")
        a.flags.writeable = False


@dataclass(frozen=True, slots=True, eq=False)
class CandleArrays:
    """A candle series as parallel numpy arrays: prices in integer ticks, volume in base units.

    ``ts_ms`` is the candle open (epoch ms), strictly increasing; ``interval_ms`` the bar size.
    Arrays are made read-only on construction (the value is shared between runs).
    """

    ts_ms: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: F64
    interval_ms: int
    symbol: str

    def __post_init__(self) -> None:
        _freeze_columns(self, ("ts_ms", "open", "high", "low", "close", "volume"))
        if self.interval_ms <= 0:
            raise ValueError(f"CandleArrays.interval_ms must be > 0, got {self.interval_ms}")

    def __len__(self) -> int:
        return len(self.ts_ms)

    def slice(self, start: int = 0, stop: int | None = None) -> CandleArrays:
        """Return rows ``start:stop`` (views, no copy)."""
        s = slice(start, stop)
        return CandleArrays(
            self.ts_ms[s],
            self.open[s],
            self.high[s],
            self.low[s],
            self.close[s],
            self.volume[s],
            self.interval_ms,
            self.symbol,
        )


@dataclass(frozen=True, slots=True, eq=False)
class TradeArrays:
    """Public trades as parallel arrays: price in ticks, quantity in lots, the taker's side."""

    ts_ms: I64
    price: I64
    qty: I64
    taker_is_buy: BoolArr
    symbol: str

    def __post_init__(self) -> None:
        _freeze_columns(self, ("ts_ms", "price", "qty", "taker_is_buy"))

    def __len__(self) -> int:
        return len(self.ts_ms)


@dataclass(frozen=True, slots=True, eq=False)
class BboArrays:
    """Top-of-book updates as parallel arrays: prices in ticks, sizes in lots (rounded to the lot)."""

    ts_ms: I64
    bid: I64
    bid_lots: I64
    ask: I64
    ask_lots: I64
    symbol: str

    def __post_init__(self) -> None:
        _freeze_columns(self, ("ts_ms", "bid", "bid_lots", "ask", "ask_lots"))

    def __len__(self) -> int:
        return len(self.ts_ms)


# --------------------------------------------------------------------------------------------
# small helpers


def symbol_from_filename(path: str | os.PathLike[str]) -> str:
    """Return the unified symbol of a data file name: ``binance_BTC-USDT_1m.csv.gz`` -> ``BTC/USDT``."""
    name = Path(path).name
    m = FILENAME_RE.match(name)
    if m is None:
        raise ValueError(
            f"cannot read a symbol from file name {name!r}: expected "
            "'{exchange}_{BASE}-{QUOTE}_{kind}[_{YYYYMMDD}[-{YYYYMMDD}]].csv.gz' "
            "(e.g. binance_BTC-USDT_1m.csv.gz); pass symbol= explicitly"
        )
    return f"{m['base']}/{m['quote']}"


def timeframe_to_ms(timeframe: str) -> int:
    """Return the length of a ccxt timeframe (``1m``, ``5m``, ``1h``, ``1d``, ``1w``) in ms."""
    m = _TIMEFRAME_RE.match(timeframe)
    if m is None:
        raise ValueError(f"unsupported timeframe {timeframe!r}: use e.g. '1m', '5m', '1h', '1d', '1w'")
    return int(m["n"]) * _UNIT_MS[m["unit"]]


def _decimals(step: Decimal, what: str) -> tuple[int, int]:
    """Return ``(scale, step_scaled)``: the decimals of ``step`` and ``step * 10**scale`` (an int)."""
    if not step.is_finite() or step <= 0:
        raise ValueError(f"{what} must be a positive number, got {step}")
    exp = step.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    scale = max(0, -exp)
    if scale > _MAX_POWER:
        raise ValueError(f"{what} {step} has more than {_MAX_POWER} decimals")
    return scale, int(step.scaleb(scale))


_BLOCK_BYTES = 1 << 20
"""Text parsed at a time, about 17k candle lines: a block's temporaries stay in cache and at a few MB
(a year of 1m candles parsed at once peaked at ~230 MB); 1 MB loaded faster than 0.5, 4 or 8 MB."""

_NL = ord("\n")


def _pieces(path: Path, size: int) -> Generator[bytes, None, None]:
    """Yield the file's bytes, gunzipped if they start with the gzip magic, ``size`` at a time (-1: all)."""
    with open(path, "rb") as f:
        if f.peek(2)[:2] != b"\x1f\x8b":
            yield from iter(lambda: f.read(size), b"")
            return
        with gzip.GzipFile(fileobj=f) as z:
            try:
                yield from iter(lambda: z.read(size), b"")
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(f"{path}: corrupt gzip stream ({exc}); fix: download the file again") from exc


def _lf(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n") if b"\r" in text else text


def _cut(data: bytes) -> tuple[bytes, bytes]:
    """Split ``data`` after its last non-empty line: ``(lines, rest)``, CRLF read as LF in ``lines``.

    ``lines`` has no final newline; the newlines after it stay in ``rest``, so they are dropped at the
    end of the file and count as blank lines (refused) before more text.
    """
    end = data.rfind(b"\n") + 1
    lines, rest = _lf(data[:end]), data[end:]  # no CRLF pair is cut: lines ends at a line end
    stop = len(lines) - 1
    while stop > 0 and lines[stop - 1] == _NL:
        stop -= 1
    if stop <= 0:
        return b"", lines + rest
    return lines[:stop], lines[stop + 1 :] + rest


def _line_blocks(pieces: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Regroup pieces of text into blocks of whole lines; a line cut between pieces goes to the next block.

    The last piece and what is carried into it make one block, so a file read in a single piece is
    a single block. Pieces without a line end are only collected (no quadratic re-copying).
    """
    carry: list[bytes] = []
    piece = next(pieces, b"")
    while piece:
        after = next(pieces, b"")
        if after and b"\n" in piece:
            lines, rest = _cut(b"".join([*carry, piece]))
            carry = [rest]
            if lines:
                yield lines
        else:
            carry.append(piece)
        piece = after
    tail = _lf(b"".join(carry)).rstrip(b"\n")
    if tail:
        yield tail


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


_ROWS_PER_BLOCK = 32_768


class _Table:
    """A block of CSV data lines split into field offsets; row ``r`` is the file's line ``row0 + r + 2``."""

    def __init__(self, path: Path, buf: U8, header: str, row0: int = 0) -> None:
        self.path = path
        self.buf = buf
        self.row0 = row0
        ncols = header.count(",") + 1
        end = len(buf)
        seps = np.flatnonzero((buf == ord(",")) | (buf == _NL))
        is_line_end = buf[seps] == _NL
        if end:
            seps = np.append(seps, end)
            is_line_end = np.append(is_line_end, True)
        line_ends = np.flatnonzero(is_line_end)
        fields_per_line = np.diff(line_ends, prepend=-1)
        bad = np.flatnonzero(fields_per_line != ncols)
        if len(bad):
            row = int(bad[0])
            raise DataError(
                f"{self.where(row)}: {int(fields_per_line[row])} fields "
                f"({self.text_of_line(row, line_ends, seps)!r}), expected {ncols} ({header}); "
                "fix: one record per line, comma-separated, no blank lines"
            )
        self.n = len(line_ends)
        ends = seps.reshape(self.n, ncols) if self.n else np.zeros((0, ncols), dtype=np.int64)
        starts = np.empty_like(ends)
        if self.n:
            starts.flat[0] = 0
            starts.flat[1:] = ends.flat[:-1] + 1
        self.starts: I64 = starts.astype(np.int64, copy=False)
        self.ends: I64 = ends.astype(np.int64, copy=False)

    def where(self, row: int) -> str:
        return _where(self.path, self.row0 + row + 2)

    def text_of_line(self, row: int, line_ends: I64, seps: I64) -> str:
        stop = int(seps[line_ends[row]]) if row < len(line_ends) else len(self.buf)
        start = int(seps[line_ends[row - 1]]) + 1 if row > 0 else 0
        return self.buf[start:stop].tobytes()[:200].decode("utf-8", errors="replace")

    def value(self, row: int, col: int, limit: int | None = 200) -> str:
        s, e = int(self.starts[row, col]), int(self.ends[row, col])
        return self.buf[s:e].tobytes()[:limit].decode("utf-8", errors="replace")

    def chars(self, col: int) -> tuple[U8, I64]:
        """Return the fields of ``col`` as a zero-padded ``(n, width)`` byte matrix, and their lengths."""
        starts, ends = self.starts[:, col], self.ends[:, col]
        lengths = ends - starts
        width = int(lengths.max()) if self.n else 0
        cols = np.arange(width)
        ch = np.zeros((self.n, width), dtype=np.uint8)
        for a in range(0, self.n, _ROWS_PER_BLOCK):  # blocks: the int64 index matrix stays small
            b = min(self.n, a + _ROWS_PER_BLOCK)
            valid = cols[None, :] < lengths[a:b, None]
            idx = np.where(valid, starts[a:b, None] + cols[None, :], 0)
            ch[a:b] = np.where(valid, self.buf[idx] if len(self.buf) else 0, 0)
        return ch, lengths

    def fail(self, row: int, col: int, name: str, problem: str, fix: str) -> DataError:
        return DataError(f"{self.where(row)}: {name} {self.value(row, col)!r} {problem}; fix: {fix}")


def _tables(path: Path, header: str, block_bytes: int) -> Generator[_Table, None, None]:
    """Yield the data lines of a CSV file as tables of about ``block_bytes`` of text (-1: one table).

    The header is checked first. A bad field count raises at once: it is the first problem a
    one-pass parse reports, whatever the later lines hold.
    """
    pieces = _pieces(path, block_bytes)
    blocks = _line_blocks(pieces)
    try:
        yield from _tables_of(path, header, blocks)
    finally:  # close the file now, not when an error's traceback lets the generators go
        blocks.close()
        pieces.close()


def _tables_of(path: Path, header: str, blocks: Iterator[bytes]) -> Iterator[_Table]:
    first = next(blocks, b"")
    nl = first.find(b"\n")
    head = first if nl < 0 else first[:nl]
    if head != header.encode():
        shown = head[:200].decode("utf-8", errors="replace")
        raise DataError(
            f"{_where(path, 1)}: header is {shown!r}, expected {header!r}; "
            f"fix: the first line must be exactly {header!r} (comma-separated, no index column)"
        )
    body = np.frombuffer(first, dtype=np.uint8)[nl + 1 :] if nl >= 0 else np.zeros(0, dtype=np.uint8)
    row0 = 0
    for buf in chain([body], (np.frombuffer(b, dtype=np.uint8) for b in blocks)):
        if len(buf):
            table = _Table(path, buf, header, row0)
            yield table
            row0 += table.n


class _Faults:
    """The first bad field of a file parsed in blocks, as a one-pass parse would report it.

    Keys order the faults like that parse: the parse call (by its first column; the calls go left to
    right), the kind of problem, the column, then the line. ``make`` runs only for a new first fault.
    """

    def __init__(self) -> None:
        self._first: tuple[tuple[int, int, int, int], DataError] | None = None

    def add(self, key: tuple[int, int, int, int], make: Callable[[], DataError]) -> None:
        if self._first is None or key < self._first[0]:
            self._first = (key, make())

    def raise_first(self) -> None:
        if self._first is not None:
            raise self._first[1]


def _scan(buf: U8, starts: I64, ends: I64) -> tuple[I64, I64, npt.NDArray[np.int8]]:
    """Scan plain decimals ``-?digits[.digits]`` column by column (Horner's rule over the bytes).

    Returns the signed integer mantissa (all digits, the dot removed), the number of digits after
    the dot and a code per field: ``_OK``, ``_MALFORMED`` or ``_LONG`` (longer than ``_MAX_FIELD``
    or a mantissa above ~9.2e16: the caller parses those few fields one by one, exactly).
    """
    n = len(starts)
    lengths = ends - starts
    too_long = lengths > _MAX_FIELD
    lengths = np.minimum(lengths, _MAX_FIELD)
    width = int(lengths.max()) if n else 0
    mant = np.zeros(n, dtype=np.int64)
    frac = np.zeros(n, dtype=np.int16)
    bad = np.zeros(n, dtype=np.bool_)
    big = np.zeros(n, dtype=np.bool_)
    ndots = np.zeros(n, dtype=np.int16)
    ndig = np.zeros(n, dtype=np.int16)
    neg = np.zeros(n, dtype=np.bool_)
    limit = (2**63 - 1) // 100
    for j in range(width):
        c = np.take(buf, starts + j, mode="clip")
        valid = lengths > j
        d = c - np.uint8(ord("0"))
        is_digit = d <= 9
        is_digit &= valid
        is_dot = c == ord(".")
        is_dot &= valid
        other = ~is_digit & ~is_dot & valid
        if j == 0:
            neg = other & (c == ord("-"))
            other &= ~neg
        bad |= other
        frac += is_digit & (ndots > 0)
        ndots += is_dot
        ndig += is_digit
        big |= is_digit & (mant > limit)
        mant *= np.where(is_digit, 10, 1)
        mant += d * is_digit
    codes = np.zeros(n, dtype=np.int8)
    codes[big] = _LONG
    dotted = ndots == 1
    codes[bad | (ndots > 1) | (ndig == 0) | (dotted & ((frac == 0) | (ndig == frac)))] = _MALFORMED
    codes[too_long] = _LONG
    return np.where(neg, -mant, mant), frac.astype(np.int64), codes


def _rescale(mant: I64, frac: I64, codes: npt.NDArray[np.int8], scale: int) -> I64:
    """Turn ``mant * 10**-frac`` into ``value * 10**scale``, updating ``codes`` in place."""
    k = scale - frac
    up = k >= 0
    mult = _POW10[np.clip(k, 0, 18)]
    big = up & (np.abs(mant) > (10**18 - 1) // mult)
    div = _POW10[np.clip(-k, 0, 18)]
    beyond = ~up & np.where(-k > 18, mant != 0, mant % div != 0)
    codes[(codes == _OK) & big] = _TOO_BIG
    codes[(codes == _OK) & beyond] = _BEYOND_SCALE
    return np.where(up, mant * mult, mant // div).astype(np.int64)


def _first(mask: BoolArr) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def _parse_int_column(t: _Table, col: int, name: str, faults: _Faults) -> I64:
    mant, frac, codes = _scan(t.buf, t.starts[:, col], t.ends[:, col])
    row = _first((codes != _OK) | (frac != 0))
    if row is not None:
        problem, fix = "is not an integer of at most 17 digits", f"write {name} as integer epoch ms"
        faults.add((col, 0, col, t.row0 + row), partial(t.fail, row, col, name, problem, fix))
    return mant


def _parse_grid_columns(
    t: _Table,
    cols: tuple[int, ...],
    names: tuple[str, ...],
    step: Decimal,
    unit: str,
    faults: _Faults,
    *,
    round_to_grid: bool = False,
) -> list[I64]:
    """Parse decimal columns into integer multiples of ``step`` (ticks or lots), exactly."""
    scale, step_scaled = _decimals(step, unit)
    n = t.n
    mant, frac, codes = _scan(t.buf, t.starts[:, cols].T.ravel(), t.ends[:, cols].T.ravel())
    values = _rescale(mant, frac, codes, scale)
    codes[(codes == _OK) & (values % step_scaled != 0)] = _BEYOND_SCALE
    units = values // step_scaled

    def locate(i: int) -> tuple[int, int, str]:
        return i % n, cols[i // n], names[i // n]

    # the rare fields the vector pass cannot settle: exact rational arithmetic, one by one
    slow = (codes == _LONG) | ((codes == _BEYOND_SCALE) & round_to_grid)
    for k in np.flatnonzero(slow).tolist():
        text = t.value(*locate(k)[:2], limit=None)
        if not _PLAIN_RE.match(text):
            codes[k] = _MALFORMED
            continue
        q = Fraction(Decimal(text)) / Fraction(step)
        if q.denominator != 1 and not round_to_grid:
            codes[k] = _BEYOND_SCALE
            continue
        u = round(q)  # half-even, like ROUND_HALF_EVEN
        if abs(u) * step_scaled >= 10 ** (_MAX_POWER + 1):
            codes[k] = _TOO_BIG
            continue
        units[k] = u
        codes[k] = _OK

    problems = (  # in the order they are reported
        (_MALFORMED, "is not a plain decimal number", "write it as a plain decimal, e.g. 105573.73"),
        (_TOO_BIG, "is too large", f"check the column; values must be < 1e{18 - scale}"),
        (
            _BEYOND_SCALE,
            f"is not a multiple of the {unit} {step}",
            f"use the market's real {unit} (the file's values must lie on its grid)",
        ),
    )
    for rank, (code, problem, fix) in enumerate(problems):
        i = _first(codes == code)
        if i is not None:
            row, col, name = locate(i)
            faults.add((cols[0], rank, col, t.row0 + row), partial(t.fail, row, col, name, problem, fix))
    return [units[k * n : (k + 1) * n] for k in range(len(cols))]


def _parse_float_column(t: _Table, col: int, name: str, faults: _Faults) -> F64:
    """Parse a decimal column to the nearest float64 (correctly rounded, as ``float(str)`` does)."""
    mant, frac, codes = _scan(t.buf, t.starts[:, col], t.ends[:, col])
    # exact fast path: both operands exactly representable, IEEE division rounds correctly
    fast = (codes == _OK) & (np.abs(mant) < 2**53) & (frac <= 22)
    out: F64 = mant.astype(np.float64) / _POW10_F[np.minimum(frac, 22)]
    for r in np.flatnonzero(~fast).tolist():
        text = t.value(r, col, limit=None)
        if codes[r] == _MALFORMED or not _PLAIN_RE.match(text):
            problem, fix = "is not a plain decimal number", f"write {name} as a plain decimal"
            faults.add((col, 0, col, t.row0 + r), partial(t.fail, r, col, name, problem, fix))
            break
        out[r] = float(text)
    return out


def _resolve_symbol(path: Path, symbol: str | None) -> str:
    if symbol is not None:
        return symbol
    try:
        return symbol_from_filename(path)
    except ValueError as exc:
        raise DataError(str(exc)) from exc


# --------------------------------------------------------------------------------------------
# validation


def _check_candles(
    ts: I64, o: I64, h: I64, lo: I64, c: I64, v: F64, interval_ms: int, where: Callable[[int], str]
) -> None:
    """Raise ``DataError`` at the first row breaking a candle invariant; ``where(row)`` names it."""

    def first(mask: BoolArr, problem: Callable[[int], str], fix: str) -> None:
        row = _first(mask)
        if row is not None:
            raise DataError(f"{where(row)}: {problem(row)}; fix: {fix}")

    n = len(ts)
    d = np.diff(ts)
    first(
        np.concatenate([[False], d == 0]),
        lambda r: f"duplicate timestamp {ts[r]} (same as the previous row)",
        "drop the duplicate row (keep one candle per open time)",
    )
    first(
        np.concatenate([[False], d < 0]),
        lambda r: f"timestamp {ts[r]} is earlier than the previous row's {ts[r - 1]}",
        "sort the rows by timestamp",
    )
    for name, a in (("open", o), ("high", h), ("low", lo), ("close", c)):

        def not_positive(r: int, a: I64 = a, name: str = name) -> str:
            return f"{name} price {a[r]} ticks is not positive"

        first(a <= 0, not_positive, "drop or repair the row")
    first(
        h < np.maximum(o, c),
        lambda r: f"high {h[r]} < max(open {o[r]}, close {c[r]}) (ticks)",
        "repair the row: high must be >= open, close and low",
    )
    first(
        lo > np.minimum(o, c),
        lambda r: f"low {lo[r]} > min(open {o[r]}, close {c[r]}) (ticks)",
        "repair the row: low must be <= open, close and high",
    )
    first(~(v >= 0), lambda r: f"volume {v[r]} is negative or NaN", "volume must be a number >= 0")
    if n:
        phase = int(ts[0]) % interval_ms if _DAY_MS % interval_ms else 0
        first(
            ts % interval_ms != phase,
            lambda r: (
                f"timestamp {ts[r]} is not aligned to the {interval_ms} ms bar "
                f"(remainder {int(ts[r]) % interval_ms}, expected {phase})"
            ),
            "timestamps must be candle open times on the bar grid (epoch ms)",
        )


def check_candles(arrays: CandleArrays) -> None:
    """Raise ``DataError`` naming the first row (by index) that breaks a candle invariant."""
    _check_candles(
        arrays.ts_ms,
        arrays.open,
        arrays.high,
        arrays.low,
        arrays.close,
        arrays.volume,
        arrays.interval_ms,
        lambda r: f"{arrays.symbol} candle #{r}",
    )


_MS_FLOOR = 10**11  # 1973-03-03 in ms; 1e9..1e11 are 2001..5138 in *seconds*
_MS_CEILING = 10**14  # 5138 in ms; 1.7e15 is 2023 in *microseconds*


def _check_ms(path: Path, ts: I64) -> None:
    """Refuse timestamps in seconds or microseconds: every file holds epoch milliseconds."""
    if not len(ts):
        return
    low, high = int(ts.min()), int(ts.max())
    if 0 < high < _MS_FLOOR:
        raise DataError(
            f"{path}: timestamps are in epoch seconds (e.g. {low}), not milliseconds; "
            "fix: multiply them by 1000 (or download the file again with `nutcracker data download`)"
        )
    if low >= _MS_CEILING:
        raise DataError(
            f"{path}: timestamps are in epoch microseconds (e.g. {low}), not milliseconds; "
            "fix: divide them by 1000"
        )


def _infer_interval(path: Path, ts: I64) -> int:
    """The file name's ``1m``/``5m`` if it says so (misaligned rows are then named), else the median step."""
    m = FILENAME_RE.match(path.name)
    if m is not None and m["kind"] in ("1m", "5m"):
        return timeframe_to_ms(m["kind"])
    if len(ts) < 2:
        raise DataError(
            f"{path}: {len(ts)} row(s), cannot infer the candle interval; "
            "fix: pass interval_ms= or name the file like binance_BTC-USDT_1m.csv.gz"
        )
    d = np.diff(ts)
    return int(np.partition(d, len(d) // 2)[len(d) // 2])


# --------------------------------------------------------------------------------------------
# loading


def load_candles_csv(
    path: str | os.PathLike[str],
    precision: Precision,
    symbol: str | None = None,
    *,
    interval_ms: int | None = None,
    block_bytes: int = _BLOCK_BYTES,
) -> CandleArrays:
    """Load and validate a candle CSV (gzip or plain) with prices converted exactly to ticks.

    ``symbol`` defaults to the one in the file name; ``interval_ms`` to the median timestamp step
    (or the file name's ``1m``/``5m`` for a one-row file). Raises ``DataError`` naming the file,
    line and fix for a bad header, a malformed or off-grid value, non-increasing or duplicate or
    misaligned timestamps, non-positive prices and inconsistent high/low. The text is parsed
    ``block_bytes`` at a time (memory stays near the size of the result); the result does not
    depend on it.
    """
    if block_bytes <= 0:
        raise ValueError(f"block_bytes must be > 0, got {block_bytes}")
    p = Path(path)
    sym = _resolve_symbol(p, symbol)
    ts, o, h, lo, c, volume = _parse_candles(p, precision.tick, block_bytes)
    _check_ms(p, ts)
    if interval_ms is None:
        ordered = len(ts) < 2 or bool((np.diff(ts) > 0).all())
        interval_ms = _infer_interval(p, ts) if ordered else 1  # else the ordering checks name the row
    if interval_ms <= 0:
        raise DataError(f"{p}: candle interval {interval_ms} ms is not positive")
    _check_candles(ts, o, h, lo, c, volume, interval_ms, lambda r: _where(p, r + 2))
    return CandleArrays(ts, o, h, lo, c, volume, interval_ms, sym)


def _parse_candles(path: Path, tick: Decimal, block_bytes: int) -> tuple[I64, I64, I64, I64, I64, F64]:
    """Parse a candle file block by block into its six columns; the first bad field raises at the end."""
    prices: list[list[I64]] = [[], [], [], [], []]
    volumes: list[F64] = []
    faults = _Faults()
    with closing(_tables(path, CANDLE_HEADER, block_bytes)) as tables:
        for t in tables:
            ts = _parse_int_column(t, 0, "timestamp", faults)
            ohlc = _parse_grid_columns(
                t, (1, 2, 3, 4), ("open", "high", "low", "close"), tick, "tick", faults
            )
            for part, column in zip(prices, (ts, *ohlc), strict=True):
                part.append(column)
            volumes.append(_parse_float_column(t, 5, "volume", faults))
    if not volumes:
        raise DataError(f"{path}: no candles after the header; fix: the file needs at least one row")
    faults.raise_first()
    ts, o, h, lo, c = (_join(part) for part in prices)
    return ts, o, h, lo, c, _join(volumes)


def _join(parts: list[npt.NDArray[_G]]) -> npt.NDArray[_G]:
    """Concatenate a column's blocks, then drop them (one column is copied at a time, not the table)."""
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    parts.clear()
    return out


def _one_table(path: Path, header: str) -> _Table:
    """Return a small file's data lines as one table (trade and BBO files are small)."""
    tables = list(_tables(path, header, -1))
    return tables[0] if tables else _Table(path, np.zeros(0, dtype=np.uint8), header)


def _first_earlier(ts: I64) -> int | None:
    """Return the first row whose timestamp is earlier than the one before it."""
    return _first(np.concatenate([[False], np.diff(ts) < 0]))


def load_trades_csv(
    path: str | os.PathLike[str],
    precision: Precision,
    symbol: str | None = None,
    *,
    round_qty_to_lot: bool = False,
) -> TradeArrays:
    """Load a trades CSV (``timestamp,price,amount,side``) with price in ticks and qty in lots.

    Prices must lie on the tick grid and amounts on the lot grid (``DataError`` otherwise), unless
    ``round_qty_to_lot`` asks to round amounts carrying binary-float noise (e.g.
    ``0.00031099999999999997``) half-even to the nearest lot. ``side`` is the taker side.
    """
    p = Path(path)
    sym = _resolve_symbol(p, symbol)
    t = _one_table(p, TRADE_HEADER)
    faults = _Faults()
    ts = _parse_int_column(t, 0, "timestamp", faults)
    (price,) = _parse_grid_columns(t, (1,), ("price",), precision.tick, "tick", faults)
    (qty,) = _parse_grid_columns(
        t, (2,), ("amount",), precision.lot, "lot", faults, round_to_grid=round_qty_to_lot
    )
    faults.raise_first()
    ch, _ = t.chars(3)
    side = ch.view(f"S{ch.shape[1]}").ravel() if t.n else np.zeros(0, dtype="S4")
    is_buy = side == b"buy"
    row = _first(~is_buy & (side != b"sell"))
    if row is not None:
        raise t.fail(row, 3, "side", "is not 'buy' or 'sell'", "side is the taker side: 'buy' or 'sell'")
    row = _first_earlier(ts)
    if row is not None:
        raise t.fail(
            row, 0, "timestamp", "is earlier than the previous trade's", "sort the trades by timestamp"
        )
    row = _first(price <= 0)
    if row is not None:
        raise t.fail(row, 1, "price", "is not positive", "drop or repair the trade")
    row = _first(qty <= 0)
    if row is not None:
        raise t.fail(row, 2, "amount", "is not positive (in lots)", "drop the trade or check the lot size")
    _check_ms(p, ts)  # after the row checks, which name a line
    return TradeArrays(ts, price, qty, np.asarray(is_buy, dtype=np.bool_), sym)


def load_bbo_csv(path: str | os.PathLike[str], precision: Precision, symbol: str | None = None) -> BboArrays:
    """Load a best-bid-and-offer CSV (``timestamp,bid,bid_size,ask,ask_size``): prices in ticks.

    Prices must lie on the tick grid (``DataError`` otherwise); sizes are rounded half-even to whole
    lots (a size is a sum of orders, not one quantity on the lot grid).
    """
    p = Path(path)
    sym = _resolve_symbol(p, symbol)
    t = _one_table(p, BBO_HEADER)
    faults = _Faults()
    ts = _parse_int_column(t, 0, "timestamp", faults)
    bid, ask = _parse_grid_columns(t, (1, 3), ("bid", "ask"), precision.tick, "tick", faults)
    bid_lots, ask_lots = _parse_grid_columns(
        t, (2, 4), ("bid_size", "ask_size"), precision.lot, "lot", faults, round_to_grid=True
    )
    faults.raise_first()
    row = _first_earlier(ts)
    if row is not None:
        raise t.fail(row, 0, "timestamp", "is earlier than the previous row's", "sort the rows by timestamp")
    row = _first(bid <= 0)
    if row is not None:
        raise t.fail(row, 1, "bid", "is not positive", "drop or repair the row")
    row = _first(ask <= bid)
    if row is not None:
        raise t.fail(row, 3, "ask", "is not above the bid (a crossed book)", "drop or repair the row")
    row = _first((bid_lots < 0) | (ask_lots < 0))
    if row is not None:
        col = 2 if bid_lots[row] < 0 else 4
        raise t.fail(row, col, "size", "is negative", "drop or repair the row")
    _check_ms(p, ts)  # after the row checks, which name a line
    return BboArrays(ts, bid, bid_lots, ask, ask_lots, sym)


# --------------------------------------------------------------------------------------------
# conversion and writing


def to_candles(arrays: CandleArrays, start: int = 0, stop: int | None = None) -> tuple[Candle, ...]:
    """Return rows ``start:stop`` as core ``Candle`` values (plain Python ints)."""
    s = slice(start, stop)
    return tuple(
        Candle(t, o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            arrays.ts_ms[s].tolist(),
            arrays.open[s].tolist(),
            arrays.high[s].tolist(),
            arrays.low[s].tolist(),
            arrays.close[s].tolist(),
            arrays.volume[s].tolist(),
            strict=True,
        )
    )


def gaps(arrays: CandleArrays) -> list[tuple[int, int]]:
    """Return ``(i, i + 1)`` for every pair of neighbours more than one interval apart."""
    idx = np.flatnonzero(np.diff(arrays.ts_ms) > arrays.interval_ms)
    return [(i, i + 1) for i in idx.tolist()]


def float_to_plain(x: float) -> str:
    """Format a float as its shortest round-trip decimal, without exponent or a trailing ``.0``."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"cannot write {x} as a decimal")
    r = repr(float(x))
    if "e" in r or "E" in r:
        r = np.format_float_positional(x, unique=True, trim="-")
    elif r.endswith(".0"):
        r = r[:-2]
    return "0" if r == "-0" else r


def decimal_to_plain(d: Decimal) -> str:
    """Format a Decimal without exponent and without trailing zeros (``1E+2`` -> ``100``)."""
    s = format(d.normalize(), "f")
    return "0" if s == "-0" else s


def grid_strings(units: list[int], step: Decimal, what: str = "tick") -> list[str]:
    """Format multiples of ``step`` as exact, shortest plain decimals: ``10557373`` -> ``105573.73``."""
    scale, step_scaled = _decimals(step, what)
    if scale == 0:
        return [str(u * step_scaled) for u in units]
    out: list[str] = []
    append = out.append
    for u in units:
        v = u * step_scaled
        sign = "-" if v < 0 else ""
        digits = str(abs(v)).rjust(scale + 1, "0")
        frac = digits[-scale:].rstrip("0")
        append(f"{sign}{digits[:-scale]}.{frac}" if frac else f"{sign}{digits[:-scale]}")
    return out


def _float_strings(values: list[float]) -> list[str]:
    out: list[str] = []
    append = out.append
    for x in values:
        r = repr(x)
        if r[-2:] == ".0":
            r = r[:-2]
        elif "e" in r or "n" in r:  # exponent, nan, inf
            r = float_to_plain(x)
        append(r)
    return out


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (temp file + ``os.replace``); gzip when the name ends with ``.gz``."""
    data = text.encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def candle_lines(arrays: CandleArrays, precision: Precision, start: int = 0, stop: int | None = None) -> str:
    """Return rows ``start:stop`` as CSV lines (each ending with ``\\n``), exact decimals."""
    s = slice(start, stop)
    tick = precision.tick
    columns = zip(
        arrays.ts_ms[s].tolist(),
        grid_strings(arrays.open[s].tolist(), tick),
        grid_strings(arrays.high[s].tolist(), tick),
        grid_strings(arrays.low[s].tolist(), tick),
        grid_strings(arrays.close[s].tolist(), tick),
        _float_strings(arrays.volume[s].tolist()),
        strict=True,
    )
    return "".join(f"{t},{o},{h},{lo},{c},{v}\n" for t, o, h, lo, c, v in columns)


def write_candles_csv(path: str | os.PathLike[str], arrays: CandleArrays, precision: Precision) -> None:
    """Write candles in the shared-data layout (gzip when ``path`` ends with ``.gz``), atomically.

    Prices are written as exact decimals (``ticks * tick``, shortest form), volumes as the
    shortest round-trip decimal. The series is validated first (``DataError`` on a bad row).
    """
    check_candles(arrays)
    _write_text(Path(path), CANDLE_HEADER + "\n" + candle_lines(arrays, precision))


__all__ = [
    "CANDLE_HEADER",
    "FILENAME_RE",
    "TRADE_HEADER",
    "CandleArrays",
    "TradeArrays",
    "candle_lines",
    "check_candles",
    "decimal_to_plain",
    "float_to_plain",
    "gaps",
    "grid_strings",
    "load_candles_csv",
    "load_trades_csv",
    "symbol_from_filename",
    "timeframe_to_ms",
    "to_candles",
    "write_candles_csv",
]
