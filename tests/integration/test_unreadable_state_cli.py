"""Issue 11 item 4 through the CLI: a symbol whose journaled state cannot be read is halted.

``nutcracker run --mode paper`` (the real ccxt client, our SimServer's public data) on two
symbols; ETH/USDT's state blob in the journal is then made unreadable. The next run halts ETH/USDT
with the reason (journaled, shown by ``status``), keeps trading BTC/USDT, and ``--pulses`` ends the
run: no traceback, no endless ``pulse_error``.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nutcracker.cli import app
from nutcracker.core.model import MarketInfo
from nutcracker.core.units import Precision
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer

ROOT = Path(__file__).resolve().parents[2]
MULTI = str(ROOT / "examples" / "multi-symbol.toml")
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
ETH = Precision(Decimal("0.01"), Decimal("0.0001"))


@pytest.fixture
def server() -> SimServer:
    markets = {
        "BTC/USDT": MarketSpec(
            MarketInfo("BTC/USDT", "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001")),
            synthetic_candles(11, 800, Decimal(100_000), BTC, symbol="BTC/USDT"),
        ),
        "ETH/USDT": MarketSpec(
            MarketInfo("ETH/USDT", "ETH", "USDT", ETH.tick, ETH.lot, Decimal(5), Decimal("0.001")),
            synthetic_candles(12, 800, Decimal(3_000), ETH, symbol="ETH/USDT"),
        ),
    }
    sim = SimServer(markets, [SimAccount("k" * 32, "s" * 32, {"USDT": Decimal(1)})], manual=True)
    sim.start()
    sim.advance(400)
    yield sim  # type: ignore[misc]
    sim.stop()


@pytest.mark.parametrize(
    "blob", ["{not json", '{"engine": {"format": 1, "fills_from_ms": 0}, "strategy": []}']
)
def test_an_unreadable_symbol_is_halted_the_other_trades_and_pulses_end_the_run(
    server: SimServer, tmp_path: Path, blob: str
) -> None:
    journal = tmp_path / "paper.db"
    paper = ["run", "--config", MULTI, "--mode", "paper", "--exchange-url", server.url]
    paper += ["--pulse-interval", "0.05", "--journal", str(journal)]
    first = CliRunner().invoke(app, [*paper, "--pulses", "2"])
    assert first.exit_code == 0, first.output
    with closing(sqlite3.connect(journal)) as conn:
        conn.execute("UPDATE symbols SET state_json = ? WHERE symbol = 'ETH/USDT'", (blob,))
        conn.commit()

    again = CliRunner().invoke(app, [*paper, "--pulses", "3"])
    assert again.exit_code == 0, again.output
    assert "Traceback" not in again.output
    eth = [line for line in again.output.splitlines() if line.startswith("symbol=ETH/USDT")]
    btc = [line for line in again.output.splitlines() if line.startswith("symbol=BTC/USDT")]
    assert len(eth) >= 3
    assert all("status=paused" in line for line in eth)
    assert all("cannot be read" in line for line in eth)
    assert len(btc) >= 3
    assert any("status=trading" in line for line in btc)

    shown = CliRunner().invoke(app, ["status", "--journal", str(journal)])
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "ETH/USDT" in line)
    assert "paused" in row
    assert "halted" in row
    with closing(sqlite3.connect(journal)) as conn:
        (kept,) = conn.execute("SELECT state_json FROM symbols WHERE symbol = 'ETH/USDT'").fetchone()
    assert kept == blob  # never overwritten: `nutcracker recover` rebuilds it from the exchange
