"""The permission guard on each exchange's documented permission response (reference/exchanges.md §2)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from nutcracker.errors import ExchangeUnavailableError, PermissionRefusedError
from nutcracker.secrets.permissions import (
    PROBES,
    SUPPORTED_EXCHANGES,
    KeyPermissions,
    PermissionProbe,
    describe,
    guard_key,
    parse_binance,
    parse_gate,
    parse_permissions,
    probe_permissions,
    require_safe,
)

# --- documented responses of a safe, trade-only key -------------------------------------------------

BINANCE = {
    "ipRestrict": True,
    "createTime": 1698645219000,
    "enableReading": True,
    "enableWithdrawals": False,
    "enableInternalTransfer": False,
    "enableMargin": False,
    "enableFutures": False,
    "permitsUniversalTransfer": False,
    "enableVanillaOptions": False,
    "enableFixApiTrade": False,
    "enableFixReadOnly": False,
    "enableSpotAndMarginTrading": True,
    "enablePortfolioMarginTrading": False,
}
OKX = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "uid": "44705892343619584",
            "mainUid": "44705892343619584",
            "acctLv": "1",
            "perm": "read_only,trade",
            "ip": "203.0.113.7",
            "label": "bot",
            "posMode": "net_mode",
        }
    ],
}
BYBIT = {
    "retCode": 0,
    "retMsg": "",
    "result": {
        "id": "1",
        "note": "bot",
        "apiKey": "x",
        "readOnly": 0,
        "secret": "",
        "permissions": {
            "ContractTrade": [],
            "Spot": ["SpotTrade"],
            "Wallet": [],
            "Options": [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "Earn": [],
            "NFT": [],
            "Affiliate": [],
        },
        "ips": ["203.0.113.7"],
        "type": 1,
        "uta": 1,
        "isMaster": True,
    },
}
COINBASE = {
    "can_view": True,
    "can_trade": True,
    "can_transfer": False,
    "portfolio_uuid": "7a8b9c0d-0000-4000-8000-000000000000",
    "portfolio_type": "DEFAULT",
}
KUCOIN = {
    "code": "200000",
    "data": {
        "remark": "bot",
        "apiKey": "x",
        "apiVersion": 3,
        "permission": "General,Spot",
        "ipWhitelist": "203.0.113.7",
        "createdAt": 1729821494000,
        "uid": 1,
        "isMaster": True,
    },
}
KRAKEN = {
    "error": [],
    "result": {
        "apiKeyName": "bot",
        "apiKey": "…",
        "nonce": "1772627060997",
        "nonceWindow": 0,
        "permissions": ["query-funds", "query-open-trades", "modify-trades"],
        "iban": "…",
        "validUntil": "0",
        "queryFrom": "0",
        "queryTo": "0",
        "createdTime": "1772542900",
        "modifiedTime": "1772543095",
        "ipAllowlist": [],
        "lastUsed": "1772627061",
    },
}
GATE_KEY = "c5dcfbf1f3a7d2e4a1b9c8d7e6f5a4b3"
GATE = [
    {
        "state": 1,
        "mode": 1,
        "name": "bot",
        "user_id": 1,
        "perms": [{"name": "spot", "read_only": False}, {"name": "account", "read_only": True}],
        "ip_whitelist": ["203.0.113.7"],
        "currency_pairs": [],
        "key": "c5dcfbf1f3a7*****",
        "created_at": 1753030929,
        "update_at": 1756300567,
        "last_access": 1753030929,
    },
    {
        "state": 1,
        "mode": 1,
        "name": "treasury",
        "user_id": 1,
        "perms": [{"name": "wallet", "read_only": False}],
        "ip_whitelist": [],
        "currency_pairs": [],
        "key": "99aa11bb22cc*****",
        "created_at": 1753030929,
        "update_at": 1756300567,
        "last_access": 1753030929,
    },
]
BITGET = {
    "code": "00000",
    "msg": "success",
    "requestTime": 1695808949356,
    "data": {
        "userId": "1",
        "inviterId": "0",
        "ips": "203.0.113.7",
        "authorities": ["stor", "stow"],
        "parentId": 1,
        "traderType": "not_trader",
        "channelCode": "",
        "channel": "",
        "regisTime": "1246566789345",
    },
}
DOCUMENTED: dict[str, Any] = {
    "binance": BINANCE,
    "okx": OKX,
    "bybit": BYBIT,
    "coinbase": COINBASE,
    "kucoin": KUCOIN,
    "kraken": KRAKEN,
    "gate": GATE,
    "bitget": BITGET,
}


def changed(document: Any, edit: Callable[[Any], object]) -> Any:
    """Return a deep copy of ``document`` after ``edit`` mutated it."""
    result = copy.deepcopy(document)
    edit(result)
    return result


def setter(*path: Any) -> Callable[[Any], Callable[[Any], object]]:
    """Return ``value -> edit`` that sets ``document[path...] = value``."""

    def with_value(value: Any) -> Callable[[Any], object]:
        def edit(document: Any) -> None:
            target = document
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return edit

    return with_value


def deleter(*path: Any) -> Callable[[Any], object]:
    def edit(document: Any) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def parse(exchange: str, response: Any) -> KeyPermissions:
    return parse_permissions(exchange, response, api_key=GATE_KEY if exchange == "gate" else None)


# --- every exchange: the documented safe key passes ----------------------------------------------


@pytest.mark.parametrize("exchange", sorted(DOCUMENTED))
def test_documented_trade_only_key_is_accepted(exchange: str) -> None:
    permissions = parse(exchange, DOCUMENTED[exchange])

    assert permissions.problems == ()
    assert permissions.safe
    assert permissions.can_trade_spot is True
    assert permissions.can_withdraw is False
    assert permissions.can_transfer is False
    assert permissions.can_margin is False
    assert permissions.can_derivatives is False
    assert permissions.exchange_id == exchange


def test_every_supported_exchange_has_a_documented_case() -> None:
    assert set(SUPPORTED_EXCHANGES) == set(DOCUMENTED)


# --- refusals: (exchange, response, the flag that must be set, words the message must contain) -----

BINANCE_SET = setter
OKX_PERM = setter("data", 0, "perm")
BYBIT_PERMS = setter("result", "permissions")
KUCOIN_PERM = setter("data", "permission")
KRAKEN_PERMS = setter("result", "permissions")
BITGET_AUTH = setter("data", "authorities")


def gate_perms(perms: list[dict[str, object]]) -> Callable[[Any], object]:
    return setter(0, "perms")(perms)


WITHDRAW_CASES = [
    pytest.param(
        "binance",
        changed(BINANCE, setter("enableWithdrawals")(True)),
        "key can withdraw (enableWithdrawals=true): create a key without withdrawal permission",
        id="binance-enableWithdrawals",
    ),
    pytest.param(
        "okx",
        changed(OKX, OKX_PERM("read_only,withdraw,trade")),
        "key can withdraw (perm=read_only,withdraw,trade)",
        id="okx-withdraw",
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "Wallet")(["Withdraw"])),
        "key can withdraw (Wallet contains 'Withdraw')",
        id="bybit-Withdraw",
    ),
    pytest.param(
        "coinbase",
        changed(COINBASE, setter("can_transfer")(True)),
        "key can withdraw and transfer (can_transfer=true)",
        id="coinbase-can_transfer",
    ),
    pytest.param(
        "kucoin",
        changed(KUCOIN, KUCOIN_PERM("General,Spot,Transfer")),
        "key can withdraw (Transfer in permission=General,Spot,Transfer)",
        id="kucoin-Transfer",
    ),
    pytest.param(
        "kucoin",
        changed(KUCOIN, KUCOIN_PERM("General, Spot, Withdrawal")),
        "key can withdraw (Withdrawal in permission=General, Spot, Withdrawal)",
        id="kucoin-Withdrawal-tag",
    ),
    pytest.param(
        "kraken",
        changed(KRAKEN, KRAKEN_PERMS(["query-funds", "modify-trades", "withdraw-funds"])),
        "key can withdraw (permissions contain 'withdraw-funds')",
        id="kraken-withdraw-funds",
    ),
    pytest.param(
        "gate",
        changed(
            GATE, gate_perms([{"name": "spot", "read_only": False}, {"name": "wallet", "read_only": False}])
        ),
        "key can withdraw and transfer (wallet read_only=false)",
        id="gate-wallet-writable",
    ),
    pytest.param(
        "bitget",
        changed(BITGET, BITGET_AUTH(["stor", "stow", "wwow"])),
        "key can withdraw ('wwow' in authorities)",
        id="bitget-wwow",
    ),
]


@pytest.mark.parametrize(("exchange", "response", "message"), WITHDRAW_CASES)
def test_withdraw_enabled_key_is_refused_naming_the_permission(
    exchange: str, response: Any, message: str
) -> None:
    permissions = parse(exchange, response)

    assert not permissions.safe
    assert permissions.can_withdraw is True
    assert any(message in problem for problem in permissions.problems), permissions.problems
    with pytest.raises(PermissionRefusedError, match="create a key"):
        require_safe(permissions)


TRANSFER_CASES = [
    pytest.param(
        "binance",
        changed(BINANCE, setter("enableInternalTransfer")(True)),
        "key can transfer (enableInternalTransfer=true): create a key without internal-transfer permission",
        id="binance-enableInternalTransfer",
    ),
    pytest.param(
        "binance",
        changed(BINANCE, setter("permitsUniversalTransfer")(True)),
        "key can transfer (permitsUniversalTransfer=true)",
        id="binance-permitsUniversalTransfer",
    ),
    pytest.param(
        # OKX has no separate transfer right: moving funds out falls under withdraw.
        "okx",
        changed(OKX, OKX_PERM("read_only,trade,withdraw")),
        "key can withdraw (perm=read_only,trade,withdraw)",
        id="okx-withdraw-covers-transfer",
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "Wallet")(["AccountTransfer"])),
        "key can transfer (Wallet contains 'AccountTransfer')",
        id="bybit-AccountTransfer",
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "Wallet")(["SubMemberTransfer"])),
        "key can transfer (Wallet contains 'SubMemberTransfer')",
        id="bybit-SubMemberTransfer",
    ),
    pytest.param(
        "coinbase",
        changed(COINBASE, setter("can_transfer")(True)),
        "(can_transfer=true): create a key without the Transfer permission",
        id="coinbase-can_transfer",
    ),
    pytest.param(
        "kucoin",
        changed(KUCOIN, KUCOIN_PERM("General,Spot,InnerTransfer")),
        "key can transfer (InnerTransfer in permission=General,Spot,InnerTransfer)",
        id="kucoin-InnerTransfer",
    ),
    pytest.param(
        "gate",
        changed(
            GATE, gate_perms([{"name": "wallet", "read_only": False}, {"name": "spot", "read_only": False}])
        ),
        "(wallet read_only=false)",
        id="gate-wallet-writable",
    ),
    pytest.param(
        "bitget",
        changed(BITGET, BITGET_AUTH(["stor", "stow", "wtow"])),
        "key can transfer between wallets ('wtow' in authorities)",
        id="bitget-wtow",
    ),
]


@pytest.mark.parametrize(("exchange", "response", "message"), TRANSFER_CASES)
def test_transfer_enabled_key_is_refused_naming_the_permission(
    exchange: str, response: Any, message: str
) -> None:
    permissions = parse(exchange, response)

    assert not permissions.safe
    assert permissions.can_transfer is True
    assert any(message in problem for problem in permissions.problems), permissions.problems


def test_kraken_key_with_a_permission_not_verified_safe_is_refused_as_unknown() -> None:
    # Kraken reports no transfer right that has been verified; any unlisted permission is refused.
    response = changed(KRAKEN, KRAKEN_PERMS(["query-funds", "modify-trades", "query-ledger-entry"]))

    permissions = parse("kraken", response)

    assert not permissions.safe
    assert permissions.can_transfer is None
    assert "unknown permission 'query-ledger-entry'" in permissions.problems[0]


DERIVATIVES_AND_MARGIN_CASES = [
    pytest.param(
        "binance", changed(BINANCE, setter("enableMargin")(True)), "enableMargin=true", id="binance-margin"
    ),
    pytest.param(
        "binance", changed(BINANCE, setter("enableFutures")(True)), "enableFutures=true", id="binance-futures"
    ),
    pytest.param(
        "binance",
        changed(BINANCE, setter("enableVanillaOptions")(True)),
        "enableVanillaOptions=true",
        id="binance-options",
    ),
    pytest.param(
        "binance",
        changed(BINANCE, setter("enablePortfolioMarginTrading")(True)),
        "enablePortfolioMarginTrading=true",
        id="binance-portfolio-margin",
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "ContractTrade")(["Order", "Position"])),
        'ContractTrade=["Order","Position"]',
        id="bybit-contract",
    ),
    pytest.param(
        "kucoin", changed(KUCOIN, KUCOIN_PERM("General,Spot,Margin")), "Margin in", id="kucoin-margin"
    ),
    pytest.param(
        "kucoin", changed(KUCOIN, KUCOIN_PERM("General,Spot,Futures")), "Futures in", id="kucoin-futures"
    ),
    pytest.param(
        "gate",
        changed(
            GATE, gate_perms([{"name": "spot", "read_only": False}, {"name": "futures", "read_only": False}])
        ),
        "futures read_only=false",
        id="gate-futures",
    ),
    pytest.param("bitget", changed(BITGET, BITGET_AUTH(["stow", "coow"])), "'coow'", id="bitget-futures"),
    pytest.param("bitget", changed(BITGET, BITGET_AUTH(["stow", "smow"])), "'smow'", id="bitget-margin"),
]


@pytest.mark.parametrize(("exchange", "response", "message"), DERIVATIVES_AND_MARGIN_CASES)
def test_key_with_margin_or_derivatives_rights_is_refused(exchange: str, response: Any, message: str) -> None:
    permissions = parse(exchange, response)

    assert not permissions.safe
    assert permissions.can_margin or permissions.can_derivatives
    assert any(message in problem for problem in permissions.problems), permissions.problems


NO_TRADE_CASES = [
    pytest.param("binance", changed(BINANCE, setter("enableSpotAndMarginTrading")(False)), id="binance"),
    pytest.param("okx", changed(OKX, OKX_PERM("read_only")), id="okx"),
    pytest.param("bybit", changed(BYBIT, setter("result", "permissions", "Spot")([])), id="bybit"),
    pytest.param("bybit", changed(BYBIT, setter("result", "readOnly")(1)), id="bybit-read-only"),
    pytest.param("coinbase", changed(COINBASE, setter("can_trade")(False)), id="coinbase"),
    pytest.param("kucoin", changed(KUCOIN, KUCOIN_PERM("General")), id="kucoin"),
    pytest.param("kraken", changed(KRAKEN, KRAKEN_PERMS(["query-funds"])), id="kraken"),
    pytest.param("gate", changed(GATE, gate_perms([{"name": "spot", "read_only": True}])), id="gate"),
    pytest.param("bitget", changed(BITGET, BITGET_AUTH(["stor"])), id="bitget"),
]


@pytest.mark.parametrize(("exchange", "response"), NO_TRADE_CASES)
def test_key_that_cannot_trade_spot_is_refused(exchange: str, response: Any) -> None:
    permissions = parse(exchange, response)

    assert not permissions.safe
    assert permissions.can_trade_spot is False
    assert any("cannot trade" in p or "read-only" in p for p in permissions.problems), permissions.problems


UNREADABLE_CASES = [
    # Binance
    pytest.param(
        "binance", changed(BINANCE, deleter("enableWithdrawals")), "no 'enableWithdrawals'", id="bn-missing"
    ),
    pytest.param(
        "binance",
        changed(BINANCE, setter("enableWithdrawals")("false")),
        "is not a boolean",
        id="bn-string-bool",
    ),
    pytest.param(
        "binance",
        {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        "code=-2015",
        id="bn-error",
    ),
    pytest.param("binance", [BINANCE], "not a JSON object", id="bn-list"),
    pytest.param("binance", None, "not a JSON object", id="bn-null"),
    # OKX
    pytest.param("okx", {"code": "50113", "msg": "Invalid Sign", "data": []}, 'code="50113"', id="okx-error"),
    pytest.param("okx", changed(OKX, setter("data")([])), "exactly one", id="okx-empty-data"),
    pytest.param("okx", changed(OKX, deleter("data", 0, "perm")), "no 'perm'", id="okx-missing-perm"),
    pytest.param("okx", changed(OKX, OKX_PERM("")), "comma-separated", id="okx-empty-perm"),
    pytest.param("okx", changed(OKX, OKX_PERM(["read_only", "trade"])), "not a string", id="okx-perm-list"),
    # Bybit
    pytest.param(
        "bybit", {"retCode": 10003, "retMsg": "API key is invalid.", "result": {}}, "10003", id="by-error"
    ),
    pytest.param(
        "bybit", changed(BYBIT, deleter("result", "permissions", "Wallet")), "'Wallet'", id="by-no-wallet"
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "Spot")("SpotTrade")),
        "list",
        id="by-spot-str",
    ),
    pytest.param(
        "bybit", changed(BYBIT, setter("result", "readOnly")("0")), "readOnly", id="by-readonly-str"
    ),
    pytest.param("bybit", changed(BYBIT, deleter("result", "permissions")), "permissions", id="by-no-perms"),
    # Coinbase
    pytest.param(
        "coinbase",
        {"error": "PERMISSION_DENIED", "message": "permission denied"},
        "PERMISSION_DENIED",
        id="cb-error",
    ),
    pytest.param(
        "coinbase", changed(COINBASE, deleter("can_transfer")), "no 'can_transfer'", id="cb-missing"
    ),
    pytest.param("coinbase", changed(COINBASE, setter("can_transfer")(0)), "not a boolean", id="cb-int"),
    # KuCoin
    pytest.param("kucoin", {"code": "400003", "msg": "KC-API-KEY not exists"}, "400003", id="kc-error"),
    pytest.param(
        "kucoin", changed(KUCOIN, deleter("data", "permission")), "no 'permission'", id="kc-missing"
    ),
    pytest.param(
        "kucoin", changed(KUCOIN, KUCOIN_PERM("General,,Spot")), "comma-separated", id="kc-empty-token"
    ),
    # Kraken
    pytest.param("kraken", {"error": ["EAPI:Invalid key"]}, "EAPI:Invalid key", id="kr-error"),
    pytest.param(
        "kraken", changed(KRAKEN, deleter("result", "permissions")), "no 'permissions'", id="kr-missing"
    ),
    pytest.param("kraken", changed(KRAKEN, KRAKEN_PERMS("modify-trades")), "list of strings", id="kr-str"),
    # Gate
    pytest.param(
        "gate", {"label": "INVALID_KEY", "message": "Invalid key provided"}, "INVALID_KEY", id="gt-error"
    ),
    pytest.param("gate", GATE[1:], "0 of the account's 1 keys", id="gt-key-absent"),
    pytest.param(
        "gate",
        [GATE[0], changed(GATE[0], setter("key")("c5dcfbf1*****"))],
        "2 of the account's 2 keys",
        id="gt-ambiguous",
    ),
    pytest.param(
        "gate",
        changed(GATE, gate_perms([{"name": "spot", "read_only": "no"}])),
        "not a boolean",
        id="gt-ro-str",
    ),
    pytest.param("gate", changed(GATE, deleter(0, "perms")), "no 'perms'", id="gt-no-perms"),
    pytest.param("gate", "c5dcfbf1f3a7", "neither a list", id="gt-string"),
    # Bitget
    pytest.param(
        "bitget", {"code": "40014", "msg": "Incorrect permissions", "data": None}, "40014", id="bg-error"
    ),
    pytest.param(
        "bitget", changed(BITGET, deleter("data", "authorities")), "no 'authorities'", id="bg-missing"
    ),
    pytest.param("bitget", changed(BITGET, BITGET_AUTH("stow")), "list of strings", id="bg-str"),
]


@pytest.mark.parametrize(("exchange", "response", "reason"), UNREADABLE_CASES)
def test_unreadable_or_error_response_is_refused(exchange: str, response: Any, reason: str) -> None:
    permissions = parse(exchange, response)

    assert not permissions.safe
    assert permissions.can_trade_spot is None
    assert permissions.can_withdraw is None
    (problem,) = permissions.problems
    assert problem.startswith("permissions unreadable (")
    assert reason in problem
    assert problem.endswith("Nutcracker refuses a key it cannot check")


UNKNOWN_VALUE_CASES = [
    pytest.param(
        "binance", changed(BINANCE, setter("enableCryptoLoans")(True)), "enableCryptoLoans", id="bn"
    ),
    pytest.param("okx", changed(OKX, OKX_PERM("read_only,trade,transfer")), "'transfer'", id="okx"),
    pytest.param(
        "bybit", changed(BYBIT, setter("result", "permissions", "Earn")(["Earn"])), "Earn", id="by-earn"
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "Spot")(["SpotTrade", "Mystery"])),
        "Mystery",
        id="by",
    ),
    pytest.param(
        "bybit",
        changed(BYBIT, setter("result", "permissions", "Lending")(["Lend"])),
        "Lending",
        id="by-category",
    ),
    pytest.param("coinbase", changed(COINBASE, setter("can_send")(True)), "can_send", id="cb"),
    pytest.param("kucoin", changed(KUCOIN, KUCOIN_PERM("General,Spot,Mystery")), "'Mystery'", id="kc"),
    pytest.param("kucoin", changed(KUCOIN, KUCOIN_PERM("General,Spot,Earn")), "Earn", id="kc-earn"),
    pytest.param(
        "gate",
        changed(
            GATE, gate_perms([{"name": "spot", "read_only": False}, {"name": "mystery", "read_only": True}])
        ),
        "'mystery'",
        id="gt",
    ),
    pytest.param("bitget", changed(BITGET, BITGET_AUTH(["stow", "xyzw"])), "'xyzw'", id="bg"),
]


@pytest.mark.parametrize(("exchange", "response", "name"), UNKNOWN_VALUE_CASES)
def test_unknown_permission_value_is_refused_fail_closed(exchange: str, response: Any, name: str) -> None:
    permissions = parse(exchange, response)

    assert not permissions.safe
    assert any(name in problem for problem in permissions.problems), permissions.problems


def test_binance_unknown_flag_that_is_false_does_not_block_a_safe_key() -> None:
    assert parse_binance(changed(BINANCE, setter("enableCryptoLoans")(False))).safe


def test_binance_optional_derivative_flags_may_be_absent() -> None:
    response = {k: v for k, v in BINANCE.items() if k not in {"enableMargin", "enableFutures"}}

    assert parse_binance(response).safe


def test_bitget_legacy_trade_and_readonly_values_are_accepted() -> None:
    assert parse_permissions("bitget", changed(BITGET, BITGET_AUTH(["readonly", "trade"]))).safe


def test_gate_single_object_shape_of_the_calling_key_is_accepted() -> None:
    response = {"state": 1, "key": {"mode": 1}, "perms": [{"name": "spot", "read_only": False}]}

    assert parse_gate(response, api_key=None).safe


def test_gate_list_needs_the_running_key_to_pick_its_entry() -> None:
    permissions = parse_gate(GATE, api_key=None)

    assert not permissions.safe
    assert "cannot be matched without the key" in permissions.problems[0]


def test_gate_picks_the_running_key_and_ignores_the_other_keys_of_the_account() -> None:
    # The account's second key can withdraw; the running key cannot, and only it counts.
    assert parse_gate(GATE, api_key=SecretStr(GATE_KEY)).safe
    assert not parse_gate(GATE, api_key="99aa11bb22ccffff").safe


def test_gateio_alias_is_checked_like_gate() -> None:
    permissions = parse_permissions("gateio", GATE, api_key=GATE_KEY)

    assert permissions.safe
    assert permissions.exchange_id == "gateio"


@pytest.mark.parametrize("response", [None, {}, {"canWithdraw": False, "permissions": ["SPOT"]}])
def test_mexc_is_always_refused(response: Any) -> None:
    permissions = parse_permissions("mexc", response)

    assert not permissions.safe
    assert "MEXC documents no endpoint" in permissions.problems[0]


@pytest.mark.parametrize("exchange", ["binanceus", "huobi", "deribit", ""])
def test_unknown_exchange_is_refused(exchange: str) -> None:
    permissions = parse_permissions(exchange, BINANCE)

    assert not permissions.safe
    assert "no permission probe" in permissions.problems[0]


def test_refusal_names_every_problem_with_the_exchange() -> None:
    response = changed(BINANCE, lambda d: d.update(enableWithdrawals=True, permitsUniversalTransfer=True))

    message = parse_binance(response).refusal()

    assert message.startswith("binance key refused: key can withdraw (enableWithdrawals=true)")
    assert "permitsUniversalTransfer=true" in message


def test_describe_shows_flags_and_verdict_for_people() -> None:
    rows = dict(describe(parse_binance(BINANCE)))

    assert rows["trade spot"] == "yes"
    assert rows["withdraw"] == "no"
    assert rows["verdict"] == "safe"
    assert "enableWithdrawals=false" in rows["reported"]
    assert dict(describe(parse_binance(None)))["withdraw"] == "unknown"


def test_summary_never_carries_the_api_key_fields_of_the_response() -> None:
    # Bybit and KuCoin echo the key in their answers; the summary lists permission fields only.
    bybit = changed(BYBIT, setter("result", "apiKey")("PLANTED-KEY-123"))
    kucoin = changed(KUCOIN, setter("data", "apiKey")("PLANTED-KEY-123"))

    for exchange, response in (("bybit", bybit), ("kucoin", kucoin)):
        permissions = parse(exchange, response)
        assert "PLANTED-KEY-123" not in repr(permissions)


# --- the probe ----------------------------------------------------------------------------------------


class RecordedRequests:
    """An async transport that answers each probe with the exchange's documented response."""

    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.seen: list[PermissionProbe] = []

    async def __call__(self, probe: PermissionProbe) -> object:
        self.seen.append(probe)
        return self.responses[probe.exchange_id]


