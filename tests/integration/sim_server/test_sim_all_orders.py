"""``GET /api/v3/allOrders`` (ccxt ``fetch_orders``): the order history ``nutcracker recover`` reads.

As Binance: open and closed orders of a symbol, oldest first; ``orderId`` pages from an id on,
``startTime``/``endTime`` at most 24 hours apart, otherwise the most recent ``limit`` (500, at
most 1000); a cancelled order keeps its own client order id.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from sim_clients import ALICE

from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.simexchange.server import SimServer

SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")


def _place_three(sim: SimServer, alice: Any) -> list[dict[str, Any]]:
    bid = int(sim.market(SYMBOL).candles.close[99]) * TICK
    orders = [
        alice.create_order(
            SYMBOL, "limit", "buy", 0.001, float(bid - k), {"postOnly": True, "clientOrderId": f"nc-B{k}-{k}"}
        )
        for k in (1, 2, 3)
    ]
    alice.cancel_order(None, SYMBOL, {"clientOrderId": "nc-B2-2"})
    return orders


def test_all_orders_lists_open_and_closed_orders_oldest_first(sim: SimServer, alice: Any) -> None:
    orders = _place_three(sim, alice)
    listed = alice.fetch_orders(SYMBOL)
    assert [(o["clientOrderId"], o["status"]) for o in listed] == [
        ("nc-B1-1", "open"),
        ("nc-B2-2", "canceled"),
        ("nc-B3-3", "open"),
    ]
    assert [o["clientOrderId"] for o in alice.fetch_orders(SYMBOL, None, 2)] == ["nc-B2-2", "nc-B3-3"]
    from_second = alice.fetch_orders(SYMBOL, None, 1, {"orderId": orders[1]["id"]})
    assert [o["clientOrderId"] for o in from_second] == ["nc-B2-2"]
    now = alice.fetch_time()
    assert len(alice.fetch_orders(SYMBOL, now - 60_000)) == 3
    assert alice.fetch_orders(SYMBOL, now + 60_000) == []
    with pytest.raises(ccxt.BadRequest, match="More than 24 hours"):
        alice.fetch_orders(SYMBOL, now - 2 * 86_400_000, None, {"until": now})


def test_the_connector_reads_the_whole_history_and_the_most_recent_page(sim: SimServer, alice: Any) -> None:
    _place_three(sim, alice)

    async def read() -> tuple[list[tuple[str, str]], list[str]]:
        async with CcxtExchange("binance", api_key=ALICE.api_key, secret=ALICE.secret, api_url=sim.url) as ex:
            every = await ex.fetch_orders(SYMBOL)
            recent = await ex.fetch_orders(SYMBOL, 1)
            return [(o.order.client_order_id, o.status) for o in every], [
                o.order.client_order_id for o in recent
            ]

    every, recent = asyncio.run(read())
    assert every == [("nc-B1-1", "open"), ("nc-B2-2", "cancelled"), ("nc-B3-3", "open")]
    assert recent == ["nc-B3-3"]
