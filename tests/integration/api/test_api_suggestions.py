"""Accepting the advisor's suggestions over the API, on a real uvicorn with the engine replaying behind it.

Acceptance is the owner's parameter change (step-up ``params``) sent through ``Engine.submit``: the
next pulse trades with the suggested parameters, and the journal shows the owner and the
suggestion's id. Both decisions are in the journal's audit (``accept_suggestion``,
``reject_suggestion``) with the owner, their role, their address and their reason. One test files
a pending record through the store (the setup); the last one has ``nutcracker advise`` (a separate
process on the running engine's journal) produce it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import test_api_served
from api_served import GRID, Served
from test_api_served import Users

from nutcracker.advisor.suggestion import symbol_table_hash
from nutcracker.api.routers.suggestions import enable
from nutcracker.backtest.data import load_data
from nutcracker.config import load_config
from nutcracker.store.suggestions import SuggestionStore

API = "/api/v1"
PROBLEM = "application/problem+json"
DAY_MS = 86_400_000
UNSEEDED = GRID.parents[1] / "tests" / "fixtures" / "unseeded-grid-btc-usdt.toml"  # the old demo ladder


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Users]:
    u = Users(tmp_path)
    yield u
    u.service.close()


@pytest.fixture
def served(tmp_path: Path, users: Users) -> Iterator[Served]:
    accounts = {"BTC/USDT": "binance/alice", "ETH/USDT": "binance/bob"}
    with Served(tmp_path, users.service, accounts=accounts) as s:
        s.users = users  # type: ignore[attr-defined]  # Users.step_up logs in through it
        enable(s.app, s.journal_path)
        yield s


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for c in [*_clients, *test_api_served._clients]:  # Users.step_up's clients are that module's
        c.close()
    _clients.clear()
    test_api_served._clients.clear()


_clients: list[httpx.Client] = []


def _client(served: Served, users: Users, user: str = "olga") -> httpx.Client:
    token = users.token(served, user)
    c = httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    _clients.append(c)
    return c


def _problem(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "Traceback" not in r.text
    return str(r.json()["detail"])


def _file(served: Served, sid: str, patch: dict[str, dict[str, object]], *, expires_in_ms: int) -> None:
    """File a pending suggestion for BTC/USDT made against the running config (the test's setup)."""
    record = {
        "id": sid,
        "symbol": "BTC/USDT",
        "summary": "test record",
        "confidence": 1.0,
        "patch": patch,
        "diff": {},
        "base_config_hash": symbol_table_hash(served.config, "BTC/USDT"),
    }
    now = time.time_ns() // 1_000_000
    SuggestionStore(served.journal_path).file(
        sid, "BTC/USDT", json.dumps(record), now - 1_000, now + expires_in_ms
    )


def _audit(client: httpx.Client) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = client.get(f"{API}/audit", params={"limit": 50}).json()["entries"]
    return entries


def _buys(report: object) -> int:
    return len([o for o in report.open_orders if o.side.value == "buy"])  # type: ignore[attr-defined]


def test_the_owner_accepts_a_suggestion_with_step_up_and_the_next_pulse_trades_it(
    served: Served, users: Users
) -> None:
    served.step(3)
    before = {r.symbol: r for r in served.step()}["BTC/USDT"]
    assert _buys(before) > 3  # five levels and five seeds configured (the budget places fewer)
    _file(served, "s-fewer", {"grid": {"levels": 3}}, expires_in_ms=DAY_MS)
    _file(served, "s-old", {"grid": {"levels": 2}}, expires_in_ms=-1)
    _file(served, "s-no", {"grid": {"levels": 2}}, expires_in_ms=DAY_MS)
    olga, vic, alice = (_client(served, users, u) for u in ("olga", "vic", "alice"))
    url = f"{API}/symbols/BTC-USDT/suggestions"

    listed = vic.get(url)  # a viewer sees them
    assert listed.status_code == 200, listed.text
    assert {s["id"]: s["status"] for s in listed.json()["suggestions"]} == {
        "s-fewer": "pending",
        "s-old": "expired",
        "s-no": "pending",
    }
    assert olga.get(f"{url}/s-fewer").json()["record"]["patch"] == {"grid": {"levels": 3}}
    _problem(olga.get(f"{url}/nope"), 404)
    _problem(olga.get(f"{API}/symbols/ETH-USDT/suggestions/s-fewer"), 404)  # not that symbol's

    # who may accept: the owner, with a step-up for params
    assert "needs owner" in _problem(alice.post(f"{url}/s-fewer/accept", json={}), 403)
    assert "needs owner" in _problem(vic.post(f"{url}/s-fewer/accept", json={}), 403)
    assert "step-up" in _problem(olga.post(f"{url}/s-fewer/accept", json={}), 403)
    wrong = users.step_up(served, "resume_killed")
    _problem(olga.post(f"{url}/s-fewer/accept", json={}, headers=wrong), 403)

    # an expired or rejected suggestion cannot be accepted
    assert "expired, not pending" in _problem(
        olga.post(f"{url}/s-old/accept", json={}, headers=users.step_up(served, "params")), 409
    )
    assert "needs owner" in _problem(alice.post(f"{url}/s-no/reject", json={}), 403)
    rejected = olga.post(f"{url}/s-no/reject", json={"reason": "too few levels"})
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["command_id"]) == ("rejected", "api:olga:reject-s-no")
    # the rejection is in the journal's audit: who (user, role), from where, what and why
    (entry,) = [a for a in _audit(olga) if a["action"] == "reject_suggestion"]
    assert entry["actor"] == "olga"
    assert entry["detail"] == (
        "symbol=BTC/USDT command=api:olga:reject-s-no role=owner suggestion=s-no "
        "why=rejected suggestion s-no; too few levels (API, from 127.0.0.1)"
    )
    assert "rejected, not pending" in _problem(olga.post(f"{url}/s-no/reject", json={}), 409)
    assert len([a for a in _audit(olga) if a["action"] == "reject_suggestion"]) == 1
    assert "rejected, not pending" in _problem(
        olga.post(f"{url}/s-no/accept", json={}, headers=users.step_up(served, "params")), 409
    )
    assert len(served.journal.params_history("BTC/USDT")) == 1  # nothing changed so far

    r = olga.post(
        f"{url}/s-fewer/accept", json={"reason": "less exposure"}, headers=users.step_up(served, "params")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["outcome"], body["version"]) == ("accepted", "applied", 2)
    assert body["command_id"] == "api:olga:suggestion-s-fewer"
    # the next pulse trades the suggestion's parameters
    after = {r.symbol: r for r in served.step()}["BTC/USDT"]
    assert _buys(after) == 3
    params = olga.get(f"{API}/symbols/BTC-USDT/params").json()
    assert (params["version"], params["params"]["grid"]["levels"]) == (2, 3)
    # the owner's act, with the suggestion's id: in the parameter history and the audit
    history = served.journal.params_history("BTC/USDT")
    assert history[-1].actor == "olga"
    assert history[-1].why.startswith("accepted suggestion s-fewer; less exposure (API, from 127.0.0.1")
    audit = olga.get(f"{API}/audit", params={"limit": 50}).json()["entries"]
    entry = next(a for a in audit if "command=api:olga:suggestion-s-fewer" in a["detail"])
    assert entry["actor"] == "olga"
    assert "accepted suggestion s-fewer" in entry["detail"]
    assert "role=owner" in entry["detail"]
    (decision,) = [a for a in audit if a["action"] == "accept_suggestion"]  # as the CLI's accept
    assert decision["actor"] == "olga"
    assert decision["detail"] == (
        "symbol=BTC/USDT command=api:olga:suggestion-s-fewer:decision role=owner suggestion=s-fewer "
        "why=accepted suggestion s-fewer; less exposure (API, from 127.0.0.1)"
    )
    shown = vic.get(f"{url}/s-fewer").json()
    assert (shown["status"], shown["decided_by"]) == ("accepted", "olga")
    # accepted once: a second accept is a conflict, and nothing changes
    again = olga.post(f"{url}/s-fewer/accept", json={}, headers=users.step_up(served, "params"))
    assert "accepted, not pending" in _problem(again, 409)
    assert len(served.journal.params_history("BTC/USDT")) == 2


