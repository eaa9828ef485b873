"""The sim-exchange's accounts and markets: the accounts TOML file and the rules of each market.

Accounts file (TOML). Every problem is a ``ConfigError`` naming the file and the field
(``account[1].balances.BTC``) and saying what to change::

    [[account]]                     # one or more; accounts never interact
    name = "alice"                  # optional label (default "account-N"), shown by GET /sim/state
    api_key = "alice-key"           # letters, digits, '-' and '_'; unique
    secret = "alice-secret"         # the HMAC-SHA256 secret ccxt signs with
    balances = { USDT = 10000, BTC = 0.5 }
    permissions = { enableReading = true, enableSpotAndMarginTrading = true, enableWithdrawals = false }
    fee_asset = "BNB"               # optional: pay commissions in BNB (default: the asset received)
    fee_asset_price = "600"         # with fee_asset: its price in the quote asset

    [[market]]                      # optional: the rules of one symbol, overriding the defaults
    symbol = "BTC/USDT"
    tick_size = "0.01"              # numbers or strings; TOML floats are read as exact decimals
    lot_size = "0.00001"
    min_notional = "5"
    maker_fee = "0.001"             # a fraction: 0.001 = 10 bps, a whole number of ppm
    taker_fee = "0.001"             # the fee of orders that take (MARKET, crossing LIMIT); default: maker_fee

``permissions`` lists flags of Binance's ``GET /sapi/v1/account/apiRestrictions`` answer
(``PERMISSION_FIELDS``); the ones left out take ``DEFAULT_PERMISSIONS`` (read and spot trading on,
everything else off). The server also enforces two of them: signed reads need ``enableReading``,
placing and cancelling orders needs ``enableSpotAndMarginTrading`` (else ``-2015``).

Commissions are charged as Binance does: in the asset a fill gives (a buy's in base, a sell's in
quote). An account with ``fee_asset`` pays ``maker_fee x notional / fee_asset_price`` of that asset
instead (no discount), while its free balance covers it, then falls back to the asset received.

Market rules: ``KNOWN_MARKETS`` holds Binance's real filters for BTC/USDT and ETH/USDT. Any other
symbol gets its tick from the decimals of its data (the largest power of ten dividing every
price), a lot of ``10**ceil(log10(0.1 / price))`` (a lot worth 0.1 to 1 quote units, as on Binance:
ETH 0.0001, BNB 0.001, XRP 0.1, DOGE 1), a minimum notional of 5 for USD stablecoin quotes (0 for
unknown quotes) and a 10 bps maker and taker fee. A ``[[market]]`` table overrides any of these;
the account's commission endpoints (``account/commission``, ``asset/tradeFee``) report them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import numpy as np

from nutcracker.config import read_toml
from nutcracker.core.model import MarketInfo
from nutcracker.core.units import PPM, Precision
from nutcracker.errors import ConfigError, DataError
from nutcracker.marketdata.candles import CandleArrays, load_candles_csv, symbol_from_filename

PERMISSION_FIELDS: Final = (
    "ipRestrict",
    "enableReading",
    "enableWithdrawals",
    "enableInternalTransfer",
    "enableMargin",
    "enableFutures",
    "permitsUniversalTransfer",
    "enableVanillaOptions",
    "enableFixApiTrade",
    "enableFixReadOnly",
    "enableSpotAndMarginTrading",
    "enablePortfolioMarginTrading",
)
"""The boolean flags of Binance's ``apiRestrictions`` answer, in Binance's order."""

DEFAULT_PERMISSIONS: Final[Mapping[str, bool]] = {
    name: name in ("enableReading", "enableSpotAndMarginTrading") for name in PERMISSION_FIELDS
}

API_KEY_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
"""A well-formed API key; the server answers ``-2014`` to a key header that does not match it."""

DEFAULT_MAKER_FEE: Final = Decimal("0.001")
_USD_QUOTES: Final = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD"})
_SYMBOL_RE: Final = re.compile(r"^([A-Z0-9]{1,20})/([A-Z0-9]{1,20})$")
_ASSET_RE: Final = re.compile(r"^[A-Z0-9]{1,20}$")
_FINE_SCALE: Final = 10  # decimals of the grid the data is first read on to find its tick
_ACCOUNT_KEYS: Final = (
    "name",
    "api_key",
    "secret",
    "balances",
    "permissions",
    "fee_asset",
    "fee_asset_price",
)
_MARKET_KEYS: Final = ("symbol", "tick_size", "lot_size", "min_notional", "maker_fee", "taker_fee")


@dataclass(frozen=True, slots=True)
class SimAccount:
    """One account of the sim-exchange: its credentials, starting balances and key permissions."""

    api_key: str
    secret: str
    balances: Mapping[str, Decimal]
    permissions: Mapping[str, bool] = field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))
    name: str = ""
    fee_asset: str = ""  # "" pays commissions in the asset received, as Binance does by default
    fee_asset_price: Decimal | None = None  # quote per unit of ``fee_asset``

    def __post_init__(self) -> None:
        if not API_KEY_RE.match(self.api_key):
            raise ValueError("api_key must be 1-256 letters, digits, '-' or '_'")
        if not self.secret or "PRIVATE KEY" in self.secret:
            raise ValueError("secret must be a non-empty HMAC secret (RSA/Ed25519 keys are not simulated)")
        unknown = set(self.permissions) - set(PERMISSION_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown permission(s) {sorted(unknown)}; known: {', '.join(PERMISSION_FIELDS)}"
            )
        for asset, amount in self.balances.items():
            if not _ASSET_RE.match(asset) or not amount.is_finite() or amount < 0:
                raise ValueError(f"balance {asset} = {amount} must be an asset name and an amount >= 0")

    def permission(self, name: str) -> bool:
        """Return the flag ``name`` of this key, its default when the account does not set it."""
        return self.permissions.get(name, DEFAULT_PERMISSIONS[name])


@dataclass(frozen=True, slots=True)
class MarketOverride:
    """A ``[[market]]`` table: the rules of one symbol that replace the defaults (None: keep)."""

    symbol: str
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    min_notional: Decimal | None = None
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SimSetup:
    """What an accounts file holds: the accounts and the market overrides by symbol."""

    accounts: tuple[SimAccount, ...]
    markets: Mapping[str, MarketOverride]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One market of the sim-exchange: its rules and the candles its clock walks through."""

    info: MarketInfo
    candles: CandleArrays
    taker_fee: Decimal | None = None  # None: the maker fee

    def __post_init__(self) -> None:
        if len(self.candles) == 0:
            raise ValueError(f"{self.info.symbol}: the market needs at least one candle")
        if self.taker_fee is not None and not _is_fee(self.taker_fee):
            raise ValueError(
                f"{self.info.symbol}: taker_fee {self.taker_fee} must be a fraction in (-1, 1) in whole ppm"
            )

    @property
    def symbol(self) -> str:
        return self.info.symbol

    @property
    def taker(self) -> Decimal:
        """Return the taker fee (a fraction): ``taker_fee``, else the maker fee."""
        return self.info.maker_fee if self.taker_fee is None else self.taker_fee


