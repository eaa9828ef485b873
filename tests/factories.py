"""Builders for test values: params, snapshots, candles. Real values, no mocks."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from nutcracker.core.model import Book, Candle, Fill, OpenOrder, Side, Snapshot
from nutcracker.core.params import (
    GateParams,
    GridParams,
    KeltnerParams,
    MarketMakingParams,
    MarketParams,
    MartingaleParams,
    MeanReversionParams,
    RailParams,
    Spacing,
    SymbolParams,
)
from nutcracker.core.units import Precision

PREFIX = "nctBTCUSDT"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))


def symbol_params(**sections: Any) -> SymbolParams:
    """Return BTC/USDT params (tick 0.01, lot 0.00001, 10 bps fee), sections overridable by keyword."""
    params = SymbolParams(
        market=MarketParams("binance", "BTC/USDT", "BTC", "USDT", BTC, BTC.quote_to_qu(Decimal(5)), 1000),
        rails=RailParams(
            max_base_lots=10_000,  # 0.1 BTC
            max_quote_qu=BTC.quote_to_qu(Decimal(5000)),
            reserve_base_lots=0,
            reserve_quote_qu=0,
        ),
        min_profit_ppm=1000,
        keltner=KeltnerParams(False, 20, 14, 2.0, 0, 0, 30),
        mean_reversion=MeanReversionParams(False),
        grid=GridParams(True, 5, Spacing.BPS, 5000, 0.0, BTC.quote_to_qu(Decimal(100)), True, False),
        martingale=MartingaleParams(False, 1.5, 1.2, 4),
        market_making=MarketMakingParams(False, 2500, 0, 2000),
        gates=GateParams(0, 0, 0, 0, 0, 1000, 0),
        order_id_prefix=PREFIX,
    )
    return replace(params, **sections)


def flat_candles(n: int, price: int, start_ts_ms: int = 0, spread: int = 100) -> tuple[Candle, ...]:
    """Return ``n`` one-minute candles oscillating +-spread ticks around ``price``."""
    return tuple(
        Candle(
            start_ts_ms + i * 60_000,
            price,
            price + spread,
            price - spread,
            price + (spread // 2) * (i % 2 * 2 - 1),
        )
        for i in range(n)
    )


def snapshot(
    candles: tuple[Candle, ...],
    *,
    bid: int | None = None,
    free_base: int = 0,
    free_quote: int | None = None,
    open_orders: tuple[OpenOrder, ...] = (),
    fills: tuple[Fill, ...] = (),
    quote_allowance: int | None = None,
) -> Snapshot:
    last = candles[-1]
    best_bid = last.close if bid is None else bid
    return Snapshot(
        symbol="BTC/USDT",
        ts_ms=last.ts_ms + 60_000,
        candles=candles,
        book=Book(best_bid, best_bid + 1),
        free_base=free_base,
        free_quote=BTC.quote_to_qu(Decimal(10_000)) if free_quote is None else free_quote,
        open_orders=open_orders,
        fills=fills,
        quote_allowance=quote_allowance,
    )


def fill(
    order_id: str, side: Side, price: int, qty: int, ts_ms: int, trade_id: str = "", fee_ppm: int = 1000
) -> Fill:
    return Fill(trade_id or f"t-{order_id}", order_id, side, price, qty, price * qty * fee_ppm, ts_ms)
