"""The permission guard: read what an API key may do, from the exchange itself, and refuse keys that
could move funds.

Each supported exchange has a documented endpoint that reports the calling key's own permissions
(``PROBES``). A parser per exchange turns that JSON into ``KeyPermissions``; the key is safe only if
every permission it reports is on a known-safe allow-list and it can trade spot. Anything else is a
refusal that names the permission and the fix: a key that can withdraw or transfer, one with margin or
derivatives rights, and one whose permissions cannot be read (an error answer, a missing field, an
unexpected shape or an unknown value). MEXC documents no such endpoint, so MEXC keys are always
refused; so is any exchange not listed here. Fail closed.

Pure parsing and decisions, plus ``probe_permissions``, which takes the transport as an injected
async ``request`` callable (the ccxt connector calls the ``PermissionProbe.ccxt_method`` on its
instance), so this module knows nothing of ccxt.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from pydantic import SecretStr

from nutcracker.errors import NutcrackerError, PermissionRefusedError

# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    """What a key may do, as its exchange reported it, and why it is refused (``problems``).

    A flag is None when the answer could not tell. ``safe`` holds only when ``problems`` is empty.
    """

    exchange_id: str
    can_trade_spot: bool | None
    can_withdraw: bool | None
    can_transfer: bool | None
    can_margin: bool | None = None
    can_derivatives: bool | None = None
    other: tuple[str, ...] = ()  # further permissions the key holds, as the exchange names them
    summary: str = ""  # the permission fields as reported, e.g. "enableWithdrawals=false ..."
    problems: tuple[str, ...] = ()

    @property
    def safe(self) -> bool:
        return not self.problems

    def refusal(self) -> str:
        """Return one message naming every problem and its fix ("" when safe)."""
        if self.safe:
            return ""
        return f"{self.exchange_id} key refused: " + "; ".join(self.problems)

    @classmethod
    def refused(cls, exchange_id: str, problem: str, summary: str = "") -> KeyPermissions:
        """Return the permissions of a key that cannot be checked: nothing known, one problem."""
        return cls(
            exchange_id=exchange_id,
            can_trade_spot=None,
            can_withdraw=None,
            can_transfer=None,
            summary=summary,
            problems=(problem,),
        )


@dataclass(frozen=True, slots=True)
class PermissionProbe:
    """The documented endpoint that reports a key's own permissions on one exchange."""

    exchange_id: str
    method: str  # HTTP method
    path: str
    ccxt_method: str  # ccxt 4.5.90 implicit method on the exchange instance (camelCase)
    parse: Callable[[object, str | None], KeyPermissions] = field(repr=False, compare=False)


# The async transport: perform the signed request of ``probe`` and return the decoded JSON body.
Request = Callable[[PermissionProbe], Awaitable[object]]


class _UnreadableError(Exception):
    """The response does not say what the key may do; the message says what is wrong."""


# --- the decision, shared by all exchanges --------------------------------------------------------


