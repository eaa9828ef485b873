"""The live code path end to end: SymbolWorker / Engine + CcxtExchange + SqliteJournal over the SimServer."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from nutcracker.core.model import MarketInfo
from nutcracker.core.orders import parse_slot
from nutcracker.core.params import SymbolParams
from nutcracker.core.units import Precision
from nutcracker.engine.runtime import Engine, EngineSettings
from nutcracker.engine.worker import STALLED, TRADING, SymbolWorker, WorkerSettings
from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.secrets.redaction import forget_all_secrets
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer
from nutcracker.store.sqlite import SqliteJournal

SYMBOL = "BTC/USDT"
PRECISION = Precision(Decimal("0.01"), Decimal("0.00001"))
MARKET = MarketInfo(SYMBOL, "BTC", "USDT", PRECISION.tick, PRECISION.lot, Decimal(5), Decimal("0.001"))
ACCOUNT = SimAccount("engine-key", "engine-secret", {"USDT": Decimal(10_000)})


def params() -> SymbolParams:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from factories import symbol_params

    return replace(symbol_params(), order_id_prefix="ncliveBTCUSDT")


@pytest.fixture
def server() -> Iterator[SimServer]:
    candles = synthetic_candles(11, 400, Decimal(50_000), PRECISION, symbol=SYMBOL)
    sim = SimServer({SYMBOL: MarketSpec(MARKET, candles)}, [ACCOUNT], warmup=100, seed=5)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    forget_all_secrets()


def connect(server: SimServer) -> CcxtExchange:
    return CcxtExchange(
        "binance", api_key=ACCOUNT.api_key, secret=ACCOUNT.secret, api_url=server.url, rate_limit_ms=1
    )


class MarketClock:
    """The engine's clock over the sim: its market time (for journal timestamps)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def now_ms(self) -> int:
        return self.server.now_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / 1000)  # a minute of market time passes in 60 ms


def test_a_lost_answer_over_http_is_resolved_by_client_id_and_never_doubled(
    server: SimServer, tmp_path: Path
) -> None:
    engine = server.engine(ACCOUNT.api_key)
    prefix = params().order_id_prefix

    async def main() -> None:
        async with connect(server) as exchange:
            with SqliteJournal(tmp_path / "j.sqlite") as journal:
                worker = SymbolWorker(params(), exchange, journal, MarketClock(server))
                server.fail_next("drop_after_accept", "POST /api/v3/order")
                report = await worker.pulse()
                assert [i.status for i in report.intents] == ["ambiguous"] + ["pending"] * 4
                lost = report.intents[0].client_order_id
                report = await worker.pulse()
                assert {r.client_order_id: r.status for r in journal.intents(SYMBOL)}[lost] == "acked"
                assert report.status == TRADING
                for _ in range(30):
                    server.advance(1)
                    await worker.pulse()
                assert sorted(f.trade_id for f in journal.fills(SYMBOL)) == sorted(
                    f.trade_id for f in engine.fills if f.client_order_id.startswith(prefix)
                )

    asyncio.run(main())
    sent = Counter(e.client_order_id for e in engine.events if e.event in ("placed", "rejected"))
    assert max(sent.values()) == 1
    slots = Counter(parse_slot(prefix, o.client_order_id) for o in engine.open_orders(SYMBOL))
    assert max(slots.values()) == 1


def test_an_exchange_outage_while_hydrating_stalls_the_symbol_then_it_resumes(
    server: SimServer, tmp_path: Path
) -> None:
    async def main() -> None:
        async with connect(server) as exchange:
            with SqliteJournal(tmp_path / "j.sqlite") as journal:
                worker = SymbolWorker(
                    params(), exchange, journal, MarketClock(server), settings=WorkerSettings()
                )
                assert (await worker.pulse()).status == TRADING
                placed = len(server.engine(ACCOUNT.api_key).events)
                server.fail_next("502", "GET /api/v3/depth")
                server.advance(1)
                report = await worker.pulse()
                assert report.status == STALLED
                assert "ExchangeNotAvailable" in report.status_reason
                assert len(server.engine(ACCOUNT.api_key).events) == placed
                stored = journal.load_symbol(SYMBOL)
                assert stored is not None
                assert stored.status == STALLED
                assert (await worker.pulse()).status == TRADING

    asyncio.run(main())


def test_the_engine_runs_over_ccxt_and_cancels_its_orders_on_shutdown(
    server: SimServer, tmp_path: Path
) -> None:
    engine = server.engine(ACCOUNT.api_key)

    async def main() -> None:
        async with connect(server) as exchange:
            with SqliteJournal(tmp_path / "j.sqlite") as journal:
                runtime = Engine(
                    [params()],
                    exchange,
                    journal,
                    MarketClock(server),
                    settings=EngineSettings(pulse_interval_s=20.0, monitor_interval_s=20.0),
                )
                queue = runtime.subscribe()

                async def market() -> None:
                    for _ in range(10):
                        await asyncio.sleep(0.03)
                        server.advance(1)
                    runtime.request_stop()

                await asyncio.gather(runtime.run(handle_signals=False), market())
                assert queue.qsize() >= 2
                assert not [i for i in journal.intents(SYMBOL) if i.status in ("pending", "ambiguous")]

    asyncio.run(main())
    assert not engine.open_orders(SYMBOL)
    assert any(e.event == "placed" for e in engine.events)


