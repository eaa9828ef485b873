"""The embedded default ``SecretStore``: one encrypted file on the user's machine.

The file is a versioned JSON envelope (written in one canonical form, mode 0600)::

    {"ciphertext": b64, "cipher": "aes-256-gcm", "format": "nutcracker-keystore",
     "kdf": {"n": 32768, "name": "scrypt", "p": 1, "r": 8}, "nonce": b64, "salt": b64, "version": 1}

The 256-bit key is derived from a passphrase with scrypt over a random 16-byte salt; the payload (every
stored key) is sealed with AES-256-GCM under a random 12-byte nonce, with the rest of the envelope as
associated data. Every write draws a fresh salt and nonce. Any changed byte is refused: the envelope
must parse, be in canonical form, and authenticate.

The cost is OWASP's minimum for scrypt (n = 2^17, r = 8, p = 1: 128 MiB, about 0.4 s). A keystore
written with a lower cost (n = 2^15 before) is re-encrypted with the current one, atomically, on its
next successful unlock. Wrong passphrases are throttled across processes: a counter beside the file
(``.keystore.json.failures``, mode 0600) makes the attempt after k failures wait
``min(2^(k-1), 300)`` seconds after the last one; a correct passphrase clears it. Attempts are
serialised on that file, so parallel processes cannot guess faster either.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import getpass
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import SecretStr

from nutcracker.errors import SecretsError
from nutcracker.secrets.redaction import register_credentials, register_secret
from nutcracker.secrets.store import ApiCredentials, KeyInfo, check_key_name

PASSPHRASE_ENV: Final = "NUTCRACKER_KEYSTORE_PASSPHRASE"
KEYSTORE_ENV: Final = "NUTCRACKER_KEYSTORE"
FORMAT: Final = "nutcracker-keystore"
VERSION: Final = 1
CIPHER: Final = "aes-256-gcm"
KDF: Final = "scrypt"
DEFAULT_SCRYPT_N: Final = 2**17  # OWASP's minimum; 128 MiB with r=8: about 0.4 s per derivation
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
MIN_SCRYPT_N: Final = 2**10
MAX_SCRYPT_N: Final = 2**20
MAX_SCRYPT_MEMORY_BYTES: Final = 2**30  # 128 * n * r; refuse a header that asks for more
MIN_NEW_PASSPHRASE_LENGTH: Final = 8
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
FILE_MODE: Final = 0o600
FAILURES_SUFFIX: Final = ".failures"  # the wrong-passphrase counter: ``.<keystore name>.failures``
FIRST_DELAY_S: Final = 1.0  # wait before the attempt after the first failure; doubles per failure
MAX_DELAY_S: Final = 300.0

# Return the passphrase; the argument is True when it will protect a new keystore (ask twice).
PassphraseSource = Callable[[bool], SecretStr]


def default_keystore_path() -> Path:
    """Return ``$NUTCRACKER_KEYSTORE``, else ``$XDG_CONFIG_HOME/nutcracker/keystore.json``."""
    explicit = os.environ.get(KEYSTORE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "nutcracker" / "keystore.json"


def passphrase_from_env_or_prompt(new: bool) -> SecretStr:
    """Return ``$NUTCRACKER_KEYSTORE_PASSPHRASE``, else ask on the terminal (twice for a new keystore)."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        if not value:
            raise SecretsError(f"{PASSPHRASE_ENV} is set but empty: set the keystore passphrase or unset it")
        return SecretStr(value)
    if not _has_terminal():
        raise SecretsError(
            f"the keystore passphrase is needed and there is no terminal to ask: set {PASSPHRASE_ENV}"
        )
    try:
        first = getpass.getpass("Keystore passphrase: ")
        if new and getpass.getpass("Repeat the keystore passphrase: ") != first:
            raise SecretsError("the two passphrases differ: nothing was stored")
    except (EOFError, KeyboardInterrupt) as e:
        raise SecretsError("no keystore passphrase was given") from e
    return SecretStr(first)


def _has_terminal() -> bool:
    if sys.stdin.isatty():
        return True
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


