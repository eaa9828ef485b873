"""Helpers for tests against the sim-exchange: ``ccxt_binance`` points the real ccxt client at a
running ``SimServer`` with the reference's options; ``http`` sends plain requests; two accounts.

A module with a unique name (not ``conftest``) so that test modules can import it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support

from nutcracker.simexchange.accounts import SimAccount

ALICE = SimAccount("alice-key", "alice-secret", {"USDT": Decimal(10000), "BTC": Decimal("0.5")}, name="alice")
READ_ONLY = SimAccount(
    "bob-key",
    "bob-secret",
    {"USDT": Decimal(100)},
    {"enableSpotAndMarginTrading": False, "enableWithdrawals": True},
    name="bob",
)


def ccxt_binance(
    url: str,
    api_key: str,
    secret: str,
    *,
    async_: bool = False,
    timeout_ms: int = 10_000,
    rate_limit: bool = False,
) -> Any:
    """Return a real ``ccxt.binance`` (or ``ccxt.async_support.binance``) talking to the sim at ``url``.

    The reference's options: spot markets only, no currencies, no margin pairs, so ``load_markets``
    sends ``GET /api/v3/exchangeInfo`` only. The rate limiter is off unless asked for (fast tests).
    """
    cls = ccxt.async_support.binance if async_ else ccxt.binance
    exchange = cls(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": rate_limit,
            "timeout": timeout_ms,
            "options": {"fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}},
        }
    )
    exchange.urls["api"] = {
        "public": f"{url}/api/v3",
        "private": f"{url}/api/v3",
        "v1": f"{url}/api/v1",
        "sapi": f"{url}/sapi/v1",
        "sapiV2": f"{url}/sapi/v2",
        "sapiV3": f"{url}/sapi/v3",
        "sapiV4": f"{url}/sapi/v4",
    }
    return exchange


def http(url: str, method: str = "GET", body: object = None) -> tuple[int, Any, dict[str, str]]:
    """Send one plain HTTP request; return (status, decoded JSON or raw text, headers)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, dict(e.headers)
    try:
        return status, json.loads(raw), headers
    except ValueError:
        return status, raw.decode(), headers
