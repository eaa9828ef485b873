"""The independent backtest checker: a clean hand-written run passes, and each rule catches its case."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nutcracker.backtest.checker import (
    FILLS_HEADER,
    LEGACY_FILLS_HEADER,
    ORDERS_HEADER,
    RULES,
    CheckReport,
    check_backtest,
)
from nutcracker.errors import CheckInputError

SYM = "SYN/USDT"
ID = "ncdemoSYNUSDT"
MIN = 60_000
T0 = 1_704_067_200_000

CONFIG = """
[engine]
id = "demo"

[[symbol]]
[symbol.market]
exchange = "binance"
symbol = "SYN/USDT"
tick_size = "0.01"
lot_size = "0.001"
min_notional = "5"
maker_fee_bps = "10"

[symbol.rails]
max_base = "1"
max_quote = "25"

[symbol.profit]
min_net_bps = "10"

[symbol.grid]
enabled = true
levels = 2
spacing_bps = "50"
order_quote = "10"
"""

# open time, open, high, low, close (1m candles)
CANDLES = [
    (T0, "100", "100.5", "99.5", "100"),
    (T0 + MIN, "100", "100.2", "98.9", "99"),
    (T0 + 2 * MIN, "99", "99.8", "98.8", "99.5"),
    (T0 + 3 * MIN, "99.5", "100.6", "99.1", "100.4"),
    (T0 + 4 * MIN, "100.4", "100.5", "98", "98.5"),
    (T0 + 5 * MIN, "98.5", "99.6", "98.4", "99"),
]


def close_ts(k: int) -> int:
    """Return the close time of candle ``k``: the time its fills carry."""
    return T0 + (k + 1) * MIN - 1


# The clean run: buy level 0 (0.1 @ 99.00) fills in candle 1; its exit (0.1 @ 99.50) is placed
# after candle 2 and fills in candle 3; buy level 1 (0.1 @ 98.50) never fills and is cancelled.
# Net of the cycle: 9.95 - 0.00995 - 9.9 - 0.0099 = 0.03015 >= 10 bps of 9.9 (0.0099).
CLEAN_ORDERS = [
    [T0 + MIN, SYM, "placed", "buy", "99.00", "0.1", f"{ID}-B0-1", "ladder level 0"],
    [T0 + MIN, SYM, "placed", "buy", "98.50", "0.1", f"{ID}-B1-2", "ladder level 1"],
    [close_ts(1), SYM, "filled", "buy", "99.00", "0.1", f"{ID}-B0-1", "1"],
    [T0 + 3 * MIN, SYM, "placed", "sell", "99.50", "0.1", f"{ID}-S0-3", "exit at its target"],
    [close_ts(3), SYM, "filled", "sell", "99.50", "0.1", f"{ID}-S0-3", "2"],
    [T0 + 4 * MIN, SYM, "cancelled", "buy", "98.50", "0.1", f"{ID}-B1-2", "B1 is no longer wanted"],
]
CLEAN_FILLS = [
    [close_ts(1), SYM, "buy", "99.00", "0.1", "0.0099", f"{ID}-B0-1", "1", "maker"],
    [close_ts(3), SYM, "sell", "99.50", "0.1", "0.00995", f"{ID}-S0-3", "1", "maker"],
]
CLEAN_SUMMARY: dict[str, Any] = {
    "fills": 2,
    "cycles_closed": 1,
    "realized_pnl_quote": "0.03015",
    "fees_quote": "0.01985",
    "max_inventory_base": "0.1",
    "max_committed_quote": 19.75,
    "rail_violations": 0,
}

Rows = list[list[Any]]


def _write_csv(path: Path, header: tuple[str, ...], rows: Rows) -> None:
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))


def run(
    tmp_path: Path,
    orders: Rows,
    fills: Rows,
    *,
    summary: Mapping[str, Any] | None = None,
    candles: list[tuple[int, str, str, str, str]] = CANDLES,
    config: str = CONFIG,
    allow_touch: bool = False,
) -> CheckReport:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    _write_csv(out / "orders.csv", ORDERS_HEADER, orders)
    _write_csv(out / "fills.csv", FILLS_HEADER if fills and len(fills[0]) > 9 else LEGACY_FILLS_HEADER, fills)
    if summary is not None:
        (out / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "config.toml").write_text(config)
    data = tmp_path / "candles.csv"
    data.write_text(
        "timestamp,open,high,low,close,volume\n" + "".join(f"{','.join(map(str, c))},1\n" for c in candles)
    )
    return check_backtest(out, tmp_path / "config.toml", {SYM: data}, allow_touch=allow_touch)


def only(report: CheckReport, **expected: int) -> None:
    """Assert that the report finds exactly ``expected`` (rule -> count) and nothing else."""
    wanted = {rule: expected.get(rule, 0) for rule in RULES}
    assert dict(report.counts) == wanted, report.text()
    for rule, count in expected.items():
        assert len(report.examples[rule]) == min(count, 5)


def edit(rows: Rows, index: int, **fields: Any) -> Rows:
    """Return a copy of ``rows`` with row ``index``'s named columns replaced."""
    header = {len(h): h for h in (FILLS_HEADER, LEGACY_FILLS_HEADER, ORDERS_HEADER)}[len(rows[0])]
    out = [list(row) for row in rows]
    for name, value in fields.items():
        out[index][header.index(name)] = value
    return out


