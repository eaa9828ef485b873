"""The ``SecretStore`` port and the ``ApiCredentials`` it holds.

Secrets travel as ``pydantic.SecretStr``: ``repr`` and ``str`` show ``**********``, and only
``get_secret_value()`` reveals them, at the last moment, to the exchange client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from pydantic import SecretStr

from nutcracker.errors import SecretsError

# Exchanges whose API keys come with a third secret (ccxt ``password``).
PASSPHRASE_EXCHANGES: Final = frozenset({"okx", "kucoin", "bitget"})

_EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9]{1,31}$")
# Names become a file key and a Vault path segment: no slashes, no dots at the start, no spaces.
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_URL = re.compile(r"^https?://[^\s/]+\S*$")

# Field names on disk and in Vault (``vault kv put ... exchange=binance api_key=... secret=...``).
FIELD_EXCHANGE: Final = "exchange"
FIELD_API_KEY: Final = "api_key"
FIELD_SECRET: Final = "secret"
FIELD_PASSWORD: Final = "password"
FIELD_EXCHANGE_URL: Final = "exchange_url"
_KNOWN_FIELDS: Final = frozenset(
    {FIELD_EXCHANGE, FIELD_API_KEY, FIELD_SECRET, FIELD_PASSWORD, FIELD_EXCHANGE_URL}
)


def check_key_name(name: str) -> str:
    """Return ``name`` if it can name a key (letters, digits, ``_.-``; at most 64), else raise."""
    if not _KEY_NAME.match(name):
        raise SecretsError(
            f"{name!r} is not a valid key name: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_exchange_url(url: str | None) -> str | None:
    """Return ``url`` if it is an http(s) URL (or None), else raise."""
    if url is not None and not _URL.match(url):
        raise SecretsError(f"{url!r} is not an http(s) URL: write e.g. 'http://127.0.0.1:8900'")
    return url


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a stored key: never the key or its secret."""

    name: str
    exchange_id: str
    exchange_url: str | None = None


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    """One exchange API key. ``repr``/``str`` never show ``api_key``, ``secret`` or ``password``."""

    exchange_id: str
    name: str
    api_key: SecretStr
    secret: SecretStr
    password: SecretStr | None = None  # OKX, KuCoin and Bitget call it the passphrase
    exchange_url: str | None = None  # e.g. the loopback simulator; None means the exchange itself

    def __post_init__(self) -> None:
        if not _EXCHANGE_ID.match(self.exchange_id):
            raise SecretsError(
                f"{self.exchange_id!r} is not a ccxt exchange id: use the lowercase id, e.g. 'binance'"
            )
        check_key_name(self.name)
        check_exchange_url(self.exchange_url)
        for field, value in (("api key", self.api_key), ("secret", self.secret)):
            if not value.get_secret_value().strip():
                raise SecretsError(f"key {self.name!r}: the {field} is empty")
        if self.password is not None and not self.password.get_secret_value().strip():
            raise SecretsError(f"key {self.name!r}: the passphrase is empty")
        if self.exchange_id in PASSPHRASE_EXCHANGES and self.password is None:
            raise SecretsError(
                f"key {self.name!r}: {self.exchange_id} keys need the passphrase chosen when the key "
                "was created; give it as well"
            )

    @property
    def info(self) -> KeyInfo:
        """Return the parts that may be shown."""
        return KeyInfo(name=self.name, exchange_id=self.exchange_id, exchange_url=self.exchange_url)

    def with_exchange_url(self, exchange_url: str | None) -> ApiCredentials:
        """Return a copy that talks to ``exchange_url`` instead."""
        return ApiCredentials(
            exchange_id=self.exchange_id,
            name=self.name,
            api_key=self.api_key,
            secret=self.secret,
            password=self.password,
            exchange_url=exchange_url,
        )

    def reveal_fields(self) -> dict[str, str]:
        """Return the plain-text fields to store: only a ``SecretStore`` adapter should call this."""
        fields = {
            FIELD_EXCHANGE: self.exchange_id,
            FIELD_API_KEY: self.api_key.get_secret_value(),
            FIELD_SECRET: self.secret.get_secret_value(),
        }
        if self.password is not None:
            fields[FIELD_PASSWORD] = self.password.get_secret_value()
        if self.exchange_url is not None:
            fields[FIELD_EXCHANGE_URL] = self.exchange_url
        return fields

    @classmethod
    def from_fields(cls, name: str, fields: Mapping[str, object], where: str) -> ApiCredentials:
        """Build credentials from stored fields; ``where`` names the store in error messages."""
        unknown = sorted(str(k) for k in fields if k not in _KNOWN_FIELDS)
        if unknown:
            raise SecretsError(
                f"key {name!r} in {where} has unknown fields {unknown}: expected {sorted(_KNOWN_FIELDS)}"
            )
        for required in (FIELD_EXCHANGE, FIELD_API_KEY, FIELD_SECRET):
            if required not in fields:
                raise SecretsError(f"key {name!r} in {where} has no {required!r} field")
        for field, value in fields.items():
            if not isinstance(value, str):
                # Never show the value: it may be the secret.
                raise SecretsError(f"key {name!r} in {where}: field {field!r} is not a string")
        password = fields.get(FIELD_PASSWORD)
        exchange_url = fields.get(FIELD_EXCHANGE_URL)
        return cls(
            exchange_id=str(fields[FIELD_EXCHANGE]),
            name=name,
            api_key=SecretStr(str(fields[FIELD_API_KEY])),
            secret=SecretStr(str(fields[FIELD_SECRET])),
            password=None if password is None else SecretStr(str(password)),
            exchange_url=None if exchange_url is None else str(exchange_url),
        )


class SecretStore(Protocol):
    """Where API keys live. Every method raises ``SecretsError`` (never showing a secret) on failure."""

    def get(self, name: str) -> ApiCredentials:
        """Return the key stored under ``name``; raise ``SecretsError`` if there is none."""
        ...

    def put(self, credentials: ApiCredentials, *, replace: bool = False) -> None:
        """Store ``credentials`` under their name; refuse to overwrite unless ``replace``."""
        ...

    def remove(self, name: str) -> None:
        """Delete the key stored under ``name``; raise ``SecretsError`` if there is none."""
        ...

    def list_keys(self) -> list[KeyInfo]:
        """Return the names and exchanges of every stored key, sorted by name."""
        ...
