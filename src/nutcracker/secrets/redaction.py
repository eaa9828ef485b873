"""Mask API keys and secrets in log records.

Every secret a ``SecretStore`` hands out is registered here; ``RedactionFilter`` then replaces each
registered value with ``***`` in a record's message, arguments, exception text and stack text.
``install_redaction()`` applies it to every record of every logger (through the log-record factory)
and to the handlers already attached to the root logger.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any, Final

from pydantic import SecretStr

from nutcracker.secrets.store import ApiCredentials

MASK: Final = "***"
# Shorter values would mask ordinary words; real keys and secrets are far longer.
MIN_SECRET_LENGTH: Final = 4

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first, replaced wholesale under the lock


def register_secret(value: str | SecretStr | None) -> None:
    """Mask ``value`` in every log record from now on (values shorter than 4 characters are ignored)."""
    global _secrets
    if value is None:
        return
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    candidates = {plain, plain.strip()}
    with _lock:
        known = set(_secrets)
        known.update(c for c in candidates if len(c) >= MIN_SECRET_LENGTH)
        _secrets = tuple(sorted(known, key=len, reverse=True))


def register_credentials(credentials: ApiCredentials) -> None:
    """Mask the API key, secret and passphrase of ``credentials`` in every log record from now on."""
    register_secret(credentials.api_key)
    register_secret(credentials.secret)
    register_secret(credentials.password)


def forget_all_secrets() -> None:
    """Drop every registered value (for tests)."""
    global _secrets
    with _lock:
        _secrets = ()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactionFilter(logging.Filter):
    """Rewrite a record so that no registered secret survives in it; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite ``record`` in place: message merged with its args, exception rendered, all masked."""
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep the parts rather than lose the record
        message = f"{record.msg!r} % {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        # Render now, so that no formatter re-renders the raw exception (and its secret) later.
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_factory_lock = threading.Lock()
_installed_factory: Callable[..., logging.LogRecord] | None = None


def install_redaction(logger: logging.Logger | None = None) -> RedactionFilter:
    """Mask registered secrets in every log record from now on; return the filter for other handlers.

    Wraps the log-record factory (covers every logger and every handler added later) and adds the
    filter to the handlers of ``logger`` (the root logger by default). Calling it twice is harmless.
    """
    global _installed_factory
    with _factory_lock:
        if _installed_factory is None or logging.getLogRecordFactory() is not _installed_factory:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                redact_record(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed_factory = factory
    redaction = RedactionFilter()
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactionFilter) for f in handler.filters):
            handler.addFilter(redaction)
    return redaction