# --- the clean run ----------------------------------------------------------------------------------


def test_a_clean_run_has_no_findings_and_its_replayed_totals(tmp_path: Path) -> None:
    report = run(tmp_path, CLEAN_ORDERS, CLEAN_FILLS, summary=CLEAN_SUMMARY)

    only(report)
    assert report.ok
    assert report.text().startswith("backtest check: OK")
    totals = report.totals[SYM]
    assert (totals.fills, totals.buy_fills, totals.sell_fills) == (2, 1, 1)
    assert (totals.orders_placed, totals.cycles_closed, totals.open_cycles) == (3, 1, 0)
    assert totals.realized_pnl_quote == Decimal("0.03015")
    assert totals.fees_quote == Decimal("0.01985")
    assert totals.max_committed_quote == 19.75  # 9.90 held (after the fill) + 9.85 open, or 2 open buys
    assert totals.final_inventory_base == 0
    assert totals.open_orders_at_end == 0
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_partial_fills_of_both_sides_are_clean(tmp_path: Path) -> None:
    orders = [
        *CLEAN_ORDERS[:2],
        [close_ts(1), SYM, "partially_filled", "buy", "99.00", "0.04", f"{ID}-B0-1", "1"],
        [close_ts(1), SYM, "filled", "buy", "99.00", "0.06", f"{ID}-B0-1", "2"],
        CLEAN_ORDERS[3],
        [close_ts(3), SYM, "partially_filled", "sell", "99.50", "0.03", f"{ID}-S0-3", "3"],
        [close_ts(3), SYM, "filled", "sell", "99.50", "0.07", f"{ID}-S0-3", "4"],
        CLEAN_ORDERS[5],
    ]
    fills = [
        [close_ts(1), SYM, "buy", "99.00", "0.04", "0.00396", f"{ID}-B0-1", "1", "maker"],
        [close_ts(1), SYM, "buy", "99.00", "0.06", "0.00594", f"{ID}-B0-1", "1", "maker"],
        [close_ts(3), SYM, "sell", "99.50", "0.03", "0.002985", f"{ID}-S0-3", "1", "maker"],
        [close_ts(3), SYM, "sell", "99.50", "0.07", "0.006965", f"{ID}-S0-3", "1", "maker"],
    ]
    report = run(tmp_path, orders, fills)

    only(report)
    assert report.totals[SYM].cycles_closed == 1
    assert report.totals[SYM].fills == 4


