from __future__ import annotations

import pytest

from nutcracker.core.ledger import Ledger, book_fill, min_sell_price
from nutcracker.core.model import Fill, Side
from nutcracker.core.units import BU_PER_LOT, QU_PER_TICK_LOT

FEE_PPM = 1000  # 10 bps


def _fill(side: Side, price: int, qty: int, trade_id: str, ts_ms: int = 0) -> Fill:
    return Fill(trade_id, f"x-{trade_id}", side, price, qty, price * qty * FEE_PPM, ts_ms)


def test_a_buy_fill_opens_a_lot_and_a_cycle() -> None:
    ledger, booking, closed = book_fill(Ledger(), _fill(Side.BUY, 10_000, 50, "1"), level=0, pooled=False)
    assert closed is None
    assert booking.cycle_id == 1
    (lot,) = ledger.lots
    assert (lot.level, lot.held, lot.cost, lot.buy_fees) == (
        0,
        50,
        10_000 * 50 * QU_PER_TICK_LOT,
        500_000_000,
    )
    assert ledger.fees_paid == 500_000_000


def test_selling_a_lot_closes_its_cycle_with_exact_net_pnl() -> None:
    ledger, _, _ = book_fill(Ledger(), _fill(Side.BUY, 10_000, 50, "1"), level=0, pooled=False)
    ledger, booking, closed = book_fill(
        ledger, _fill(Side.SELL, 10_100, 50, "2", ts_ms=5), level=0, pooled=False
    )
    assert closed is not None
    assert booking.cycle_id == 1
    cost, proceeds = 10_000 * 50 * QU_PER_TICK_LOT, 10_100 * 50 * QU_PER_TICK_LOT
    fees = (10_000 + 10_100) * 50 * FEE_PPM
    assert closed.pnl == proceeds - cost - fees
    assert ledger.lots == ()
    assert ledger.realized_pnl == closed.pnl
    assert ledger.cycles_closed == 1


def test_partial_sells_close_the_cycle_only_when_the_lot_is_empty() -> None:
    ledger, _, _ = book_fill(Ledger(), _fill(Side.BUY, 10_000, 50, "1"), level=2, pooled=False)
    ledger, _, closed = book_fill(ledger, _fill(Side.SELL, 10_100, 20, "2"), level=2, pooled=False)
    assert closed is None
    assert ledger.lots[0].held == 30
    ledger, _, closed = book_fill(ledger, _fill(Side.SELL, 10_200, 30, "3"), level=2, pooled=False)
    assert closed is not None
    assert closed.proceeds == (10_100 * 20 + 10_200 * 30) * QU_PER_TICK_LOT


def test_pooled_mode_closes_one_cycle_for_the_whole_sequence() -> None:
    ledger, b1, _ = book_fill(Ledger(), _fill(Side.BUY, 10_000, 10, "1"), level=0, pooled=True)
    ledger, b2, _ = book_fill(ledger, _fill(Side.BUY, 9_000, 20, "2"), level=1, pooled=True)
    assert b1.cycle_id == b2.cycle_id == 1
    ledger, _, closed = book_fill(ledger, _fill(Side.SELL, 9_500, 30, "3"), level=-1, pooled=True)
    assert closed is not None
    assert closed.cost == (10_000 * 10 + 9_000 * 20) * QU_PER_TICK_LOT
    assert ledger.lots == ()
    assert ledger.sequence_cycle_id == 0
    ledger, b4, _ = book_fill(ledger, _fill(Side.BUY, 9_000, 10, "4"), level=0, pooled=True)
    assert b4.cycle_id == 2


def test_a_sell_larger_than_the_inventory_is_a_broken_invariant() -> None:
    ledger, _, _ = book_fill(Ledger(), _fill(Side.BUY, 10_000, 10, "1"), level=0, pooled=False)
    with pytest.raises(ValueError, match="exceeds"):
        book_fill(ledger, _fill(Side.SELL, 11_000, 11, "2"), level=0, pooled=False)


