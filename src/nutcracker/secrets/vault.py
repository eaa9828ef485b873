"""A ``SecretStore`` on HashiCorp Vault's KV version 2 secrets engine, through ``hvac``.

Each key is one KV v2 secret at ``<mount>/data/<path>/<name>`` with the string fields ``exchange``,
``api_key``, ``secret`` and optionally ``password`` (the passphrase) and ``exchange_url``. Every call
opens a fresh client, authenticates (a token, or an AppRole login for a short-lived token), does its
one job and closes: secrets are fetched just in time and never written to disk. hvac's errors are
translated here, once, into ``SecretsError``; no message ever carries a secret.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr

from nutcracker.errors import SecretsError
from nutcracker.secrets.redaction import register_credentials, register_secret
from nutcracker.secrets.store import ApiCredentials, KeyInfo, check_key_name

DEFAULT_MOUNT: Final = "secret"
DEFAULT_PATH: Final = "nutcracker"
DEFAULT_APPROLE_MOUNT: Final = "approle"
MOUNT_ENV: Final = "NUTCRACKER_VAULT_MOUNT"
PATH_ENV: Final = "NUTCRACKER_VAULT_PATH"
APPROLE_MOUNT_ENV: Final = "NUTCRACKER_VAULT_APPROLE_MOUNT"
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class VaultToken:
    """Authenticate with a Vault token (``VAULT_TOKEN``)."""

    token: SecretStr


@dataclass(frozen=True, slots=True)
class VaultAppRole:
    """Authenticate with an AppRole login (``VAULT_ROLE_ID`` and ``VAULT_SECRET_ID``)."""

    role_id: str
    secret_id: SecretStr
    mount: str = DEFAULT_APPROLE_MOUNT


VaultAuth = VaultToken | VaultAppRole


@dataclass(frozen=True, slots=True)
class VaultSettings:
    """Where the keys live in Vault and how to reach it."""

    url: str
    auth: VaultAuth = field(repr=False)
    mount: str = DEFAULT_MOUNT
    path: str = DEFAULT_PATH  # "" stores the keys at the root of the mount
    namespace: str | None = None  # Vault Enterprise / HCP namespaces
    verify: bool | str | None = None  # a CA bundle path; None: VAULT_CACERT, else the system CAs
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not re.match(r"^https?://\S+$", self.url):
            raise SecretsError(
                f"{self.url!r} is not a Vault address: write e.g. 'https://vault.example:8200'"
            )
        _check_path(self.mount, "mount", allow_empty=False)
        _check_path(self.path, "path", allow_empty=True)
        if isinstance(self.auth, VaultAppRole):
            _check_path(self.auth.mount, "AppRole mount", allow_empty=False)


def _check_path(value: str, what: str, *, allow_empty: bool) -> None:
    segments = value.strip("/").split("/") if value.strip("/") else []
    if (not segments and not allow_empty) or any(not _SEGMENT.match(s) or s in {".", ".."} for s in segments):
        raise SecretsError(
            f"{value!r} is not a valid Vault {what}: use '/'-separated letters, digits, '_', '.' or '-'"
        )


def vault_settings_from_env(mount: str | None = None, path: str | None = None) -> VaultSettings:
    """Return settings from ``VAULT_ADDR`` and ``VAULT_TOKEN`` or ``VAULT_ROLE_ID``/``VAULT_SECRET_ID``.

    Also read: ``VAULT_NAMESPACE``, ``VAULT_CACERT`` (by hvac), ``NUTCRACKER_VAULT_MOUNT`` (default
    ``secret``), ``NUTCRACKER_VAULT_PATH`` (default ``nutcracker``), ``NUTCRACKER_VAULT_APPROLE_MOUNT``.
    """
    url = os.environ.get("VAULT_ADDR")
    if not url:
        raise SecretsError("VAULT_ADDR is not set: export the Vault address, e.g. https://vault.example:8200")
    role_id, secret_id = os.environ.get("VAULT_ROLE_ID"), os.environ.get("VAULT_SECRET_ID")
    token = os.environ.get("VAULT_TOKEN")
    auth: VaultAuth
    if role_id and secret_id:
        auth = VaultAppRole(
            role_id=role_id,
            secret_id=SecretStr(secret_id),
            mount=os.environ.get(APPROLE_MOUNT_ENV) or DEFAULT_APPROLE_MOUNT,
        )
    elif token:
        auth = VaultToken(SecretStr(token))
    else:
        raise SecretsError(
            "no Vault credentials: set VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), or VAULT_TOKEN"
        )
    return VaultSettings(
        url=url,
        auth=auth,
        mount=mount or os.environ.get(MOUNT_ENV) or DEFAULT_MOUNT,
        path=path if path is not None else os.environ.get(PATH_ENV, DEFAULT_PATH),
        namespace=os.environ.get("VAULT_NAMESPACE") or None,
    )


class VaultSecretStore:
    """API keys in Vault KV v2; every call authenticates afresh and keeps nothing."""

    def __init__(self, settings: VaultSettings) -> None:
        self._settings = settings
        self._mount = settings.mount.strip("/")
        self._base = settings.path.strip("/")

    def __repr__(self) -> str:
        return f"VaultSecretStore(url={self._settings.url!r}, mount={self._mount!r}, path={self._base!r})"

    # --- SecretStore ---------------------------------------------------------------------------

    def get(self, name: str) -> ApiCredentials:
        """Return the key stored under ``name``; raise ``SecretsError`` if there is none."""
        check_key_name(name)
        where = self._where(name)
        with self._client(f"read {where}") as client:
            try:
                response = client.secrets.kv.v2.read_secret_version(
                    path=self._secret_path(name), mount_point=self._mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath as e:
                raise SecretsError(f"no key named {name!r} in {where}{_vault_says(e)}") from e
        data = _dig(response, ("data", "data"), where)
        credentials = ApiCredentials.from_fields(name, data, where)
        register_credentials(credentials)
        return credentials

    def put(self, credentials: ApiCredentials, *, replace: bool = False) -> None:
        """Store ``credentials`` under their name; refuse to overwrite unless ``replace``."""
        register_credentials(credentials)
        where = self._where(credentials.name)
        with self._client(f"write {where}") as client:
            try:
                client.secrets.kv.v2.create_or_update_secret(
                    path=self._secret_path(credentials.name),
                    secret=credentials.reveal_fields(),
                    cas=None if replace else 0,  # cas=0: write only if the key does not exist yet
                    mount_point=self._mount,
                )
            except hvac.exceptions.InvalidRequest as e:
                if not replace and "check-and-set" in " ".join(map(str, e.errors or [])):
                    raise SecretsError(
                        f"a key named {credentials.name!r} is already in {where}: "
                        "remove it first, or replace it"
                    ) from e
                raise

    def remove(self, name: str) -> None:
        """Delete every version of the key stored under ``name``; raise ``SecretsError`` if there is none."""
        check_key_name(name)
        where = self._where(name)
        with self._client(f"delete {where}") as client:
            try:
                client.secrets.kv.v2.read_secret_metadata(
                    path=self._secret_path(name), mount_point=self._mount
                )
            except hvac.exceptions.InvalidPath as e:
                raise SecretsError(f"no key named {name!r} in {where}{_vault_says(e)}") from e
            client.secrets.kv.v2.delete_metadata_and_all_versions(
                path=self._secret_path(name), mount_point=self._mount
            )

    def list_keys(self) -> list[KeyInfo]:
        """Return the names and exchanges of every stored key, sorted by name.

        Vault lists names only, so each key is read to learn its exchange; the secrets are dropped.
        """
        where = f"Vault {self._mount}/{self._base}".rstrip("/")
        with self._client(f"list {where}") as client:
            try:
                response = client.secrets.kv.v2.list_secrets(path=self._base, mount_point=self._mount)
            except hvac.exceptions.InvalidPath:
                return []  # Vault answers 404 to a LIST of an empty folder
        names = _dig(response, ("data", "keys"), where)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SecretsError(f"Vault answered an unexpected list of keys for {where}")
        # Entries ending in "/" are sub-folders, not keys.
        return [self.get(name).info for name in sorted(n for n in names if not n.endswith("/"))]

    # --- plumbing ------------------------------------------------------------------------------

    def _secret_path(self, name: str) -> str:
        return f"{self._base}/{name}" if self._base else name

    def _where(self, name: str) -> str:
        return f"Vault {self._mount}/data/{self._secret_path(name)}"

    @contextlib.contextmanager
    def _client(self, action: str) -> Iterator[Any]:
        settings = self._settings
        client: Any = None
        try:
            with _vault_errors(action, settings):
                token = settings.auth.token if isinstance(settings.auth, VaultToken) else None
                client = hvac.Client(
                    url=settings.url,
                    # "" rather than None: never pick up a stray ~/.vault-token or VAULT_TOKEN.
                    token=token.get_secret_value() if token is not None else "",
                    verify=settings.verify,
                    timeout=settings.timeout_s,
                    namespace=settings.namespace,
                )
                if isinstance(settings.auth, VaultAppRole):
                    self._login(client, settings.auth)
                yield client
        finally:
            if client is not None:
                client.adapter.close()

    @staticmethod
    def _login(client: Any, auth: VaultAppRole) -> None:
        response = client.auth.approle.login(
            role_id=auth.role_id, secret_id=auth.secret_id.get_secret_value(), mount_point=auth.mount
        )
        token = _dig(response, ("auth", "client_token"), f"Vault AppRole login at auth/{auth.mount}")
        if not isinstance(token, str) or not token:
            raise SecretsError(f"Vault AppRole login at auth/{auth.mount} returned no client token")
        register_secret(token)


@contextlib.contextmanager
def _vault_errors(action: str, settings: VaultSettings) -> Iterator[None]:
    """Translate hvac and requests errors into ``SecretsError``, once, naming what failed."""
    glob = "/".join(p for p in (settings.mount.strip("/"), "data", settings.path.strip("/"), "*") if p)
    policy_hint = f'check that the token or AppRole policy grants path "{glob}" (see docs/keys.md)'
    try:
        yield
    except hvac.exceptions.Forbidden as e:
        raise SecretsError(
            f"Vault refused to {action}: permission denied{_vault_says(e)}; {policy_hint}"
        ) from e
    except hvac.exceptions.Unauthorized as e:
        raise SecretsError(
            f"Vault refused to {action}: not authenticated{_vault_says(e)}; "
            "check VAULT_TOKEN or the AppRole ids"
        ) from e
    except hvac.exceptions.InvalidRequest as e:
        raise SecretsError(f"Vault rejected the request to {action}{_vault_says(e)}") from e
    except hvac.exceptions.InvalidPath as e:
        raise SecretsError(
            f"Vault found nothing to {action}{_vault_says(e)}; check the mount and path"
        ) from e
    except hvac.exceptions.VaultDown as e:
        raise SecretsError(f"Vault is sealed or down, cannot {action}{_vault_says(e)}") from e
    except hvac.exceptions.VaultError as e:
        raise SecretsError(f"Vault failed to {action} ({type(e).__name__}){_vault_says(e)}") from e
    except requests.exceptions.RequestException as e:
        raise SecretsError(f"cannot reach Vault at {settings.url} to {action}: {type(e).__name__}") from e


def _vault_says(error: hvac.exceptions.VaultError) -> str:
    errors = [str(m) for m in (error.errors or []) if str(m)]
    return f" (Vault: {'; '.join(errors)})" if errors else ""


def _dig(response: object, keys: tuple[str, ...], where: str) -> Any:
    value: object = response
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            raise SecretsError(
                f"{where}: Vault's answer has no {'.'.join(keys)} (is the mount KV version 2?)"
            )
        value = value[key]
    if keys[-1] == "data" and not isinstance(value, Mapping):
        raise SecretsError(f"{where}: Vault's answer has no {'.'.join(keys)} object")
    return value
