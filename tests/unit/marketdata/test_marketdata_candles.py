"""Candle and trade files: exact loading of the shared real data, validation, round trips."""

from __future__ import annotations

import csv
import gzip
import io
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutcracker.core.model import Candle
from nutcracker.core.units import Precision
from nutcracker.errors import DataError
from nutcracker.marketdata import (
    CANDLE_HEADER,
    CandleArrays,
    check_candles,
    gaps,
    load_candles_csv,
    load_trades_csv,
    symbol_from_filename,
    timeframe_to_ms,
    to_candles,
    write_candles_csv,
)
from nutcracker.marketdata.candles import float_to_plain, grid_strings

BTC = Precision(tick=Decimal("0.01"), lot=Decimal("0.00001"))
MAIN_FILE = "binance_BTC-USDT_1m.csv.gz"
GAP_FILE = "binance_BTC-USDT_1m_20210402-20210514.csv.gz"
T0 = 1_747_699_200_000  # 2025-05-20 00:00 UTC, on the minute grid


def _first_rows(path: Path, n: int) -> list[list[str]]:
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        return [row for _, row in zip(range(n + 1), reader, strict=False)]


def _same(a: CandleArrays, b: CandleArrays) -> None:
    for name in ("ts_ms", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.interval_ms == b.interval_ms
    assert a.symbol == b.symbol


# ---------------------------------------------------------------------------- the real data set


def test_the_long_btc_file_loads_all_130708_rows_with_the_first_and_last_rows_as_written(
    data_dir: Path,
) -> None:
    path = data_dir / MAIN_FILE
    arrays = load_candles_csv(path, BTC)
    rows = _first_rows(path, 3)
    assert rows[0] == CANDLE_HEADER.split(",")
    assert len(arrays) == 130_708
    assert arrays.symbol == "BTC/USDT"
    assert arrays.interval_ms == 60_000
    for i, row in enumerate(rows[1:]):
        ts, o, h, lo, c, v = row
        assert arrays.ts_ms[i] == int(ts)
        assert [arrays.open[i], arrays.high[i], arrays.low[i], arrays.close[i]] == [
            BTC.exact_ticks(Decimal(x)) for x in (o, h, lo, c)
        ]
        assert arrays.volume[i] == float(v)
    with gzip.open(path, "rt") as f:
        last = f.read().rstrip("\n").rsplit("\n", 1)[1].split(",")
    assert arrays.ts_ms[-1] == int(last[0])
    assert arrays.close[-1] == BTC.exact_ticks(Decimal(last[4]))
    assert arrays.ts_ms.dtype == np.int64
    assert arrays.close.dtype == np.int64
    assert arrays.volume.dtype == np.float64
    assert gaps(arrays) == []


def test_loading_the_130708_row_file_takes_well_under_a_second_of_cpu(data_dir: Path) -> None:
    path = data_dir / MAIN_FILE
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        load_candles_csv(path, BTC)
        best = min(best, time.process_time() - t0)
    assert best < 0.8, f"load took {best:.3f} s of CPU"


def test_the_2021_file_reports_its_two_maintenance_gaps_of_150_and_284_minutes(data_dir: Path) -> None:
    arrays = load_candles_csv(data_dir / GAP_FILE, BTC)
    assert len(arrays) == 61_272
    found = gaps(arrays)
    assert len(found) == 2
    missing = [(int(arrays.ts_ms[j]) - int(arrays.ts_ms[i])) // 60_000 - 1 for i, j in found]
    assert missing == [150, 284]
    assert all(j == i + 1 for i, j in found)


@pytest.mark.slow
def test_every_candle_file_of_the_shared_data_set_loads_on_a_fine_tick(data_dir: Path) -> None:
    fine = Precision(tick=Decimal("0.00000001"), lot=Decimal("0.00000001"))
    files = sorted(data_dir.glob("*_1m*.csv.gz")) + sorted(data_dir.glob("*_5m*.csv.gz"))
    assert len(files) == 16
    for path in files:
        arrays = load_candles_csv(path, fine)
        check_candles(arrays)
        assert arrays.interval_ms == (300_000 if "_5m" in path.name else 60_000)


def test_writing_a_real_file_back_reproduces_its_text_byte_for_byte(data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "binance_BTC-USDT_1m_20240726-20240825.csv.gz"
    arrays = load_candles_csv(src, BTC)
    out = tmp_path / src.name
    write_candles_csv(out, arrays, BTC)
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(src.read_bytes())
    _same(load_candles_csv(out, BTC), arrays)


def test_trades_load_with_price_in_ticks_qty_in_lots_and_the_taker_side(data_dir: Path) -> None:
    path = data_dir / "binance_BTC-USDT_trades.csv.gz"
    trades = load_trades_csv(path, BTC)
    rows = _first_rows(path, 3)
    assert rows[0] == ["timestamp", "price", "amount", "side"]
    assert len(trades) == 19_904
    assert trades.symbol == "BTC/USDT"
    for i, (ts, price, amount, side) in enumerate(rows[1:]):
        assert trades.ts_ms[i] == int(ts)
        assert trades.price[i] == BTC.exact_ticks(Decimal(price))
        assert trades.qty[i] == int(Decimal(amount) / BTC.lot)
        assert bool(trades.taker_is_buy[i]) is (side == "buy")
    assert int(trades.taker_is_buy.sum()) == 9_093  # README: buys 9,093 / sells 10,811
    assert (np.diff(trades.ts_ms) >= 0).all()
    assert trades.qty.dtype == np.int64
    assert trades.taker_is_buy.dtype == np.bool_


def test_trades_with_an_amount_off_the_lot_grid_are_refused_naming_the_line(data_dir: Path) -> None:
    coarse = Precision(tick=Decimal("0.01"), lot=Decimal("0.001"))
    with pytest.raises(
        DataError, match=r"binance_BTC-USDT_trades\.csv\.gz:\d+: amount '[0-9.]+' is not a multiple"
    ):
        load_trades_csv(data_dir / "binance_BTC-USDT_trades.csv.gz", coarse)


def test_trade_amounts_with_float_noise_are_refused_unless_rounding_to_the_lot_is_asked(
    data_dir: Path,
) -> None:
    path = data_dir / "binance_BTC-USDT_trades_20210108.csv.gz"
    micro = Precision(tick=Decimal("0.01"), lot=Decimal("0.000001"))
    with pytest.raises(DataError, match=r":4: amount '0.00031099999999999997' is not a multiple of the lot"):
        load_trades_csv(path, micro)
    trades = load_trades_csv(path, micro, round_qty_to_lot=True)
    assert len(trades) == 2_001
    assert trades.qty[2] == 311


# ---------------------------------------------------------------------------- bad files

GOOD = ["1747699200000,100.00,101.5,99,100.5,1.5", "1747699260000,100.5,100.5,100.5,100.5,0"]


def _bad_file(tmp_path: Path, rows: list[str], header: str = CANDLE_HEADER, gz: bool = True) -> Path:
    path = tmp_path / ("binance_BTC-USDT_1m.csv.gz" if gz else "binance_BTC-USDT_1m.csv")
    text = "\n".join([header, *rows]) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


BAD_ROWS = [
    pytest.param([*GOOD, GOOD[1]], 4, "duplicate timestamp", id="duplicate timestamp"),
    pytest.param([GOOD[1], GOOD[0]], 3, "earlier than the previous", id="timestamps going back"),
    pytest.param([GOOD[0], "1747699230000,100,100,100,100,1", GOOD[1]], 3, "not aligned", id="misaligned"),
    pytest.param(
        [GOOD[0], "1747699260000,100,100.4,99,100.5,1"], 3, "high 10040 < max", id="high below close"
    ),
    pytest.param(
        [GOOD[0], "1747699260000,100,101,100.2,100.1,1"], 3, "low 10020 > min", id="low above close"
    ),
    pytest.param([GOOD[0], "1747699260000,0,1,0,1,1"], 3, "open price 0 ticks is not positive", id="zero"),
    pytest.param([GOOD[0], "1747699260000,-1,1,-1,1,1"], 3, "not positive", id="negative price"),
    pytest.param(
        [GOOD[0], "1747699260000,100.005,101,99,100,1"], 3, "'100.005' is not a multiple", id="off tick"
    ),
    pytest.param(
        [GOOD[0], "1747699260000,1e2,101,99,100,1"], 3, "'1e2' is not a plain decimal", id="exponent"
    ),
    pytest.param([GOOD[0], "1747699260000,,101,99,100,1"], 3, "open '' is not a plain decimal", id="empty"),
    pytest.param([GOOD[0], "1747699260000,abc,101,99,100,1"], 3, "'abc' is not a plain decimal", id="text"),
    pytest.param([GOOD[0], "1747699260000,1.2.3,101,99,100,1"], 3, "'1.2.3' is not a plain", id="two dots"),
    pytest.param([GOOD[0], "1747699260000.5,100,101,99,100,1"], 3, "is not an integer", id="fractional ms"),
    pytest.param([GOOD[0], "1747699260000,100,101,99,100"], 3, "5 fields", id="missing column"),
    pytest.param([GOOD[0], "", GOOD[1]], 3, "1 fields", id="blank line"),
    pytest.param([GOOD[0], "1747699260000,100,101,99,100,-1"], 3, "volume -1.0 is negative", id="neg volume"),
    pytest.param([GOOD[0], "1747699260000,100,101,99,100,nan"], 3, "'nan' is not a plain", id="nan volume"),
    pytest.param([GOOD[0], "1747699260000,1" + "0" * 20 + ",101,99,100,1"], 3, "too large", id="huge"),
    pytest.param([GOOD[0], "1747699260000,1" + "0" * 60 + ",101,99,100,1"], 3, "too large", id="long huge"),
    pytest.param(
        [GOOD[0], "1747699260000,100." + "0" * 60 + "1,101,99,100,1"], 3, "not a multiple", id="long"
    ),
    pytest.param(
        [GOOD[0], "1747699260000,100,101,99,100,1." + "0" * 60 + "x"], 3, "not a plain", id="long bad"
    ),
]


@pytest.mark.parametrize(("rows", "line", "words"), BAD_ROWS)
def test_every_bad_candle_row_is_a_data_error_naming_the_file_the_line_and_the_fix(
    tmp_path: Path, rows: list[str], line: int, words: str
) -> None:
    path = _bad_file(tmp_path, rows)
    with pytest.raises(DataError) as err:
        load_candles_csv(path, BTC)
    message = str(err.value)
    assert f"{path}:{line}:" in message
    assert words in message
    assert "fix:" in message


# ---------------------------------------------------------------------------- parsing in blocks

TINY_BLOCKS = [1, 2, 7, 50]  # bytes: rows, CRLF pairs and trailing newlines straddle the blocks


def _error(path: Path, **kwargs: int) -> str:
    with pytest.raises(DataError) as err:
        load_candles_csv(path, BTC, **kwargs)
    return str(err.value)


def test_a_real_file_loads_the_same_in_blocks_of_any_size(data_dir: Path) -> None:
    whole = load_candles_csv(data_dir / GAP_FILE, BTC)
    _same(load_candles_csv(data_dir / GAP_FILE, BTC, block_bytes=65_537), whole)
    _same(load_candles_csv(data_dir / GAP_FILE, BTC, block_bytes=1 << 30), whole)


@pytest.mark.parametrize("block_bytes", TINY_BLOCKS)
@pytest.mark.parametrize("gz", [True, False])
def test_rows_straddling_tiny_blocks_load_like_one_block(tmp_path: Path, block_bytes: int, gz: bool) -> None:
    rows = [f"{T0 + 60_000 * i},100.0{i % 10},101.5,99,100.5,1.{i}" for i in range(30)]
    path = _bad_file(tmp_path, rows, gz=gz)
    crlf = tmp_path / "binance_BTC-USDT_1m_20250520.csv"
    text = (gzip.decompress(path.read_bytes()) if gz else path.read_bytes()) + b"\n\n"
    whole = load_candles_csv(path, BTC)
    assert len(whole) == 30
    _same(load_candles_csv(path, BTC, block_bytes=block_bytes), whole)
    crlf.write_bytes(text.replace(b"\n", b"\r\n"))
    _same(load_candles_csv(crlf, BTC, block_bytes=block_bytes), whole)


@pytest.mark.parametrize(("rows", "line", "words"), BAD_ROWS)
def test_a_bad_row_is_reported_the_same_in_tiny_blocks(
    tmp_path: Path, rows: list[str], line: int, words: str
) -> None:
    path = _bad_file(tmp_path, rows)
    expected = _error(path)
    assert f":{line}: " in expected
    assert [_error(path, block_bytes=b) for b in TINY_BLOCKS] == [expected] * len(TINY_BLOCKS)


@pytest.mark.parametrize(
    ("late", "words"),
    [
        pytest.param("1747699260000,100,101,99", "4 fields", id="field count beats an earlier value"),
        pytest.param("", "1 fields", id="a blank line beats an earlier value"),
        pytest.param("1747699260000,1x,101,99,100,1", "'1x' is not a plain", id="malformed beats off-grid"),
    ],
)
def test_with_several_bad_rows_the_block_size_does_not_change_which_is_reported(
    tmp_path: Path, late: str, words: str
) -> None:
    rows = [f"{T0 + 60_000 * i},100,101,99,100,1" for i in range(40)]
    rows[1] = f"{T0 + 60_000},100.001,101,99,100,1"  # off the tick grid, in the first block
    rows[30] = late
    path = _bad_file(tmp_path, rows)
    expected = _error(path)
    assert ":32: " in expected
    assert words in expected
    assert _error(path, block_bytes=64) == expected


def test_a_wrong_header_is_a_data_error_on_line_1_quoting_the_expected_header(tmp_path: Path) -> None:
    path = _bad_file(tmp_path, GOOD, header="time,open,high,low,close,volume")
    with pytest.raises(DataError, match=r":1: header is 'time,open,high,low,close,volume', expected") as err:
        load_candles_csv(path, BTC)
    assert CANDLE_HEADER in str(err.value)
    assert "fix:" in str(err.value)


def test_a_header_with_an_index_column_is_refused(tmp_path: Path) -> None:
    path = _bad_file(tmp_path, ["0," + GOOD[0]], header="," + CANDLE_HEADER, gz=False)
    with pytest.raises(DataError, match=":1: header"):
        load_candles_csv(path, BTC)


def test_a_file_with_only_a_header_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no candles"):
        load_candles_csv(_bad_file(tmp_path, []), BTC)


@pytest.mark.parametrize("zeros", [18, 60])
def test_long_fields_on_the_grid_take_the_slow_exact_path(tmp_path: Path, zeros: int) -> None:
    z = "0" * zeros
    path = _bad_file(tmp_path, [f"1747699200000,100.{z},101.5{z},99,100.5,0.{z}123", GOOD[1]])
    arrays = load_candles_csv(path, BTC)
    assert arrays.open[0] == 10000
    assert arrays.high[0] == 10150
    assert arrays.volume[0] == float(f"0.{z}123")
    assert load_candles_csv(
        _bad_file(tmp_path, [f"1747699200000,100,101,99,100,123456789012345678.9{z}"]), BTC
    )


def test_a_data_error_is_also_a_value_error() -> None:
    assert issubclass(DataError, ValueError)


def test_plain_csv_and_crlf_line_endings_load_like_gzip(tmp_path: Path) -> None:
    plain = _bad_file(tmp_path, GOOD, gz=False)
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(plain.read_bytes().replace(b"\n", b"\r\n"))
    a = load_candles_csv(plain, BTC)
    _same(a, load_candles_csv(_bad_file(tmp_path, GOOD), BTC))
    _same(a, load_candles_csv(crlf, BTC, symbol="BTC/USDT"))
    assert a.open.tolist() == [10000, 10050]
    assert a.volume.tolist() == [1.5, 0.0]


def test_one_candle_takes_its_interval_from_the_file_name_or_an_argument(tmp_path: Path) -> None:
    assert load_candles_csv(_bad_file(tmp_path, GOOD[:1]), BTC).interval_ms == 60_000
    other = tmp_path / "one.csv"
    other.write_text(CANDLE_HEADER + "\n" + GOOD[0] + "\n")
    with pytest.raises(DataError, match="cannot infer the candle interval"):
        load_candles_csv(other, BTC, symbol="X/Y")
    assert load_candles_csv(other, BTC, symbol="X/Y", interval_ms=300_000).interval_ms == 300_000


def test_a_file_name_without_a_symbol_needs_the_symbol_argument(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    path.write_text(CANDLE_HEADER + "\n" + "\n".join(GOOD) + "\n")
    with pytest.raises(DataError, match="pass symbol="):
        load_candles_csv(path, BTC)
    assert load_candles_csv(path, BTC, symbol="ETH/BTC").symbol == "ETH/BTC"


def test_a_file_named_5m_holding_1m_candles_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binance_BTC-USDT_5m.csv"
    path.write_text(CANDLE_HEADER + "\n" + "\n".join(GOOD) + "\n")
    with pytest.raises(
        DataError, match=r"5m\.csv:3: timestamp 1747699260000 is not aligned to the 300000 ms bar"
    ):
        load_candles_csv(path, BTC)


def test_bad_trade_rows_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "binance_BTC-USDT_trades.csv"
    header = "timestamp,price,amount,side"
    cases = {
        "1723161255342,61837.63,0.02,hold": "side 'hold' is not 'buy' or 'sell'",
        "1723161255000,61837.63,0.02,buy": "earlier than the previous trade",
        "1723161255342,61837.635,0.02,buy": "is not a multiple of the tick",
        "1723161255342,61837.63,0,buy": "amount '0' is not positive",
    }
    for row, words in cases.items():
        path.write_text(f"{header}\n1723161255342,61837.63,0.02,sell\n{row}\n")
        with pytest.raises(DataError, match=r"trades\.csv:3: .*fix:") as err:
            load_trades_csv(path, BTC)
        assert words in str(err.value)


def test_a_trades_file_with_only_a_header_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "binance_BTC-USDT_trades.csv"
    path.write_text("timestamp,price,amount,side\n")
    trades = load_trades_csv(path, BTC)
    assert len(trades) == 0
    assert trades.price.dtype == np.int64


# ---------------------------------------------------------------------------- helpers and round trips


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("binance_BTC-USDT_1m.csv.gz", "BTC/USDT"),
        ("binance_ETH-BTC_1m.csv.gz", "ETH/BTC"),
        ("binance_BTC-USDT_1m_20210402-20210514.csv.gz", "BTC/USDT"),
        ("binanceus_XRP-ETH_trades_20210108.csv.gz", "XRP/ETH"),
        ("/some/dir/binance_DOGE-USDT_5m.csv", "DOGE/USDT"),
    ],
)
def test_the_symbol_comes_from_the_file_name(name: str, symbol: str) -> None:
    assert symbol_from_filename(name) == symbol


@pytest.mark.parametrize("name", ["btc.csv.gz", "binance_btc-usdt_1m.csv.gz", "binance_BTC-USDT_2h.csv.gz"])
def test_a_file_name_off_the_pattern_has_no_symbol(name: str) -> None:
    with pytest.raises(ValueError, match="cannot read a symbol"):
        symbol_from_filename(name)


def test_timeframes_convert_to_milliseconds() -> None:
    assert [timeframe_to_ms(t) for t in ("1s", "1m", "5m", "1h", "1d", "1w")] == [
        1_000, 60_000, 300_000, 3_600_000, 86_400_000, 604_800_000,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unsupported timeframe"):
        timeframe_to_ms("1M")


def test_to_candles_returns_core_candles_for_a_slice(tmp_path: Path) -> None:
    arrays = load_candles_csv(_bad_file(tmp_path, GOOD), BTC)
    candles = to_candles(arrays)
    assert candles == (
        Candle(1747699200000, 10000, 10150, 9900, 10050, 1.5),
        Candle(1747699260000, 10050, 10050, 10050, 10050, 0.0),
    )
    assert to_candles(arrays, 1, 2) == candles[1:]
    assert type(candles[0].open) is int
    assert to_candles(arrays, 2) == ()


def test_candle_arrays_are_read_only_and_slice_without_copying(tmp_path: Path) -> None:
    arrays = load_candles_csv(_bad_file(tmp_path, GOOD), BTC)
    with pytest.raises(ValueError, match="read-only"):
        arrays.close[0] = 1
    part = arrays.slice(1)
    assert len(part) == 1
    assert part.ts_ms[0] == arrays.ts_ms[1]
    with pytest.raises(ValueError, match="length"):
        CandleArrays(
            arrays.ts_ms, arrays.open[:1], arrays.high, arrays.low, arrays.close, arrays.volume, 60_000, ""
        )


def test_writing_refuses_an_invalid_series(tmp_path: Path) -> None:
    arrays = load_candles_csv(_bad_file(tmp_path, GOOD), BTC)
    broken = CandleArrays(
        arrays.ts_ms, arrays.open, arrays.low, arrays.low, arrays.close, arrays.volume, 60_000, "BTC/USDT"
    )
    with pytest.raises(DataError, match="candle #0: high"):
        write_candles_csv(tmp_path / "out.csv", broken, BTC)


TICKS = [
    Decimal("0.01"),
    Decimal("0.5"),
    Decimal("1"),
    Decimal("10"),
    Decimal("0.00000001"),
    Decimal("0.0001"),
]


@settings(max_examples=60, deadline=None)
@given(
    tick=st.sampled_from(TICKS),
    lows=st.lists(st.integers(1, 10**9), min_size=1, max_size=40),
    volume=st.floats(0, 1e12, allow_nan=False, allow_infinity=False),
    gz=st.booleans(),
    data=st.data(),
)
def test_write_then_load_gives_back_the_same_arrays(
    tmp_path_factory: pytest.TempPathFactory,
    tick: Decimal,
    lows: list[int],
    volume: float,
    gz: bool,
    data: st.DataObject,
) -> None:
    n = len(lows)
    steps = data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    ts = T0 + 60_000 * np.cumsum(np.array(steps, dtype=np.int64))
    low = np.array(lows, dtype=np.int64)
    spread = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n)), dtype=np.int64)
    high = low + spread
    open_ = low + spread // 3
    close = high - spread // 4
    vols = np.array([volume / (i + 1) for i in range(n)])
    arrays = CandleArrays(ts, open_, high, low, close, vols, 60_000, "ABC/XYZ")
    precision = Precision(tick=tick, lot=Decimal("0.001"))
    path = tmp_path_factory.mktemp("rt") / ("c.csv.gz" if gz else "c.csv")
    write_candles_csv(path, arrays, precision)
    _same(load_candles_csv(path, precision, "ABC/XYZ", interval_ms=60_000), arrays)
    text = (gzip.decompress(path.read_bytes()) if gz else path.read_bytes()).decode()
    assert "e" not in text.split("\n", 1)[1].replace("\n", "")


