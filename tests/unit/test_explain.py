"""The rendering layer: the core's reasons and a pulse's position in the user's units."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from factories import symbol_params
from nutcracker.core.model import OpenOrder, Side
from nutcracker.core.params import GateParams, RailParams
from nutcracker.core.units import QU_PER_TICK_LOT
from nutcracker.explain import cancel_text, explain, render_reason

RAILS = RailParams(max_base_lots=3000, max_quote_qu=2000 * 10**8, reserve_base_lots=0, reserve_quote_qu=0)
PARAMS = replace(symbol_params(rails=RAILS), min_profit_ppm=10_000)


def test_a_stuck_position_reads_in_prices_percent_and_config_names() -> None:
    held, avg, exit_price = 280, 2_810_450, 2_838_555  # 0.00280 BTC at 28,104.50; exit 28,385.55
    close = 2_550_000  # 25,500.00: the exit is 11.3 % above it
    exit_order = OpenOrder("ncS0-1", Side.SELL, exit_price, held)
    reasons = (
        "B0 not placed: rails (base 2800+392 of 3000 lots, "
        "quote 787126000000+99960000000 of 200000000000 qu)",
    )
    shown = explain(
        PARAMS,
        held_lots=held,
        committed_qu=avg * held * QU_PER_TICK_LOT,
        close=close,
        open_orders=(exit_order,),
        reasons=reasons,
    )
    assert shown.state == "loaded"
    assert shown.text == (
        "holding 0.00280 BTC at 28,104.50 avg; exits rest from 28,385.55 (min profit 1.00 % net), "
        "11.3 % above the market; no buys: a buy of 0.00392 BTC does not fit the base rail "
        "(0.02800 BTC of 0.03000 BTC used, rails.max_base)"
    )


def test_a_rail_is_called_full_only_when_it_is() -> None:
    # console bench, 50 symbols: a level bigger than the whole rail read "rail full (0 of 0.15)"
    def shown(reason: str) -> str:
        return explain(
            PARAMS, held_lots=0, committed_qu=0, close=2_550_000, open_orders=(), reasons=(reason,)
        ).text

    big = "B0 not placed: rails (base 0+5000 of 3000 lots, quote 0+1 of 200000000000 qu)"
    assert "a buy of 0.05000 BTC does not fit the base rail (0.00000 BTC of 0.03000 BTC used" in shown(big)
    assert "full" not in shown(big)
    full = "B0 not placed: rails (base 3000+10 of 3000 lots, quote 0+1 of 200000000000 qu)"
    assert "base rail full (0.03000 BTC of 0.03000 BTC, rails.max_base)" in shown(full)
    cap = PARAMS.rails.max_quote_qu
    quote = f"B0 not placed: rails (base 0+10 of 3000 lots, quote {cap * 3 // 4}+{cap // 2} of {cap} qu)"
    assert "does not fit the quote rail" in shown(quote)
    assert "full" not in shown(quote)
    assert "quote rail full" in shown(
        f"B0 not placed: rails (base 0+10 of 3000 lots, quote {cap}+1 of {cap} qu)"
    )


def test_a_flat_ladder_says_where_its_buys_rest() -> None:
    buys = (OpenOrder("ncB0-1", Side.BUY, 2_786_000, 358), OpenOrder("ncB1-2", Side.BUY, 2_772_000, 360))
    shown = explain(
        PARAMS,
        held_lots=0,
        committed_qu=sum(o.price * o.qty for o in buys) * QU_PER_TICK_LOT,
        close=2_800_000,
        open_orders=buys,
        reasons=(),
    )
    assert shown.state == "flat"
    assert shown.text == "flat; buys rest from 27,860.00, 0.5 % below the market (2 levels)"


def test_the_key_ignores_the_market_moving_but_not_the_reason() -> None:
    def at(close: int, reasons: tuple[str, ...]) -> tuple[str, ...]:
        return explain(PARAMS, held_lots=0, committed_qu=0, close=close, open_orders=(), reasons=reasons).key

    cooling = ("B0 waits: buy cooldown",)
    assert at(2_800_000, cooling) == at(2_900_000, cooling)
    assert at(2_800_000, cooling) != at(2_800_000, ("no buys: indicators warming up (12 candles applied)",))


def test_every_core_reason_shape_is_rendered_without_ticks_ppm_lots_or_quote_units() -> None:
    params = replace(PARAMS, gates=GateParams(0, 10_000, 0, 0, 0, 1000, 50_000))
    cases = {
        "no buys: volatility 12345 ppm above the backstop 10000 ppm": (
            "no buys: volatility (ATR) 1.23 % of the price is above volatility.max_atr_pct 1.00 %"
        ),
        "no buys: indicators warming up (12 candles applied)": (
            "no buys: indicators warming up (12 of 20 candles)"
        ),
        "B3 at 2700000 is beyond the purge distance: skipped": (
            "B3 at 27,000.00 is farther from the market than orders.purge_bps (5.00 %): skipped"
        ),
        "S1 exit of 5 lots is below the minimum notional: held until it grows": (
            "S1 exit of 0.00005 BTC is below market.min_notional: held until it grows"
        ),
        "B0 not placed: free quote above the reserve is too low": (
            "B0 not placed: free USDT above rails.reserve_quote is too low"
        ),
        "B2 re-priced to 2712345": "B2 re-priced: new price 27,123.45",
        "buy at 2600000 beyond the purge line 2660000": (
            "purged: buy at 26,000.00 drifted beyond orders.purge_bps (5.00 %) from the market "
            "(line 26,600.00)"
        ),
        "buy at 2600000 beyond the purge line 2660000 (best bid 2800000)": (
            "purged: buy at 26,000.00 drifted 7.1 % below the best bid 28,000.00, beyond orders.purge_bps "
            "(5.00 %)"
        ),
        "idle: the book is empty or crossed (bid 2800000, ask 2790000)": (
            "idle: the book is empty or crossed (bid 28,000.00, ask 27,900.00)"
        ),
        "something new: 1500 ppm, 20 lots, 10000000000000 qu": (
            "something new: 0.15 %, 0.00020 BTC, 1.00 USDT"
        ),
    }
    for reason, expected in cases.items():
        assert render_reason(reason, params) == expected


def test_a_cancelled_slot_says_why_it_is_no_longer_wanted() -> None:
    pulse = ("no buys: volatility 20000 ppm above the backstop 10000 ppm",)
    text = cancel_text("B1 is no longer wanted", pulse, PARAMS)
    assert text == (
        "B1 no longer wanted because no buys: volatility (ATR) 2.00 % of the price is above "
        "volatility.max_atr_pct 1.00 %"
    )
    own = ("B4 at 2700000 is beyond the purge distance: skipped",)
    assert cancel_text("B4 is no longer wanted", own, PARAMS).startswith(
        "B4 no longer wanted because B4 at 27,000.00"
    )


def test_a_full_rail_is_named_when_the_strategy_asks_for_no_buy() -> None:
    precision = PARAMS.market.precision
    rails = replace(RAILS, max_quote_qu=precision.quote_to_qu(Decimal(2000)))
    params = replace(
        PARAMS, rails=rails, grid=replace(PARAMS.grid, order_quote_qu=precision.quote_to_qu(Decimal(100)))
    )
    exit_order = OpenOrder("ncS0-1", Side.SELL, 2_838_555, 2000)

    def no_buys(held: int, committed: Decimal) -> str:
        qu = precision.quote_to_qu(committed)
        shown = explain(
            params, held_lots=held, committed_qu=qu, close=2_550_000, open_orders=(exit_order,), reasons=()
        )
        return shown.text.rsplit("no buys: ", 1)[1]

    # 1,950 of 2,000 committed: a 100 level does not fit
    assert (
        no_buys(2000, Decimal(1950))
        == "quote rail full (1,950.00 USDT of 2,000.00 USDT committed, rails.max_quote)"
    )
    assert no_buys(3000, Decimal(500)) == "base rail full (0.03000 BTC of 0.03000 BTC, rails.max_base)"
    assert no_buys(2000, Decimal(1900)) == "no buy level is wanted now"  # room for one more level