@dataclass(slots=True)
class _Verdict:
    exchange_id: str
    can_trade_spot: bool | None = None
    can_withdraw: bool | None = False
    can_transfer: bool | None = False
    can_margin: bool | None = False
    can_derivatives: bool | None = False
    other: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def refuse(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def result(self) -> KeyPermissions:
        if self.can_trade_spot is None:
            self.can_trade_spot = False
        return KeyPermissions(
            exchange_id=self.exchange_id,
            can_trade_spot=self.can_trade_spot,
            can_withdraw=self.can_withdraw,
            can_transfer=self.can_transfer,
            can_margin=self.can_margin,
            can_derivatives=self.can_derivatives,
            other=tuple(self.other),
            summary=" ".join(self.summary),
            problems=tuple(self.problems),
        )


def _show(value: object) -> str:
    """Render a reported value the way the exchange wrote it (JSON), short."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _object(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _UnreadableError(f"{what} is not a JSON object ({type(value).__name__})")
    return value


def _field(obj: Mapping[str, object], name: str, what: str = "the response") -> object:
    if name not in obj:
        raise _UnreadableError(f"{what} has no {name!r} field")
    return obj[name]


def _bool(obj: Mapping[str, object], name: str) -> bool:
    value = _field(obj, name)
    if not isinstance(value, bool):
        raise _UnreadableError(f"{name}={_show(value)} is not a boolean")
    return value


def _str(obj: Mapping[str, object], name: str, what: str = "the response") -> str:
    value = _field(obj, name, what)
    if not isinstance(value, str):
        raise _UnreadableError(f"{name}={_show(value)} is not a string")
    return value


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _UnreadableError(f"{what}={_show(value)} is not a list of strings")
    return list(value)


def _tokens(text: str, what: str) -> list[str]:
    tokens = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in tokens):
        raise _UnreadableError(f"{what}={_show(text)} is not a comma-separated list of permissions")
    return tokens


def _error_answer(code: object, message: object) -> _UnreadableError:
    return _UnreadableError(f"the exchange answered an error (code={_show(code)}, message={_show(message)})")


# --- per exchange ---------------------------------------------------------------------------------

_BINANCE_REQUIRED_FALSE: Final = (
    ("enableWithdrawals", "withdraw", "withdrawal"),
    ("enableInternalTransfer", "transfer", "internal-transfer"),
    ("permitsUniversalTransfer", "transfer", "universal-transfer"),
)
_BINANCE_OPTIONAL_FALSE: Final = (
    ("enableMargin", "margin", "use margin", "margin"),
    ("enableFutures", "derivatives", "trade futures", "futures"),
    ("enableVanillaOptions", "derivatives", "trade options", "European options"),
    ("enablePortfolioMarginTrading", "margin", "trade portfolio margin", "portfolio-margin"),
)
_BINANCE_HARMLESS: Final = frozenset(
    {"enableReading", "enableFixApiTrade", "enableFixReadOnly", "ipRestrict", "createTime"}
)


def _binance(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    if "enableWithdrawals" not in body and "code" in body:
        raise _error_answer(body.get("code"), body.get("msg"))
    verdict = _Verdict("binance")
    for name, kind, label in _BINANCE_REQUIRED_FALSE:
        value = _bool(body, name)
        verdict.summary.append(f"{name}={_show(value)}")
        if value:
            if kind == "withdraw":
                verdict.can_withdraw = True
                verdict.refuse(f"key can withdraw ({name}=true): create a key without {label} permission")
            else:
                verdict.can_transfer = True
                verdict.refuse(f"key can transfer ({name}=true): create a key without {label} permission")
    trade = _bool(body, "enableSpotAndMarginTrading")
    verdict.summary.append(f"enableSpotAndMarginTrading={_show(trade)}")
    verdict.can_trade_spot = trade
    if not trade:
        verdict.refuse(
            "key cannot trade spot (enableSpotAndMarginTrading=false): "
            "enable 'Spot & Margin Trading' for the key"
        )
    for name, kind, verb, label in _BINANCE_OPTIONAL_FALSE:
        if name not in body:
            continue  # optional in the documentation; absent means not granted
        value = _bool(body, name)
        verdict.summary.append(f"{name}={_show(value)}")
        if value:
            if kind == "margin":
                verdict.can_margin = True
            else:
                verdict.can_derivatives = True
            verdict.refuse(f"key can {verb} ({name}=true): create a key without {label} permission")
    known = {n for n, *_ in _BINANCE_REQUIRED_FALSE} | {n for n, *_ in _BINANCE_OPTIONAL_FALSE}
    known |= _BINANCE_HARMLESS | {"enableSpotAndMarginTrading"}
    for name, reported in body.items():
        if name in known:
            continue
        if name.startswith(("enable", "permits")) and reported is not False:
            # A permission flag this guard does not know yet: it may move funds.
            verdict.summary.append(f"{name}={_show(reported)}")
            verdict.refuse(
                f"unknown permission ({name}={_show(reported)}): Nutcracker cannot tell what it allows; "
                "create a key without it"
            )
    for name in ("enableReading", "enableFixApiTrade", "enableFixReadOnly"):
        if body.get(name) is True:
            verdict.other.append(name)
    if "ipRestrict" in body:  # not a permission, but worth seeing: an IP-restricted key leaks less
        verdict.summary.append(f"ipRestrict={_show(body['ipRestrict'])}")
    return verdict.result()


_OKX_SAFE: Final = frozenset({"read_only", "trade"})


def _okx(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    code = _field(body, "code")
    if code != "0":
        raise _error_answer(code, body.get("msg"))
    data = _field(body, "data")
    if not isinstance(data, list) or len(data) != 1:
        raise _UnreadableError(f"data={_show(data)} is not a list of exactly one account configuration")
    config = _object(data[0], "data[0]")
    perm = _str(config, "perm", "data[0]")
    tokens = _tokens(perm, "perm")
    verdict = _Verdict("okx")
    verdict.summary.append(f"perm={perm}")
    if "acctLv" in config:
        verdict.summary.append(f"acctLv={_show(config['acctLv'])}")
    verdict.can_trade_spot = "trade" in tokens
    if "withdraw" in tokens:
        # OKX has no separate transfer right: moving funds out falls under withdraw.
        verdict.can_withdraw = verdict.can_transfer = True
        verdict.refuse(
            f"key can withdraw (perm={perm}): create a key with only the Read and Trade permissions"
        )
    for token in tokens:
        if token not in _OKX_SAFE | {"withdraw"}:
            verdict.can_transfer = None if verdict.can_transfer is False else verdict.can_transfer
            verdict.refuse(
                f"unknown permission {token!r} (perm={perm}): create a key with only Read and Trade"
            )
    if not verdict.can_trade_spot:
        verdict.refuse(f"key cannot trade (perm={perm}): enable the Trade permission for the key")
    return verdict.result()


_BYBIT_CATEGORIES: Final = frozenset(
    {
        "ContractTrade",
        "Spot",
        "Wallet",
        "Options",
        "Derivatives",
        "CopyTrading",
        "BlockTrade",
        "Exchange",
        "Earn",
        "NFT",
        "Affiliate",
    }
)
_BYBIT_DERIVATIVES: Final = frozenset({"ContractTrade", "Options", "Derivatives"})
_BYBIT_TRANSFERS: Final = frozenset({"AccountTransfer", "SubMemberTransfer", "SubMemberTransferList"})


def _bybit(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    ret_code = _field(body, "retCode")
    if ret_code != 0 or isinstance(ret_code, bool):
        raise _error_answer(ret_code, body.get("retMsg"))
    result = _object(_field(body, "result"), "result")
    read_only = _field(result, "readOnly", "result")
    if read_only not in (0, 1) or isinstance(read_only, bool):
        raise _UnreadableError(f"readOnly={_show(read_only)} is neither 0 nor 1")
    permissions = _object(_field(result, "permissions", "result"), "result.permissions")
    granted = {str(cat): _strings(vals, f"permissions.{cat}") for cat, vals in permissions.items()}
    for required in ("Spot", "Wallet"):
        if required not in granted:
            raise _UnreadableError(f"result.permissions has no {required!r} list")
    verdict = _Verdict("bybit")
    verdict.summary.append(f"readOnly={read_only}")
    verdict.summary.extend(f"{cat}={_show(vals)}" for cat, vals in sorted(granted.items()) if vals)
    spot = granted["Spot"]
    verdict.can_trade_spot = "SpotTrade" in spot and read_only == 0
    if read_only == 1:
        verdict.refuse("key is read-only (readOnly=1): create a Read-Write key with Spot trade permission")
    if "SpotTrade" not in spot:
        verdict.refuse(f"key cannot trade spot (Spot={_show(spot)}): tick Spot → Trade for the key")
    for value in spot:
        if value != "SpotTrade":
            verdict.refuse(f"unknown permission (Spot contains {value!r}): create a key with only Spot trade")
    wallet = granted["Wallet"]
    for value in wallet:
        if value == "Withdraw":
            verdict.can_withdraw = True
            verdict.refuse(
                "key can withdraw (Wallet contains 'Withdraw'): create a key without Wallet permissions"
            )
        elif value in _BYBIT_TRANSFERS:
            verdict.can_transfer = True
            verdict.refuse(
                f"key can transfer (Wallet contains {value!r}): create a key without Wallet permissions"
            )
        else:
            verdict.can_withdraw = None if verdict.can_withdraw is False else verdict.can_withdraw
            verdict.refuse(
                f"unknown permission (Wallet contains {value!r}): create a key without Wallet permissions"
            )
    for category, values in sorted(granted.items()):
        if category in {"Spot", "Wallet"} or not values:
            continue
        verdict.other.extend(f"{category}:{v}" for v in values)
        if category in _BYBIT_DERIVATIVES:
            verdict.can_derivatives = True
            verdict.refuse(
                f"key can trade derivatives ({category}={_show(values)}): create a key with only Spot trade"
            )
        elif category in _BYBIT_CATEGORIES:
            verdict.refuse(
                f"key has {category} permissions ({category}={_show(values)}): "
                "create a key with only Spot trade"
            )
        else:
            verdict.refuse(
                f"unknown permission category ({category}={_show(values)}): create a key with only Spot trade"
            )
    return verdict.result()


def _coinbase(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    if "can_transfer" not in body and ("error" in body or "message" in body):
        raise _error_answer(body.get("error"), body.get("message"))
    transfer = _bool(body, "can_transfer")
    trade = _bool(body, "can_trade")
    verdict = _Verdict("coinbase", can_trade_spot=trade)
    verdict.summary.append(f"can_trade={_show(trade)} can_transfer={_show(transfer)}")
    if "can_view" in body:
        verdict.summary.append(f"can_view={_show(body['can_view'])}")
    if "portfolio_type" in body:
        verdict.summary.append(f"portfolio_type={_show(body['portfolio_type'])}")
    if transfer:
        # "Send and receive funds, on and off platform": withdrawal and transfer in one right.
        verdict.can_withdraw = verdict.can_transfer = True
        verdict.refuse(
            "key can withdraw and transfer (can_transfer=true): create a key without the Transfer permission"
        )
    if not trade:
        verdict.refuse("key cannot trade (can_trade=false): create a key with the Trade permission")
    for name, value in body.items():
        if (
            name.startswith("can_")
            and name not in {"can_view", "can_trade", "can_transfer"}
            and value is not False
        ):
            verdict.refuse(
                f"unknown permission ({name}={_show(value)}): Nutcracker cannot tell what it allows; "
                "create a key without it"
            )
    return verdict.result()


_KUCOIN_SAFE: Final = frozenset({"General", "Spot"})


def _kucoin(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    code = _field(body, "code")
    if code != "200000":
        raise _error_answer(code, body.get("msg"))
    data = _object(_field(body, "data"), "data")
    permission = _str(data, "permission", "data")
    tokens = _tokens(permission, "permission")
    verdict = _Verdict("kucoin", can_trade_spot="Spot" in tokens)
    verdict.summary.append(f"permission={permission}")
    fix = "create a key with only the General and Spot permissions"
    for token in tokens:
        if token in _KUCOIN_SAFE:
            continue
        if token in {"Transfer", "Withdrawal"}:
            verdict.can_withdraw = verdict.can_transfer = True
            verdict.refuse(f"key can withdraw ({token} in permission={permission}): {fix}")
        elif token == "InnerTransfer":
            verdict.can_transfer = True
            verdict.refuse(f"key can transfer (InnerTransfer in permission={permission}): {fix}")
        elif token == "Margin":
            verdict.can_margin = True
            verdict.refuse(f"key can use margin (Margin in permission={permission}): {fix}")
        elif token == "Futures":
            verdict.can_derivatives = True
            verdict.refuse(f"key can trade futures (Futures in permission={permission}): {fix}")
        elif token == "Earn":
            verdict.other.append(token)
            verdict.refuse(f"key can move funds to Earn (Earn in permission={permission}): {fix}")
        else:
            verdict.can_withdraw = None if verdict.can_withdraw is False else verdict.can_withdraw
            verdict.refuse(f"unknown permission {token!r} (permission={permission}): {fix}")
    if "Spot" not in tokens:
        verdict.refuse(f"key cannot trade spot (permission={permission}): enable the Spot permission")
    return verdict.result()


_KRAKEN_SAFE: Final = frozenset({"query-funds", "query-open-trades", "modify-trades"})


def _kraken(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    errors = _field(body, "error")
    if errors != []:
        raise _UnreadableError(f"the exchange answered errors {_show(errors)}")
    result = _object(_field(body, "result"), "result")
    permissions = _strings(_field(result, "permissions", "result"), "permissions")
    verdict = _Verdict("kraken", can_trade_spot="modify-trades" in permissions)
    verdict.summary.append(f"permissions={_show(permissions)}")
    fix = "create a key with only Query Funds, Query Open Orders & Trades and Create & Modify Orders"
    for permission in permissions:
        if permission in _KRAKEN_SAFE:
            continue
        if permission == "withdraw-funds":
            verdict.can_withdraw = True
            verdict.refuse(f"key can withdraw (permissions contain 'withdraw-funds'): {fix}")
        else:
            verdict.can_transfer = None if verdict.can_transfer is False else verdict.can_transfer
            verdict.other.append(permission)
            verdict.refuse(
                f"unknown permission {permission!r}: not verified safe, Nutcracker cannot tell whether it "
                f"moves funds; {fix}"
            )
    if "modify-trades" not in permissions:
        verdict.refuse("key cannot trade (no 'modify-trades' permission): allow Create & Modify Orders")
    return verdict.result()


_GATE_PERMS: Final = frozenset(
    {
        "wallet",
        "spot",
        "futures",
        "delivery",
        "earn",
        "custody",
        "options",
        "account",
        "loan",
        "margin",
        "unified",
        "copy",
        "pilot",
        "otc",
        "alpha",
        "crossx",
    }
)
_GATE_DERIVATIVES: Final = frozenset({"futures", "delivery", "options"})
_GATE_MARGIN: Final = frozenset({"margin", "loan", "unified"})


def _gate(response: object, api_key: str | None) -> KeyPermissions:
    entry = _gate_entry(response, api_key)
    perms = _field(entry, "perms", "the key entry")
    if not isinstance(perms, list):
        raise _UnreadableError(f"perms={_show(perms)} is not a list")
    writable: dict[str, bool] = {}
    for perm in perms:
        item = _object(perm, "a perms entry")
        name = _str(item, "name", "a perms entry")
        read_only = _field(item, "read_only", "a perms entry")
        if not isinstance(read_only, bool):
            raise _UnreadableError(f"perms[{name}].read_only={_show(read_only)} is not a boolean")
        writable[name] = writable.get(name, False) or not read_only
    verdict = _Verdict("gate", can_trade_spot=writable.get("spot", False))
    verdict.summary.append(
        "perms=" + ",".join(f"{n}:{'rw' if w else 'ro'}" for n, w in sorted(writable.items()))
    )
    fix = "create a key with Spot read-write and everything else read-only or off"
    for name, can_write in sorted(writable.items()):
        if name not in _GATE_PERMS:
            verdict.can_withdraw = None if verdict.can_withdraw is False else verdict.can_withdraw
            verdict.refuse(
                f"unknown permission {name!r} ({'read-write' if can_write else 'read-only'}): {fix}"
            )
        elif name == "spot" or not can_write:
            continue
        elif name == "wallet":
            # Gate names no withdraw right; a writable wallet is taken to withdraw and transfer.
            verdict.can_withdraw = verdict.can_transfer = True
            verdict.refuse(f"key can withdraw and transfer (wallet read_only=false): {fix}")
        elif name in _GATE_DERIVATIVES:
            verdict.can_derivatives = True
            verdict.refuse(f"key can trade derivatives ({name} read_only=false): {fix}")
        elif name in _GATE_MARGIN:
            verdict.can_margin = True
            verdict.refuse(f"key can use margin ({name} read_only=false): {fix}")
        else:
            verdict.other.append(name)
            verdict.refuse(f"key has write access to {name} ({name} read_only=false): {fix}")
    if not writable.get("spot", False):
        state = "read-only" if "spot" in writable else "absent"
        verdict.refuse(f"key cannot trade spot (spot permission {state}): make Spot read-write")
    return verdict.result()


def _gate_entry(response: object, api_key: str | None) -> Mapping[str, object]:
    if isinstance(response, Mapping):
        # The single-object shape, presumably the calling key: {"state":1,"key":{"mode":1},"perms":[...]}.
        if "perms" not in response and ("label" in response or "message" in response):
            raise _error_answer(response.get("label"), response.get("message"))
        return response
    if not isinstance(response, list):
        raise _UnreadableError(
            f"the response is neither a list of keys nor a key object ({type(response).__name__})"
        )
    if api_key is None:
        raise _UnreadableError("the list of the account's keys cannot be matched without the key itself")
    matches = []
    for item in response:
        entry = _object(item, "a key entry")
        masked = _str(entry, "key", "a key entry")
        prefix = masked.split("*", 1)[0]
        if prefix and api_key.startswith(prefix):
            matches.append(entry)
    if len(matches) != 1:
        raise _UnreadableError(
            f"{len(matches)} of the account's {len(response)} keys match this key's prefix; exactly one must"
        )
    return matches[0]


_BITGET_READ_ONLY: Final = frozenset({"coor", "cpor", "stor", "smor", "ttor", "wtor", "taxr", "chor", "p2pr"})
_BITGET_SAFE: Final = _BITGET_READ_ONLY | {"stow", "trade", "readonly"}
_BITGET_WRITE: Final = {
    "wwow": ("withdraw", "key can withdraw"),
    "wtow": ("transfer", "key can transfer between wallets"),
    "coow": ("derivatives", "key can place futures orders"),
    "cpow": ("derivatives", "key can manage futures positions"),
    "smow": ("margin", "key can trade margin"),
    "ttow": ("other", "key can copy-trade"),
    "chow": ("other", "key can manage sub-accounts"),
    "p2pw": ("other", "key can trade P2P"),
    "p2p": ("other", "key can trade P2P"),
}


def _bitget(response: object, api_key: str | None) -> KeyPermissions:
    body = _object(response, "the response")
    code = _field(body, "code")
    if code != "00000":
        raise _error_answer(code, body.get("msg"))
    data = _object(_field(body, "data"), "data")
    authorities = _strings(_field(data, "authorities", "data"), "authorities")
    trade = "stow" in authorities or "trade" in authorities
    verdict = _Verdict("bitget", can_trade_spot=trade)
    verdict.summary.append(f"authorities={_show(authorities)}")
    fix = "create a key with only spot trade (stow) and read-only permissions"
    for code_ in authorities:
        if code_ in _BITGET_SAFE:
            continue
        kind, label = _BITGET_WRITE.get(code_, ("unknown", ""))
        if kind == "withdraw":
            verdict.can_withdraw = True
        elif kind == "transfer":
            verdict.can_transfer = True
        elif kind == "derivatives":
            verdict.can_derivatives = True
        elif kind == "margin":
            verdict.can_margin = True
        elif kind == "other":
            verdict.other.append(code_)
        else:
            verdict.can_withdraw = None if verdict.can_withdraw is False else verdict.can_withdraw
            verdict.refuse(f"unknown permission {code_!r} in authorities: {fix}")
            continue
        verdict.refuse(f"{label} ({code_!r} in authorities): {fix}")
    if not trade:
        verdict.refuse(
            f"key cannot trade spot (authorities={_show(authorities)}): enable spot trade (stow) for the key"
        )
    return verdict.result()


# --- the table -----------------------------------------------------------------------------------

PROBES: Final[Mapping[str, PermissionProbe]] = {
    p.exchange_id: p
    for p in (
        PermissionProbe(
            "binance", "GET", "/sapi/v1/account/apiRestrictions", "sapiGetAccountApiRestrictions", _binance
        ),
        PermissionProbe("okx", "GET", "/api/v5/account/config", "privateGetAccountConfig", _okx),
        PermissionProbe("bybit", "GET", "/v5/user/query-api", "privateGetV5UserQueryApi", _bybit),
        PermissionProbe(
            "coinbase",
            "GET",
            "/api/v3/brokerage/key_permissions",
            "v3PrivateGetBrokerageKeyPermissions",
            _coinbase,
        ),
        PermissionProbe("kucoin", "GET", "/api/v1/user/api-key", "privateGetUserApiKey", _kucoin),
        PermissionProbe("kraken", "POST", "/0/private/GetApiKeyInfo", "privatePostGetApiKeyInfo", _kraken),
        PermissionProbe("gate", "GET", "/api/v4/account/main_keys", "privateAccountGetMainKeys", _gate),
        PermissionProbe(
            "bitget", "GET", "/api/v2/spot/account/info", "privateSpotGetV2SpotAccountInfo", _bitget
        ),
    )
}
SUPPORTED_EXCHANGES: Final = tuple(sorted(PROBES))
# ccxt ids that name the same exchange class.
_ALIASES: Final = {"gateio": "gate"}

MEXC_REFUSAL: Final = (
    "MEXC documents no endpoint that reports an API key's own permissions, so Nutcracker cannot prove "
    "the key cannot withdraw: MEXC keys are refused"
)


def probe_for(exchange_id: str) -> PermissionProbe | None:
    """Return the permission probe of ``exchange_id`` (a ccxt id), or None if there is none."""
    return PROBES.get(_ALIASES.get(exchange_id, exchange_id))


def unsupported_refusal(exchange_id: str) -> str:
    """Return why a key of an exchange without a probe is refused."""
    if exchange_id == "mexc":
        return MEXC_REFUSAL
    return (
        f"Nutcracker has no permission probe for {exchange_id!r}, so it cannot prove the key cannot "
        f"withdraw: keys are accepted only for {', '.join(SUPPORTED_EXCHANGES)}"
    )


def parse_permissions(
    exchange_id: str, response: object, *, api_key: str | SecretStr | None = None
) -> KeyPermissions:
    """Return what the key may do from the probe ``response`` of ``exchange_id``; never raises.

    ``api_key`` is needed for Gate only, whose endpoint lists every key of the account, masked.
    """
    probe = probe_for(exchange_id)
    if probe is None:
        return KeyPermissions.refused(exchange_id, unsupported_refusal(exchange_id))
    key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    try:
        permissions = probe.parse(response, key)
    except _UnreadableError as e:
        return KeyPermissions.refused(
            exchange_id,
            f"permissions unreadable ({e}): Nutcracker refuses a key it cannot check",
            summary=_shape(response),
        )
    if permissions.exchange_id != exchange_id:  # keep the caller's id (an alias such as gateio)
        return _with_exchange_id(permissions, exchange_id)
    return permissions


def _with_exchange_id(permissions: KeyPermissions, exchange_id: str) -> KeyPermissions:
    return KeyPermissions(
        exchange_id=exchange_id,
        can_trade_spot=permissions.can_trade_spot,
        can_withdraw=permissions.can_withdraw,
        can_transfer=permissions.can_transfer,
        can_margin=permissions.can_margin,
        can_derivatives=permissions.can_derivatives,
        other=permissions.other,
        summary=permissions.summary,
        problems=permissions.problems,
    )


def _shape(response: object) -> str:
    if isinstance(response, Mapping):
        return "fields: " + ", ".join(sorted(str(k) for k in response))
    if isinstance(response, Sequence) and not isinstance(response, str):
        return f"a list of {len(response)}"
    return type(response).__name__


def parse_binance(response: object) -> KeyPermissions:
    """Return the permissions in a Binance ``GET /sapi/v1/account/apiRestrictions`` answer."""
    return parse_permissions("binance", response)


def parse_okx(response: object) -> KeyPermissions:
    """Return the permissions in an OKX ``GET /api/v5/account/config`` answer."""
    return parse_permissions("okx", response)


def parse_bybit(response: object) -> KeyPermissions:
    """Return the permissions in a Bybit ``GET /v5/user/query-api`` answer."""
    return parse_permissions("bybit", response)


def parse_coinbase(response: object) -> KeyPermissions:
    """Return the permissions in a Coinbase ``GET /api/v3/brokerage/key_permissions`` answer."""
    return parse_permissions("coinbase", response)


def parse_kucoin(response: object) -> KeyPermissions:
    """Return the permissions in a KuCoin ``GET /api/v1/user/api-key`` answer."""
    return parse_permissions("kucoin", response)


def parse_kraken(response: object) -> KeyPermissions:
    """Return the permissions in a Kraken ``POST /0/private/GetApiKeyInfo`` answer."""
    return parse_permissions("kraken", response)


def parse_gate(response: object, api_key: str | SecretStr | None) -> KeyPermissions:
    """Return the permissions of ``api_key`` in a Gate ``GET /api/v4/account/main_keys`` answer."""
    return parse_permissions("gate", response, api_key=api_key)


def parse_bitget(response: object) -> KeyPermissions:
    """Return the permissions in a Bitget ``GET /api/v2/spot/account/info`` answer."""
    return parse_permissions("bitget", response)


# --- the probe -------------------------------------------------------------------------------------


async def probe_permissions(
    exchange_id: str, request: Request, *, api_key: str | SecretStr | None = None
) -> KeyPermissions:
    """Ask the exchange what the key may do, through ``request``, and return the parsed answer.

    Makes no request for MEXC or an unknown exchange (refused outright). Our own errors from
    ``request`` (e.g. ``ExchangeUnavailableError``, ``AuthenticationError``) propagate; any other
    failure of the probe means the permissions cannot be read, and the key is refused.
    """
    probe = probe_for(exchange_id)
    if probe is None:
        return KeyPermissions.refused(exchange_id, unsupported_refusal(exchange_id))
    try:
        response = await request(probe)
    except NutcrackerError:
        raise
    except Exception as e:  # a library error the transport did not translate: unreadable, refuse
        return KeyPermissions.refused(
            exchange_id,
            f"permissions unreadable (the probe {probe.method} {probe.path} failed with "
            f"{type(e).__name__}): Nutcracker refuses a key it cannot check",
        )
    return parse_permissions(exchange_id, response, api_key=api_key)


def require_safe(permissions: KeyPermissions) -> KeyPermissions:
    """Return ``permissions`` if the key is safe; raise ``PermissionRefusedError`` naming the problems."""
    if not permissions.safe:
        raise PermissionRefusedError(permissions.refusal())
    return permissions


async def guard_key(
    exchange_id: str, request: Request, *, api_key: str | SecretStr | None = None
) -> KeyPermissions:
    """Probe the key and return its permissions; raise ``PermissionRefusedError`` unless it is safe."""
    return require_safe(await probe_permissions(exchange_id, request, api_key=api_key))


def describe(permissions: KeyPermissions) -> list[tuple[str, str]]:
    """Return (label, value) rows for people: each flag as yes / no / unknown, then the details."""

    def flag(value: bool | None) -> str:
        return "unknown" if value is None else ("yes" if value else "no")

    rows = [
        ("exchange", permissions.exchange_id),
        ("trade spot", flag(permissions.can_trade_spot)),
        ("withdraw", flag(permissions.can_withdraw)),
        ("transfer", flag(permissions.can_transfer)),
        ("margin", flag(permissions.can_margin)),
        ("derivatives", flag(permissions.can_derivatives)),
    ]
    if permissions.other:
        rows.append(("other", ", ".join(permissions.other)))
    if permissions.summary:
        rows.append(("reported", permissions.summary))
    rows.append(("verdict", "safe" if permissions.safe else "REFUSED"))
    return rows
