"""The sim-exchange's accounts file and market rules: every mistake names its field; tick, lot and
minimum notional come from Binance for known pairs, from the data otherwise, or from [[market]]."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sim_clients import ALICE, ccxt_binance

from nutcracker.core.units import Precision
from nutcracker.errors import ConfigError, DataError
from nutcracker.marketdata.candles import write_candles_csv
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import (
    DEFAULT_PERMISSIONS,
    MarketOverride,
    load_market,
    load_sim_setup,
)
from nutcracker.simexchange.server import SimServer

GOOD = """
[[account]]
api_key = "k1"
secret = "s1"
balances = { USDT = 10000, BTC = 0.5 }
permissions = { enableWithdrawals = true }

[[account]]
name = "second"
api_key = "k2"
secret = "s2"
balances = { USDT = "0.1" }

[[market]]
symbol = "BTC/USDT"
tick_size = 0.01
lot_size = "0.001"
"""


MINIMAL = '[[account]]\napi_key = "k"\nsecret = "s"\nbalances = {}\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    return path


def test_a_good_accounts_file_reads_exact_balances_and_permissions(tmp_path: Path) -> None:
    setup = load_sim_setup(write(tmp_path, GOOD))
    first, second = setup.accounts
    assert (first.api_key, first.name, second.name) == ("k1", "account-0", "second")
    assert first.balances == {"USDT": Decimal(10000), "BTC": Decimal("0.5")}
    assert second.balances == {"USDT": Decimal("0.1")}
    assert first.permission("enableWithdrawals") is True
    assert first.permission("enableSpotAndMarginTrading") is True
    assert second.permissions == {}
    assert (
        second.permission("enableInternalTransfer") is DEFAULT_PERMISSIONS["enableInternalTransfer"] is False
    )
    assert setup.markets == {"BTC/USDT": MarketOverride("BTC/USDT", Decimal("0.01"), Decimal("0.001"))}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "account: at least one [[account]]"),
        ('[[account]]\nsecret = "s"\nbalances = {}\n', "account[0].api_key: missing"),
        ('[[account]]\napi_key = "a b"\nsecret = "s"\nbalances = {}\n', "account[0].api_key: invalid"),
        ('[[account]]\napi_key = "k"\nbalances = {}\n', "account[0].secret: missing"),
        ('[[account]]\napi_key = "k"\nsecret = "s"\n', "account[0].balances: missing"),
        ('[[account]]\napi_key = "k"\nsecret = "s"\nbalances = { usdt = 1 }\n', "account[0].balances.usdt"),
        ('[[account]]\napi_key = "k"\nsecret = "s"\nbalances = { BTC = "x" }\n', "account[0].balances.BTC"),
        (
            '[[account]]\napi_key = "k"\nsecret = "s"\nbalances = {}\npermissions = { canFly = true }\n',
            "account[0].permissions.canFly: unknown permission",
        ),
        (
            '[[account]]\napi_key = "k"\nsecret = "s"\nbalances = {}\npermissions = { enableReading = 1 }\n',
            "account[0].permissions.enableReading: must be true or false",
        ),
        (
            '[[account]]\napi_key = "k"\nsecret = "s"\nbalances = {}\napikey = "x"\n',
            "account[0].apikey: unknown",
        ),
        (
            MINIMAL + '[[account]]\napi_key = "k"\nsecret = "t"\nbalances = {}\n',
            "account[1].api_key: the same key as account[0]",
        ),
        (
            MINIMAL + '[[market]]\nsymbol = "BTCUSDT"\n',
            "market[0].symbol",
        ),
        (
            MINIMAL + '[[market]]\nsymbol = "A/B"\nmaker_fee = 0.0000001\n',
            "market[0].maker_fee",
        ),
        (
            MINIMAL + '[[market]]\nsymbol = "A/B"\ntaker_fee = 1.5\n',
            "market[0].taker_fee",
        ),
        (MINIMAL + "[[markets]]\n", "unknown top-level key"),
        ("[[account]\n", "invalid TOML"),
    ],
)
def test_a_bad_accounts_file_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=r"accounts\.toml") as caught:
        load_sim_setup(write(tmp_path, text))
    assert field in str(caught.value)


def test_a_missing_accounts_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such accounts file"):
        load_sim_setup(tmp_path / "nope.toml")


def test_known_pairs_get_binance_rules(btc_csv: Path) -> None:
    info = load_market(btc_csv).info
    assert (info.symbol, info.base, info.quote) == ("BTC/USDT", "BTC", "USDT")
    assert (info.tick_size, info.lot_size, info.min_notional, info.maker_fee) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal(5),
        Decimal("0.001"),
    )


def test_other_pairs_take_the_tick_from_their_data_and_a_lot_from_their_price(tmp_path: Path) -> None:
    path = tmp_path / "binance_XYZ-USDT_1m.csv"
    precision = Precision(Decimal("0.0001"), Decimal(1))
    write_candles_csv(path, synthetic_candles(3, 50, Decimal("2.5"), precision, symbol="XYZ/USDT"), precision)
    spec = load_market(path)
    assert spec.info.tick_size == Decimal("0.0001")
    assert spec.info.lot_size == Decimal("0.1")  # 0.1 XYZ is worth about 0.25 USDT
    assert spec.info.min_notional == Decimal(5)
    assert spec.candles.close[0] == synthetic_candles(3, 50, Decimal("2.5"), precision).close[0]

    eth_btc = tmp_path / "binance_XYZ-BTC_1m.csv"
    eth_btc.write_bytes(path.read_bytes())
    assert load_market(eth_btc).info.min_notional == Decimal(0)


def test_a_market_override_wins_and_off_grid_data_is_refused(btc_csv: Path) -> None:
    override = MarketOverride(
        "BTC/USDT", lot_size=Decimal("0.001"), min_notional=Decimal(10), maker_fee=Decimal(0)
    )
    info = load_market(btc_csv, "BTC/USDT", override).info
    assert (info.tick_size, info.lot_size, info.min_notional, info.maker_fee) == (
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal(10),
        Decimal(0),
    )
    with pytest.raises(DataError, match="tick"):
        load_market(btc_csv, "BTC/USDT", MarketOverride("BTC/USDT", tick_size=Decimal("0.1")))


def test_a_taker_fee_is_reported_and_charged_apart_from_the_maker_fee(btc_csv: Path) -> None:
    """Issue 11: the account's commission endpoints report both fees; MARKET orders pay the taker's."""
    market = load_market(btc_csv, "BTC/USDT", MarketOverride("BTC/USDT", taker_fee=Decimal("0.002")))
    assert (market.info.maker_fee, market.taker) == (Decimal("0.001"), Decimal("0.002"))
    with SimServer({"BTC/USDT": market}, [ALICE], warmup=100) as server:
        alice = ccxt_binance(server.url, ALICE.api_key, ALICE.secret)
        fee = alice.fetch_trading_fee("BTC/USDT")
        assert (fee["maker"], fee["taker"]) == (0.001, 0.002)
        rates = alice.privateGetAccountCommission({"symbol": "BTCUSDT"})["standardCommission"]
        assert (rates["maker"], rates["taker"]) == ("0.00100000", "0.00200000")
        order = alice.create_order("BTC/USDT", "market", "sell", 0.001)
        fill = order["info"]["fills"][0]
        assert Decimal(fill["commission"]) == (
            Decimal(fill["price"]) * Decimal("0.001") * Decimal("0.002")
        ).quantize(Decimal("1e-8"))