@pytest.mark.parametrize(("min_profit_ppm", "expected"), [(0, 10_021), (1000, 10_031), (10_000, 10_121)])
def test_min_sell_price_covers_both_fees_and_the_min_profit(min_profit_ppm: int, expected: int) -> None:
    ledger, _, _ = book_fill(Ledger(), _fill(Side.BUY, 10_000, 50, "1"), level=0, pooled=False)
    price = min_sell_price(ledger.lots, FEE_PPM, min_profit_ppm)
    assert price == expected
    # selling at that price nets at least the minimum; one tick lower does not
    for p, ok in ((price, True), (price - 1, False)):
        proceeds = p * 50 * QU_PER_TICK_LOT
        net = proceeds - p * 50 * FEE_PPM - ledger.lots[0].cost - ledger.lots[0].buy_fees
        assert (net * 1_000_000 >= min_profit_ppm * ledger.lots[0].cost) is ok


# -- commissions in the received asset (issue 11, item 1) ------------------------------------


def _base_fee_buy(price: int, qty: int, trade_id: str, ts_ms: int = 0) -> Fill:
    """A buy whose commission Binance took from the base received: qty * fee_ppm base units."""
    return Fill(trade_id, f"x-{trade_id}", Side.BUY, price, qty, 0, ts_ms, qty * FEE_PPM, "BTC")


def test_a_buy_charged_in_base_holds_only_the_whole_lots_received() -> None:
    ledger, _, _ = book_fill(Ledger(), _base_fee_buy(10_000, 100, "1"), level=0, pooled=False)

    (lot,) = ledger.lots
    assert lot.received == 100 * BU_PER_LOT - 100 * FEE_PPM  # 99.9 lots
    assert lot.held == 99  # the exit sells what the account holds, never the 100 ordered
    assert lot.buy_fees == 0  # paid in base: it shows as fewer lots, not as quote
    assert ledger.fees_paid == 10_000 * 100 * FEE_PPM  # valued at the fill price, for reports


def test_the_dust_a_closed_cycle_leaves_joins_the_next_lot_once_it_adds_up_to_a_lot() -> None:
    ledger, held = Ledger(), []
    for n in range(10):  # each buy receives 99.9 lots: 99 whole ones and 0.9 lot of dust
        ledger, _, _ = book_fill(ledger, _base_fee_buy(10_000, 100, f"b{n}"), level=0, pooled=False)
        (lot,) = ledger.lots
        held.append(lot.held)
        ledger, _, closed = book_fill(
            ledger, _fill(Side.SELL, 10_100, lot.held, f"s{n}"), level=0, pooled=False
        )
        assert closed is not None

    # 0.9 + 0.9 = 1.8: from the third buy on, a whole lot of dust joins each lot and is sold
    assert held == [99, 99, 100, 100, 100, 100, 100, 100, 100, 100]
    assert sum(held) * BU_PER_LOT + ledger.dust == 10 * (100 * BU_PER_LOT - 100 * FEE_PPM)
    assert ledger.dust == BU_PER_LOT  # one lot, reported, waiting for the next buy to carry it


