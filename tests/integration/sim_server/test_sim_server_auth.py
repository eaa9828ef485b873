"""Signing, keys, recvWindow and the error shapes of the sim-exchange, through ccxt and raw HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request

import ccxt
import pytest
from sim_clients import ALICE, ccxt_binance, http

from nutcracker.simexchange.server import SimServer, sign

# Binance's documented test vector (reference §1.4)
VECTOR_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
VECTOR_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
VECTOR_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def raw_get(url: str, key: str = ALICE.api_key) -> tuple[int, str]:
    """GET ``url`` exactly as written, with the API key header; return (status, body)."""
    request = urllib.request.Request(url, headers={"X-MBX-APIKEY": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def signed_get(sim: SimServer, path: str, query: str) -> tuple[int, str]:
    """GET ``path`` with ``query`` signed exactly as written (raw bytes)."""
    return raw_get(f"{sim.url}{path}?{query}&signature={sign(ALICE.secret, query)}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_sign_matches_the_binance_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_PAYLOAD) == VECTOR_SIGNATURE


def test_the_signature_covers_the_raw_query_as_sent(sim: SimServer) -> None:
    # percent-encoded and in an unusual order: the server must not decode and re-encode
    query = f"origClientOrderId=a%2Fb&symbol=BTCUSDT&timestamp={now_ms()}&recvWindow=5000"
    status, body = signed_get(sim, "/api/v3/order", query)
    assert (status, body) == (400, '{"code":-2013,"msg":"Order does not exist."}')
    decoded = urllib.parse.unquote(query)
    url = f"{sim.url}/api/v3/order?{query}&signature={sign(ALICE.secret, decoded)}"
    status, answer, _ = http(url)  # no key header
    assert (status, answer) == (
        401,
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
    )


def test_a_signature_over_the_decoded_query_is_refused(sim: SimServer) -> None:
    query = f"origClientOrderId=a%2Fb&symbol=BTCUSDT&timestamp={now_ms()}"
    bad = sign(ALICE.secret, urllib.parse.unquote(query))
    status, body = raw_get(f"{sim.url}/api/v3/order?{query}&signature={bad}")
    assert (status, body) == (400, '{"code":-1022,"msg":"Signature for this request is not valid."}')


def test_the_signature_may_come_first_and_in_upper_case(sim: SimServer) -> None:
    query = f"symbol=BTCUSDT&timestamp={now_ms()}"
    signature = sign(ALICE.secret, query).upper()
    assert raw_get(f"{sim.url}/api/v3/openOrders?signature={signature}&{query}") == (200, "[]")


def test_a_wrong_secret_is_an_authentication_error(sim: SimServer) -> None:
    exchange = ccxt_binance(sim.url, ALICE.api_key, "not-the-secret")
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        exchange.fetch_balance()


def test_an_unknown_key_is_an_authentication_error(sim: SimServer) -> None:
    exchange = ccxt_binance(sim.url, "nobody", "whatever")
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        exchange.fetch_balance()


def test_a_malformed_key_is_an_authentication_error(sim: SimServer) -> None:
    exchange = ccxt_binance(sim.url, "bad key!", "whatever")
    with pytest.raises(ccxt.AuthenticationError, match="-2014"):
        exchange.fetch_balance()


@pytest.mark.parametrize("skew_ms", [30_000, -5_000], ids=["stale", "from-the-future"])
def test_a_timestamp_outside_recv_window_is_invalid_nonce(sim: SimServer, skew_ms: int) -> None:
    exchange = ccxt_binance(sim.url, ALICE.api_key, ALICE.secret)
    exchange.options["timeDifference"] = skew_ms  # ccxt signs with now - timeDifference
    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        exchange.fetch_balance()


def test_recv_window_is_checked_against_the_wall_clock_not_the_market_clock(sim: SimServer) -> None:
    exchange = ccxt_binance(sim.url, ALICE.api_key, ALICE.secret)
    assert exchange.fetch_time() < now_ms() - 86_400_000  # the market clock is in the past
    assert exchange.fetch_balance()["USDT"]["free"] == 10000.0
    exchange.options["recvWindow"] = 60_001
    with pytest.raises(ccxt.ExchangeError, match="-1131"):
        exchange.fetch_balance()


def test_a_missing_timestamp_or_signature_is_a_bad_request(sim: SimServer) -> None:
    no_timestamp = "symbol=BTCUSDT"
    for url in (
        f"{sim.url}/api/v3/openOrders?symbol=BTCUSDT&timestamp={now_ms()}",
        f"{sim.url}/api/v3/openOrders?{no_timestamp}&signature={sign(ALICE.secret, no_timestamp)}",
    ):
        status, body = raw_get(url)
        assert status == 400
        assert body.startswith('{"code":-1102,"msg":"Mandatory parameter')


def test_unknown_endpoints_answer_404_with_a_binance_error(sim: SimServer) -> None:
    for method, path in (
        ("GET", "/api/v3/nothing"),
        ("PUT", "/api/v3/order"),
        ("GET", "/fapi/v1/ticker/price"),  # issue 11: /fapi/v1/exchangeInfo is served (empty) for ccxt
    ):
        status, answer, headers = http(f"{sim.url}{path}", method)
        assert (status, answer) == (404, {"code": -1020, "msg": "This operation is not supported."})
        assert headers["Content-Type"].startswith("application/json")


def test_public_endpoints_need_no_key(sim: SimServer) -> None:
    status, answer, _ = http(f"{sim.url}/api/v3/time")
    assert (status, answer) == (200, {"serverTime": sim.now_ms})
    assert http(f"{sim.url}/api/v3/ping")[:2] == (200, {})
    status, answer, _ = http(f"{sim.url}/api/v3/exchangeInfo?symbol=BTCUSDT")
    assert [s["symbol"] for s in answer["symbols"]] == ["BTCUSDT"]
    assert http(f"{sim.url}/api/v3/exchangeInfo?symbol=XYZ")[:2] == (
        400,
        {"code": -1121, "msg": "Invalid symbol."},
    )