class KeystoreSecretStore:
    """API keys in one AES-256-GCM encrypted file; the passphrase is asked once per process."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        passphrase: PassphraseSource = passphrase_from_env_or_prompt,
        scrypt_n: int = DEFAULT_SCRYPT_N,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Open (lazily) the keystore at ``path``.

        ``scrypt_n`` sets the cost of the next writes and the cost below which a keystore is
        re-encrypted on unlock; only tests lower it, for speed. ``clock`` (wall time, seconds: the
        throttle outlives the process) and ``sleep`` time the wait after wrong passphrases.
        """
        _check_scrypt_params(scrypt_n, SCRYPT_R, SCRYPT_P, where="scrypt_n")
        self._path = (path or default_keystore_path()).expanduser()
        self._passphrase_source = passphrase
        self._passphrase: SecretStr | None = None
        self._scrypt_n = scrypt_n
        self._clock = clock
        self._sleep = sleep

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"KeystoreSecretStore(path={str(self._path)!r})"

    # --- SecretStore ---------------------------------------------------------------------------

    def get(self, name: str) -> ApiCredentials:
        """Return the key stored under ``name``; raise ``SecretsError`` if there is none."""
        keys = self._read()
        if name not in keys:
            raise SecretsError(
                f"no key named {name!r} in the keystore {self._path}: "
                f"add it with `nutcracker keys add --name {name} ...`"
            )
        credentials = keys[name]
        register_credentials(credentials)
        return credentials

    def put(self, credentials: ApiCredentials, *, replace: bool = False) -> None:
        """Store ``credentials`` under their name; refuse to overwrite unless ``replace``."""
        register_credentials(credentials)
        with self._write_lock():
            keys = self._read(upgrade=False)
            if credentials.name in keys and not replace:
                raise SecretsError(
                    f"a key named {credentials.name!r} is already in the keystore {self._path}: "
                    "remove it first, or replace it"
                )
            keys[credentials.name] = credentials
            self._write(keys)

    def remove(self, name: str) -> None:
        """Delete the key stored under ``name``; raise ``SecretsError`` if there is none."""
        with self._write_lock():
            keys = self._read(upgrade=False)
            if name not in keys:
                raise SecretsError(f"no key named {name!r} in the keystore {self._path}")
            del keys[name]
            self._write(keys)

    def list_keys(self) -> list[KeyInfo]:
        """Return the names and exchanges of every stored key, sorted by name."""
        return [keys.info for _, keys in sorted(self._read().items())]

    # --- file format ---------------------------------------------------------------------------

    def _read(self, *, upgrade: bool = True) -> dict[str, ApiCredentials]:
        try:
            raw = self._read_bytes()
        except FileNotFoundError:
            return {}
        envelope = _parse_envelope(raw, self._path)
        keys = _parse_payload(self._decrypt(envelope), self._path)
        if upgrade and envelope["kdf"]["n"] < self._scrypt_n:
            self._upgrade(raw, keys)
        return keys

    def _decrypt(self, envelope: dict[str, Any]) -> bytes:
        """Return the payload; a wrong passphrase counts as a failure and later attempts wait."""
        kdf = envelope["kdf"]
        with _FailureCounter(self._path.parent / f".{self._path.name}{FAILURES_SUFFIX}") as counter:
            failures, last = counter.read()
            if failures:
                delay = failure_delay_s(failures)
                wait = min(delay, last + delay - self._clock())  # a clock set back waits no longer
                if wait > 0:
                    self._sleep(wait)
            key = self._derive(
                _b64(envelope["salt"], "salt", self._path), kdf["n"], kdf["r"], kdf["p"], new=False
            )
            try:
                plaintext = AESGCM(key).decrypt(
                    _b64(envelope["nonce"], "nonce", self._path),
                    _b64(envelope["ciphertext"], "ciphertext", self._path),
                    _associated_data(envelope),
                )
            except InvalidTag as e:
                self._passphrase = None  # ask again next time rather than repeat a wrong one
                counter.write(failures + 1, self._clock())
                raise SecretsError(
                    f"wrong passphrase or corrupted keystore {self._path}: it could not be decrypted; "
                    f"check {PASSPHRASE_ENV} or the passphrase you typed ({failures + 1} failed "
                    f"attempt{'s' if failures else ''} in a row: the next waits "
                    f"{failure_delay_s(failures + 1):g} s)"
                ) from e
            counter.clear()  # also removes the empty file a first attempt created
        return plaintext

    def _upgrade(self, raw: bytes, keys: dict[str, ApiCredentials]) -> None:
        """Re-encrypt a keystore written with a lower scrypt cost (unless it changed meanwhile)."""
        with self._write_lock():
            if self._read_bytes() == raw:
                self._write(keys)

    def _read_bytes(self) -> bytes:
        fd = os.open(self._path, os.O_RDONLY)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SecretsError(f"the keystore {self._path} is not a regular file")
            if info.st_mode & 0o077:
                raise SecretsError(
                    f"the keystore {self._path} is open to other users "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}): run `chmod 600 {self._path}`"
                )
            with os.fdopen(os.dup(fd), "rb") as file:
                return file.read()
        finally:
            os.close(fd)

    def _write(self, keys: dict[str, ApiCredentials]) -> None:
        payload = {"keys": {name: keys[name].reveal_fields() for name in sorted(keys)}}
        plaintext = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
        envelope: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {"name": KDF, "n": self._scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": _b64encode(salt),
            "cipher": CIPHER,
            "nonce": _b64encode(nonce),
        }
        key = self._derive(salt, self._scrypt_n, SCRYPT_R, SCRYPT_P, new=not self._path.exists())
        envelope["ciphertext"] = _b64encode(AESGCM(key).encrypt(nonce, plaintext, _associated_data(envelope)))
        _write_atomically(self._path, _serialize(envelope))

    def _derive(self, salt: bytes, n: int, r: int, p: int, *, new: bool) -> bytes:
        if self._passphrase is None:
            passphrase = self._passphrase_source(new)
            if new and len(passphrase.get_secret_value()) < MIN_NEW_PASSPHRASE_LENGTH:
                raise SecretsError(
                    f"the keystore passphrase is too short: use at least {MIN_NEW_PASSPHRASE_LENGTH} "
                    "characters"
                )
            register_secret(passphrase)
            self._passphrase = passphrase
        kdf = Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p)
        return kdf.derive(self._passphrase.get_secret_value().encode())

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        # One writer at a time: lock the directory itself, so no lock file is left behind.
        directory = self._path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(directory, os.O_RDONLY)
        except OSError as e:
            raise SecretsError(f"cannot open the keystore directory {directory}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def failure_delay_s(failures: int) -> float:
    """Return the wait before the attempt that follows ``failures`` wrong passphrases in a row."""
    if failures <= 0:
        return 0.0
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2.0 ** min(failures - 1, 64))