@pytest.mark.parametrize("exchange", sorted(DOCUMENTED))
def test_probe_requests_the_documented_endpoint_and_parses_its_answer(exchange: str) -> None:
    request = RecordedRequests(DOCUMENTED)

    permissions = asyncio.run(probe_permissions(exchange, request, api_key=GATE_KEY))

    assert permissions.safe
    assert request.seen == [PROBES[exchange]]


def test_probe_endpoints_match_the_reference_table() -> None:
    table = {e: (p.method, p.path, p.ccxt_method) for e, p in PROBES.items()}

    assert table == {
        "binance": ("GET", "/sapi/v1/account/apiRestrictions", "sapiGetAccountApiRestrictions"),
        "okx": ("GET", "/api/v5/account/config", "privateGetAccountConfig"),
        "bybit": ("GET", "/v5/user/query-api", "privateGetV5UserQueryApi"),
        "coinbase": ("GET", "/api/v3/brokerage/key_permissions", "v3PrivateGetBrokerageKeyPermissions"),
        "kucoin": ("GET", "/api/v1/user/api-key", "privateGetUserApiKey"),
        "kraken": ("POST", "/0/private/GetApiKeyInfo", "privatePostGetApiKeyInfo"),
        "gate": ("GET", "/api/v4/account/main_keys", "privateAccountGetMainKeys"),
        "bitget": ("GET", "/api/v2/spot/account/info", "privateSpotGetV2SpotAccountInfo"),
    }


