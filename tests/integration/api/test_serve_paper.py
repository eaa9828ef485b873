"""``nutcracker serve --mode paper`` end to end: a real process against the simulated exchange.

The SimServer (Binance's REST API over synthetic candles, moved one candle every 50 ms by a thread
here) serves public market data; the served engine paper-trades the example grid on it (local
matching), pulsing every 0.2 s on the wall clock. Over HTTP a user logs in, reads the status,
pauses BTC/USDT, sees the pause through the API (status, event stream) and, once the process
stopped on SIGINT, in the journal; a Prometheus scraper reads ``/metrics`` with the scrape token.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from auth_factories import PASSWORD, MovableClock, make_users
from nutcracker.core.commands import Role
from nutcracker.core.model import MarketInfo
from nutcracker.core.units import Precision
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[3]
GRID = ROOT / "examples" / "grid-btc-usdt.toml"
SYMBOL = "BTC/USDT"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))


@pytest.fixture
def market() -> Iterator[SimServer]:
    candles = synthetic_candles(3, 6_000, Decimal(100_000), BTC, symbol=SYMBOL)
    info = MarketInfo(SYMBOL, "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    sim = SimServer({SYMBOL: MarketSpec(info, candles)}, [SimAccount("k", "s", {})], manual=True)
    sim.start()
    sim.advance(400)  # the indicators' history
    stop = threading.Event()

    def move() -> None:
        while not stop.wait(0.05):
            sim.advance(1)

    mover = threading.Thread(target=move, name="market", daemon=True)
    mover.start()
    yield sim
    stop.set()
    mover.join(5)
    sim.stop()


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_serve_paper_logs_in_reads_status_pauses_and_the_api_and_journal_show_it(
    market: SimServer, tmp_path: Path
) -> None:
    users = tmp_path / "users.db"
    make_users(users, MovableClock(time.time()), ("olga", Role.OPERATOR, ["binance/paper"], False))
    users.chmod(0o600)
    journal, scrape_file = tmp_path / "paper.db", tmp_path / "scrape.token"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [
        sys.executable,
        "-m",
        "nutcracker.cli",
        "serve",
        "--config",
        str(GRID),
        "--mode",
        "paper",
        "--exchange-url",
        market.url,
        "--pulse-interval",
        "0.2",
        "--port",
        "0",
        "--users",
        str(users),
        "--journal",
        str(journal),
        "--metrics-token-file",
        str(scrape_file),
    ]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", line)
        assert m, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        assert str(scrape_file) in line  # where the scraper's token is; never the token itself
        scrape = scrape_file.read_text().strip()
        assert stat.S_IMODE(scrape_file.stat().st_mode) == 0o600
        assert len(scrape) >= 32
        assert scrape not in line
        base = f"http://127.0.0.1:{m[1]}"
        with httpx.Client(base_url=f"{base}/api/v1", timeout=10) as c:
            _wait("the paper engine", lambda: c.get("/ready").status_code == 200)
            assert c.get("/ready").json()["mode"] == "paper"
            login = c.post("/auth/login", json={"username": "olga", "password": PASSWORD})
            assert login.status_code == 200, login.text
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

            def symbol() -> dict[str, object]:
                body = c.get("/status", headers=auth).json()
                assert [s["account"] for s in body["symbols"]] == ["binance/paper"]
                assert body["mode"] == "paper"
                return dict(body["symbols"][0])

            _wait("a pulse on the market's candles", lambda: int(str(symbol()["updated_ts_ms"])) > 0)
            first = symbol()
            assert first["symbol"] == SYMBOL
            assert first["status"] != "paused"
            assert Decimal(str(first["price"])) > 0  # the sim's price, seen through paper mode
            paused = c.post("/symbols/BTC-USDT/pause", json={"reason": "paper e2e"}, headers=auth)
            assert paused.status_code == 200, paused.text
            assert paused.json()["outcome"] == "applied"
            assert paused.json()["status"] == "paused"
            before = int(str(symbol()["updated_ts_ms"]))
            time.sleep(1.0)  # five pulse intervals: the engine keeps running, the symbol stays paused
            after = symbol()
            assert after["status"] == "paused"
            assert "paper e2e" in str(after["reason"])
            assert int(str(after["updated_ts_ms"])) >= before
            events: list[dict[str, object]] = []
            with c.stream("GET", "/events", params={"since": 0}, headers=auth) as r:
                for text in r.iter_lines():
                    if text.startswith("data: "):
                        events.append(json.loads(text[6:]))
                        if any(e["kind"] == "audit" and "paper e2e" in json.dumps(e) for e in events):
                            break
            assert any(e["kind"] == "pulse" for e in events)
            metrics = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {scrape}"})
            assert metrics.status_code == 200
            assert 'nutcracker_pulses_total{symbol="BTC/USDT"}' in metrics.text
            assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    with SqliteJournal(journal) as store:
        actions = [(a.actor, a.action) for a in store.audit_log(50)]
        assert ("olga", "pause") in actions
        assert ("engine", "stop") in actions  # the paper engine shut down gracefully on SIGINT
        stored = store.load_symbol(SYMBOL)
        assert stored is not None
        assert stored.status == "paused"
        assert "paper e2e" in stored.status_reason
