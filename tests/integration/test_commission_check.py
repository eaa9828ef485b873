"""Issue 11 item 2: a config fee below the account's commission is refused at start.

``nutcracker run --mode live|paper`` against the sim-exchange (real ccxt client, real keystore,
real SQLite journal): the account pays 10 bps; a config saying 0 bps is refused with one line naming
both figures and the field, 15 bps runs (the higher fee is the config's). Paper mode without a key
cannot read the account: it runs on the config's fee and says, in one line, that it was not checked.
"""

from __future__ import annotations

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
GRID = ROOT / "examples" / "grid-btc-usdt.toml"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
KEY, SECRET = "commission-key-0123456789", "commission-secret-0123456789"
ACCOUNT = SimAccount(KEY, SECRET, {"USDT": Decimal(10_000)}, name="ten-bps")


@pytest.fixture
def server() -> SimServer:
    candles = synthetic_candles(11, 600, Decimal(100_000), BTC, symbol="BTC/USDT")
    info = MarketInfo("BTC/USDT", "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    sim = SimServer({"BTC/USDT": MarketSpec(info, candles)}, [ACCOUNT], manual=True)
    sim.start()
    sim.advance(300)
    yield sim  # type: ignore[misc]
    sim.stop()


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery")
    path = tmp_path / "keystore.json"
    KeystoreSecretStore(path).put(
        ApiCredentials(exchange_id="binance", name="acct", api_key=SecretStr(KEY), secret=SecretStr(SECRET))
    )
    return path


def config_with_fee(tmp_path: Path, bps: str) -> Path:
    text = GRID.read_text().replace('maker_fee_bps = "10"', f'maker_fee_bps = "{bps}"')
    text = text.replace('spacing_bps = "40"', 'spacing_bps = "60"')  # wide enough for 15 bps fees
    assert f'maker_fee_bps = "{bps}"' in text
    path = tmp_path / f"grid-{bps}.toml"
    path.write_text(text)
    return path


def run(server: SimServer, config: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--config",
            str(config),
            "--exchange-url",
            server.url,
            "--pulse-interval",
            "0.05",
            "--pulses",
            "2",
            "--journal",
            str(tmp_path / f"{config.stem}-{'-'.join(extra)}.db"),
            *extra,
        ],
    )
    return result.exit_code, result.output


def placed(server: SimServer) -> int:
    return len([e for e in server.engine(KEY).events if e.event == "placed"])


def test_live_start_refuses_a_config_fee_below_the_accounts(
    server: SimServer, keystore: Path, tmp_path: Path
) -> None:
    code, output = run(
        server,
        config_with_fee(tmp_path, "0"),
        tmp_path,
        "--mode",
        "live",
        "--key",
        "acct",
        "--keystore",
        str(keystore),
    )
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert (
        "BTC/USDT: market.maker_fee_bps = 0 is below the account's maker fee on binance, 10 bps" in lines[0]
    )
    assert placed(server) == 0  # nothing reached the exchange


def test_live_start_runs_on_a_config_fee_above_the_accounts(
    server: SimServer, keystore: Path, tmp_path: Path
) -> None:
    code, output = run(
        server,
        config_with_fee(tmp_path, "15"),
        tmp_path,
        "--mode",
        "live",
        "--key",
        "acct",
        "--keystore",
        str(keystore),
    )
    assert code == 0, output
    assert placed(server) > 0  # it trades, on the config's 15 bps


def test_paper_checks_the_fee_with_a_key_and_says_so_without_one(
    server: SimServer, keystore: Path, tmp_path: Path
) -> None:
    code, output = run(
        server,
        config_with_fee(tmp_path, "0"),
        tmp_path,
        "--mode",
        "paper",
        "--key",
        "acct",
        "--keystore",
        str(keystore),
    )
    assert code == 2, output
    assert "market.maker_fee_bps = 0 is below the account's maker fee on binance, 10 bps" in output
    code, output = run(server, config_with_fee(tmp_path, "0"), tmp_path, "--mode", "paper")
    assert code == 0, output
    assert "the account's commission was not checked (no key; give --key NAME to check it)" in output
    assert "market.maker_fee_bps (BTC/USDT 0 bps)" in output
    assert placed(server) == 0  # paper fills locally: nothing on the exchange
