"""``nutcracker users`` in real processes: the users file it writes is the one the token service reads.

Passwords go in on standard input only, and come out nowhere: not in the output, not in the file.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from nutcracker.api.auth import MIN_PASSWORD, AuthService, key_path_for
from nutcracker.api.principal import AuthError, StepUpAction
from nutcracker.cli import EXIT_CONFIG, app

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long and private passphrase"


def _nutcracker(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", "from nutcracker.cli import app; app(prog_name='nutcracker')", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.slow  # five processes, real argon2
def test_a_user_added_on_the_command_line_logs_in_steps_up_and_is_removed(tmp_path: Path) -> None:
    added = _nutcracker(
        "users", "add", "alice", "--role", "owner", "--password-stdin", stdin=PASSWORD + "\n", cwd=tmp_path
    )
    assert added.returncode == 0, added.stderr
    assert "added alice: owner on every account" in added.stdout
    users = tmp_path / "nutcracker-users.db"  # the default, in the working directory
    assert stat.S_IMODE(users.stat().st_mode) == 0o600

    viewer = _nutcracker(
        "users", "add", "bob", "--role", "viewer", "--account", "binance/main", "--account", "kraken/side",
        "--users", str(users), "--password-stdin", stdin=PASSWORD + " two\n",
    )  # fmt: skip
    assert viewer.returncode == 0, viewer.stderr
    listed = _nutcracker("users", "list", "--users", str(users))
    assert listed.stdout.splitlines()[0].startswith("alice  owner on *  totp off  created ")
    assert listed.stdout.splitlines()[1].startswith(
        "bob  viewer on binance/main, viewer on kraken/side  totp off"
    )

    totp = _nutcracker("users", "totp", "enable", "alice", "--users", str(users))
    assert totp.returncode == 0, totp.stderr
    uri = next(
        line for line in totp.stdout.splitlines() if line.startswith("otpauth://totp/Nutcracker:alice?")
    )
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    assert "▀" in totp.stdout or "█" in totp.stdout  # the QR code, drawn with block characters

    service = AuthService.open(users)
    login_code = pyotp.TOTP(secret).now()
    pair = service.login("alice", PASSWORD, login_code, "127.0.0.1")
    alice = service.authenticate(pair.access_token)
    with pytest.raises(AuthError, match="wrong or already used"):  # the login's code is spent
        service.step_up(alice, login_code, StepUpAction.PARAMS)

    removed = _nutcracker("users", "remove", "alice", "--users", str(users))
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(AuthError, match="revoked"):
        service.authenticate(pair.access_token)
    service.close()

    everything = added.stdout + added.stderr + viewer.stdout + listed.stdout + totp.stdout + removed.stdout
    assert PASSWORD not in everything
    with sqlite3.connect(users) as db:
        dump = "\n".join(db.iterdump())
    assert PASSWORD not in dump
    assert "$argon2id$" in dump
    assert key_path_for(users).exists()


@pytest.mark.slow  # two processes, real argon2
def test_passwd_sets_a_new_password_and_ends_the_sessions(tmp_path: Path) -> None:
    users = str(tmp_path / "users.db")
    _nutcracker(
        "users", "add", "bob", "--role", "operator", "--users", users, "--password-stdin", stdin=PASSWORD
    )
    service = AuthService.open(Path(users))
    pair = service.login("bob", PASSWORD, None, "127.0.0.1")
    changed = _nutcracker(
        "users", "passwd", "bob", "--users", users, "--password-stdin", stdin="another fine passphrase\n"
    )
    assert changed.returncode == 0, changed.stderr
    with pytest.raises(AuthError):
        service.authenticate(pair.access_token)
    with pytest.raises(AuthError):
        service.login("bob", PASSWORD, None, "127.0.0.1")
    assert service.login("bob", "another fine passphrase", None, "127.0.0.1").access_token
    service.close()


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("tiny-pw", f"password too short: use at least {MIN_PASSWORD} characters"),
        ("x" * 1025, "password too long"),
        ("  Carol-The-Admin  ", "password equals the user name"),
    ],
    ids=["short", "too-long", "user-name"],
)
def test_a_weak_password_is_refused_in_one_line_and_nothing_is_added(
    tmp_path: Path, password: str, fragment: str
) -> None:
    users = tmp_path / "users.db"
    args = ["users", "add", "carol-the-admin", "--role", "owner", "--users", str(users), "--password-stdin"]
    result = CliRunner().invoke(app, args, input=password + "\n")
    assert result.exit_code == EXIT_CONFIG
    assert [line for line in result.output.splitlines() if line.strip()] == [f"✗ {result.output.strip()[2:]}"]
    assert fragment in result.output
    assert password.strip() not in result.output
    listed = CliRunner().invoke(app, ["users", "list", "--users", str(users)])
    assert "holds no user" in listed.output


def test_a_missing_users_file_is_not_created_by_list_or_remove(tmp_path: Path) -> None:
    for args in (["users", "list"], ["users", "remove", "alice"], ["users", "totp", "enable", "alice"]):
        result = CliRunner().invoke(app, [*args, "--users", str(tmp_path / "users.db")])
        assert result.exit_code == EXIT_CONFIG
    assert list(tmp_path.iterdir()) == []