@given(x=st.floats(0, 1e20, allow_nan=False, allow_infinity=False))
def test_floats_are_written_as_their_shortest_plain_decimal(x: float) -> None:
    s = float_to_plain(x)
    assert "e" not in s
    assert "E" not in s
    assert float(s) == x
    assert not s.endswith(".0")


def test_grid_strings_are_exact_and_shortest() -> None:
    assert grid_strings([10557373, 10559710, 6112600, 1, 0, -5], Decimal("0.01")) == [
        "105573.73", "105597.1", "61126", "0.01", "0", "-0.05",
    ]  # fmt: skip
    assert grid_strings([3, 4], Decimal("0.5")) == ["1.5", "2"]
    assert grid_strings([7], Decimal("10")) == ["70"]


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    arrays = load_candles_csv(_bad_file(tmp_path, GOOD), BTC)
    write_candles_csv(tmp_path / "a.csv.gz", arrays, BTC)
    raw = (tmp_path / "a.csv.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime pinned to 0: same arrays, same bytes
    rows = list(csv.reader(io.StringIO(gzip.decompress((tmp_path / "a.csv.gz").read_bytes()).decode())))
    assert rows == [CANDLE_HEADER.split(","), *[r.replace("100.00", "100").split(",") for r in GOOD]]