KNOWN_MARKETS: Final[Mapping[str, MarketOverride]] = {
    "BTC/USDT": MarketOverride(
        "BTC/USDT", Decimal("0.01"), Decimal("0.00001"), Decimal(5), DEFAULT_MAKER_FEE
    ),
    "ETH/USDT": MarketOverride("ETH/USDT", Decimal("0.01"), Decimal("0.0001"), Decimal(5), DEFAULT_MAKER_FEE),
}
"""Binance's real PRICE_FILTER tick, LOT_SIZE step and NOTIONAL minimum of the best-known pairs."""


# -- accounts file -------------------------------------------------------------------------------


def load_sim_setup(path: str | os.PathLike[str]) -> SimSetup:
    """Read an accounts TOML file.

    Raises:
        ConfigError: unreadable file, invalid TOML, or a field that is missing or wrong (named).
    """
    file = Path(path)
    data = read_toml(file, kind="accounts file", parse_float=Decimal)
    return parse_sim_setup(data, source=str(file))


def parse_sim_setup(data: Mapping[str, Any], *, source: str = "accounts") -> SimSetup:
    """Validate the parsed TOML of an accounts file (see the module docstring for the layout)."""
    unknown = sorted(set(data) - {"account", "market"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {unknown}; use [[account]] and [[market]] tables"
        )
    raw_accounts = data.get("account")
    if not isinstance(raw_accounts, list) or not raw_accounts:
        raise ConfigError(
            f"{source}: account: at least one [[account]] table is needed "
            "(api_key, secret, balances, permissions)"
        )
    accounts: list[SimAccount] = []
    for i, raw in enumerate(raw_accounts):
        accounts.append(_parse_account(raw, f"{source}: account[{i}]", i))
    seen: dict[str, int] = {}
    for i, account in enumerate(accounts):
        if account.api_key in seen:
            raise ConfigError(
                f"{source}: account[{i}].api_key: the same key as account[{seen[account.api_key]}]; "
                "every account needs its own api_key"
            )
        seen[account.api_key] = i
    raw_markets = data.get("market", [])
    if not isinstance(raw_markets, list):
        raise ConfigError(f"{source}: market: write market rules as [[market]] tables")
    markets: dict[str, MarketOverride] = {}
    for i, raw in enumerate(raw_markets):
        override = _parse_market(raw, f"{source}: market[{i}]")
        if override.symbol in markets:
            raise ConfigError(
                f"{source}: market[{i}].symbol: {override.symbol} is given twice; keep one table"
            )
        markets[override.symbol] = override
    return SimSetup(tuple(accounts), markets)


def _parse_account(raw: object, where: str, index: int) -> SimAccount:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with api_key, secret, balances and permissions")
    _refuse_unknown(raw, _ACCOUNT_KEYS, where)
    name = raw.get("name", f"account-{index}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: must be a non-empty string")
    api_key = raw.get("api_key")
    if not isinstance(api_key, str) or not API_KEY_RE.match(api_key):
        raise ConfigError(
            f"{where}.api_key: {'missing' if api_key is None else 'invalid'}; "
            "give a string of 1-256 letters, digits, '-' or '_'"
        )
    secret = raw.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ConfigError(
            f"{where}.secret: {'missing' if secret is None else 'invalid'}; give a non-empty string"
        )
    if "PRIVATE KEY" in secret:
        raise ConfigError(f"{where}.secret: RSA/Ed25519 keys are not simulated; give an HMAC secret string")
    balances = _parse_balances(raw.get("balances"), f"{where}.balances")
    permissions = _parse_permissions(raw.get("permissions", {}), f"{where}.permissions")
    fee_asset, fee_asset_price = _parse_fee_asset(raw, where)
    return SimAccount(api_key, secret, balances, permissions, name, fee_asset, fee_asset_price)


def _parse_fee_asset(raw: Mapping[str, object], where: str) -> tuple[str, Decimal | None]:
    asset = raw.get("fee_asset", "")
    if not isinstance(asset, str) or (asset and not _ASSET_RE.match(asset)):
        raise ConfigError(f'{where}.fee_asset: give an asset name such as "BNB", got {asset!r}')
    if "fee_asset_price" not in raw:
        if asset:
            raise ConfigError(
                f"{where}.fee_asset_price: missing; give the price of {asset} in quote, e.g. 600"
            )
        return "", None
    if not asset:
        raise ConfigError(f"{where}.fee_asset_price: set only with fee_asset; remove it or add fee_asset")
    price = _decimal(raw["fee_asset_price"], f"{where}.fee_asset_price")
    if price <= 0:
        raise ConfigError(f"{where}.fee_asset_price: {price} must be above 0")
    return asset, price


def _parse_balances(raw: object, where: str) -> dict[str, Decimal]:
    if raw is None:
        raise ConfigError(f"{where}: missing; give e.g. balances = {{ USDT = 10000, BTC = 0.5 }}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table of asset = amount, e.g. {{ USDT = 10000 }}")
    balances: dict[str, Decimal] = {}
    for asset, value in raw.items():
        if not _ASSET_RE.match(asset):
            raise ConfigError(f"{where}.{asset}: asset names are upper-case letters and digits, e.g. USDT")
        amount = _decimal(value, f"{where}.{asset}")
        if amount < 0:
            raise ConfigError(f"{where}.{asset}: {amount} is negative; give an amount >= 0")
        balances[asset] = amount
    return balances


def _parse_permissions(raw: object, where: str) -> dict[str, bool]:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: must be a table of flag = true/false, e.g. {{ enableWithdrawals = false }}"
        )
    permissions: dict[str, bool] = {}
    for name, value in raw.items():
        if name not in PERMISSION_FIELDS:
            raise ConfigError(f"{where}.{name}: unknown permission; known: {', '.join(PERMISSION_FIELDS)}")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{name}: must be true or false, got {value!r}")
        permissions[name] = value
    return permissions


