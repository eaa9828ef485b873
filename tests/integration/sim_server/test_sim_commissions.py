"""Commissions as Binance charges them, seen through ccxt: in the asset received, or in BNB."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sim_clients import ccxt_binance

from nutcracker.errors import ConfigError
from nutcracker.simexchange.accounts import MarketSpec, load_sim_setup
from nutcracker.simexchange.server import SimServer

SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")
BNB_ACCOUNT = """
[[account]]
api_key = "bnb-key"
secret = "bnb-secret"
balances = { USDT = 10000, BTC = "0.5", BNB = "1" }
fee_asset = "BNB"
fee_asset_price = "600"
"""


def _fill_one_buy_and_one_sell(sim: SimServer, client: Any, qty: str) -> list[Any]:
    market = sim.market(SYMBOL)
    c = market.candles
    i = next(i for i in range(100, len(c)) if c.low[i] < c.close[i - 1] and c.high[i] > c.close[i - 1] + 1)
    sim.advance(i - 100)
    close = int(c.close[i - 1])
    for side, ticks in (("buy", close - 0), ("sell", close + 1)):
        client.create_order(SYMBOL, "limit", side, float(qty), float(ticks * TICK), {"postOnly": True})
    since = client.fetch_time()
    sim.advance(1)
    return sorted(client.fetch_my_trades(SYMBOL, since, 10), key=lambda t: t["side"])


def test_a_buy_pays_in_base_a_sell_in_quote_at_eight_decimals(btc_market: MarketSpec) -> None:
    setup = load_sim_setup_text(BNB_ACCOUNT.replace('fee_asset = "BNB"\nfee_asset_price = "600"\n', ""))
    sim = SimServer({SYMBOL: btc_market}, list(setup.accounts), warmup=100, seed=1)
    sim.start()
    client = ccxt_binance(sim.url, "bnb-key", "bnb-secret")
    try:
        client.load_markets()
        buy, sell = _fill_one_buy_and_one_sell(sim, client, "0.001")
    finally:
        client.close()
        sim.stop()
    assert (buy["info"]["commission"], buy["info"]["commissionAsset"]) == ("0.00000100", "BTC")
    assert buy["fee"] == {"cost": 0.000001, "currency": "BTC"}
    assert sell["info"]["commissionAsset"] == "USDT"
    assert len(sell["info"]["commission"].split(".")[1]) == 8
    assert Decimal(sell["info"]["commission"]) == Decimal(sell["info"]["quoteQty"]) * Decimal("0.001")


def test_an_account_with_fee_asset_bnb_pays_bnb_at_the_configured_price(btc_market: MarketSpec) -> None:
    setup = load_sim_setup_text(BNB_ACCOUNT)
    sim = SimServer({SYMBOL: btc_market}, list(setup.accounts), warmup=100, seed=1)
    sim.start()
    client = ccxt_binance(sim.url, "bnb-key", "bnb-secret")
    try:
        client.load_markets()
        buy, sell = _fill_one_buy_and_one_sell(sim, client, "0.01")
        balances = {b["asset"]: Decimal(b["free"]) for b in client.fetch_balance()["info"]["balances"]}
    finally:
        client.close()
        sim.stop()
    for trade in (buy, sell):
        assert trade["info"]["commissionAsset"] == "BNB"
        expected = Decimal(trade["info"]["quoteQty"]) * Decimal("0.001") / 600
        charged = Decimal(trade["info"]["commission"])
        assert expected <= charged < expected + Decimal("1e-8")  # rounded up to 8 decimals
    assert balances["BNB"] == 1 - Decimal(buy["info"]["commission"]) - Decimal(sell["info"]["commission"])
    assert balances["BTC"] == Decimal("0.5")  # 0.01 bought in full, 0.01 sold: no base withheld


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('fee_asset = "BNB"\n', "account[0].fee_asset_price: missing"),
        ('fee_asset = "bnb"\nfee_asset_price = 1\n', "account[0].fee_asset"),
        ('fee_asset = "BNB"\nfee_asset_price = 0\n', "account[0].fee_asset_price"),
        ("fee_asset_price = 5\n", "account[0].fee_asset_price: set only with fee_asset"),
    ],
)
def test_a_bad_fee_asset_names_the_field(extra: str, field: str) -> None:
    text = '[[account]]\napi_key = "k"\nsecret = "s"\nbalances = {}\n' + extra
    with pytest.raises(ConfigError, match="accounts") as caught:
        load_sim_setup_text(text)
    assert field in str(caught.value)


def load_sim_setup_text(text: str) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "accounts.toml"
        path.write_text(text)
        return load_sim_setup(path)


def test_a_fee_asset_the_server_trades_is_refused_naming_the_account(btc_market: MarketSpec) -> None:
    setup = load_sim_setup_text(BNB_ACCOUNT.replace('fee_asset = "BNB"', 'fee_asset = "BTC"'))
    with pytest.raises(ValueError, match=r"accounts\[0\].*fee_asset BTC is traded by a market here"):
        SimServer({SYMBOL: btc_market}, list(setup.accounts), warmup=100, seed=1)