# --- rails ------------------------------------------------------------------------------------------


def test_a_buy_beyond_max_base_is_a_rail_violation(tmp_path: Path) -> None:
    # 0.1 + 0.1 open + 0.81 = 1.01 > max_base 1; quote 19.75 + 0.81 stays below 25
    extra = [T0 + MIN, SYM, "placed", "buy", "1.00", "0.81", f"{ID}-B2-4", "ladder level 2"]
    report = run(tmp_path, [*CLEAN_ORDERS[:2], extra, *CLEAN_ORDERS[2:]], CLEAN_FILLS)

    only(report, rail_violations=1)
    assert "max_base" in report.examples["rail_violations"][0].detail
    assert report.examples["rail_violations"][0].ref == f"{ID}-B2-4"


@pytest.mark.parametrize(("qty", "violations"), [("0.053", 0), ("0.054", 1)])
def test_the_cost_of_held_lots_counts_toward_max_quote(tmp_path: Path, qty: str, violations: int) -> None:
    # after the level-0 fill: 9.90 held at cost + 9.85 open; 98 x 0.053 = 5.194 fits 25, 98 x 0.054 not
    extra = [T0 + 3 * MIN, SYM, "placed", "buy", "98.00", qty, f"{ID}-B2-4", "ladder level 2"]
    cancel = [T0 + 4 * MIN, SYM, "cancelled", "buy", "98.00", qty, f"{ID}-B2-4", "not wanted"]
    report = run(tmp_path, [*CLEAN_ORDERS[:4], extra, *CLEAN_ORDERS[4:], cancel], CLEAN_FILLS)

    only(report, rail_violations=violations)
    if violations:
        assert "max_quote" in report.examples["rail_violations"][0].detail


@pytest.mark.parametrize(("qty", "violations"), [("0.1515", 0), ("0.1516", 1)])
def test_a_pooled_exit_sells_the_lowest_level_first(tmp_path: Path, qty: str, violations: int) -> None:
    # levels 0 (0.1 @ 99.00) and 1 (0.1 @ 98.50) of one cycle; the pooled exit sells 0.1 of the 0.2:
    # level 0's lot goes first, so 9.85 stays at cost (not the average 9.875), and a new buy of
    # 100 x 0.1515 = 15.15 fills max_quote 25 exactly
    sp = f"{ID}-SP-5"
    orders = [
        *CLEAN_ORDERS[:3],
        [close_ts(4), SYM, "filled", "buy", "98.50", "0.1", f"{ID}-B1-2", "2"],
        [T0 + 5 * MIN, SYM, "placed", "sell", "99.50", "0.2", sp, "pooled exit"],
        [close_ts(5), SYM, "partially_filled", "sell", "99.50", "0.1", sp, "3"],
        [T0 + 6 * MIN, SYM, "placed", "buy", "100.00", qty, f"{ID}-B0-6", "ladder level 0"],
    ]
    fills = [
        CLEAN_FILLS[0],
        [close_ts(4), SYM, "buy", "98.50", "0.1", "0.00985", f"{ID}-B1-2", "1", "maker"],
        [close_ts(5), SYM, "sell", "99.50", "0.1", "0.00995", sp, "1", "maker"],
    ]
    report = run(tmp_path, orders, fills)

    only(report, rail_violations=violations)
    assert report.totals[SYM].open_cycles == 1


