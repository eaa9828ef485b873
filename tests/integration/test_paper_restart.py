"""Paper trading across restarts: the local fill simulator resumes exactly where it stopped.

Public market data comes from the SimServer (manual clock: each pulse moves the market one candle,
and the market moves on while the engine is stopped). Four paper sessions run over one journal,
orders left resting at each stop (``cancel_on_shutdown = false``). The paper state, resumed once
more at the end, is the truth: every fill it ever made is in the journal, with the same trade id,
no trade id was handed out twice, and the account holds exactly the starting balances plus what
those fills moved (balances continue across restarts instead of starting over).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.app.connected import run_connected
from nutcracker.cli import app
from nutcracker.config import load_config
from nutcracker.core.model import Fill, MarketInfo, Side
from nutcracker.core.units import Precision
from nutcracker.engine.runtime import PulseReport
from nutcracker.exchange.ccxt_exchange import CcxtExchange
from nutcracker.exchange.paper import PaperExchange
from nutcracker.exchange.paper_store import PaperStore, paper_state_path
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "examples" / "grid-btc-usdt.toml"
SYMBOL = "BTC/USDT"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
SESSIONS, PULSES, DOWNTIME = 4, 40, 25


@pytest.fixture
def server() -> Iterator[SimServer]:
    candles = synthetic_candles(3, 1200, Decimal(100_000), BTC, symbol=SYMBOL)
    info = MarketInfo(SYMBOL, "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    sim = SimServer({SYMBOL: MarketSpec(info, candles)}, [SimAccount("k", "s", {})], manual=True)
    sim.start()
    sim.advance(400)
    yield sim
    sim.stop()


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "keep.toml"
    text = GRID.read_text().replace("cancel_on_shutdown = true", "cancel_on_shutdown = false")
    path.write_text(text.replace('spacing_bps = "40"', 'spacing_bps = "31"'))  # busier: more fills
    return path


def _session(server: SimServer, config: Path, journal: Path) -> None:
    def advance(_: PulseReport) -> None:
        server.advance(1)  # the market moves one candle a pulse

    asyncio.run(
        run_connected(
            load_config(config),
            mode="paper",
            journal_path=journal,
            exchange_url=server.url,
            key_name=None,
            keystore=None,
            vault=False,
            pulse_interval_s=0.02,
            pulses=PULSES,
            on_report=advance,
        )
    )


async def _resumed(server: SimServer, journal: Path) -> tuple[list[Fill], dict[str, Decimal]]:
    """Return every fill the paper sessions made and the account's totals (free + locked)."""
    store = PaperStore(paper_state_path(journal))
    try:
        async with CcxtExchange.public("binance", api_url=server.url) as source:
            paper = PaperExchange(source, [SYMBOL], {"USDT": Decimal(1)}, store=store)
            await paper.fetch_balances()
            engine = paper.engine
            assert engine is not None
            totals = {asset: engine.free(asset) + engine.locked(asset) for asset in ("BTC", "USDT")}
            return list(engine.fills), totals
    finally:
        store.close()


def test_paper_sessions_resume_exactly_across_restarts(server: SimServer, tmp_path: Path) -> None:
    config, journal = _config(tmp_path), tmp_path / "paper.db"
    booked = []
    for _ in range(SESSIONS):
        _session(server, config, journal)
        with SqliteJournal(journal) as store:
            booked.append(len(store.fills(SYMBOL)))
        server.advance(DOWNTIME)  # the market moves on while the engine is stopped
    truth, totals = asyncio.run(_resumed(server, journal))
    assert len({booked[0], *booked[1:]}) >= 3, booked  # fills came in several sessions
    ids = [f.trade_id for f in truth]
    assert len(ids) == len(set(ids))  # no trade id handed out twice
    with SqliteJournal(journal) as store:
        journaled = store.fills(SYMBOL)
    key = lambda f: (f.trade_id, f.client_order_id, f.side, f.price, f.qty, f.ts_ms)  # noqa: E731
    assert sorted(map(key, journaled)) == sorted(map(key, truth))  # every fill journaled, as made
    quote = Decimal(load_config(config).symbols[0].rails.max_quote)
    base = Decimal(0)
    for f in truth:
        notional = BTC.ticks_to_price(f.price) * BTC.lots_to_qty(f.qty)
        fee = BTC.qu_to_quote(f.fee)  # quote (a sell's); a buy's commission comes out of its base
        if f.side is Side.BUY:
            received = BTC.lots_to_qty(f.qty) - Decimal(f.commission or 0)
            quote, base = quote - notional - fee, base + received
        else:
            quote, base = quote + notional - fee, base - BTC.lots_to_qty(f.qty)
    assert totals == {"USDT": quote, "BTC": base}  # balances continued across every restart


def test_a_journal_whose_paper_state_is_gone_is_refused_with_the_reason(
    server: SimServer, tmp_path: Path
) -> None:
    config, journal = _config(tmp_path), tmp_path / "paper.db"
    _session(server, config, journal)
    paper_state_path(journal).unlink()
    args = ["run", "--config", str(config), "--mode", "paper", "--exchange-url", server.url]
    args += ["--pulse-interval", "0.02", "--pulses", "2", "--journal", str(journal)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert f"{journal}.paper is missing" in refused.output
    assert "another --journal" in refused.output
    other = tmp_path / "other.db"  # and a paper state whose journal is gone
    _session(server, config, other)
    other.unlink()
    refused = CliRunner().invoke(app, [*args[:-1], str(other)])
    assert refused.exit_code == 2, refused.output
    assert "has no journal" in refused.output
