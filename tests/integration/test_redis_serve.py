"""``nutcracker serve --store redis://…``: the control API in its own process, over scale-out workers.

Two ``nutcracker worker`` processes trade four symbols on the simulated exchange through a real
``redis-server``; a ``serve --store`` process (no engine of its own) shows their status from the
reports they publish and sends a pause through the Redis inbox to the symbol's owner, which applies
it between pulses and journals it with the user as actor. The fees it shows add up to the
journal's although it sees only some of the reports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from tests.integration.test_redis_workers import (
    PRECISION,
    keystore,
    owners,
    sim_server,
    start_worker,
    symbols_of,
    wait_for,
    write_config,
)

from auth_factories import PASSWORD, MovableClock, code, make_users
from nutcracker.advisor.suggestion import symbol_table_hash
from nutcracker.config import load_config
from nutcracker.core.commands import Role
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_suggestions import RedisSuggestions

ROOT = Path(__file__).resolve().parents[2]


def _until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _start_serve(
    redis_url: str, config: Path, users: Path, tmp_path: Path
) -> tuple[subprocess.Popen[str], str]:
    """Start ``nutcracker serve --store`` on a free port; return it and its API's base URL."""
    users.chmod(0o600)
    argv = [sys.executable, "-m", "nutcracker.cli", "serve", "--store", redis_url, "--config", str(config)]
    argv += ["--key", "w", "--port", "0", "--users", str(users)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # no key: serve --store trades nothing
    api = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert api.stdout is not None
    line = api.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", line)
    assert m, line + (api.stderr.read() if api.poll() is not None and api.stderr else "")
    return api, f"http://127.0.0.1:{m[1]}/api/v1"


def _stop_serve(api: subprocess.Popen[str]) -> None:
    api.send_signal(signal.SIGINT)
    assert api.wait(30) == 0, api.stderr.read() if api.stderr else ""


def _stop_all(processes: list[subprocess.Popen[bytes]], api: subprocess.Popen[str] | None) -> None:
    for p in [*processes, *([api] if api is not None else [])]:
        if p.poll() is None:
            p.kill()
        p.wait()
    if api is not None:
        for stream in (api.stdout, api.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
def test_serve_store_shows_the_workers_symbols_and_pauses_one_through_its_owner(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbols = symbols_of(4)
    server = sim_server(symbols, speed=5.0)
    server.start()
    server.advance(400)
    processes: list[subprocess.Popen[bytes]] = []
    api: subprocess.Popen[str] | None = None
    try:
        config = write_config(tmp_path / "workers.toml", symbols, budget=4_000)
        keys = keystore(tmp_path, monkeypatch)
        log = tmp_path / "workers.log"
        processes += [start_worker(o, redis_url, config, server.url, keys, log) for o in ("wa", "wb")]
        wait_for("every symbol owned", lambda: all(owners(redis_url).values()), 30, log)
        users = tmp_path / "users.db"
        make_users(users, MovableClock(time.time()), ("olga", Role.OPERATOR, ["binance/w"], False))
        api, base_url = _start_serve(redis_url, config, users, tmp_path)
        journal = RedisJournal(redis_url)
        with httpx.Client(base_url=base_url, timeout=15) as c:
            login = c.post("/auth/login", json={"username": "olga", "password": PASSWORD})
            assert login.status_code == 200, login.text
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

            def status() -> dict[str, dict[str, object]]:
                body = c.get("/status", headers=auth).json()
                assert body["mode"] == "workers"
                return {str(s["symbol"]): s for s in body["symbols"]}

            # the workers' reports: every symbol priced and pulsing, in this process that trades nothing
            _until("every symbol's report", lambda: all(s["price"] for s in status().values()), 30)
            assert set(status()) == set(symbols)
            assert c.get("/ready").status_code == 200

            target = symbols[0]
            slug = target.replace("/", "-")
            owner = owners(redis_url)[target]
            paused = c.post(f"/symbols/{slug}/pause", json={"reason": "fleet e2e"}, headers=auth)
            assert paused.status_code == 200, paused.text
            assert paused.json()["outcome"] == "applied", paused.json()  # the owner journaled it
            assert paused.json()["status"] == "paused"
            stored = journal.load_symbol(target)
            assert stored is not None
            assert stored.status == "paused"  # written by the owner, under its lease
            audit = [(a.actor, a.action, a.detail) for a in journal.audit_log(20)]
            assert any(
                actor == "olga" and action == "pause" and "fleet e2e" in d for actor, action, d in audit
            )
            _until(
                "the owner's report of the pause",
                lambda: (
                    status()[target]["status"] == "paused" and "fleet e2e" in str(status()[target]["reason"])
                ),
                15,
            )
            assert owners(redis_url)[target] == owner
            others = [s for s in symbols if s != target]
            assert all(status()[s]["status"] != "paused" for s in others)

            # fees: every fill the workers booked counts once, although most reports are never read
            _until("a fill booked", lambda: any(journal.fills(s) for s in others), 60)
            filled = next(s for s in others if journal.fills(s))

            def fees_agree() -> bool:
                booked = sum(row.fee for row in journal.fills(filled))
                return Decimal(str(status()[filled]["fees"])) == PRECISION.qu_to_quote(booked)

            _until(f"{filled}'s fees as journaled", fees_agree, 15)

            resumed = c.post(f"/symbols/{slug}/resume", json={"reason": "fleet e2e over"}, headers=auth)
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["outcome"] == "applied"
            _until("the resumed symbol pulsing", lambda: status()[target]["status"] != "paused", 15)

            # every symbol at once: each to its own owner (the two workers), all applied
            everything = c.post("/pause", json={"reason": "fleet e2e, all"}, headers=auth)
            assert everything.status_code == 200, everything.text
            assert sorted((r["symbol"], r["outcome"]) for r in everything.json()) == [
                (s, "applied") for s in sorted(symbols)
            ]
            assert all(journal.load_symbol(s).status == "paused" for s in symbols)  # type: ignore[union-attr]
            assert c.post("/resume", json={"reason": "fleet e2e, all over"}, headers=auth).status_code == 200
        journal.close()
        _stop_serve(api)
    finally:
        _stop_all(processes, api)
        server.stop()


@pytest.mark.slow
def test_the_owner_decides_the_advisors_suggestions_through_serve_store_and_the_worker_applies_them(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Suggestions filed in the workers' Redis (as ``advise --store`` files them) are listed by
    ``serve --store``; the owner's accept (step-up ``params``) goes to the symbol's worker, which
    applies the parameters and journals the decision, as a reject is journaled too."""
    symbols = symbols_of(1)
    target, slug = symbols[0], symbols[0].replace("/", "-")
    server = sim_server(symbols, speed=5.0)
    server.start()
    server.advance(400)
    processes: list[subprocess.Popen[bytes]] = []
    api: subprocess.Popen[str] | None = None
    try:
        config = write_config(tmp_path / "workers.toml", symbols, budget=4_000)
        log = tmp_path / "workers.log"
        processes.append(
            start_worker("wa", redis_url, config, server.url, keystore(tmp_path, monkeypatch), log)
        )
        wait_for("the symbol owned", lambda: all(owners(redis_url).values()), 30, log)
        users = tmp_path / "users.db"
        secrets = make_users(
            users,
            MovableClock(time.time()),
            ("oscar", Role.OWNER, ["binance/w"], True),
            ("olga", Role.OPERATOR, ["binance/w"], False),
        )
        kept = RedisSuggestions(redis_url)
        now_ms = time.time_ns() // 1_000_000
        made_for = symbol_table_hash(load_config(config), target)
        for sid, patch, base in (
            ("s-yes", {"profit": {"min_net_bps": "12"}}, made_for),
            ("s-no", {"grid": {"levels": 2}}, made_for),
            ("s-stale", {"grid": {"levels": 4}}, "another config"),
        ):
            record = {"id": sid, "symbol": target, "summary": "test", "confidence": 1.0, "patch": patch}
            record |= {"diff": {}, "base_config_hash": base}
            assert kept.file(sid, target, json.dumps(record), now_ms, now_ms + 86_400_000)
        api, base_url = _start_serve(redis_url, config, users, tmp_path)
        journal = RedisJournal(redis_url)
        with httpx.Client(base_url=base_url, timeout=15) as c:
            at = time.time()
            login = c.post(
                "/auth/login",
                json={"username": "oscar", "password": PASSWORD, "totp_code": code(secrets["oscar"], at)},
            )
            assert login.status_code == 200, login.text
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            olga = c.post("/auth/login", json={"username": "olga", "password": PASSWORD}).json()
            url = f"/symbols/{slug}/suggestions"

            listed = c.get(url, headers={"Authorization": f"Bearer {olga['access_token']}"})
            assert listed.status_code == 200, listed.text  # every role reads them
            assert {s["id"]: s["status"] for s in listed.json()["suggestions"]} == {
                "s-yes": "pending",
                "s-no": "pending",
                "s-stale": "pending",
            }
            # a step-up with the next TOTP step (the login used this one; a code is good once)
            step = c.post(
                "/auth/step-up",
                json={"action": "params", "totp_code": code(secrets["oscar"], at + 30)},
                headers=auth,
            )
            assert step.status_code == 200, step.text
            up = {**auth, "X-Step-Up-Token": step.json()["step_up_token"]}

            stale = c.post(f"{url}/s-stale/accept", json={}, headers=up)
            assert stale.status_code == 409, stale.text
            assert "changed since this suggestion was made" in stale.json()["detail"]
            accepted = c.post(f"{url}/s-yes/accept", json={"reason": "fleet"}, headers=up)
            assert accepted.status_code == 200, accepted.text
            assert (accepted.json()["status"], accepted.json()["outcome"]) == ("accepted", "applied")
            rejected = c.post(f"{url}/s-no/reject", json={"reason": "too few"}, headers=auth)
            assert rejected.status_code == 200, rejected.text
            after = {s["id"]: s for s in c.get(url, headers=auth).json()["suggestions"]}
            assert {i: s["status"] for i, s in after.items()} == {
                "s-yes": "accepted",
                "s-no": "rejected",
                "s-stale": "pending",
            }
            assert after["s-yes"]["decided_by"] == "oscar"

        # the worker journaled it all, under its lease, with oscar as the actor
        latest = journal.params_history(target)[-1]
        assert (latest.actor, latest.version) == ("oscar", accepted.json()["version"])
        assert "accepted suggestion s-yes; fleet" in latest.why
        assert '"min_net_bps":"12"' in latest.config_json.replace(" ", ""), latest.config_json
        audit = [(a.actor, a.action, a.detail) for a in journal.audit_log(20)]
        for action, sid in (("accept_suggestion", "s-yes"), ("reject_suggestion", "s-no")):
            assert any(e[:2] == ("oscar", action) and f"suggestion={sid}" in e[2] for e in audit), audit
        journal.close()
        _stop_serve(api)
    finally:
        _stop_all(processes, api)
        server.stop()