def _parse_market(raw: object, where: str) -> MarketOverride:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with symbol and the rules to override")
    _refuse_unknown(raw, _MARKET_KEYS, where)
    symbol = raw.get("symbol")
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ConfigError(
            f"{where}.symbol: {'missing' if symbol is None else repr(symbol)}; write e.g. 'BTC/USDT'"
        )
    values: dict[str, Decimal | None] = {}
    for key in _MARKET_KEYS[1:]:
        value = raw.get(key)
        values[key] = None if value is None else _decimal(value, f"{where}.{key}")
    for key in ("tick_size", "lot_size"):
        step = values[key]
        if step is not None and step <= 0:
            raise ConfigError(f"{where}.{key}: {step} must be > 0")
    min_notional = values["min_notional"]
    if min_notional is not None and min_notional < 0:
        raise ConfigError(f"{where}.min_notional: {min_notional} must be >= 0")
    for key in ("maker_fee", "taker_fee"):
        fee = values[key]
        if fee is not None and not _is_fee(fee):
            raise ConfigError(
                f"{where}.{key}: {fee} must be a fraction in (-1, 1) in whole ppm, e.g. 0.001 for 10 bps"
            )
    return MarketOverride(
        symbol,
        values["tick_size"],
        values["lot_size"],
        values["min_notional"],
        values["maker_fee"],
        values["taker_fee"],
    )