def test_min_sell_price_is_net_of_a_base_fee_on_the_buy() -> None:
    ledger, _, _ = book_fill(Ledger(), _base_fee_buy(10_000, 100, "1"), level=0, pooled=False)
    (lot,) = ledger.lots

    floor = min_sell_price([lot], FEE_PPM, 0)
    # the 99 whole lots cost 99 / 99.9 of the 100 bought (the 0.9 lot of dust takes the rest along):
    # selling them at the floor recovers that cost, the base fee included, and the sell fee
    cost = -(-lot.cost * 99 * BU_PER_LOT // lot.received)
    assert cost > lot.cost * 99 // 100  # dearer per lot than the price paid: the base fee
    assert notional(floor, 99) - floor * 99 * FEE_PPM >= cost
    below = floor - 1
    assert notional(below, 99) - below * 99 * FEE_PPM < cost


def test_a_closed_cycle_counts_the_cost_of_what_it_sold_and_its_dust_carries_the_rest() -> None:
    ledger, _, _ = book_fill(Ledger(), _base_fee_buy(10_000, 100, "1"), level=0, pooled=False)
    ledger, _, closed = book_fill(ledger, _fill(Side.SELL, 10_100, 99, "2"), level=0, pooled=False)
    assert closed is not None
    paid = notional(10_000, 100)
    assert closed.cost + ledger.dust_cost == paid
    assert ledger.dust == 900_000
    assert ledger.dust_cost == paid * 900_000 // 99_900_000
    assert closed.pnl == notional(10_100, 99) - 10_100 * 99 * FEE_PPM - closed.cost


def notional(price: int, qty: int) -> int:
    return price * qty * QU_PER_TICK_LOT


def test_every_cost_paid_is_in_a_closed_cycle_an_open_lot_or_the_dust_through_partial_sells() -> None:
    ledger, paid, closed_cost = Ledger(), 0, 0
    for n in range(6):  # pooled sequences of two lots, each leaving dust, exited in two parts
        for level, price in ((0, 10_000 + n), (1, 9_900 + n)):
            ledger, _, _ = book_fill(
                ledger, _base_fee_buy(price, 277 + n, f"b{n}{level}"), level, pooled=True
            )
            paid += notional(price, 277 + n)
        first = ledger.held // 3
        for part, qty in enumerate((first, ledger.held - first)):
            ledger, _, closed = book_fill(
                ledger, _fill(Side.SELL, 10_100, qty, f"s{n}{part}"), -1, pooled=True
            )
            assert ledger.dust_cost > 0 or n == 0  # a partial exit keeps the dust's cost
            closed_cost += closed.cost if closed is not None else 0
        assert ledger.lots == ()
        assert closed_cost + ledger.dust_cost == paid


def test_dust_joins_a_lot_with_its_cost_kept_apart_from_the_buys_notional() -> None:
    ledger, _, _ = book_fill(Ledger(), _base_fee_buy(10_000, 100, "b0"), level=0, pooled=False)
    ledger, _, _ = book_fill(ledger, _fill(Side.SELL, 10_100, 99, "s0"), level=0, pooled=False)
    ledger, _, _ = book_fill(ledger, _base_fee_buy(10_000, 100, "b1"), level=0, pooled=False)
    ledger, _, _ = book_fill(ledger, _fill(Side.SELL, 10_100, 99, "s1"), level=0, pooled=False)
    dust_cost = ledger.dust_cost

    ledger, _, _ = book_fill(ledger, _base_fee_buy(10_000, 100, "b2"), level=0, pooled=False)

    (lot,) = ledger.lots
    assert lot.held == 100  # 99.9 received + 1 of the 1.8 lots of dust
    assert lot.cost == notional(10_000, 100)  # the buy price the grid's exit target averages stays
    assert lot.joined_cost + ledger.dust_cost == dust_cost


def test_the_floor_covers_a_sell_commission_rounded_up_to_eight_decimals() -> None:
    from decimal import Decimal

    from nutcracker.core.units import Precision, commission_round_qu

    btc = Precision(Decimal("0.01"), Decimal("0.00001"))  # 1 qu = 1e-13 USDT
    round_qu = commission_round_qu(btc)
    assert round_qu == 100_000  # 1e-8 USDT
    ledger, _, _ = book_fill(Ledger(), _base_fee_buy(5_000_273, 37, "1"), level=0, pooled=False)
    (lot,) = ledger.lots
    min_profit = 1_500

    def nets_the_minimum(floor: int) -> bool:
        charged = -(-floor * lot.held * FEE_PPM // round_qu) * round_qu  # the exchange rounds it up
        net = notional(floor, lot.held) - charged - lot.sellable_cost
        return net * 1_000_000 >= lot.sellable_cost * min_profit

    assert not nets_the_minimum(min_sell_price([lot], FEE_PPM, min_profit))  # exact fee assumed: short
    assert nets_the_minimum(min_sell_price([lot], FEE_PPM, min_profit, round_qu))
