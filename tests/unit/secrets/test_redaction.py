"""Registered keys and secrets never reach log output: messages, arguments, tracebacks, stacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from nutcracker.secrets.keystore import KeystoreSecretStore
from nutcracker.secrets.redaction import (
    MASK,
    RedactionFilter,
    forget_all_secrets,
    install_redaction,
    redact,
    register_credentials,
    register_secret,
)
from nutcracker.secrets.store import ApiCredentials

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PASSPHRASE = "okx-pass-phrase-42"


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    forget_all_secrets()
    yield
    logging.setLogRecordFactory(factory)
    forget_all_secrets()


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    """A logger writing through a plain handler into a string, with tracebacks and stacks."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("nutcracker.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def log_everything(logger: logging.Logger, *, bad_format: bool = True) -> None:
    logger.info(f"connecting with key {API_KEY} and secret {SECRET}")
    logger.info("args: key=%s secret=%s passphrase=%s", API_KEY, SECRET, PASSPHRASE)
    logger.info("mapping args: %(secret)s", {"secret": SECRET})
    logger.warning("repr of a dict: %r", {"apiKey": API_KEY, "secret": SECRET})
    if bad_format:  # logging's own error path must not leak either
        logger.error("bad format string %d", SECRET)
    try:
        try:
            raise KeyError(API_KEY)
        except KeyError as inner:
            raise RuntimeError(f"signature mismatch for secret={SECRET}") from inner
    except RuntimeError:
        logger.exception("request failed for %s", API_KEY)
    logger.debug("where am I", stack_info=True)


def plant() -> None:
    register_secret(API_KEY)
    register_secret(SecretStr(SECRET))
    register_secret(PASSPHRASE)


def test_installed_redaction_masks_messages_args_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = captured
    plant()
    install_redaction()

    log_everything(logger)

    output = stream.getvalue()
    assert API_KEY not in output
    assert SECRET not in output
    assert PASSPHRASE not in output
    assert "Traceback (most recent call last)" in output  # the traceback is kept, masked
    assert f"RuntimeError: signature mismatch for secret={MASK}" in output
    assert f"KeyError: '{MASK}'" in output
    assert "Stack (most recent call last)" in output
    assert f"args: key={MASK} secret={MASK} passphrase={MASK}" in output


def test_filter_on_a_handler_alone_masks_everything(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, handler = captured
    plant()
    handler.addFilter(RedactionFilter())

    log_everything(logger)

    output = stream.getvalue()
    assert API_KEY not in output
    assert SECRET not in output
    assert PASSPHRASE not in output
    assert f"request failed for {MASK}" in output


def test_without_redaction_the_planted_values_would_leak(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    # Guards the tests above: the planted values really are in what is logged.
    logger, stream, _ = captured

    log_everything(logger, bad_format=False)

    assert API_KEY in stream.getvalue()
    assert SECRET in stream.getvalue()


def test_secret_registered_after_install_is_masked_too(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = captured
    install_redaction()
    register_secret(SECRET)

    logger.info("secret=%s", SECRET)

    assert stream.getvalue().strip().endswith(f"secret={MASK}")


def test_install_twice_wraps_the_record_factory_once() -> None:
    install_redaction()
    factory = logging.getLogRecordFactory()

    install_redaction()

    assert logging.getLogRecordFactory() is factory


def test_install_adds_the_filter_to_the_root_handlers(caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        install_redaction()
        assert any(isinstance(f, RedactionFilter) for f in handler.filters)
    finally:
        root.removeHandler(handler)


def test_pytest_log_capture_sees_only_masked_values(caplog: pytest.LogCaptureFixture) -> None:
    plant()
    install_redaction()

    with caplog.at_level(logging.INFO):
        logging.getLogger("nutcracker.test").info("key=%s", API_KEY)

    assert API_KEY not in caplog.text
    assert caplog.records[0].getMessage() == f"key={MASK}"


def test_short_values_are_not_registered_so_ordinary_words_survive() -> None:
    register_secret("abc")
    register_secret("")
    register_secret(None)

    assert redact("abc abc") == "abc abc"


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("abcd")
    register_secret("abcdefgh")

    assert redact("x abcdefgh y abcd") == f"x {MASK} y {MASK}"


def test_credentials_read_from_a_store_are_registered(
    tmp_path: Path, captured: tuple[logging.Logger, io.StringIO, logging.Handler]
) -> None:
    logger, stream, _ = captured
    credentials = ApiCredentials(
        exchange_id="okx",
        name="bot",
        api_key=SecretStr(API_KEY),
        secret=SecretStr(SECRET),
        password=SecretStr(PASSPHRASE),
    )
    path = tmp_path / "keystore.json"
    KeystoreSecretStore(
        path, passphrase=lambda new: SecretStr("a long keystore passphrase"), scrypt_n=2**10
    ).put(credentials)
    forget_all_secrets()
    install_redaction()

    read = KeystoreSecretStore(path, passphrase=lambda new: SecretStr("a long keystore passphrase")).get(
        "bot"
    )
    logger.info("%s %s %s", read.api_key.get_secret_value(), read.secret.get_secret_value(), PASSPHRASE)
    logger.info("keystore passphrase: a long keystore passphrase")

    output = stream.getvalue()
    for secret in (API_KEY, SECRET, PASSPHRASE, "a long keystore passphrase"):
        assert secret not in output


def test_register_credentials_masks_key_secret_and_passphrase() -> None:
    register_credentials(
        ApiCredentials(
            exchange_id="kucoin",
            name="kc",
            api_key=SecretStr(API_KEY),
            secret=SecretStr(SECRET),
            password=SecretStr(PASSPHRASE),
        )
    )

    assert redact(f"{API_KEY}/{SECRET}/{PASSPHRASE}") == f"{MASK}/{MASK}/{MASK}"
