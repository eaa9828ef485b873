"""``nutcracker run --mode live|paper`` against the simulated exchange with the real ccxt client.

A trade-only key trades; a key that can withdraw is refused at start and places nothing; and no
secret of either key appears in any output, log line or file the sessions write.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from nutcracker.cli import app
from nutcracker.core.model import MarketInfo
from nutcracker.core.units import Precision
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.secrets.keystore import PASSPHRASE_ENV, KeystoreSecretStore
from nutcracker.secrets.store import ApiCredentials
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer

ROOT = Path(__file__).resolve().parents[2]
GRID = str(ROOT / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml")
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
SAFE_KEY, SAFE_SECRET = "PLANTEDKEYsafe0123456789abcdefABCDEF", "PLANTEDSECRETsafe9876543210zyxwvu"
BAD_KEY, BAD_SECRET = "PLANTEDKEYwithdraw0123456789abcdef", "PLANTEDSECRETwithdraw98765432100"
TRADER = SimAccount(SAFE_KEY, SAFE_SECRET, {"USDT": Decimal(10_000)}, name="trader")
WITHDRAWER = SimAccount(
    BAD_KEY, BAD_SECRET, {"USDT": Decimal(10_000)}, {"enableWithdrawals": True}, "withdrawer"
)


@pytest.fixture
def server() -> SimServer:
    candles = synthetic_candles(11, 800, Decimal(100_000), BTC, symbol="BTC/USDT")
    info = MarketInfo("BTC/USDT", "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    sim = SimServer({"BTC/USDT": MarketSpec(info, candles)}, [TRADER, WITHDRAWER], manual=True)
    sim.start()
    sim.advance(400)
    yield sim  # type: ignore[misc]
    sim.stop()


def _store(tmp_path: Path, name: str, key: str, secret: str) -> Path:
    path = tmp_path / "keystore.json"
    KeystoreSecretStore(path).put(  # the passphrase comes from the environment
        ApiCredentials(exchange_id="binance", name=name, api_key=SecretStr(key), secret=SecretStr(secret))
    )
    return path


def test_live_trades_with_a_trade_only_key_and_refuses_a_withdrawal_key_leaking_no_secret(
    server: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery")
    log_file = tmp_path / "engine.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        keystore = _store(tmp_path, "safe", SAFE_KEY, SAFE_SECRET)
        _store(tmp_path, "bad", BAD_KEY, BAD_SECRET)  # stored before its permissions changed
        common = [
            "run",
            "--config",
            GRID,
            "--exchange-url",
            server.url,
            "--keystore",
            str(keystore),
            "--pulse-interval",
            "0.05",
        ]
        live = CliRunner().invoke(
            app,
            [
                *common,
                "--mode",
                "live",
                "--key",
                "safe",
                "--pulses",
                "4",
                "--journal",
                str(tmp_path / "live.db"),
            ],
        )
        assert live.exit_code == 0, live.output
        events = server.engine(SAFE_KEY).events
        assert len([e for e in events if e.event == "placed"]) == 6  # the example grid's ladder
        assert len([e for e in events if e.event == "cancelled"]) == 6  # cancel_on_shutdown = true
        assert server.engine(SAFE_KEY).open_orders("BTC/USDT") == ()

        refused = CliRunner().invoke(
            app,
            [
                *common,
                "--mode",
                "live",
                "--key",
                "bad",
                "--pulses",
                "2",
                "--journal",
                str(tmp_path / "bad.db"),
            ],
        )
        assert refused.exit_code == 1
        assert "nothing was placed" in refused.output
        assert "enableWithdrawals" in refused.output
        assert server.engine(BAD_KEY).open_orders("BTC/USDT") == ()
        assert not [e for e in server.engine(BAD_KEY).events if e.event == "placed"]

        paper = CliRunner().invoke(
            app,
            [
                "run",
                "--config",
                GRID,
                "--mode",
                "paper",
                "--exchange-url",
                server.url,
                "--pulse-interval",
                "0.05",
                "--pulses",
                "3",
                "--journal",
                str(tmp_path / "paper.db"),
            ],
        )
        assert paper.exit_code == 0, paper.output

        replay = CliRunner().invoke(
            app,
            [
                "run",
                "--config",
                GRID,
                "--speed",
                "0",
                "--candles",
                "50",
                "--synthetic",
                "500",
                "--journal",
                str(tmp_path / "replay.db"),
                "--out",
                str(tmp_path / "replay"),
                "--headless",
            ],
        )
        assert replay.exit_code == 0, replay.output
    finally:
        root.removeHandler(handler)
        handler.close()
    outputs = [live.output, refused.output, paper.output, replay.output]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "keystore.json"]
    assert log_file in files
    for secret in (SAFE_KEY, SAFE_SECRET, BAD_KEY, BAD_SECRET):
        assert all(secret not in text for text in outputs)
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret[:12]}... leaked into {path}"
