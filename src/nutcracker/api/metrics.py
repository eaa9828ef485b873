"""Prometheus metrics of one server: the engine's pulses, fills, stalls, rail headroom, the API's latency.

Each app has its own registry (two servers in one test process never share counters). The engine
part is fed by an engine observer (``observe``); dispatch latency by ``TimedExchange``, which
wraps the exchange port and times every order sent or cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nutcracker.core.model import Book, Candle, Fill, MarketInfo, OpenOrder, OrderStatus, PlaceLimit
from nutcracker.engine.ports import HistoryExchange
from nutcracker.engine.reports import PulseReport

__all__ = ["ApiMetrics", "RequestTimer", "TimedExchange"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    """The metrics of one server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pulses = Counter(
            "nutcracker_pulses", "Pulses and control actions per symbol", ["symbol"], registry=r
        )
        self.fills = Counter(
            "nutcracker_fills", "Fills booked per symbol and side", ["symbol", "side"], registry=r
        )
        self.stalls = Counter(
            "nutcracker_stalls", "Pulses that ended in a data-stall", ["symbol"], registry=r
        )
        self.base_headroom = Gauge(
            "nutcracker_rail_headroom_base",
            "rails.max_base minus inventory, base units",
            ["symbol"],
            registry=r,
        )
        self.quote_headroom = Gauge(
            "nutcracker_rail_headroom_quote",
            "rails.max_quote minus held cost and open buys, quote units",
            ["symbol"],
            registry=r,
        )
        self.dispatch = Histogram(
            "nutcracker_dispatch_seconds",
            "Time the exchange took to take an order or a cancel",
            ["action"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Histogram(
            "nutcracker_api_request_seconds",
            "API request latency by route",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def observe(self, report: PulseReport) -> None:
        """Count one engine report (an engine observer: quick, no I/O)."""
        symbol = report.symbol
        self.pulses.labels(symbol).inc()
        for fill in report.fills:
            self.fills.labels(symbol, fill.side.value).inc()
        if report.status == "stalled":
            self.stalls.labels(symbol).inc()
        self.base_headroom.labels(symbol).set(float(report.qty(report.max_base_lots - report.held_lots)))
        self.quote_headroom.labels(symbol).set(
            float(report.quote(report.max_quote_qu - report.committed_quote_qu))
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestTimer:
    """ASGI middleware: time every request by its route template (``/api/v1/symbols/{symbol}/fills``).

    The time is taken when the response starts (an SSE stream counts its set-up, not its life).
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, prefix: str) -> None:
        self._app = app
        self._metrics = metrics
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._metrics.requests.labels(
                    scope["method"], _template(scope, self._prefix), str(message["status"])
                ).observe(time.perf_counter() - started)
            await send(message)

        await self._app(scope, receive, timed_send)


def _template(scope: Scope, prefix: str) -> str:
    """Return the route template the request matched (never its values: they could be anything).

    The router stores a route's own path (``/symbols/{symbol}/fills``); the app's prefix is added back.
    """
    path = getattr(scope.get("route"), "path", None)
    if path is None:
        return "unmatched"
    return f"{prefix}{path}" if str(scope.get("path", "")).startswith(prefix + "/") else str(path)


class TimedExchange:
    """An exchange port that times ``place`` and ``cancel`` (dispatch latency) and passes the rest on."""

    def __init__(self, inner: HistoryExchange, metrics: ApiMetrics) -> None:
        self._inner = inner
        self._dispatch = metrics.dispatch

    async def market(self, symbol: str) -> MarketInfo:
        return await self._inner.market(symbol)

    async def server_time_ms(self) -> int:
        return await self._inner.server_time_ms()

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        return await self._inner.fetch_candles(symbol, since_ms, limit)

    async def fetch_book(self, symbol: str) -> Book:
        return await self._inner.fetch_book(symbol)

    async def fetch_balances(self) -> Mapping[str, Decimal]:
        return await self._inner.fetch_balances()

    async def fetch_open_orders(self, symbol: str) -> Sequence[OpenOrder]:
        return await self._inner.fetch_open_orders(symbol)

    async def fetch_fills(self, symbol: str, since_ms: int) -> Sequence[Fill]:
        return await self._inner.fetch_fills(symbol, since_ms)

    async def fetch_order(self, symbol: str, client_order_id: str) -> OrderStatus | None:
        return await self._inner.fetch_order(symbol, client_order_id)

    async def fetch_orders(self, symbol: str, limit: int | None = None) -> Sequence[OrderStatus]:
        return await self._inner.fetch_orders(symbol, limit)

    async def place(self, symbol: str, order: PlaceLimit) -> str:
        started = time.perf_counter()
        try:
            return await self._inner.place(symbol, order)
        finally:
            self._dispatch.labels("place").observe(time.perf_counter() - started)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        started = time.perf_counter()
        try:
            await self._inner.cancel(symbol, client_order_id)
        finally:
            self._dispatch.labels("cancel").observe(time.perf_counter() - started)
