"""``nutcracker serve`` as a user starts it: a real process, the demo replay, the API on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from auth_factories import PASSWORD, MovableClock, make_users
from nutcracker.core.commands import Role
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[3]


def test_serve_demo_answers_pauses_a_symbol_by_curl_steps_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    users = tmp_path / "users.db"
    make_users(users, MovableClock(time.time()), ("olga", Role.OPERATOR, ["binance/replay"], False))
    users.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, "-m", "nutcracker.cli", "serve", "--demo", "--port", "0", "--users", str(users)]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", line)
        assert m, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = f"http://127.0.0.1:{m[1]}/api/v1"
        with httpx.Client(base_url=base, timeout=10) as c:
            deadline = time.monotonic() + 30
            while c.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, "the demo never became ready"
                time.sleep(0.2)
            login = c.post("/auth/login", json={"username": "olga", "password": PASSWORD})
            token = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            status = c.get("/status", headers=auth).json()
            assert [s["account"] for s in status["symbols"]] == ["binance/replay"]
            paused = c.post("/symbols/BTC-USDT/pause", json={"reason": "trying the API"}, headers=auth)
            assert paused.json()["status"] == "paused"
            kept = c.get("/symbols/BTC-USDT/suggestions", headers=auth)  # serve keeps them in its journal
            assert kept.json() == {"symbol": "BTC/USDT", "suggestions": []}, kept.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    with SqliteJournal(tmp_path / "out" / "serve-demo" / "demo.db") as journal:
        actions = [(a.actor, a.action) for a in journal.audit_log(50)]
        assert ("olga", "pause") in actions
        assert ("engine", "stop") in actions  # the engine shut down gracefully, and journaled it
