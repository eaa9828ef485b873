"""The Vault store against a loopback stub that answers as Vault's HTTP API documents.

Vault cannot run here, so a small ``http.server`` plays the parts the store uses: AppRole login
(``POST /v1/auth/<mount>/login``), KV v2 read and write (``GET``/``POST /v1/<mount>/data/<path>``),
metadata read, list and delete (``GET``/``LIST``/``DELETE /v1/<mount>/metadata/<path>``), and Vault's
error bodies: ``{"errors": ["permission denied"]}`` (403), ``{"errors": []}`` (404).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from nutcracker.errors import SecretsError
from nutcracker.secrets.store import ApiCredentials, KeyInfo
from nutcracker.secrets.vault import (
    VaultAppRole,
    VaultSecretStore,
    VaultSettings,
    VaultToken,
    vault_settings_from_env,
)

ROOT_TOKEN = "hvs.CAESIJ-stub-root-token-0123456789"
APPROLE_TOKEN = "hvs.CAESIK-stub-approle-token-9876543210"
ROLE_ID = "db02de05-fa39-4855-059b-67221c5c2f63"
SECRET_ID = "6a174c20-f6de-a53c-74d2-6018fcceff64"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
TIME = "2018-03-22T02:24:06.945319214Z"


@dataclass
class Request:
    method: str
    path: str
    token: str | None
    body: Any


@dataclass
class FakeVault:
    """Vault's state: KV v2 mounts, tokens and the paths (prefixes) each token may use."""

    mounts: set[str] = field(default_factory=lambda: {"secret"})
    kv: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<mount>/<path>" -> data
    versions: dict[str, int] = field(default_factory=dict)
    policies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # token -> allowed prefixes
    approles: dict[tuple[str, str], str] = field(default_factory=dict)  # (role_id, secret_id) -> token
    requests: list[Request] = field(default_factory=list)
    sealed: bool = False


