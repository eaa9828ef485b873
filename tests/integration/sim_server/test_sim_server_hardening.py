"""Issue 11 items 10 (rate limits) and 11 (hardening): the sim-exchange is a server users run.

Test controls only when asked for, bounded fault queues, a request-body limit, read timeouts,
fault settings refused whole (nothing stored) and Binance's weight and order-count limits.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest
from sim_clients import ALICE, ccxt_binance, http

from nutcracker.simexchange.accounts import MarketSpec
from nutcracker.simexchange.limits import RateLimits
from nutcracker.simexchange.server import MAX_FAIL_NEXT, SimServer

SYMBOL = "BTC/USDT"


@pytest.fixture
def running(btc_market: MarketSpec) -> Iterator[SimServer]:
    """A sim-exchange on its own clock, without --manual or --control."""
    server = SimServer({SYMBOL: btc_market}, [ALICE], speed=0.001, manual=False, warmup=100)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_test_controls_are_off_unless_asked_for(running: SimServer, btc_market: MarketSpec) -> None:
    for method, path in (("POST", "/sim/advance?candles=1"), ("GET", "/sim/state"), ("POST", "/sim/faults")):
        status, answer, _ = http(f"{running.url}{path}", method, {} if method == "POST" else None)
        assert status == 403, path
        assert "--manual or --control" in answer["msg"]
    assert running.faults()["queued"] == []
    with SimServer({SYMBOL: btc_market}, [ALICE], speed=0.001, manual=False, control=True) as server:
        assert http(f"{server.url}/sim/state")[0] == 200


def test_fail_next_counts_are_bounded_and_an_oversized_one_stores_nothing(sim: SimServer) -> None:
    status, answer, _ = http(
        f"{sim.url}/sim/faults", "POST", {"fail_next": [{"kind": "5xx", "count": 1_000_000_000}]}
    )
    assert status == 400
    assert f"count must be a whole number from 1 to {MAX_FAIL_NEXT}" in answer["msg"]
    assert sim.faults()["queued"] == []
    with pytest.raises(ValueError, match="count"):
        sim.fail_next("5xx", count=MAX_FAIL_NEXT + 1)
    sim.fail_next("5xx", count=MAX_FAIL_NEXT)  # stored as one entry with a count, not 10000 copies
    assert sim.faults()["queued"] == [
        {"kind": "5xx", "endpoints": ["POST /api/v3/order"], "count": MAX_FAIL_NEXT}
    ]
    with pytest.raises(ValueError, match="at most"):
        sim.fail_next("5xx")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"seed": 5, "timeout_ms": -1}, "timeout_ms"),
        ({"seed": 5, "timeout_ms": "soon"}, "timeout_ms"),
        ({"seed": "five"}, "seed"),
        ({"seed": 5, "rules": [{"kind": "5xx", "value": float("nan")}]}, "probability"),
        ({"seed": 5, "rules": [{"kind": "5xx", "value": "0.5"}]}, "number"),
        ({"seed": 5, "fail_next": [{"kind": "latency_ms"}]}, "kind"),
        ({"seed": 5, "fail_next": [{"kind": "5xx", "endpoint": "/api/v9/nope"}]}, "unknown endpoint"),
        ({"seed": 5, "clear": "yes"}, "clear"),
    ],
)
def test_invalid_fault_settings_are_refused_whole(sim: SimServer, body: dict[str, Any], words: str) -> None:
    before = sim.faults()
    status, answer, _ = http(f"{sim.url}/sim/faults", "POST", body)
    assert status == 400
    assert answer["code"] == -1130
    assert answer["msg"].startswith("Invalid fault configuration: ")
    assert words in answer["msg"]
    assert sim.faults() == before  # not even the valid seed was stored


def test_a_request_body_over_the_limit_is_413(sim: SimServer) -> None:
    status, answer, _ = http(f"{sim.url}/sim/faults", "POST", {"pad": "x" * (sim.max_body_bytes + 1)})
    assert status == 413
    assert "at most 65536 bytes" in answer["msg"]
    with socket.create_connection(("127.0.0.1", int(sim.url.rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall(b"POST /api/v3/order HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 413")


def test_a_silent_client_is_dropped_after_the_read_timeout(btc_market: MarketSpec) -> None:
    with SimServer({SYMBOL: btc_market}, [ALICE], read_timeout_s=0.3) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /api/v3/order HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
            started = time.monotonic()
            assert s.recv(100) == b""  # closed by the server, no answer
            assert time.monotonic() - started < 3


def test_request_weight_over_the_limit_is_429_with_retry_after(btc_market: MarketSpec) -> None:
    limits = RateLimits(weight_1m=50, orders_10s=2, orders_1d=1000)
    with SimServer({SYMBOL: btc_market}, [ALICE], warmup=100, rate_limits=limits) as server:
        answers = [http(f"{server.url}/api/v3/exchangeInfo") for _ in range(4)]  # weight 20 each
        refused = [a for a in answers if a[0] == 429]
        assert refused, [a[2].get("X-MBX-USED-WEIGHT-1M") for a in answers]
        _, body, headers = refused[0]
        assert body["code"] == -1003
        assert "current limit is 50 request weight per 1 MINUTE" in body["msg"]
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) > 50


def test_orders_over_the_ten_second_limit_are_refused(btc_market: MarketSpec) -> None:
    limits = RateLimits(weight_1m=6000, orders_10s=2, orders_1d=1000)
    with SimServer({SYMBOL: btc_market}, [ALICE], warmup=100, rate_limits=limits) as server:
        alice = ccxt_binance(server.url, ALICE.api_key, ALICE.secret)
        alice.load_markets()
        bid = alice.fetch_order_book(SYMBOL, 1)["bids"][0][0]
        outcomes = []
        for i in range(5):
            try:
                alice.create_order(SYMBOL, "limit", "buy", 0.001, bid - 10 - i, {"postOnly": True})
                outcomes.append(alice.last_response_headers["X-MBX-ORDER-COUNT-10S"])
            except ccxt.DDoSProtection as e:
                outcomes.append(str(e))
        refusals = [o for o in outcomes if "-1015" in o]
        assert refusals, outcomes
        assert "Too many new orders; current limit is 2 orders per 10 SECOND." in refusals[0]
        assert len(alice.fetch_open_orders(SYMBOL)) == 5 - len(refusals)  # refused orders are not placed
