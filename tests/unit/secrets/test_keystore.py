"""The encrypted local keystore: round trip, file mode, wrong passphrase, tampering, atomic writes."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from nutcracker.errors import SecretsError
from nutcracker.secrets import keystore as keystore_module
from nutcracker.secrets.keystore import (
    DEFAULT_SCRYPT_N,
    PASSPHRASE_ENV,
    KeystoreSecretStore,
    default_keystore_path,
    passphrase_from_env_or_prompt,
)
from nutcracker.secrets.store import ApiCredentials, KeyInfo

PASSPHRASE = "correct horse battery staple"
FAST_N = 2**10  # the minimum: keeps the byte-by-byte tamper test quick
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
OKX_PASSPHRASE = "okx-pass-phrase-42"


def binance_key(name: str = "main", secret: str = SECRET) -> ApiCredentials:
    return ApiCredentials(
        exchange_id="binance", name=name, api_key=SecretStr(API_KEY), secret=SecretStr(secret)
    )


def okx_key(name: str = "okx-bot") -> ApiCredentials:
    return ApiCredentials(
        exchange_id="okx",
        name=name,
        api_key=SecretStr("okx-" + API_KEY[:20]),
        secret=SecretStr("okx-" + SECRET[:30]),
        password=SecretStr(OKX_PASSPHRASE),
        exchange_url="http://127.0.0.1:8900",
    )


class CountingPassphrase:
    """A passphrase source that records each time it is asked, and whether for a new keystore."""

    def __init__(self, value: str = PASSPHRASE) -> None:
        self.value = value
        self.asked: list[bool] = []

    def __call__(self, new: bool) -> SecretStr:
        self.asked.append(new)
        return SecretStr(self.value)


class FakeClock:
    """Wall time that only moves when slept on (or told to), recording every wait."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def open_store(
    path: Path, passphrase: str = PASSPHRASE, n: int = FAST_N, clock: FakeClock | None = None
) -> KeystoreSecretStore:
    clock = clock or FakeClock()  # wrong passphrases make later attempts wait: not in real time here
    return KeystoreSecretStore(
        path, passphrase=CountingPassphrase(passphrase), scrypt_n=n, clock=clock, sleep=clock.sleep
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nutcracker" / "keystore.json"


# --- round trip -------------------------------------------------------------------------------------


def test_stored_keys_read_back_identical(path: Path) -> None:
    open_store(path).put(binance_key())
    open_store(path).put(okx_key())

    store = open_store(path)
    main, okx = store.get("main"), store.get("okx-bot")

    assert main == binance_key()
    assert main.secret.get_secret_value() == SECRET
    assert okx.password is not None
    assert okx.password.get_secret_value() == OKX_PASSPHRASE
    assert okx.exchange_url == "http://127.0.0.1:8900"
    assert store.list_keys() == [
        KeyInfo("main", "binance", None),
        KeyInfo("okx-bot", "okx", "http://127.0.0.1:8900"),
    ]


def test_default_scrypt_parameters_round_trip_and_are_written_in_the_header(path: Path) -> None:
    KeystoreSecretStore(path, passphrase=CountingPassphrase()).put(binance_key())

    envelope = json.loads(path.read_bytes())

    assert KeystoreSecretStore(path, passphrase=CountingPassphrase()).get("main") == binance_key()
    assert envelope["format"] == "nutcracker-keystore"
    assert envelope["version"] == 1
    assert envelope["kdf"] == {"name": "scrypt", "n": DEFAULT_SCRYPT_N, "r": 8, "p": 1}
    assert envelope["cipher"] == "aes-256-gcm"
    assert len(base64.b64decode(envelope["salt"])) == 16
    assert len(base64.b64decode(envelope["nonce"])) == 12


def test_file_holds_neither_key_nor_secret_in_clear(path: Path) -> None:
    open_store(path).put(okx_key())
    open_store(path).put(binance_key())

    raw = path.read_bytes()

    for plain in (API_KEY, SECRET, OKX_PASSPHRASE, "binance", "main"):
        assert plain.encode() not in raw


def test_every_write_uses_a_fresh_salt_and_nonce(path: Path) -> None:
    store = open_store(path)
    store.put(binance_key())
    first = json.loads(path.read_bytes())
    store.put(binance_key(), replace=True)
    second = json.loads(path.read_bytes())

    assert first["nonce"] != second["nonce"]
    assert first["salt"] != second["salt"]
    assert first["ciphertext"] != second["ciphertext"]


def test_missing_keystore_lists_no_keys_and_get_says_how_to_add(path: Path) -> None:
    store = open_store(path)

    assert store.list_keys() == []
    with pytest.raises(SecretsError, match="nutcracker keys add"):
        store.get("main")


def test_put_refuses_to_overwrite_unless_replace(path: Path) -> None:
    store = open_store(path)
    store.put(binance_key())

    with pytest.raises(SecretsError, match="already in the keystore"):
        store.put(binance_key(secret="another-secret-value"))
    store.put(binance_key(secret="another-secret-value"), replace=True)

    assert open_store(path).get("main").secret.get_secret_value() == "another-secret-value"


def test_remove_deletes_the_key_and_refuses_an_unknown_name(path: Path) -> None:
    store = open_store(path)
    store.put(binance_key())
    store.put(okx_key())

    store.remove("main")

    assert [k.name for k in open_store(path).list_keys()] == ["okx-bot"]
    with pytest.raises(SecretsError, match="no key named 'main'"):
        store.remove("main")


def test_passphrase_is_asked_once_per_process_and_twice_checked_only_for_a_new_keystore(path: Path) -> None:
    source = CountingPassphrase()
    store = KeystoreSecretStore(path, passphrase=source, scrypt_n=FAST_N)

    store.put(binance_key())
    store.put(okx_key())
    store.get("main")

    assert source.asked == [True]
    reopened = CountingPassphrase()
    KeystoreSecretStore(path, passphrase=reopened).list_keys()
    assert reopened.asked == [False]


def test_new_keystore_refuses_a_short_passphrase(path: Path) -> None:
    with pytest.raises(SecretsError, match="too short"):
        open_store(path, passphrase="short").put(binance_key())

    assert not path.exists()


def test_concurrent_writers_lose_no_key(path: Path) -> None:
    open_store(path).put(binance_key("seed"))
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            open_store(path).put(binance_key(name))
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(f"k{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [k.name for k in open_store(path).list_keys()] == ["k0", "k1", "k2", "k3", "seed"]


# --- file mode and atomic writes ---------------------------------------------------------------------


def test_keystore_file_is_mode_0600_whatever_the_umask(path: Path) -> None:
    previous = os.umask(0)
    try:
        open_store(path).put(binance_key())
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_keystore_readable_by_others_is_refused(path: Path) -> None:
    open_store(path).put(binance_key())
    path.chmod(0o644)

    with pytest.raises(SecretsError, match=r"open to other users \(mode 0644\): run `chmod 600"):
        open_store(path).get("main")


def test_writes_leave_no_temporary_file(path: Path) -> None:
    store = open_store(path)
    store.put(binance_key())
    store.put(okx_key())
    store.remove("main")

    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"]


def test_failed_write_keeps_the_old_keystore_and_leaves_no_temporary_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(path).put(binance_key())
    before = path.read_bytes()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(SecretsError, match=r"cannot write the keystore .*No space left on device"):
        open_store(path).put(okx_key())
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"]
    assert [k.name for k in open_store(path).list_keys()] == ["main"]


# --- KDF cost: OWASP's minimum, older keystores migrated ---------------------------------------------


def test_the_default_scrypt_cost_is_owasps_minimum() -> None:
    assert DEFAULT_SCRYPT_N >= 2**17
    assert (keystore_module.SCRYPT_R, keystore_module.SCRYPT_P) == (8, 1)


def test_a_keystore_written_with_n_2_15_is_read_and_rewritten_with_n_2_17_on_unlock(path: Path) -> None:
    open_store(path, n=2**15).put(binance_key())
    old = path.read_bytes()
    assert json.loads(old)["kdf"]["n"] == 2**15

    assert KeystoreSecretStore(path, passphrase=CountingPassphrase()).get("main") == binance_key()

    migrated = json.loads(path.read_bytes())
    assert migrated["kdf"] == {"name": "scrypt", "n": 2**17, "r": 8, "p": 1}
    assert migrated["salt"] != json.loads(old)["salt"]  # re-encrypted, not re-labelled
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"]  # no temporary left
    assert KeystoreSecretStore(path, passphrase=CountingPassphrase()).list_keys() == [
        KeyInfo("main", "binance", None)
    ]


def test_a_keystore_is_never_downgraded_to_a_lower_cost(path: Path) -> None:
    open_store(path, n=2**12).put(binance_key())
    before = path.read_bytes()

    assert open_store(path, n=FAST_N).get("main") == binance_key()

    assert path.read_bytes() == before


def test_a_failed_unlock_does_not_migrate(path: Path) -> None:
    open_store(path, n=2**12).put(binance_key())
    before = path.read_bytes()

    with pytest.raises(SecretsError, match="wrong passphrase"):
        open_store(path, passphrase="not the passphrase", n=2**14).get("main")

    assert path.read_bytes() == before


# --- wrong passphrases are throttled across processes ----------------------------------------------------


def test_wrong_passphrases_wait_exponentially_longer_even_across_new_processes(path: Path) -> None:
    open_store(path).put(binance_key())
    clock = FakeClock()

    for _ in range(5):  # a fresh store each time, as a restarted process would be
        with pytest.raises(SecretsError, match="wrong passphrase"):
            open_store(path, passphrase="guess", clock=clock).get("main")

    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]  # before attempts 2..5


def test_the_wait_counts_from_the_last_failure_and_a_correct_passphrase_clears_it(path: Path) -> None:
    open_store(path).put(binance_key())
    clock = FakeClock()
    for _ in range(3):
        with pytest.raises(SecretsError, match="failed attempt"):
            open_store(path, passphrase="guess", clock=clock).get("main")
    clock.sleeps.clear()
    clock.now += 3.0  # 3 of the 4 seconds have passed already

    assert open_store(path, clock=clock).get("main") == binance_key()
    assert clock.sleeps == [1.0]

    with pytest.raises(SecretsError):
        open_store(path, passphrase="guess", clock=clock).get("main")
    assert clock.sleeps == [1.0]  # counting starts again: the first failure costs no wait
    assert open_store(path, clock=clock).get("main") == binance_key()
    assert sorted(p.name for p in path.parent.iterdir()) == ["keystore.json"]


def test_the_wait_is_capped(path: Path) -> None:
    open_store(path).put(binance_key())
    clock = FakeClock()
    for _ in range(14):
        with pytest.raises(SecretsError):
            open_store(path, passphrase="guess", clock=clock).get("main")

    assert max(clock.sleeps) == keystore_module.MAX_DELAY_S == 300.0
    assert clock.sleeps[-3:] == [300.0, 300.0, 300.0]


def test_a_clock_set_back_does_not_lengthen_the_wait(path: Path) -> None:
    open_store(path).put(binance_key())
    clock = FakeClock()
    with pytest.raises(SecretsError):
        open_store(path, passphrase="guess", clock=clock).get("main")
    clock.now -= 86_400.0

    open_store(path, clock=clock).get("main")

    assert clock.sleeps == [1.0]


def test_the_message_says_how_many_attempts_failed_and_how_long_the_next_waits(path: Path) -> None:
    open_store(path).put(binance_key())
    clock = FakeClock()
    messages = []
    for _ in range(2):
        with pytest.raises(SecretsError) as caught:
            open_store(path, passphrase="guess", clock=clock).get("main")
        messages.append(str(caught.value))

    assert "1 failed attempt in a row: the next waits 1 s" in messages[0]
    assert "2 failed attempts in a row: the next waits 2 s" in messages[1]


# --- wrong passphrase and tampering --------------------------------------------------------------------


def test_wrong_passphrase_is_refused_without_showing_anything_secret(path: Path) -> None:
    open_store(path).put(binance_key())

    with pytest.raises(SecretsError, match="wrong passphrase or corrupted keystore") as caught:
        open_store(path, passphrase="not the passphrase").get("main")

    for secret in (PASSPHRASE, "not the passphrase", API_KEY, SECRET):
        assert secret not in str(caught.value)


def test_wrong_passphrase_is_asked_again_rather_than_reused(path: Path) -> None:
    open_store(path).put(binance_key())
    source = CountingPassphrase("not the passphrase")
    clock = FakeClock()
    store = KeystoreSecretStore(path, passphrase=source, clock=clock, sleep=clock.sleep)

    for _ in range(2):
        with pytest.raises(SecretsError):
            store.get("main")

    assert source.asked == [False, False]


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_any_flipped_byte_is_refused(path: Path, mask: int) -> None:
    open_store(path).put(okx_key())
    original = path.read_bytes()

    accepted, messages = [], []
    for index in range(len(original)):
        tampered = bytearray(original)
        tampered[index] ^= mask
        path.write_bytes(bytes(tampered))
        try:
            open_store(path).list_keys()
        except SecretsError as e:
            messages.append(str(e))
            continue
        accepted.append(index)

    assert accepted == []
    assert not any(OKX_PASSPHRASE in m or PASSPHRASE in m for m in messages)


def test_reauthenticated_header_change_is_refused(path: Path) -> None:
    # A header edited consistently (canonical JSON, valid parameters) still fails authentication.
    open_store(path).put(binance_key())
    envelope = json.loads(path.read_bytes())
    envelope["kdf"]["n"] = FAST_N * 2
    path.write_text(json.dumps(envelope, sort_keys=True, indent=2) + "\n")

    with pytest.raises(SecretsError, match="wrong passphrase or corrupted keystore"):
        open_store(path).get("main")


def test_equivalent_but_reformatted_json_is_refused(path: Path) -> None:
    open_store(path).put(binance_key())
    path.write_text(json.dumps(json.loads(path.read_bytes())))

    with pytest.raises(SecretsError, match="not in the form nutcracker writes"):
        open_store(path).get("main")


def test_keystore_of_another_version_names_the_version(path: Path) -> None:
    open_store(path).put(binance_key())
    envelope = json.loads(path.read_bytes())
    envelope["version"] = 2
    path.write_text(json.dumps(envelope, sort_keys=True, indent=2) + "\n")

    with pytest.raises(SecretsError, match="has version 2; this nutcracker reads version 1"):
        open_store(path).get("main")


@pytest.mark.parametrize("n", [2**31, 1000, 2])
def test_header_asking_for_absurd_scrypt_cost_is_refused_before_deriving(path: Path, n: int) -> None:
    open_store(path).put(binance_key())
    envelope = json.loads(path.read_bytes())
    envelope["kdf"]["n"] = n
    path.write_text(json.dumps(envelope, sort_keys=True, indent=2) + "\n")

    with pytest.raises(SecretsError, match="scrypt parameters"):
        open_store(path).get("main")


def test_file_that_is_not_a_keystore_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text('{"hello": "world"}\n')
    path.chmod(0o600)

    with pytest.raises(SecretsError, match="is not a nutcracker keystore"):
        open_store(path).get("main")


# --- secrets never shown --------------------------------------------------------------------------------


def test_credentials_and_store_never_show_secrets_in_repr_or_str(path: Path) -> None:
    credentials = okx_key()
    store = open_store(path)

    for text in (repr(credentials), str(credentials), repr(store), repr(credentials.info)):
        for secret in (
            credentials.api_key.get_secret_value(),
            credentials.secret.get_secret_value(),
            OKX_PASSPHRASE,
        ):
            assert secret not in text
    assert "**********" in repr(credentials)


def test_invalid_credentials_are_refused_without_showing_the_secret() -> None:
    with pytest.raises(SecretsError, match="okx keys need the passphrase") as caught:
        ApiCredentials(exchange_id="okx", name="bot", api_key=SecretStr(API_KEY), secret=SecretStr(SECRET))
    assert SECRET not in str(caught.value)
    assert API_KEY not in str(caught.value)

    with pytest.raises(SecretsError, match="not a valid key name"):
        binance_key(name="../escape")
    with pytest.raises(SecretsError, match="the secret is empty"):
        binance_key(secret="   ")


def test_stored_field_of_the_wrong_type_is_refused_without_showing_its_value() -> None:
    fields: dict[str, object] = {"exchange": "binance", "api_key": API_KEY, "secret": [SECRET]}

    with pytest.raises(SecretsError, match="field 'secret' is not a string") as caught:
        ApiCredentials.from_fields("main", fields, "test")

    assert SECRET not in str(caught.value)


# --- passphrase and default path --------------------------------------------------------------------------


def test_passphrase_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)

    assert passphrase_from_env_or_prompt(new=True).get_secret_value() == PASSPHRASE


def test_empty_passphrase_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "")

    with pytest.raises(SecretsError, match="is set but empty"):
        passphrase_from_env_or_prompt(new=False)


def test_without_variable_or_terminal_the_passphrase_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(keystore_module, "_has_terminal", lambda: False)

    with pytest.raises(SecretsError, match=f"set {PASSPHRASE_ENV}"):
        passphrase_from_env_or_prompt(new=False)


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NUTCRACKER_KEYSTORE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_keystore_path() == tmp_path / "nutcracker" / "keystore.json"

    monkeypatch.setenv("NUTCRACKER_KEYSTORE", str(tmp_path / "elsewhere.json"))
    assert default_keystore_path() == tmp_path / "elsewhere.json"