class VaultHandler(BaseHTTPRequestHandler):
    vault: FakeVault

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        """Keep the test output quiet."""

    def _reply(self, status: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _envelope(self, data: Any = None, auth: Any = None) -> dict[str, Any]:
        return {
            "request_id": "2e2ba4ab-8e0c-2b0e-a31d-4bd45dfa1e8e",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": None,
            "auth": auth,
        }

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else {}
        token = self.headers.get("X-Vault-Token")
        vault = self.vault
        vault.requests.append(Request(method, url.path, token, body))
        if vault.sealed:
            return self._reply(503, {"errors": ["Vault is sealed"]})
        if method == "GET" and parse_qs(url.query).get("list") == ["true"]:
            method = "LIST"
        parts = url.path.removeprefix("/v1/").split("/")
        if parts[:1] == ["auth"] and parts[2:] == ["login"] and method == "POST":
            issued = vault.approles.get((body.get("role_id"), body.get("secret_id")))
            if issued is None:
                return self._reply(400, {"errors": ["invalid role or secret ID"]})
            auth = {
                "renewable": True,
                "lease_duration": 1200,
                "metadata": None,
                "token_policies": ["default", "nutcracker"],
                "accessor": "fd6c9a00-d2dc-3b11-0be5-af7ae0e1d374",
                "client_token": issued,
            }
            return self._reply(200, self._envelope(auth=auth))
        mount, kind, path = parts[0], parts[1] if len(parts) > 1 else "", "/".join(parts[2:])
        allowed = vault.policies.get(token or "")
        if allowed is None or not any(f"{mount}/{kind}/{path}".startswith(p) for p in allowed):
            return self._reply(403, {"errors": ["permission denied"]})
        if mount not in vault.mounts:
            route = f"{mount}/{kind}/{path}"
            return self._reply(404, {"errors": [f'no handler for route "{route}". route entry not found.']})
        key = f"{mount}/{path}"
        metadata = {"created_time": TIME, "custom_metadata": None, "deletion_time": "", "destroyed": False}
        if kind == "data" and method == "GET":
            if key not in vault.kv:
                return self._reply(404, {"errors": []})
            version_meta = {**metadata, "version": vault.versions[key]}
            return self._reply(200, self._envelope(data={"data": vault.kv[key], "metadata": version_meta}))
        if kind == "data" and method in {"POST", "PUT"}:
            cas = (body.get("options") or {}).get("cas")
            if cas is not None and cas != vault.versions.get(key, 0):
                return self._reply(
                    400, {"errors": ["check-and-set parameter did not match the current version"]}
                )
            vault.kv[key] = body["data"]
            vault.versions[key] = vault.versions.get(key, 0) + 1
            return self._reply(200, self._envelope(data={**metadata, "version": vault.versions[key]}))
        if kind == "metadata" and method == "LIST":
            prefix = f"{key}/" if path else f"{mount}/"
            names = sorted(
                {
                    k[len(prefix) :].split("/")[0] + ("/" if "/" in k[len(prefix) :] else "")
                    for k in vault.kv
                    if k.startswith(prefix)
                }
            )
            if not names:
                return self._reply(404, {"errors": []})
            return self._reply(200, self._envelope(data={"keys": names}))
        if kind == "metadata" and method == "GET":
            if key not in vault.kv:
                return self._reply(404, {"errors": []})
            return self._reply(
                200, self._envelope(data={"current_version": vault.versions[key], "versions": {}})
            )
        if kind == "metadata" and method == "DELETE":
            vault.kv.pop(key, None)
            vault.versions.pop(key, None)
            return self._reply(204)
        return self._reply(405, {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_LIST(self) -> None:
        self._handle("LIST")


@pytest.fixture
def vault() -> Iterator[tuple[FakeVault, str]]:
    state = FakeVault(
        policies={
            ROOT_TOKEN: ("secret/",),
            APPROLE_TOKEN: ("secret/data/nutcracker/", "secret/metadata/nutcracker"),
        },
        approles={(ROLE_ID, SECRET_ID): APPROLE_TOKEN},
    )
    handler = type("Handler", (VaultHandler,), {"vault": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def token_store(url: str, token: str = ROOT_TOKEN, **kwargs: Any) -> VaultSecretStore:
    return VaultSecretStore(VaultSettings(url=url, auth=VaultToken(SecretStr(token)), **kwargs))


def approle_store(url: str, secret_id: str = SECRET_ID) -> VaultSecretStore:
    return VaultSecretStore(VaultSettings(url=url, auth=VaultAppRole(ROLE_ID, SecretStr(secret_id))))


def binance_key(name: str = "main") -> ApiCredentials:
    return ApiCredentials(
        exchange_id="binance", name=name, api_key=SecretStr(API_KEY), secret=SecretStr(SECRET)
    )


def kucoin_key() -> ApiCredentials:
    return ApiCredentials(
        exchange_id="kucoin",
        name="kc",
        api_key=SecretStr("kc-" + API_KEY[:24]),
        secret=SecretStr("kc-" + SECRET[:24]),
        password=SecretStr("kucoin-passphrase"),
    )


# --- token auth and KV v2 layout -----------------------------------------------------------------------


def test_token_store_round_trips_a_key_through_kv_v2(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    store = token_store(url)

    store.put(binance_key())
    store.put(kucoin_key())

    assert store.get("main") == binance_key()
    assert store.get("kc") == kucoin_key()
    assert store.list_keys() == [KeyInfo("kc", "kucoin"), KeyInfo("main", "binance")]
    assert state.kv["secret/nutcracker/main"] == {"exchange": "binance", "api_key": API_KEY, "secret": SECRET}


def test_kv_v2_paths_token_header_and_write_body_follow_the_api(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    store = token_store(url, mount="kv-trading", path="team/bots")
    state.mounts.add("kv-trading")
    state.policies[ROOT_TOKEN] = ("kv-trading/",)

    store.put(binance_key())
    store.get("main")
    store.list_keys()
    store.remove("main")

    assert [(r.method, r.path) for r in state.requests] == [
        ("POST", "/v1/kv-trading/data/team/bots/main"),
        ("GET", "/v1/kv-trading/data/team/bots/main"),
        ("LIST", "/v1/kv-trading/metadata/team/bots"),
        ("GET", "/v1/kv-trading/data/team/bots/main"),
        ("GET", "/v1/kv-trading/metadata/team/bots/main"),
        ("DELETE", "/v1/kv-trading/metadata/team/bots/main"),
    ]
    assert {r.token for r in state.requests} == {ROOT_TOKEN}
    assert state.requests[0].body == {
        "options": {"cas": 0},
        "data": {"exchange": "binance", "api_key": API_KEY, "secret": SECRET},
    }


def test_empty_path_stores_keys_at_the_root_of_the_mount(vault: tuple[FakeVault, str]) -> None:
    state, url = vault

    token_store(url, path="").put(binance_key())

    assert state.requests[-1].path == "/v1/secret/data/main"


def test_put_refuses_to_overwrite_through_check_and_set_unless_replace(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    store = token_store(url)
    store.put(binance_key())

    with pytest.raises(
        SecretsError, match="a key named 'main' is already in Vault secret/data/nutcracker/main"
    ):
        store.put(binance_key())
    store.put(binance_key(), replace=True)

    assert state.versions["secret/nutcracker/main"] == 2
    assert state.requests[-1].body["options"] == {}


def test_secrets_are_fetched_on_every_get(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    store = token_store(url)
    store.put(binance_key())

    store.get("main")
    store.get("main")

    assert [r.method for r in state.requests].count("GET") == 2


# --- AppRole -------------------------------------------------------------------------------------------


def test_approle_logs_in_and_uses_the_issued_token(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    token_store(url).put(binance_key())
    state.requests.clear()

    credentials = approle_store(url).get("main")

    assert credentials == binance_key()
    login, read = state.requests
    assert (login.method, login.path, login.token) == ("POST", "/v1/auth/approle/login", None)
    assert login.body == {"role_id": ROLE_ID, "secret_id": SECRET_ID}
    assert (read.path, read.token) == ("/v1/secret/data/nutcracker/main", APPROLE_TOKEN)


def test_approle_logs_in_again_for_each_call(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    store = approle_store(url)

    store.put(binance_key())
    store.get("main")

    assert [r.path for r in state.requests].count("/v1/auth/approle/login") == 2


def test_approle_with_a_wrong_secret_id_is_refused_without_showing_it(vault: tuple[FakeVault, str]) -> None:
    _, url = vault

    with pytest.raises(SecretsError, match="invalid role or secret ID") as caught:
        approle_store(url, secret_id="00000000-wrong-secret-id").get("main")

    assert "00000000-wrong-secret-id" not in str(caught.value)


# --- Vault's errors ----------------------------------------------------------------------------------------


def test_403_permission_denied_names_the_path_and_the_policy_to_check(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    token_store(url).put(binance_key())
    state.policies["hvs.read-elsewhere"] = ("secret/data/other/",)

    with pytest.raises(SecretsError) as caught:
        token_store(url, token="hvs.read-elsewhere").get("main")

    message = str(caught.value)
    assert "permission denied" in message
    assert "secret/data/nutcracker/main" in message
    assert 'grants path "secret/data/nutcracker/*"' in message
    assert "hvs.read-elsewhere" not in message


def test_unknown_token_is_refused_with_403(vault: tuple[FakeVault, str]) -> None:
    _, url = vault

    with pytest.raises(SecretsError, match="permission denied"):
        token_store(url, token="hvs.unknown").list_keys()


def test_404_on_read_means_no_such_key(vault: tuple[FakeVault, str]) -> None:
    _, url = vault

    with pytest.raises(SecretsError, match=r"no key named 'ghost' in Vault secret/data/nutcracker/ghost$"):
        token_store(url).get("ghost")


def test_404_from_a_missing_mount_says_what_vault_said(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    state.policies[ROOT_TOKEN] = ("",)

    with pytest.raises(SecretsError, match="no handler for route"):
        token_store(url, mount="kv").get("main")


def test_404_on_list_means_no_keys_yet(vault: tuple[FakeVault, str]) -> None:
    _, url = vault

    assert token_store(url).list_keys() == []


def test_remove_of_a_missing_key_is_refused(vault: tuple[FakeVault, str]) -> None:
    _, url = vault

    with pytest.raises(SecretsError, match="no key named 'ghost'"):
        token_store(url).remove("ghost")


def test_sealed_vault_is_reported(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    state.sealed = True

    with pytest.raises(SecretsError, match="Vault is sealed or down"):
        token_store(url).get("main")


def test_unreachable_vault_is_reported_without_a_secret() -> None:
    store = token_store("http://127.0.0.1:9", timeout_s=2.0)

    with pytest.raises(SecretsError, match=re.escape("cannot reach Vault at http://127.0.0.1:9")) as caught:
        store.get("main")

    assert ROOT_TOKEN not in str(caught.value)


def test_secret_missing_a_field_is_refused(vault: tuple[FakeVault, str]) -> None:
    state, url = vault
    state.kv["secret/nutcracker/main"] = {"exchange": "binance", "api_key": API_KEY}
    state.versions["secret/nutcracker/main"] = 1

    with pytest.raises(SecretsError, match="has no 'secret' field"):
        token_store(url).get("main")


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_never_show_the_token_or_secret_id() -> None:
    settings = VaultSettings(
        url="https://vault.example:8200", auth=VaultAppRole(ROLE_ID, SecretStr(SECRET_ID))
    )
    token = VaultSettings(url="https://vault.example:8200", auth=VaultToken(SecretStr(ROOT_TOKEN)))

    for text in (repr(settings), repr(token), repr(VaultSecretStore(settings)), repr(token.auth)):
        assert SECRET_ID not in text
        assert ROOT_TOKEN not in text


@pytest.mark.parametrize(("field", "value"), [("mount", ""), ("path", "../sys"), ("url", "vault:8200")])
def test_invalid_settings_are_refused(field: str, value: str) -> None:
    values: dict[str, Any] = {"url": "https://vault.example:8200", "auth": VaultToken(SecretStr(ROOT_TOKEN))}
    values[field] = value

    with pytest.raises(SecretsError):
        VaultSettings(**values)


def test_settings_from_env_prefer_approle_and_read_mount_and_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "https://vault.example:8200")
    monkeypatch.setenv("VAULT_TOKEN", ROOT_TOKEN)
    monkeypatch.setenv("VAULT_ROLE_ID", ROLE_ID)
    monkeypatch.setenv("VAULT_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("NUTCRACKER_VAULT_MOUNT", "kv")
    monkeypatch.setenv("NUTCRACKER_VAULT_PATH", "prod/nutcracker")

    settings = vault_settings_from_env()

    assert isinstance(settings.auth, VaultAppRole)
    assert settings.auth.secret_id.get_secret_value() == SECRET_ID
    assert (settings.mount, settings.path) == ("kv", "prod/nutcracker")


def test_settings_from_env_need_an_address_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SecretsError, match="VAULT_ADDR is not set"):
        vault_settings_from_env()

    monkeypatch.setenv("VAULT_ADDR", "https://vault.example:8200")
    with pytest.raises(SecretsError, match="no Vault credentials"):
        vault_settings_from_env()