def test_hundreds_of_pulses_under_injected_faults_keep_rails_orders_and_fills_exact(
    server: SimServer, tmp_path: Path
) -> None:
    from nutcracker.simexchange.server import FaultRule

    engine = server.engine(ACCOUNT.api_key)
    prefix = params().order_id_prefix
    server.set_faults(
        [
            FaultRule("timeout", 0.03),
            FaultRule("5xx", 0.04),
            FaultRule("429", 0.03),
            FaultRule("drop_after_accept", 0.05),
            FaultRule("502", 0.02, frozenset({"GET /api/v3/depth", "GET /api/v3/klines"})),
        ],
        seed=17,
        timeout_ms=300,
    )
    statuses: Counter[str] = Counter()

    async def main() -> None:
        exchange = CcxtExchange(
            "binance",
            api_key=ACCOUNT.api_key,
            secret=ACCOUNT.secret,
            api_url=server.url,
            rate_limit_ms=1,
            timeout_ms=200,
        )
        async with exchange:
            with SqliteJournal(tmp_path / "j.sqlite") as journal:
                tight = replace(params(), grid=replace(params().grid, spacing_ppm=1000))
                worker = SymbolWorker(tight, exchange, journal, MarketClock(server))
                for pulse in range(300):
                    if pulse % 3 != 2:  # two candles in three pulses: some pulses see no new candle
                        server.advance(1)
                    report = await worker.pulse()
                    statuses[report.status] += 1
                server.set_faults(clear=True)
                await worker.pulse()  # a clean pulse resolves whatever was left ambiguous
                fills = sorted(f.trade_id for f in journal.fills(SYMBOL))
                assert fills == sorted(
                    f.trade_id for f in engine.fills if f.client_order_id.startswith(prefix)
                )
                assert len(fills) > 5

    asyncio.run(main())
    assert statuses["stalled"] > 0  # the faults really hit
    assert statuses["trading"] > 100
    sent = Counter(e.client_order_id for e in engine.events if e.event in ("placed", "rejected"))
    assert max(sent.values()) == 1  # no client order id was ever sent twice
    slots = Counter(parse_slot(prefix, o.client_order_id) for o in engine.open_orders(SYMBOL))
    assert max(slots.values(), default=1) == 1
    # the rails, replayed from the exchange's own order events: inventory + open buys within max_base
    p = params()
    held = open_buys = 0
    resting: dict[str, int] = {}
    for e in engine.events:
        if not e.client_order_id.startswith(prefix):
            continue
        if e.event == "placed" and e.side.value == "buy":
            resting[e.client_order_id] = e.qty
        elif e.event in ("filled", "partially_filled"):
            if e.side.value == "buy":
                held += e.qty
                resting[e.client_order_id] = resting.get(e.client_order_id, 0) - e.qty
            else:
                held -= e.qty
        elif e.event == "cancelled":
            resting.pop(e.client_order_id, None)
        open_buys = sum(q for q in resting.values() if q > 0)
        assert held + open_buys <= p.rails.max_base_lots


def test_buys_charged_in_base_are_exited_in_full_lots_without_insufficient_balance(
    server: SimServer, tmp_path: Path
) -> None:
    """Binance takes a buy's commission from the base received: the exits must sell only that."""
    engine = server.engine(ACCOUNT.api_key)
    prefix = params().order_id_prefix

    async def main() -> None:
        async with connect(server) as exchange:
            with SqliteJournal(tmp_path / "j.sqlite") as journal:
                tight = replace(params(), grid=replace(params().grid, spacing_ppm=1000))
                worker = SymbolWorker(tight, exchange, journal, MarketClock(server))
                for _ in range(250):
                    server.advance(1)
                    report = await worker.pulse()
                    # no exit ever asked for more base than the account holds
                    assert not [r for r in report.reasons if "exceeds the free base" in r], report.reasons
                ledger = worker.state.ledger
                assert PRECISION.lots_to_qty(ledger.held) <= engine.free("BTC") + engine.locked("BTC")
                # what the ledger holds is what the account holds: received less sold, dust included
                held_bu = sum(lot.left_bu for lot in ledger.lots) + ledger.dust
                account = engine.free("BTC") + engine.locked("BTC")
                assert PRECISION.bu_to_base(held_bu) == account

    asyncio.run(main())
    ours = [f for f in engine.fills if f.client_order_id.startswith(prefix)]
    buys = [f for f in ours if f.side.value == "buy"]
    sells = [f for f in ours if f.side.value == "sell"]
    assert buys, "the market filled some buys"
    assert sells, "and some exits"
    assert all(f.fee_asset == "BTC" and f.fee_base > 0 and f.fee == 0 for f in buys)
    assert all(f.fee_asset == "USDT" and f.fee > 0 for f in sells)
    refused = [e for e in engine.events if e.event == "rejected" and "insufficient balance" in e.reason]
    assert refused == []