def test_a_suggestion_made_for_other_parameters_is_refused(served: Served, users: Users) -> None:
    served.step(2)
    _file(served, "s-stale", {"grid": {"levels": 3}}, expires_in_ms=DAY_MS)
    olga = _client(served, users)
    changed = olga.put(
        f"{API}/symbols/BTC-USDT/params",
        json={"reason": "wider profit", "patch": {"profit": {"min_net_bps": "15"}}},
        headers=users.step_up(served, "params"),
    )
    assert changed.status_code == 200, changed.text
    r = olga.post(
        f"{API}/symbols/BTC-USDT/suggestions/s-stale/accept", json={}, headers=users.step_up(served, "params")
    )
    assert "parameters changed since" in _problem(r, 409)
    assert len(served.journal.params_history("BTC/USDT")) == 2


def test_a_server_without_a_journal_file_keeps_no_suggestions(tmp_path: Path, users: Users) -> None:
    with Served(tmp_path, users.service) as s:  # enable() not called
        s.users = users  # type: ignore[attr-defined]
        r = _client(s, users).get(f"{API}/symbols/BTC-USDT/suggestions")
        assert "keeps no suggestions" in _problem(r, 503)


ADVISOR = (
    '\n[advisor]\nfolds = 2\n\n[advisor.tune]\n"profit.min_net_bps" = ["5", "30"]\n"grid.levels" = [2, 6]\n'
)
DATA = "binance_BTC-USDT_1m_20240726-20240825.csv.gz"


