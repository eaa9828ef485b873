"""The Symbol page's price chart from API values: candles, band and EMA on their candle, orders, the
planned levels not placed, fills; a y range the candles fill."""

from __future__ import annotations

from typing import Any

from nutcracker.console.chart import level_rows, price_chart, price_range, unplaced

MINUTE = 60_000


def _candles(n: int, price: float = 100.0) -> list[dict[str, Any]]:
    return [
        {
            "ts_ms": i * MINUTE,
            "open": str(price + i),
            "high": str(price + i + 2),
            "low": str(price + i - 2),
            "close": str(price + i + 1),
            "volume": "1.5",
        }
        for i in range(n)
    ]


def _level(slot: str, side: str, price: str, resting: bool, why: str = "resting") -> dict[str, Any]:
    return {"slot": slot, "side": side, "price": price, "qty": "0.001", "resting": resting, "why": why}


LEVELS = [
    _level("S0", "sell", "112", True),
    _level("B1", "buy", "98", True),
    _level("B2", "buy", "96", False, "rails: base rail full (0.15 of 0.15 BTC, rails.max_base)"),
    _level("B0", "buy", "99", False, "held: its lot waits for its exit"),
    _level("B9", "buy", "20", False, "outside the window of grid.levels = 6"),
]


def test_the_chart_is_candles_with_the_band_and_ema_drawn_on_the_candle_they_include() -> None:
    points = [
        {
            "ts_ms": 9 * MINUTE,
            "candle_ts_ms": 8 * MINUTE,
            "ema": "105",
            "upper": "108",
            "lower": "102",
            "long": "101",
        },
        {
            "ts_ms": 10 * MINUTE,
            "candle_ts_ms": 9 * MINUTE,
            "ema": "106",
            "upper": "109",
            "lower": "103",
            "long": "101",
        },
        {"ts_ms": 11 * MINUTE, "candle_ts_ms": None, "ema": None, "upper": None, "lower": None, "long": None},
    ]
    figure = price_chart(_candles(10), points, [], [], [])
    by_name = {t.name: t for t in figure.data}
    (candles,) = [t for t in figure.data if t.type == "candlestick"]
    assert list(candles.open) == [100.0 + i for i in range(10)]
    assert [x.timestamp() * 1000 for x in by_name["EMA"].x] == [
        8 * MINUTE,
        9 * MINUTE,
    ]  # the paused one: none
    assert list(by_name["EMA"].y) == [105.0, 106.0]
    assert by_name["Keltner band"].fill == "tonexty"
    assert figure.layout.xaxis.rangeslider.visible is False


def test_fills_are_marked_buy_up_and_sell_down_and_orders_and_unplaced_levels_are_lines() -> None:
    fills = [
        {"ts_ms": 2 * MINUTE, "side": "buy", "price": "101", "qty": "0.001"},
        {"ts_ms": 5 * MINUTE, "side": "sell", "price": "106", "qty": "0.001"},
    ]
    orders = [
        {"side": "buy", "price": "98", "qty": "0.001"},
        {"side": "sell", "price": "112", "qty": "0.001"},
    ]
    figure = price_chart(_candles(10), [], orders, fills, LEVELS)
    by_name = {t.name: t for t in figure.data}
    assert (by_name["buy fills"].marker.symbol, list(by_name["buy fills"].y)) == ("triangle-up", [101.0])
    assert (by_name["sell fills"].marker.symbol, list(by_name["sell fills"].y)) == ("triangle-down", [106.0])
    lines = {(s.y0, s.line.dash) for s in figure.layout.shapes}
    # resting orders dashed; levels not placed dotted (a held level's buy is a fill already)
    assert lines == {(98.0, "dash"), (112.0, "dash"), (96.0, "dot"), (20.0, "dot")}
    assert {a.text for a in figure.layout.annotations} == {"buy 98", "sell 112", "B2", "B9"}


def test_the_y_range_keeps_near_orders_and_levels_and_leaves_a_far_level_to_the_table() -> None:
    candles = _candles(10)  # lows 98 .. highs 111
    low, high = price_range(candles, [96.0, 20.0, 112.0])  # type: ignore[misc]
    assert low < 96 < 112 < high
    assert low > 90  # 20 is far below: drawn, the range does not stretch to it
    assert price_range([], [1.0]) is None


def test_level_rows_say_where_each_level_rests_or_why_not() -> None:
    rows = level_rows(LEVELS)
    assert [(r["level"], r["state"]) for r in rows] == [
        ("S0", "resting"),
        ("B1", "resting"),
        ("B2", "not placed"),
        ("B0", "held"),
        ("B9", "not placed"),
    ]
    assert rows[2]["why"].startswith("rails: base rail full")
    assert rows[0]["why"] == ""
    assert [lv["slot"] for lv in unplaced(LEVELS)] == ["B2", "B9"]
