"""``nutcracker data download`` through the CLI, against the simulated exchange's klines."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from nutcracker.cli import app
from nutcracker.core.model import MarketInfo
from nutcracker.core.units import Precision
from nutcracker.marketdata.candles import load_candles_csv
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer

BTC = Precision(Decimal("0.01"), Decimal("0.00001"))


def test_data_download_writes_the_exchange_candles_and_resumes(tmp_path: Path) -> None:
    candles = synthetic_candles(5, 2500, Decimal(60_000), BTC, symbol="BTC/USDT")
    info = MarketInfo("BTC/USDT", "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    account = SimAccount("k" * 64, "s" * 64, {"USDT": Decimal(1000)}, {"enableReading": True}, "a")
    with SimServer({"BTC/USDT": MarketSpec(info, candles)}, [account], manual=True) as server:
        server.advance(2400)
        out = tmp_path / "binance_BTC-USDT_1m.csv.gz"
        args = [
            "data",
            "download",
            "--exchange",
            "binance",
            "--symbol",
            "BTC/USDT",
            "--since",
            str(int(candles.ts_ms[0])),
            "--out",
            str(out),
            "--exchange-url",
            server.url,
        ]
        first = CliRunner().invoke(app, [*args, "--until", str(int(candles.ts_ms[1200]))])
        assert first.exit_code == 0, first.output
        assert load_candles_csv(out, BTC).ts_ms.shape[0] == 1200
        second = CliRunner().invoke(app, args)  # resumes after the last row
        assert second.exit_code == 0, second.output
    got = load_candles_csv(out, BTC)
    n = got.ts_ms.shape[0]
    assert n >= 2300
    assert np.array_equal(got.close, candles.close[:n])
    assert np.array_equal(got.ts_ms, candles.ts_ms[:n])