def test_a_breach_counts_once_until_the_rails_hold_again(tmp_path: Path) -> None:
    def big(n: int, ts: int) -> list[Any]:
        return [ts, SYM, "placed", "buy", "1.00", "0.9", f"{ID}-B{n}-{n}", "ladder"]

    def cancel(n: int, ts: int) -> list[Any]:
        return [ts, SYM, "cancelled", "buy", "1.00", "0.9", f"{ID}-B{n}-{n}", "gone"]

    orders = [
        *CLEAN_ORDERS[:2],
        big(5, T0 + MIN),  # breach 1
        big(6, T0 + MIN),  # still beyond: same breach
        cancel(5, T0 + 2 * MIN),
        cancel(6, T0 + 2 * MIN),  # within the rails again
        *CLEAN_ORDERS[2:4],
        big(7, T0 + 3 * MIN),  # breach 2
        cancel(7, T0 + 3 * MIN),
        *CLEAN_ORDERS[4:],
    ]
    only(run(tmp_path, orders, CLEAN_FILLS), rail_violations=2)


# --- fills against their candles --------------------------------------------------------------------


def test_a_fill_that_is_not_maker_liquidity_is_a_taker_fill(tmp_path: Path) -> None:
    report = run(tmp_path, CLEAN_ORDERS, edit(CLEAN_FILLS, 0, liquidity="taker"))

    only(report, taker_fills=1)
    assert "not maker" in report.examples["taker_fills"][0].detail


@pytest.mark.parametrize(
    ("candle", "row"),
    [
        (1, (T0 + MIN, "100", "100.2", "99", "99")),  # low == the buy's 99.00: touched, not traded through
        (3, (T0 + 3 * MIN, "99.5", "99.5", "99.1", "99.5")),  # high == the sell's 99.50
    ],
)
def test_a_maker_fill_at_a_price_the_candle_only_touched_is_a_taker_fill(
    tmp_path: Path, candle: int, row: tuple[int, str, str, str, str]
) -> None:
    candles = [*CANDLES]
    candles[candle] = row

    only(run(tmp_path, CLEAN_ORDERS, CLEAN_FILLS, candles=candles), taker_fills=1)
    # with trade prints a print at the order's price may fill it: allowed on request
    only(run(tmp_path, CLEAN_ORDERS, CLEAN_FILLS, candles=candles, allow_touch=True))


def test_a_buy_fill_above_the_candle_high_is_out_of_range(tmp_path: Path) -> None:
    # buy level 0 at 100.30 fills in candle 1 (high 100.20); no exit: the cycle stays open
    orders = edit(edit(CLEAN_ORDERS[:3] + CLEAN_ORDERS[5:], 0, price="100.30"), 2, price="100.30")
    fills = edit(CLEAN_FILLS[:1], 0, price="100.30", fee_quote="0.01003")
    report = run(tmp_path, orders, fills)

    only(report, out_of_range_fills=1)
    assert "outside candle" in report.examples["out_of_range_fills"][0].detail


def test_a_buy_fill_below_the_candle_low_is_out_of_range_and_taker(tmp_path: Path) -> None:
    orders = edit(edit(CLEAN_ORDERS[:3] + CLEAN_ORDERS[5:], 0, price="98.80"), 2, price="98.80")
    fills = edit(CLEAN_FILLS[:1], 0, price="98.80", fee_quote="0.00988")

    only(run(tmp_path, orders, fills), out_of_range_fills=1, taker_fills=1)


def test_a_fill_at_a_time_no_candle_contains_is_out_of_range(tmp_path: Path) -> None:
    late = T0 + 10 * MIN
    orders = edit(CLEAN_ORDERS, 4, ts_ms=late)
    orders = [*orders[:4], orders[5], orders[4]]  # the log stays in time order
    report = run(tmp_path, orders, edit(CLEAN_FILLS, 1, ts_ms=late))

    only(report, out_of_range_fills=1)
    assert "no candle contains" in report.examples["out_of_range_fills"][0].detail


