"""The report reads like a trader's page: round PnL bins, money in cents, a headline, the price on top."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.integration.test_report_render import make_series

from nutcracker.backtest.report import ReportData, figures, nice_bins, render_html


def _is_round(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m, rel_tol=1e-4) for m in (1.0, 2.0, 5.0, 10.0))


@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(0, 1e6, allow_nan=False),
    st.integers(1, 60),
)
def test_bins_are_round_cover_the_data_and_never_straddle_zero(
    lo: float, width: float, max_bins: int
) -> None:
    hi = lo + width
    edges, decimals = nice_bins(lo, hi, max_bins)
    step = float(edges[-1] - edges[0]) / (len(edges) - 1)
    assert _is_round(step)
    assert edges[0] <= lo
    assert edges[-1] >= hi
    assert len(edges) - 1 <= max_bins + 4  # rounding outward adds at most a bin at each end
    assert decimals >= 0
    # 0 is an edge or outside the range: no bar mixes losses and profits
    assert not any(a < 0 < b and not math.isclose(a, 0) for a, b in itertools.pairwise(edges))


def test_bins_of_one_value_have_a_width() -> None:
    edges, _ = nice_bins(0.66, 0.66)
    assert edges[0] <= 0.66 <= edges[-1]
    assert edges[-1] > edges[0]


def test_cycle_bars_are_labelled_in_round_quote_amounts() -> None:
    series = replace(
        make_series(400, 3, "BTC/USDT"), cycle_pnl_quote=np.array([0.6612, 0.6643, 0.671, -0.12])
    )
    bar = figures(series)["cycles"]["data"][0]
    assert all(label.endswith(" USDT") for label in bar["text"])
    assert "-0.20 to -0.10 USDT" in bar["text"] or "-0.15 to -0.10 USDT" in bar["text"], bar["text"]
    assert sum(bar["y"]) == 4
    assert bar["marker"]["color"][0] != bar["marker"]["color"][-1]  # the loss bar is not profit-coloured


def test_the_price_line_is_drawn_over_the_bands() -> None:
    names = [t["name"] for t in figures(make_series(300, 1, "BTC/USDT"))["price"]["data"]]
    assert names.index("close") > max(names.index("Keltner upper"), names.index("Keltner lower"))


def _summary(mine: float, grid: float) -> dict[str, Any]:
    section = {
        "first_candle": "2024-07-26 14:15 UTC",
        "last_candle": "2024-08-25 14:23 UTC",
        "days": 30.006,
        "return_pct": mine,
        "realized_pnl_quote": "27.2526135702579",
        "fees_quote": "29.3232615366",
        "max_drawdown_pct": 27.9714,
        "cycles_closed": 41,
        "cycles_per_day": 1.3664,
        "cancels_per_fill": 0.4773,
        "in_market_pct": 97.25,
        "loaded_pct": 90.89,
        "at_rail_pct": 99.43,
        "baselines": {
            "buy_and_hold": {"return_pct": -5.3521},
            "static_grid_1pct": {"return_pct": grid, "final_equity_quote": "1964.21147041"},
        },
    }
    return {"symbols": {"BTC/USDT": section}, "fees_quote": "29.3232615366"}


def test_the_headline_says_when_a_static_grid_did_better() -> None:
    series = make_series(300, 1, "BTC/USDT")
    decisions = ((int(series.ts_ms[-5]), "loaded", "holding 0.0289 BTC at 68,859.37 avg"),)
    page = render_html(ReportData("t", _summary(-5.58, -1.79), [replace(series, decisions=decisions)]))
    headline = page[
        page.index('class="nc-headline"') : page.index("</div>", page.index('class="nc-headline"'))
    ]
    assert "return -5.58 %" in headline
    assert "buy and hold -5.35 %" in headline
    assert "best static grid (1 %) -1.79 %" in headline
    assert "The static 1 % grid did better over this period." in headline
    assert "realized PnL 27.25 USDT after fees" in headline
    assert "fees 29.32 USDT" in headline
    assert "loaded (holding, no buy resting) 90.89 %" in headline
    assert "holding 0.0289 BTC at 68,859.37 avg" in headline
    assert headline.index("2024-07-26 14:15 UTC") < headline.index("return")


@pytest.mark.parametrize(("mine", "says"), [(2.5, False), (-5.58, True)])
def test_the_grid_verdict_only_when_it_is_true(mine: float, says: bool) -> None:
    page = render_html(ReportData("t", _summary(mine, -1.79), [make_series(300, 1, "BTC/USDT")]))
    assert ("did better over this period" in page) is says


def test_money_in_the_tables_is_rounded_to_cents_and_summary_json_keeps_every_digit() -> None:
    summary = _summary(-5.58, -1.79)
    page = render_html(ReportData("t", summary, [make_series(300, 1, "BTC/USDT")]))
    assert "<td>29.32</td>" in page
    assert "29.3232615366" not in page.split("effective configuration")[0]
    assert "<td>1,964.21</td>" in page  # the yardsticks' table too
    assert summary["fees_quote"] == "29.3232615366"
