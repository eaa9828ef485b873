"""``nutcracker keys``: secrets from stdin only, verified before storing, never printed."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from nutcracker.secrets.cli_keys import (
    EXIT_REFUSED,
    EXIT_SECRETS,
    Verifier,
    keys_app,
    make_keys_app,
)
from nutcracker.secrets.keystore import PASSPHRASE_ENV, KeystoreSecretStore
from nutcracker.secrets.permissions import KeyPermissions, parse_permissions
from nutcracker.secrets.redaction import forget_all_secrets
from nutcracker.secrets.store import ApiCredentials, SecretStore

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
OKX_PASSPHRASE = "okx-pass-phrase-42"
KEYSTORE_PASSPHRASE = "correct horse battery staple"
ENV = {PASSPHRASE_ENV: KEYSTORE_PASSPHRASE}

# The documented answers of each exchange's permission endpoint (reference/exchanges.md §2).
BINANCE_SAFE = {
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
BINANCE_WITHDRAW = {**BINANCE_SAFE, "enableWithdrawals": True}
OKX_SAFE = {"code": "0", "msg": "", "data": [{"uid": "1", "acctLv": "1", "perm": "read_only,trade"}]}


class ExchangeAnswers:
    """A verifier that answers like the exchange would: its documented response, parsed by the guard."""

    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.verified: list[ApiCredentials] = []

    async def __call__(self, credentials: ApiCredentials) -> KeyPermissions:
        self.verified.append(credentials)
        response = self.responses[credentials.exchange_id]
        return parse_permissions(credentials.exchange_id, response, api_key=credentials.api_key)


def fast_keystore(keystore: Path | None, vault: bool) -> SecretStore:
    assert keystore is not None
    assert not vault
    return KeystoreSecretStore(keystore, scrypt_n=2**10)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    forget_all_secrets()


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    return tmp_path / "keystore.json"


@pytest.fixture
def answers() -> ExchangeAnswers:
    return ExchangeAnswers({"binance": copy.deepcopy(BINANCE_SAFE), "okx": copy.deepcopy(OKX_SAFE)})


@pytest.fixture
def app(answers: ExchangeAnswers) -> typer.Typer:
    return make_keys_app(verifier=answers, store_factory=fast_keystore)


def invoke(app: typer.Typer, args: list[str], stdin: str = "") -> Any:
    return CliRunner().invoke(app, args, input=stdin, env=ENV)


def add(
    app: typer.Typer, keystore: Path, exchange: str = "binance", name: str = "main", stdin: str = ""
) -> Any:
    stdin = stdin or f"{API_KEY}\n{SECRET}\n"
    return invoke(app, ["add", "--exchange", exchange, "--name", name, "--keystore", str(keystore)], stdin)


def assert_no_secret_in(result: Any) -> None:
    for secret in (API_KEY, SECRET, OKX_PASSPHRASE, KEYSTORE_PASSPHRASE):
        assert secret not in result.output
        assert secret not in result.stderr


def stored(keystore: Path, name: str) -> ApiCredentials:
    return KeystoreSecretStore(keystore, passphrase=lambda new: SecretStr(KEYSTORE_PASSPHRASE)).get(name)


# --- add -----------------------------------------------------------------------------------------------


def test_add_reads_key_and_secret_from_stdin_verifies_and_stores(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    result = add(app, keystore)

    assert result.exit_code == 0, result.output
    assert "✓ stored binance key 'main'" in result.output
    assert "withdraw     no" in result.output
    assert "verdict      safe" in result.output
    assert_no_secret_in(result)
    (verified,) = answers.verified
    assert verified.api_key.get_secret_value() == API_KEY
    assert verified.secret.get_secret_value() == SECRET
    assert stored(keystore, "main") == verified


def test_add_reads_the_passphrase_as_a_third_line_for_okx(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    result = add(
        app, keystore, exchange="okx", name="okx-bot", stdin=f"{API_KEY}\n{SECRET}\n{OKX_PASSPHRASE}\n"
    )

    assert result.exit_code == 0, result.output
    password = stored(keystore, "okx-bot").password
    assert password is not None
    assert password.get_secret_value() == OKX_PASSPHRASE
    assert_no_secret_in(result)


def test_add_refuses_a_withdrawal_enabled_key_and_stores_nothing(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    answers.responses["binance"] = BINANCE_WITHDRAW

    result = add(app, keystore)

    assert result.exit_code == EXIT_REFUSED
    assert (
        "key can withdraw (enableWithdrawals=true): create a key without withdrawal permission"
        in result.stderr
    )
    assert "Nothing was stored" in result.stderr
    assert not keystore.exists()
    assert_no_secret_in(result)


def test_add_refuses_a_key_whose_permissions_cannot_be_read(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    answers.responses["binance"] = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}

    result = add(app, keystore)

    assert result.exit_code == EXIT_REFUSED
    assert "permissions unreadable" in result.stderr
    assert not keystore.exists()


@pytest.mark.parametrize(
    ("exchange", "reason"), [("mexc", "MEXC documents no endpoint"), ("ftx", "no permission probe")]
)
def test_add_refuses_exchanges_without_a_probe_before_reading_any_secret(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers, exchange: str, reason: str
) -> None:
    result = add(app, keystore, exchange=exchange)

    assert result.exit_code == EXIT_REFUSED
    assert reason in result.stderr
    assert answers.verified == []
    assert not keystore.exists()


def test_add_with_a_missing_secret_line_says_what_to_give(app: typer.Typer, keystore: Path) -> None:
    result = add(app, keystore, stdin=f"{API_KEY}\n")

    assert result.exit_code == EXIT_SECRETS
    assert "the API secret is missing" in result.stderr
    assert_no_secret_in(result)


def test_add_takes_no_secret_from_the_command_line(app: typer.Typer, keystore: Path) -> None:
    for option in ("--secret", "--api-key", "--key"):
        result = invoke(
            app,
            ["add", "--exchange", "binance", "--name", "main", "--keystore", str(keystore), option, SECRET],
        )
        assert result.exit_code == 2  # usage error: no such option
        assert "No such option" in result.output
    assert not keystore.exists()


def test_add_refuses_an_existing_name_unless_replace(app: typer.Typer, keystore: Path) -> None:
    assert add(app, keystore).exit_code == 0

    again = add(app, keystore)
    replaced = invoke(
        app,
        ["add", "--exchange", "binance", "--name", "main", "--keystore", str(keystore), "--replace"],
        f"{API_KEY}\nanother-secret-value\n",
    )

    assert again.exit_code == EXIT_SECRETS
    assert "already in the keystore" in again.stderr
    assert replaced.exit_code == 0, replaced.output
    assert stored(keystore, "main").secret.get_secret_value() == "another-secret-value"


def test_add_with_an_invalid_name_or_url_fails_before_reading_secrets(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    bad_name = invoke(app, ["add", "--exchange", "binance", "--name", "a/b", "--keystore", str(keystore)])
    bad_url = invoke(
        app,
        [
            "add",
            "--exchange",
            "binance",
            "--name",
            "main",
            "--exchange-url",
            "ftp://x",
            "--keystore",
            str(keystore),
        ],
    )

    assert bad_name.exit_code == EXIT_SECRETS
    assert "not a valid key name" in bad_name.stderr
    assert bad_url.exit_code == EXIT_SECRETS
    assert "not an http(s) URL" in bad_url.stderr
    assert answers.verified == []


def test_default_verifier_refuses_until_the_ccxt_connector_is_wired(keystore: Path) -> None:
    result = invoke(
        keys_app,
        ["add", "--exchange", "binance", "--name", "main", "--keystore", str(keystore)],
        f"{API_KEY}\n{SECRET}\n",
    )

    assert result.exit_code == EXIT_SECRETS
    assert "permission probe needs the ccxt connector" in result.stderr
    assert not keystore.exists()
    assert_no_secret_in(result)


# --- list, remove --------------------------------------------------------------------------------------


def test_list_shows_names_and_exchanges_never_secrets(app: typer.Typer, keystore: Path) -> None:
    add(app, keystore)
    add(app, keystore, exchange="okx", name="okx-bot", stdin=f"{API_KEY}\n{SECRET}\n{OKX_PASSPHRASE}\n")

    result = invoke(app, ["list", "--keystore", str(keystore)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["main     binance", "okx-bot  okx"]
    assert_no_secret_in(result)


def test_list_of_an_empty_keystore_says_so(app: typer.Typer, keystore: Path) -> None:
    result = invoke(app, ["list", "--keystore", str(keystore)])

    assert result.exit_code == 0
    assert "no keys in KeystoreSecretStore" in result.output


def test_remove_deletes_the_key_and_reminds_to_revoke_it(app: typer.Typer, keystore: Path) -> None:
    add(app, keystore)

    result = invoke(app, ["remove", "main", "--keystore", str(keystore)])
    again = invoke(app, ["remove", "main", "--keystore", str(keystore)])

    assert result.exit_code == 0
    assert "revoke the key on the exchange" in result.output
    assert again.exit_code == EXIT_SECRETS
    assert "no key named 'main'" in again.stderr


def test_wrong_keystore_passphrase_exits_non_zero_with_one_line(app: typer.Typer, keystore: Path) -> None:
    add(app, keystore)

    result = CliRunner().invoke(
        app, ["list", "--keystore", str(keystore)], env={PASSPHRASE_ENV: "not the passphrase"}
    )

    assert result.exit_code == EXIT_SECRETS
    assert "wrong passphrase or corrupted keystore" in result.stderr
    assert "Traceback" not in result.output


# --- verify ----------------------------------------------------------------------------------------------


def test_verify_prints_permissions_and_exits_zero_for_a_safe_key(app: typer.Typer, keystore: Path) -> None:
    add(app, keystore)

    result = invoke(app, ["verify", "main", "--keystore", str(keystore)])

    assert result.exit_code == 0, result.output
    assert "can trade spot and cannot withdraw or transfer" in result.output
    assert "enableWithdrawals=false" in result.output
    assert_no_secret_in(result)


def test_verify_exits_non_zero_naming_a_permission_granted_since(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    add(app, keystore)
    answers.responses["binance"] = {**BINANCE_SAFE, "enableInternalTransfer": True}

    result = invoke(app, ["verify", "main", "--keystore", str(keystore)])

    assert result.exit_code == EXIT_REFUSED
    assert "key can transfer (enableInternalTransfer=true)" in result.stderr
    assert "REFUSED" in result.output


def test_verify_with_exchange_url_probes_that_url(
    app: typer.Typer, keystore: Path, answers: ExchangeAnswers
) -> None:
    add(app, keystore)

    result = invoke(
        app, ["verify", "main", "--keystore", str(keystore), "--exchange-url", "http://127.0.0.1:8900"]
    )

    assert result.exit_code == 0, result.output
    assert answers.verified[-1].exchange_url == "http://127.0.0.1:8900"
    assert stored(keystore, "main").exchange_url is None


def test_verify_of_an_unknown_name_exits_non_zero(app: typer.Typer, keystore: Path) -> None:
    result = invoke(app, ["verify", "ghost", "--keystore", str(keystore)])

    assert result.exit_code == EXIT_SECRETS
    assert "no key named 'ghost'" in result.stderr


def test_keystore_and_vault_together_are_refused(keystore: Path, answers: ExchangeAnswers) -> None:
    app = make_keys_app(verifier=answers)

    result = invoke(app, ["list", "--keystore", str(keystore), "--vault"])

    assert result.exit_code == EXIT_SECRETS
    assert "choose one store" in result.stderr


def test_default_store_factory_writes_the_real_keystore(keystore: Path, answers: ExchangeAnswers) -> None:
    verifier: Verifier = answers
    app = make_keys_app(verifier=verifier)

    result = add(app, keystore)

    assert result.exit_code == 0, result.output
    assert stored(keystore, "main").api_key.get_secret_value() == API_KEY