# --- cycles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "fee", "below"),
    [
        ("99.30", "0.00993", 0),  # net 0.01007 >= 0.0099
        ("99.29", "0.009929", 1),  # net 0.009171 < 0.0099
        ("99.20", "0.00992", 1),
    ],
)
def test_a_closed_cycle_below_the_minimum_net_profit_is_found(
    tmp_path: Path, price: str, fee: str, below: int
) -> None:
    orders = edit(edit(CLEAN_ORDERS, 3, price=price), 4, price=price)
    report = run(tmp_path, orders, edit(CLEAN_FILLS, 1, price=price, fee_quote=fee))

    only(report, cycles_below_min_profit=below)
    if below:
        assert report.examples["cycles_below_min_profit"][0].ref == "cycle 1"


def test_selling_more_than_the_cycle_holds_is_an_oversell(tmp_path: Path) -> None:
    orders = edit(edit(CLEAN_ORDERS, 3, qty="0.2"), 4, qty="0.2")
    report = run(tmp_path, orders, edit(CLEAN_FILLS, 1, qty="0.2", fee_quote="0.0199"))

    only(report, oversells=1)
    assert report.totals[SYM].final_inventory_base == -report.totals[SYM].max_inventory_base


# --- fills against the order log --------------------------------------------------------------------


def test_a_fill_of_an_order_never_placed_is_unmatched(tmp_path: Path) -> None:
    ghost = f"{ID}-B5-9"
    orders = [*CLEAN_ORDERS, [close_ts(4), SYM, "filled", "buy", "98.50", "0.1", ghost, "3"]]
    fills = [*CLEAN_FILLS, [close_ts(4), SYM, "buy", "98.50", "0.1", "0.00985", ghost, "2", "maker"]]
    report = run(tmp_path, orders, fills)

    only(report, unmatched_fills=1)
    assert "no placed order" in report.examples["unmatched_fills"][0].detail


def test_a_fill_of_a_cancelled_order_is_unmatched(tmp_path: Path) -> None:
    b1 = f"{ID}-B1-2"
    orders = [*CLEAN_ORDERS, [close_ts(4), SYM, "filled", "buy", "98.50", "0.1", b1, "3"]]
    fills = [*CLEAN_FILLS, [close_ts(4), SYM, "buy", "98.50", "0.1", "0.00985", b1, "2", "maker"]]
    report = run(tmp_path, orders, fills)

    only(report, unmatched_fills=1)
    assert "cancelled" in report.examples["unmatched_fills"][0].detail


def test_a_fill_at_another_price_than_its_order_is_unmatched(tmp_path: Path) -> None:
    orders = edit(CLEAN_ORDERS, 2, price="99.10")
    fills = edit(CLEAN_FILLS, 0, price="99.10", fee_quote="0.00991")

    only(run(tmp_path, orders, fills), unmatched_fills=1)


def test_a_fill_missing_from_either_file_is_unmatched(tmp_path: Path) -> None:
    no_event = [row for i, row in enumerate(CLEAN_ORDERS) if i != 4]
    only(run(tmp_path, no_event, CLEAN_FILLS), unmatched_fills=1)

    no_fill = CLEAN_FILLS[:1]
    only(run(tmp_path, CLEAN_ORDERS, no_fill), unmatched_fills=1)


def test_a_fill_event_and_its_fill_that_disagree_are_unmatched(tmp_path: Path) -> None:
    report = run(tmp_path, edit(CLEAN_ORDERS, 4, qty="0.09"), CLEAN_FILLS)

    only(report, unmatched_fills=1, order_log_errors=0)
    assert "disagree" in report.examples["unmatched_fills"][0].detail


def test_filling_an_order_beyond_its_quantity_is_an_overfill(tmp_path: Path) -> None:
    # 0.15 of an order of 0.1: held 14.85 + 9.85 open stays within max_quote 25
    orders = edit(CLEAN_ORDERS, 2, qty="0.15")
    fills = edit(CLEAN_FILLS, 0, qty="0.15", fee_quote="0.01485")
    report = run(tmp_path, orders, fills)

    only(report, overfills=1)
    assert report.totals[SYM].open_cycles == 1
    assert "only 0.1 of 0.1 was open" in report.examples["overfills"][0].detail