@pytest.mark.parametrize("exchange", ["mexc", "binanceus"])
def test_probe_of_an_exchange_without_a_probe_sends_nothing_and_refuses(exchange: str) -> None:
    request = RecordedRequests({})

    permissions = asyncio.run(probe_permissions(exchange, request))

    assert not permissions.safe
    assert request.seen == []


def test_probe_failing_with_a_foreign_error_refuses_the_key() -> None:
    async def failing(probe: PermissionProbe) -> object:
        raise RuntimeError("HTTP 401 {'code': -2015}")

    permissions = asyncio.run(probe_permissions("binance", failing))

    assert not permissions.safe
    assert "failed with RuntimeError" in permissions.problems[0]


def test_probe_lets_our_own_errors_through_so_the_caller_can_retry() -> None:
    async def unavailable(probe: PermissionProbe) -> object:
        raise ExchangeUnavailableError("binance: timeout")

    with pytest.raises(ExchangeUnavailableError):
        asyncio.run(probe_permissions("binance", unavailable))


def test_guard_raises_permission_refused_naming_the_offending_permission() -> None:
    request = RecordedRequests({"binance": changed(BINANCE, setter("enableWithdrawals")(True))})

    with pytest.raises(PermissionRefusedError, match=r"key can withdraw \(enableWithdrawals=true\)"):
        asyncio.run(guard_key("binance", request))


def test_guard_returns_the_permissions_of_a_safe_key() -> None:
    permissions = asyncio.run(guard_key("binance", RecordedRequests(DOCUMENTED)))

    assert permissions.can_trade_spot is True
