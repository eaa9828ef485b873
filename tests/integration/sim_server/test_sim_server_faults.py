"""Fault injection of the sim-exchange as the real ccxt client sees it: status codes, timeouts,
answers lost after the order was accepted, latency, seeded draws and the /sim/faults endpoint."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt
import pytest
from sim_clients import ALICE, ccxt_binance, http

from nutcracker.simexchange.server import (
    ENDPOINTS,
    TRADING_ENDPOINTS,
    FaultRule,
    SimServer,
    endpoints_matching,
)

SYMBOL = "BTC/USDT"


def resting_price(sim: SimServer) -> float:
    """Return a buy price below the book: it rests."""
    return float((int(sim.market(SYMBOL).candles.close[99]) - 20) * 0.01)


def place(exchange: Any, sim: SimServer, client_id: str) -> Any:
    return exchange.create_order(
        SYMBOL, "limit", "buy", 0.001, resting_price(sim), {"postOnly": True, "clientOrderId": client_id}
    )


def test_503_is_binance_internal_error_and_nothing_is_placed(sim: SimServer, alice: Any) -> None:
    sim.fail_next("5xx")
    with pytest.raises(ccxt.OperationFailed, match="-1001"):
        place(alice, sim, "f-503")
    with pytest.raises(ccxt.OrderNotFound):
        alice.fetch_order(None, SYMBOL, {"clientOrderId": "f-503"})


def test_502_from_the_gateway_is_exchange_not_available(sim: SimServer, alice: Any) -> None:
    sim.fail_next("502")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        place(alice, sim, "f-502")
    assert alice.fetch_open_orders(SYMBOL) == []


@pytest.mark.parametrize(("kind", "retry_after"), [("429", "1"), ("418", "120")])
def test_rate_limits_are_ddos_protection_with_retry_after(
    sim: SimServer, alice: Any, kind: Any, retry_after: str
) -> None:
    sim.fail_next(kind)
    with pytest.raises(ccxt.DDoSProtection):
        place(alice, sim, f"f-{kind}")
    assert alice.fetch_open_orders(SYMBOL) == []
    sim.fail_next(kind, "GET /api/v3/time")
    status, answer, headers = http(f"{sim.url}/api/v3/time")
    assert (status, answer["code"], headers["Retry-After"]) == (int(kind), -1003, retry_after)


def test_timeout_is_request_timeout_and_nothing_is_placed(sim: SimServer, alice: Any) -> None:
    sim.set_faults(timeout_ms=1_000)
    sim.fail_next("timeout")
    alice.timeout = 300
    started = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout):
        place(alice, sim, "f-timeout")
    assert time.monotonic() - started < 1.0
    alice.timeout = 10_000
    with pytest.raises(ccxt.OrderNotFound):
        alice.fetch_order(None, SYMBOL, {"clientOrderId": "f-timeout"})


def test_drop_after_accept_loses_the_answer_but_the_order_rests(sim: SimServer, alice: Any) -> None:
    sim.fail_next("drop_after_accept")
    with pytest.raises(ccxt.NetworkError):
        place(alice, sim, "f-drop")
    found = alice.fetch_order(None, SYMBOL, {"clientOrderId": "f-drop"})
    assert (found["status"], found["clientOrderId"], found["amount"]) == ("open", "f-drop", 0.001)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):  # a blind resend is refused
        place(alice, sim, "f-drop")


def test_drop_after_accept_with_the_async_client_is_exchange_not_available(sim: SimServer) -> None:
    sim.fail_next("drop_after_accept")

    async def scenario() -> Any:
        exchange = ccxt_binance(sim.url, ALICE.api_key, ALICE.secret, async_=True)
        try:
            await exchange.load_markets()
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await exchange.create_order(
                    SYMBOL,
                    "limit",
                    "buy",
                    0.001,
                    resting_price(sim),
                    {"postOnly": True, "clientOrderId": "a-drop"},
                )
            return await exchange.fetch_order(None, SYMBOL, {"clientOrderId": "a-drop"})
        finally:
            await exchange.close()

    assert asyncio.run(scenario())["status"] == "open"


def test_faults_hit_only_the_endpoints_named(sim: SimServer, alice: Any) -> None:
    sim.fail_next("5xx", "POST /api/v3/order")
    assert alice.fetch_balance()["USDT"]["free"] == 10000.0  # another endpoint: untouched
    assert alice.fetch_time() == sim.now_ms
    with pytest.raises(ccxt.OperationFailed):
        place(alice, sim, "f-scope")
    assert place(alice, sim, "f-scope")["status"] == "open"  # one-shot


def test_latency_delays_every_matching_request(sim: SimServer, alice: Any) -> None:
    sim.set_faults([FaultRule("latency_ms", 300, endpoints_matching("GET /api/v3/time"))])
    started = time.monotonic()
    alice.fetch_time()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    alice.fetch_balance()
    assert time.monotonic() - started < 0.3


def test_random_faults_follow_the_seed(sim: SimServer, alice: Any) -> None:
    def outcomes() -> list[bool]:
        result = []
        for _ in range(30):
            try:
                alice.fetch_open_orders(SYMBOL)
                result.append(True)
            except ccxt.DDoSProtection:
                result.append(False)
        return result

    sim.set_faults([FaultRule("429", 0.5)], seed=42)
    first = outcomes()
    sim.set_faults(seed=42)
    assert outcomes() == first
    assert 5 <= first.count(False) <= 25
    sim.set_faults(clear=True)
    assert all(outcomes())


def test_the_json_endpoint_configures_faults(sim: SimServer, alice: Any) -> None:
    status, plan, _ = http(
        f"{sim.url}/sim/faults",
        "POST",
        {
            "seed": 3,
            "timeout_ms": 500,
            "rules": [{"kind": "502", "value": 0.0}],
            "fail_next": [{"kind": "429", "endpoint": "GET /api/v3/account"}],
        },
    )
    assert status == 200
    assert plan["seed"] == 3
    assert plan["timeout_ms"] == 500
    assert plan["rules"] == [{"kind": "502", "value": 0.0, "endpoints": sorted(TRADING_ENDPOINTS)}]
    assert plan["queued"] == [{"kind": "429", "endpoints": ["GET /api/v3/account"], "count": 1}]
    with pytest.raises(ccxt.DDoSProtection):
        alice.fetch_balance()
    assert alice.fetch_balance()["BTC"]["free"] == 0.5
    status, answer, _ = http(f"{sim.url}/sim/faults", "POST", {"rules": [{"kind": "boom", "value": 1}]})
    assert status == 400
    assert answer["code"] == -1130
    assert "boom" in answer["msg"]


def test_fault_rules_parse_from_the_command_line_syntax() -> None:
    assert FaultRule.parse("5xx=0.25") == FaultRule("5xx", 0.25, frozenset(TRADING_ENDPOINTS))
    rule = FaultRule.parse("drop_after_accept=1@POST:/api/v3/order,/api/v3/openOrders")
    assert rule.endpoints == {"POST /api/v3/order", "GET /api/v3/openOrders", "DELETE /api/v3/openOrders"}
    assert FaultRule.parse("latency_ms=20@*").endpoints == set(ENDPOINTS)
    for bad in ("5xx", "nope=1", "429=2", "429=0.1@/api/v9/x", "latency_ms=-1"):
        with pytest.raises(ValueError, match=r"\S"):
            FaultRule.parse(bad)


def test_sim_state_reports_time_balances_and_open_orders(sim: SimServer, alice: Any) -> None:
    place(alice, sim, "s-1")
    status, state, _ = http(f"{sim.url}/sim/state")
    assert status == 200
    assert state["time"] == sim.now_ms
    assert state["candles"] == {SYMBOL: 100}
    alice_state = state["accounts"][0]
    assert (alice_state["name"], alice_state["open_orders"], alice_state["trades"]) == ("alice", 1, 0)
    assert alice_state["balances"]["BTC"] == {"free": "0.50000000", "locked": "0.00000000"}
    assert http(f"{sim.url}/sim/advance?candles=x", "POST")[0] == 400