def test_a_fee_other_than_the_maker_fee_is_wrong(tmp_path: Path) -> None:
    report = run(tmp_path, CLEAN_ORDERS, edit(CLEAN_FILLS, 0, fee_quote="0.0198"))  # 20 bps

    only(report, wrong_fees=1)


@pytest.mark.parametrize(
    "orders",
    [
        [*CLEAN_ORDERS[:2], CLEAN_ORDERS[1], *CLEAN_ORDERS[2:]],  # B1 placed twice
        [*CLEAN_ORDERS, [T0 + 4 * MIN, SYM, "cancelled", "buy", "97", "0.1", f"{ID}-B7-7", "?"]],
        edit(CLEAN_ORDERS, 5, qty="0.05"),  # cancelled another remainder than was open
        edit(CLEAN_ORDERS, 2, event="partially_filled"),  # the whole order filled
    ],
    ids=["placed-twice", "cancel-unknown", "cancel-remainder", "partial-vs-filled"],
)
def test_an_order_log_that_contradicts_itself_is_found(tmp_path: Path, orders: Rows) -> None:
    only(run(tmp_path, orders, CLEAN_FILLS), order_log_errors=1)


@pytest.mark.parametrize(
    ("fills", "orders"),
    [
        (edit(CLEAN_FILLS, 0, price="abc"), CLEAN_ORDERS),
        (CLEAN_FILLS, [*CLEAN_ORDERS, [T0, "ETH/USDT", "placed", "buy", "1", "1", "x", ""]]),
        (CLEAN_FILLS, [*CLEAN_ORDERS, [T0, SYM, "expired", "buy", "1", "1", "x", ""]]),
        (CLEAN_FILLS, [*CLEAN_ORDERS, [T0, SYM, "placed", "long", "1", "1", "x", ""]]),
    ],
    ids=["bad-price", "unknown-symbol", "unknown-event", "unknown-side"],
)
def test_an_unreadable_row_is_malformed(tmp_path: Path, fills: Rows, orders: Rows) -> None:
    report = run(tmp_path, orders, fills)

    assert report.counts["malformed_rows"] == 1, report.text()
    if fills is CLEAN_FILLS:
        only(report, malformed_rows=1)


# --- summary.json and inputs ------------------------------------------------------------------------


def test_summary_counters_that_differ_from_the_replay_are_mismatches(tmp_path: Path) -> None:
    summary = {**CLEAN_SUMMARY, "fills": 3, "realized_pnl_quote": 0.0302}
    report = run(tmp_path, CLEAN_ORDERS, CLEAN_FILLS, summary=summary)

    only(report, summary_mismatches=2)
    details = " ".join(f.detail for f in report.examples["summary_mismatches"])
    assert "fills" in details
    assert "realized_pnl_quote" in details


def test_several_symbols_are_replayed_apart_and_compared_per_symbol(tmp_path: Path) -> None:
    second = CONFIG.split("[[symbol]]")[1].replace("SYN/USDT", "ALT/USDT")
    config = CONFIG + "\n[[symbol]]" + second
    summary = {"fills": 2, "symbols": {SYM: CLEAN_SUMMARY, "ALT/USDT": {"fills": 0, "cycles_closed": 1}}}
    report = run(tmp_path, CLEAN_ORDERS, CLEAN_FILLS, summary=summary, config=config)

    only(report, summary_mismatches=1)
    assert report.examples["summary_mismatches"][0].symbol == "ALT/USDT"
    assert report.totals["ALT/USDT"].fills == 0
    assert report.totals[SYM].cycles_closed == 1