class _FailureCounter:
    """The wrong-passphrase count beside the keystore, locked while one attempt runs.

    If the file cannot be created (a read-only directory), attempts are not throttled: whoever can
    make the directory read-only can also copy the keystore and guess offline.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> _FailureCounter:
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        except OSError:
            return self
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # one attempt at a time, across processes
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def read(self) -> tuple[int, float]:
        """Return (failures in a row, wall time of the last one)."""
        if self._fd is None:
            return 0, 0.0
        os.lseek(self._fd, 0, os.SEEK_SET)
        try:
            doc = json.loads(os.read(self._fd, 4096) or b"{}")
            failures, last = doc.get("failures", 0), doc.get("last_failure", 0.0)
        except (ValueError, AttributeError):
            return 0, 0.0
        if type(failures) is not int or not isinstance(last, int | float):
            return 0, 0.0
        return max(0, failures), float(last)

    def write(self, failures: int, now: float) -> None:
        if self._fd is None:
            return
        data = json.dumps({"failures": failures, "last_failure": now}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def clear(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


def _parse_envelope(raw: bytes, path: Path) -> dict[str, Any]:
    corrupt = f"the keystore {path} is corrupted or was modified outside nutcracker"
    try:
        envelope = json.loads(raw)
    except ValueError as e:
        raise SecretsError(f"{corrupt}: it is not valid JSON") from e
    expected = {"format", "version", "kdf", "salt", "cipher", "nonce", "ciphertext"}
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise SecretsError(f"{path} is not a nutcracker keystore (format {FORMAT!r} expected)")
    if envelope.get("version") != VERSION or type(envelope.get("version")) is not int:
        raise SecretsError(
            f"the keystore {path} has version {envelope.get('version')!r}; this nutcracker reads "
            f"version {VERSION}: upgrade nutcracker or restore the file"
        )
    if set(envelope) != expected:
        raise SecretsError(f"{corrupt}: its fields are {sorted(envelope)}, expected {sorted(expected)}")
    kdf = envelope["kdf"]
    if not isinstance(kdf, dict) or set(kdf) != {"name", "n", "r", "p"} or kdf["name"] != KDF:
        raise SecretsError(f"{corrupt}: the kdf must be scrypt with n, r and p")
    if envelope["cipher"] != CIPHER:
        raise SecretsError(f"{corrupt}: the cipher must be {CIPHER!r}")
    for field in ("salt", "nonce", "ciphertext"):
        if not isinstance(envelope[field], str):
            raise SecretsError(f"{corrupt}: {field} is not a base64 string")
    _check_scrypt_params(kdf["n"], kdf["r"], kdf["p"], where=f"{corrupt}: its scrypt parameters")
    if raw != _serialize(envelope):
        # Equivalent JSON (spaces, escapes, key order) is still a change to an authenticated file.
        raise SecretsError(f"{corrupt}: it is not in the form nutcracker writes")
    if len(_b64(envelope["salt"], "salt", path)) != SALT_BYTES:
        raise SecretsError(f"{corrupt}: the salt is not {SALT_BYTES} bytes")
    if len(_b64(envelope["nonce"], "nonce", path)) != NONCE_BYTES:
        raise SecretsError(f"{corrupt}: the nonce is not {NONCE_BYTES} bytes")
    return envelope


def _parse_payload(plaintext: bytes, path: Path) -> dict[str, ApiCredentials]:
    where = f"the keystore {path}"
    try:
        payload = json.loads(plaintext)
    except ValueError as e:
        raise SecretsError(f"{where} holds an unreadable payload") from e
    if not isinstance(payload, dict) or set(payload) != {"keys"} or not isinstance(payload["keys"], dict):
        raise SecretsError(f"{where} holds an unexpected payload: expected {{'keys': {{...}}}}")
    keys: dict[str, ApiCredentials] = {}
    for name, fields in payload["keys"].items():
        check_key_name(name)
        if not isinstance(fields, dict):
            raise SecretsError(f"key {name!r} in {where} is not an object")
        keys[name] = ApiCredentials.from_fields(name, fields, where)
    return keys


def _check_scrypt_params(n: object, r: object, p: object, *, where: str) -> None:
    valid = (
        type(n) is int
        and type(r) is int
        and type(p) is int
        and MIN_SCRYPT_N <= n <= MAX_SCRYPT_N
        and n & (n - 1) == 0
        and 1 <= r <= 32
        and 1 <= p <= 16
        and 128 * n * r <= MAX_SCRYPT_MEMORY_BYTES
    )
    if not valid:
        raise SecretsError(
            f"{where}: n={n!r}, r={r!r}, p={p!r} out of range (n a power of two in "
            f"[{MIN_SCRYPT_N}, {MAX_SCRYPT_N}], 1 <= r <= 32, 1 <= p <= 16, 128*n*r <= 1 GiB)"
        )


def _associated_data(envelope: dict[str, Any]) -> bytes:
    header = {k: v for k, v in envelope.items() if k != "ciphertext"}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _serialize(envelope: dict[str, Any]) -> bytes:
    return (json.dumps(envelope, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64(text: str, field: str, path: Path) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SecretsError(f"the keystore {path} is corrupted: {field} is not valid base64") from e
    if _b64encode(data) != text:  # non-zero padding bits would decode to the same bytes
        raise SecretsError(f"the keystore {path} is corrupted: {field} is not canonical base64")
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (mode 0600): a crash leaves the old file or the new, never half."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise SecretsError(f"cannot write the keystore {path}: {e.strerror}") from e
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode != FILE_MODE:
        raise SecretsError(f"the keystore {path} has mode {mode:04o} after writing, expected 0600")