def _is_fee(fee: Decimal) -> bool:
    ppm = fee * PPM
    return -1 < fee < 1 and ppm == ppm.to_integral_value()


def _refuse_unknown(raw: Mapping[str, object], known: Sequence[str], where: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown field; expected one of {', '.join(known)}")


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ConfigError(f"{where}: must be a number, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as e:
        raise ConfigError(f"{where}: {value!r} is not a number") from e
    if not number.is_finite():
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return number


# -- market data ---------------------------------------------------------------------------------


def load_market(
    path: str | os.PathLike[str], symbol: str | None = None, override: MarketOverride | None = None
) -> MarketSpec:
    """Load one symbol's candle file and settle its rules (known, derived, then ``override``).

    ``symbol`` defaults to the one in the file name (``binance_BTC-USDT_1m.csv.gz`` -> BTC/USDT).

    Raises:
        DataError: unreadable or malformed data, or prices off the market's tick grid.
        ConfigError: a symbol that cannot be read from the file name or is malformed.
    """
    if symbol is None:
        try:
            symbol = symbol_from_filename(path)
        except ValueError as e:
            raise ConfigError(f"{path}: {e}; or write --data BASE/QUOTE=FILE") from e
    match = _SYMBOL_RE.match(symbol)
    if match is None:
        raise ConfigError(f"--data {symbol}=...: the symbol must look like BTC/USDT")
    rules = override if override is not None else MarketOverride(symbol)
    known = KNOWN_MARKETS.get(symbol, MarketOverride(symbol))
    tick = rules.tick_size if rules.tick_size is not None else known.tick_size
    if tick is not None:
        candles = load_candles_csv(path, Precision(tick, Decimal(1)), symbol)
    else:
        tick, candles = _load_with_derived_tick(path, symbol)
    last_price = int(candles.close[-1]) * tick
    lot = _first_given(rules.lot_size, known.lot_size) or _lot_for_price(last_price)
    base, quote = match.group(1), match.group(2)
    min_notional = _first_given(rules.min_notional, known.min_notional)
    if min_notional is None:
        min_notional = Decimal(5) if quote in _USD_QUOTES else Decimal(0)
    fee = _first_given(rules.maker_fee, known.maker_fee)
    info = MarketInfo(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=tick,
        lot_size=lot,
        min_notional=min_notional,
        maker_fee=DEFAULT_MAKER_FEE if fee is None else fee,
    )
    return MarketSpec(info, candles, rules.taker_fee)


def _first_given(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def _load_with_derived_tick(path: str | os.PathLike[str], symbol: str) -> tuple[Decimal, CandleArrays]:
    """Read the prices on a fine grid, then take the coarsest power-of-ten grid they all lie on."""
    fine = Decimal(1).scaleb(-_FINE_SCALE)
    arrays = load_candles_csv(path, Precision(fine, Decimal(1)), symbol)
    prices = np.concatenate([arrays.open, arrays.high, arrays.low, arrays.close])
    common = int(np.gcd.reduce(prices))
    zeros = 0
    while zeros < _FINE_SCALE and common % 10 == 0:
        common //= 10
        zeros += 1
    if zeros == 0:
        return fine, arrays
    factor = 10**zeros
    coarse = CandleArrays(
        arrays.ts_ms.copy(),
        arrays.open // factor,
        arrays.high // factor,
        arrays.low // factor,
        arrays.close // factor,
        arrays.volume.copy(),
        arrays.interval_ms,
        symbol,
    )
    return Decimal(1).scaleb(zeros - _FINE_SCALE), coarse


def _lot_for_price(price: Decimal) -> Decimal:
    """Return the power of ten worth 0.1 to 1 quote units at ``price`` (between 1e-8 and 1000)."""
    if price <= 0:
        return Decimal("0.0001")
    exponent = int((Decimal("0.1") / price).log10().to_integral_value(rounding=ROUND_CEILING))
    return Decimal(1).scaleb(min(3, max(-8, exponent)))


def market_override_for(setup: SimSetup | None, symbol: str) -> MarketOverride | None:
    """Return the ``[[market]]`` table of ``symbol`` in ``setup``, if any."""
    return None if setup is None else setup.markets.get(symbol)


__all__ = [
    "API_KEY_RE",
    "DEFAULT_MAKER_FEE",
    "DEFAULT_PERMISSIONS",
    "KNOWN_MARKETS",
    "PERMISSION_FIELDS",
    "DataError",
    "MarketOverride",
    "MarketSpec",
    "SimAccount",
    "SimSetup",
    "load_market",
    "load_sim_setup",
    "parse_sim_setup",
]