def test_a_wrong_header_or_missing_candles_stop_the_check(tmp_path: Path) -> None:
    run(tmp_path, CLEAN_ORDERS, CLEAN_FILLS)
    out = tmp_path / "out"
    with pytest.raises(CheckInputError, match="no candles"):
        check_backtest(out, tmp_path / "config.toml", {})
    (out / "fills.csv").write_text("ts,symbol\n")
    with pytest.raises(CheckInputError, match="header"):
        check_backtest(out, tmp_path / "config.toml", {SYM: tmp_path / "candles.csv"})
    (out / "fills.csv").unlink()
    with pytest.raises(CheckInputError, match="no such file"):
        check_backtest(out, tmp_path / "config.toml", {SYM: tmp_path / "candles.csv"})


# -- commissions in the asset received (issue 11, item 1) ------------------------------------

# The clean run as Binance charges it: the buy's commission is 0.0001 SYN of the 0.1 bought, so the
# lot received 0.0999 SYN and its exit sells the 0.099 it holds in whole lots (lot 0.001).
BASE_FEE_ORDERS = [
    *CLEAN_ORDERS[:3],
    [T0 + 3 * MIN, SYM, "placed", "sell", "99.50", "0.099", f"{ID}-S0-3", "exit at its target"],
    [close_ts(3), SYM, "filled", "sell", "99.50", "0.099", f"{ID}-S0-3", "2"],
    CLEAN_ORDERS[5],
]
BASE_FEE_FILLS = [
    [close_ts(1), SYM, "buy", "99.00", "0.1", "0", f"{ID}-B0-1", "1", "maker", "0.0001", "SYN", "0.00010000"],
    [
        close_ts(3),
        SYM,
        "sell",
        "99.50",
        "0.099",
        "0.0098505",
        f"{ID}-S0-3",
        "1",
        "maker",
        "0",
        "USDT",
        "0.0098505",
    ],
]


def test_a_buy_charged_in_base_and_an_exit_of_the_whole_lots_received_is_clean(tmp_path: Path) -> None:
    # fees: 0.0001 SYN at 99 = 0.0099, plus 0.0098505; the cycle's cost is that of the 0.099 sold:
    # 9.9 x 0.099 / 0.0999, rounded up to the quote unit; the 0.0009 SYN of dust carries the rest
    cost = Decimal("9.81081081082")
    summary = {
        "fills": 2,
        "cycles_closed": 1,
        "realized_pnl_quote": str(Decimal("9.8505") - cost - Decimal("0.0098505")),
        "fees_quote": "0.0197505",
    }
    report = run(tmp_path, BASE_FEE_ORDERS, BASE_FEE_FILLS, summary=summary)

    only(report)


def test_selling_the_base_a_buy_paid_as_commission_is_an_oversell(tmp_path: Path) -> None:
    orders = edit(edit(BASE_FEE_ORDERS, 3, qty="0.1"), 4, qty="0.1")
    fills = edit(BASE_FEE_FILLS, 1, qty="0.1", fee_quote="0.00995", commission="0.00995")

    report = run(tmp_path, orders, fills)

    only(report, oversells=1)
    assert "which holds 0.099" in report.examples["oversells"][0].detail


def test_a_base_commission_other_than_the_maker_fee_of_what_was_bought_is_wrong(tmp_path: Path) -> None:
    fills = edit(BASE_FEE_FILLS, 0, fee_base="0.0002")

    report = run(tmp_path, BASE_FEE_ORDERS, fills)

    assert report.counts["wrong_fees"] == 1


def test_a_commission_in_bnb_is_valued_at_the_fee_rate_of_the_notional(tmp_path: Path) -> None:
    fills = [
        [*CLEAN_FILLS[0], "0", "BNB", "0.0000165"],
        [*CLEAN_FILLS[1], "0", "BNB", "0.00001659"],
    ]
    only(run(tmp_path, CLEAN_ORDERS, fills, summary=CLEAN_SUMMARY))

    undervalued = edit(fills, 0, fee_quote="0")
    assert run(tmp_path, CLEAN_ORDERS, undervalued).counts["wrong_fees"] == 1
