"""The sim-exchange's rate limits: Binance's request weight per minute and order counts per account.

Binance counts the weight of every ``/api/v3`` request per IP in fixed one-minute windows and
answers ``X-MBX-USED-WEIGHT-1M`` on each; it counts new orders per account in fixed 10-second and
one-day windows and answers ``X-MBX-ORDER-COUNT-10S`` / ``-1D`` on order placement. A request past
a limit gets HTTP 429 with ``Retry-After`` (seconds to the end of the window) and -1003 (weight)
or -1015 (orders), and is not executed. Windows follow the wall clock (the limits are about real
request rates, not the replayed market). Weights are Binance's documented ones for the endpoints
the simulator serves; ``/sapi`` endpoints have their own (UID/IP) limits on Binance and are not
counted here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

WEIGHTS: Final[Mapping[str, int]] = {
    "GET /api/v3/ping": 1,
    "GET /api/v3/time": 1,
    "GET /api/v3/exchangeInfo": 20,
    "GET /api/v3/klines": 2,
    "GET /api/v3/ticker/price": 2,
    "GET /api/v3/ticker/bookTicker": 2,
    "GET /api/v3/aggTrades": 4,
    "GET /api/v3/avgPrice": 2,
    "GET /api/v3/account": 20,
    "POST /api/v3/order": 1,
    "POST /api/v3/order/test": 1,
    "GET /api/v3/order": 4,
    "DELETE /api/v3/order": 1,
    "DELETE /api/v3/openOrders": 1,
    "GET /api/v3/myTrades": 20,
    "GET /api/v3/allOrders": 20,
    "GET /api/v3/account/commission": 20,
}
"""Request weight per endpoint; the ones that depend on parameters are in ``weight``."""

ORDER_ENDPOINTS: Final = frozenset({"POST /api/v3/order"})

_MINUTE_MS: Final = 60_000
_TEN_S_MS: Final = 10_000
_DAY_MS: Final = 86_400_000

MSG_WEIGHT: Final = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
MSG_ORDERS: Final = "Too many new orders; current limit is {limit} orders per {window}."


def weight(endpoint: str, params: Mapping[str, str]) -> int:
    """Return Binance's weight of one request to ``endpoint`` (``"GET /api/v3/depth"``)."""
    if not endpoint.split(" ", 1)[-1].startswith("/api/"):
        return 0
    symbol = "symbol" in params
    if endpoint == "GET /api/v3/depth":
        limit = _int(params.get("limit"), 100)
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if endpoint == "GET /api/v3/ticker/24hr":
        return 2 if symbol else 80
    if endpoint == "GET /api/v3/openOrders":
        return 6 if symbol else 80
    if endpoint in ("GET /api/v3/ticker/price", "GET /api/v3/ticker/bookTicker") and not symbol:
        return 4
    if endpoint == "POST /api/v3/order/test" and params.get("computeCommissionRates") == "true":
        return 20
    return WEIGHTS.get(endpoint, 1)


def _int(raw: str | None, default: int) -> int:
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 10 else default


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits (Binance's defaults): weight per minute, new orders per 10 s and per day."""

    weight_1m: int = 6000
    orders_10s: int = 100
    orders_1d: int = 200_000

    def __post_init__(self) -> None:
        for name in ("weight_1m", "orders_10s", "orders_1d"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
                raise ValueError(f"rate limit {name}={value!r}: give a whole number between 1 and 1000000000")

    def exchange_info(self) -> list[dict[str, object]]:
        """Return ``exchangeInfo.rateLimits``."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.weight_1m,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.orders_1d},
        ]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the limiter says about one request: headers to send and, if refused, the 429 answer."""

    headers: tuple[tuple[str, str], ...]
    refused: tuple[int, str, int] | None = None  # (code, msg, retry after in seconds)


class RateLimiter:
    """Count request weight (one window, the server's single client IP) and orders per account."""

    def __init__(self, limits: RateLimits, clock_ms: Callable[[], int] | None = None) -> None:
        self.limits = limits
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._weight: tuple[int, int] = (-1, 0)  # (window start, weight used)
        self._orders: dict[str, dict[int, tuple[int, int]]] = {}  # account -> window -> (start, count)

    def check(self, endpoint: str, params: Mapping[str, str], account: str | None) -> Verdict:
        """Count one request (before it runs); refuse it past a limit."""
        now = self._clock_ms()
        with self._lock:
            cost = weight(endpoint, params)
            if not cost:
                return Verdict(())
            start = now - now % _MINUTE_MS
            used = (self._weight[1] if self._weight[0] == start else 0) + cost
            self._weight = (start, used)
            headers = [("X-MBX-USED-WEIGHT-1M", str(used)), ("X-MBX-USED-WEIGHT", str(used))]
            if used > self.limits.weight_1m:
                retry = _seconds_left(now, start + _MINUTE_MS)
                return Verdict(tuple(headers), (-1003, MSG_WEIGHT.format(limit=self.limits.weight_1m), retry))
            if endpoint not in ORDER_ENDPOINTS or account is None:
                return Verdict(tuple(headers))
            windows = self._orders.setdefault(account, {})
            refused: tuple[int, str, int] | None = None
            for size, limit, name, label in (
                (_TEN_S_MS, self.limits.orders_10s, "10S", "10 SECOND"),
                (_DAY_MS, self.limits.orders_1d, "1D", "1 DAY"),
            ):
                begin = now - now % size
                before = windows.get(size, (begin, 0))
                count = (before[1] if before[0] == begin else 0) + 1
                windows[size] = (begin, count)
                headers.append((f"X-MBX-ORDER-COUNT-{name}", str(count)))
                if count > limit and refused is None:
                    refused = (
                        -1015,
                        MSG_ORDERS.format(limit=limit, window=label),
                        _seconds_left(now, begin + size),
                    )
            return Verdict(tuple(headers), refused)


def _seconds_left(now_ms: int, end_ms: int) -> int:
    return max(1, -(-(end_ms - now_ms) // 1000))


__all__ = ["ORDER_ENDPOINTS", "WEIGHTS", "RateLimiter", "RateLimits", "Verdict", "weight"]