@pytest.mark.slow
def test_a_suggestion_advise_made_beside_the_running_engine_is_accepted_over_the_api(
    tmp_path: Path, users: Users, data_dir: Path
) -> None:
    config = tmp_path / "grid.toml"
    # the old unseeded ladder: a search beats it on this file (on the seeded example it keeps yours)
    config.write_text(UNSEEDED.read_text() + ADVISOR)
    csv = data_dir / DATA
    served = Served(tmp_path, users.service, config=config, accounts={"BTC/USDT": "binance/main"})
    served.data = load_data(load_config(config), {"BTC/USDT": csv}, synthetic=0, seed=0)
    served.users = users  # type: ignore[attr-defined]
    with served:
        enable(served.app, served.journal_path)
        served.step(3_000)  # two days of the user's trading: fills, cycles
        assert served.journal.fills("BTC/USDT")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "nutcracker.cli",
                "advise",
                "--config",
                str(config),
                "--journal",
                str(served.journal_path),
                "--data",
                f"BTC/USDT={csv}",
                "--trials",
                "6",
                "--seed",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        assert "filed 1 suggestion" in result.stdout, result.stdout
        olga = _client(served, users)
        listed = olga.get(f"{API}/symbols/BTC-USDT/suggestions").json()["suggestions"]
        assert [s["status"] for s in listed] == ["pending"]
        sid, diff = listed[0]["id"], listed[0]["diff"]
        r = olga.post(
            f"{API}/symbols/BTC-USDT/suggestions/{sid}/accept",
            json={},
            headers=users.step_up(served, "params"),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["outcome"], r.json()["version"]) == ("applied", 2)
        served.step()
        params = olga.get(f"{API}/symbols/BTC-USDT/params").json()["params"]
        for name, change in diff.items():
            section, key = name.split(".")
            assert str(params[section][key]) == str(change["to"])
        history = served.journal.params_history("BTC/USDT")
        assert (history[-1].actor, history[-1].why.split(" (API")[0]) == (
            "olga",
            f"accepted suggestion {sid}",
        )
        # the engine pulses with the suggested parameters: exactly the accepted config's
        accepted = load_config(config)
        for name, change in diff.items():
            section, key = name.split(".")
            assert str(getattr(getattr(served.plane.config.symbol[0], section), key)) == str(change["to"])
            assert str(getattr(getattr(accepted.symbol[0], section), key)) == str(change["from"])
        engine_params = served.setup.engine.worker("BTC/USDT").params
        assert engine_params == served.plane.config.symbol[0].to_params(served.plane.config.engine.id)
        assert engine_params != accepted.symbol[0].to_params(accepted.engine.id)
