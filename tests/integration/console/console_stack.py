"""A real stack for the console's end-to-end tests and its benchmark, each in its own process:
``nutcracker serve --demo`` (engine + API), users made with ``nutcracker users``, ``nutcracker console``
(Streamlit), and Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OWNER, OWNER_PASSWORD = "alice", "correct-horse-battery-staple-9"
WATCHER, WATCHER_PASSWORD = "watcher", "a-viewer-who-checks-the-api-42"  # no TOTP: the test's own reads
OPERATOR, OPERATOR_PASSWORD = "bob", "an-operator-without-totp-77"  # pauses, kills; no step-up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def why_not_runnable() -> str | None:
    """Why the end-to-end stack cannot run here (None: it can)."""
    if not CHROMIUM.exists():  # .ci/run installs it: only a hand-made machine lacks it
        return "Debian's chromium is not installed (/usr/bin/chromium: apt-get install chromium)"
    return None


def _cli(*args: str, cwd: Path, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nutcracker.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"nutcracker {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def _wait(url: str, what: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not answer {url} in {timeout_s:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@dataclass
class Stack:
    api: str
    console: str
    totp: pyotp.TOTP
    tmp: Path

    def fresh_code(self) -> str:
        """A TOTP code of a step the server has not seen yet (a code is refused the second time)."""
        step = self.totp.interval
        time.sleep(step - time.time() % step + 0.5)
        return self.totp.now()


@contextmanager
def serve_stack(
    tmp: Path, *, speed: float | None = None, config: Path | None = None, console: bool = True
) -> Iterator[Stack]:
    """The demo engine and its API, and the console on it, on free loopback ports."""
    users = tmp / "users.db"
    _cli(
        "users",
        "add",
        OWNER,
        "--role",
        "owner",
        "--users",
        str(users),
        "--password-stdin",
        cwd=tmp,
        stdin=OWNER_PASSWORD + "\n",
    )
    _cli(
        "users",
        "add",
        WATCHER,
        "--role",
        "viewer",
        "--users",
        str(users),
        "--password-stdin",
        cwd=tmp,
        stdin=WATCHER_PASSWORD + "\n",
    )
    _cli(
        "users",
        "add",
        OPERATOR,
        "--role",
        "operator",
        "--users",
        str(users),
        "--password-stdin",
        cwd=tmp,
        stdin=OPERATOR_PASSWORD + "\n",
    )
    found = re.search(
        r"secret=([A-Z2-7]+)", _cli("users", "totp", "enable", OWNER, "--users", str(users), cwd=tmp)
    )
    assert found, "users totp enable printed no otpauth URI"
    api_port, console_port = free_port(), free_port()
    serve_args = ["serve", "--users", str(users), "--port", str(api_port)]
    serve_args += ["--config", str(config)] if config else ["--demo"]
    if speed is not None:
        serve_args += ["--speed", str(speed)]
    logs = [open(tmp / "serve.log", "wb"), open(tmp / "console.log", "wb")]  # noqa: SIM115
    api = f"http://127.0.0.1:{api_port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "nutcracker.cli", *serve_args],
        cwd=tmp,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ui = None
    try:
        _wait(f"{api}/api/v1/ready", "nutcracker serve", server)
        url = ""
        if not console:
            yield Stack(api, url, pyotp.TOTP(found.group(1)), tmp)
            return
        ui = subprocess.Popen(
            [sys.executable, "-m", "nutcracker.cli", "console", "--api", api, "--port", str(console_port)],
            cwd=tmp,
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{console_port}"
        _wait(f"{url}/_stcore/health", "nutcracker console", ui)
        yield Stack(api, url, pyotp.TOTP(found.group(1)), tmp)
    finally:
        for process in (ui, server):
            if process is not None:
                _stop(process)
        for log in logs:
            log.close()
