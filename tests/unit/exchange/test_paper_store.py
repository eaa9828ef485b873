"""PaperExchange with a PaperStore: a resumed session is exactly the one that stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from nutcracker.core.model import Book, Candle, MarketInfo, PlaceLimit, Side
from nutcracker.errors import ConfigError, PostOnlyRejectedError
from nutcracker.exchange.paper import PaperExchange
from nutcracker.exchange.paper_store import PaperStore

SYMBOL = "BTC/USDT"
MARKET = MarketInfo(SYMBOL, "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal(5), Decimal("0.001"))
MINUTE = 60_000


class Feed:
    """A recorded public feed: candles and a book the test sets, time at the last candle's close."""

    interval_ms = MINUTE

    def __init__(self) -> None:
        self.candles: list[Candle] = []
        self.book = Book(10_000_00, 10_000_01)

    def add(self, low: int, high: int) -> None:
        ts = len(self.candles) * MINUTE
        self.candles.append(Candle(ts, high, high, low, low, 1.0))

    async def market(self, symbol: str) -> MarketInfo:
        return MARKET

    async def server_time_ms(self) -> int:
        return len(self.candles) * MINUTE

    async def fetch_candles(self, symbol: str, since_ms: int, limit: int) -> Sequence[Candle]:
        return [c for c in self.candles if c.ts_ms >= since_ms][:limit]

    async def fetch_book(self, symbol: str) -> Book:
        return self.book


def _paper(feed: Feed, path: Path) -> tuple[PaperExchange, PaperStore]:
    store = PaperStore(path)
    return PaperExchange(feed, [SYMBOL], {"USDT": Decimal(1000)}, store=store), store


def test_a_resumed_paper_session_keeps_orders_balances_fills_and_the_trade_id_counter(tmp_path: Path) -> None:
    feed, path = Feed(), tmp_path / "j.db.paper"
    feed.add(10_000_00, 10_010_00)

    async def first() -> tuple[object, ...]:
        paper, store = _paper(feed, path)
        await paper.fetch_candles(SYMBOL, 0, 10)
        await paper.fetch_book(SYMBOL)
        for i, price in enumerate((9_990_00, 9_980_00, 9_970_00)):
            await paper.place(SYMBOL, PlaceLimit(f"nc-B{i}", Side.BUY, price, 1000, "grid"))
        with pytest.raises(PostOnlyRejectedError):  # refused against the book: refused on replay too
            await paper.place(SYMBOL, PlaceLimit("nc-X", Side.BUY, 10_000_01, 1000, "cross"))
        await paper.cancel(SYMBOL, "nc-B2")
        feed.add(9_985_00, 10_000_00)  # fills nc-B0
        await paper.fetch_candles(SYMBOL, 0, 10)
        state = (
            await paper.fetch_open_orders(SYMBOL),
            await paper.fetch_balances(),
            await paper.fetch_fills(SYMBOL, 0),
        )
        store.close()
        return state

    async def second() -> tuple[object, ...]:
        paper, store = _paper(feed, path)
        state = (
            await paper.fetch_open_orders(SYMBOL),
            await paper.fetch_balances(),
            await paper.fetch_fills(SYMBOL, 0),
        )
        feed.add(9_975_00, 9_990_00)  # while stopped: fills nc-B1 at the resumed session's first look
        await paper.fetch_candles(SYMBOL, 0, 10)
        fills = await paper.fetch_fills(SYMBOL, 0)
        with pytest.raises(Exception, match="Duplicate"):  # the client ids used before stay used
            await paper.place(SYMBOL, PlaceLimit("nc-X", Side.BUY, 9_000_00, 1000, "again"))
        store.close()
        return (*state, fills)

    before = asyncio.run(first())
    orders, balances, fills_before = before
    assert [o.client_order_id for o in orders] == ["nc-B1"]  # type: ignore[attr-defined]
    assert [f.trade_id for f in fills_before] == ["1"]  # type: ignore[attr-defined]
    assert balances["BTC"] == Decimal("0.00999")  # type: ignore[index]  # 10 bps of the buy, in base
    after = asyncio.run(second())
    assert after[:3] == before  # resumed exactly
    assert [(f.trade_id, f.client_order_id) for f in after[3]] == [("1", "nc-B0"), ("2", "nc-B1")]


def test_a_paper_state_for_other_symbols_is_refused(tmp_path: Path) -> None:
    feed, path = Feed(), tmp_path / "j.db.paper"
    paper, store = _paper(feed, path)
    asyncio.run(paper.fetch_balances())
    store.close()
    store = PaperStore(path)
    other = PaperExchange(feed, ["ETH/USDT"], {}, store=store)
    with pytest.raises(ConfigError, match="trades BTC/USDT, the config ETH/USDT"):
        asyncio.run(other.fetch_balances())
    store.close()
