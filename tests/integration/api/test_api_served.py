"""The control API served by a real uvicorn on a loopback port, the engine replaying behind it.

Every test drives the API with ``httpx`` over TCP, moves the replay candle by candle
(``api_served.Served``) and checks what the engine, the simulated exchange and the journal did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_served import Served

from auth_factories import PASSWORD, MovableClock, cheap_passwords, code, make_users
from nutcracker.api.auth import AuthService
from nutcracker.core.commands import Role
from nutcracker.store.sqlite import SqliteJournal

API = "/api/v1"
PROBLEM = "application/problem+json"


class Users:
    """The real token service over a users file: olga (owner of every account, with TOTP), vic (viewer of
    every account) and alice (operator of ``binance/alice`` only); logins and step-ups over HTTP."""

    def __init__(self, tmp: Path) -> None:
        self.clock = MovableClock(time.time())
        path = tmp / "users.db"
        self.secrets = make_users(
            path,
            self.clock,
            ("olga", Role.OWNER, ["*"], True),
            ("vic", Role.VIEWER, ["*"], False),
            ("alice", Role.OPERATOR, ["binance/alice"], False),
        )
        path.chmod(0o600)
        self.service = AuthService.open(path, clock=self.clock, passwords=cheap_passwords())
        self.tokens: dict[str, str] = {}

    def totp(self, user: str) -> str:
        self.clock.advance(30)  # a code is good once: each use takes the next time step's
        return code(self.secrets[user], self.clock.now)

    def token(self, served: Served, user: str) -> str:
        if user not in self.tokens:
            body: dict[str, object] = {"username": user, "password": PASSWORD}
            if user in self.secrets:
                body["totp_code"] = self.totp(user)
            with httpx.Client(base_url=served.base_url) as c:
                r = c.post(f"{API}/auth/login", json=body)
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    def step_up(self, served: Served, action: str, user: str = "olga") -> dict[str, str]:
        """Return the X-Step-Up-Token header of a fresh step-up for ``action``."""
        r = client(served, user).post(
            f"{API}/auth/step-up", json={"action": action, "totp_code": self.totp(user)}
        )
        assert r.status_code == 200, r.text
        return {"X-Step-Up-Token": r.json()["step_up_token"]}


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Users]:
    u = Users(tmp_path)
    yield u
    u.service.close()


SCRAPE_TOKEN = "scrape-" + "x" * 40  # the server's /metrics scrape token (serve --metrics-token-file)


@pytest.fixture
def served(tmp_path: Path, users: Users) -> Iterator[Served]:
    accounts = {"BTC/USDT": "binance/alice", "ETH/USDT": "binance/bob"}
    with Served(tmp_path, users.service, accounts=accounts, heartbeat_s=0.2, metrics_token=SCRAPE_TOKEN) as s:
        s.users = users  # type: ignore[attr-defined]
        yield s
    for c in _clients:
        c.close()
    _clients.clear()


_clients: list[httpx.Client] = []


def client(served: Served, user: str | None = "olga", *, raw_token: str | None = None) -> httpx.Client:
    """An HTTP client of ``user`` (logged in for real), of no one (None), or with a given token."""
    token = raw_token or (served.users.token(served, user) if user else None)  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    c = httpx.Client(base_url=served.base_url, headers=headers, timeout=10)
    _clients.append(c)
    return c


def step_up(served: Served, action: str) -> dict[str, str]:
    return served.users.step_up(served, action)  # type: ignore[attr-defined, no-any-return]


def is_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = r.json()
    assert body["status"] == status
    assert "Traceback" not in r.text
    return body


def test_health_and_readiness_need_no_token_everything_else_does(served: Served) -> None:
    anon = client(served, None)
    assert anon.get(f"{API}/health").json() == {"status": "ok"}
    is_problem(anon.get(f"{API}/ready"), 503)  # no pulse yet
    served.step()
    assert anon.get(f"{API}/ready").json() == {"ready": True, "mode": "replay", "symbols": 2}
    for path in ("/status", "/symbols/BTC-USDT/fills", "/audit", "/events"):
        body = is_problem(anon.get(API + path), 401)
        assert "Bearer" in str(body["detail"])
    is_problem(anon.get("/metrics"), 401)
    is_problem(client(served, raw_token="forged.jwt.token").get(f"{API}/status"), 401)


def test_status_shows_state_reason_rails_and_pnl_as_the_engine_has_them(served: Served) -> None:
    served.step(5)
    body = client(served).get(f"{API}/status").json()
    latest = served.plane.engine.latest()
    assert [s["symbol"] for s in body["symbols"]] == ["BTC/USDT", "ETH/USDT"]
    for s in body["symbols"]:
        report = latest[s["symbol"]]
        assert s["status"] == report.status
        assert s["reason"] == report.status_reason
        assert "below the market" in s["reason"]
        assert s["open_orders"] == len(report.open_orders) > 0
        assert s["committed_quote"]["used"] == format(
            report.quote(report.committed_quote_qu).normalize(), "f"
        )
    btc = body["symbols"][0]
    assert btc["inventory"] == {"used": "0", "limit": "0.15", "headroom": "0.15", "asset": "BTC"}
    assert btc["committed_quote"]["limit"] == "2000"
    one = client(served).get(f"{API}/symbols/BTC-USDT/status").json()
    assert one == btc


def test_views_of_one_symbol_pulses_orders_and_parameters(served: Served) -> None:
    served.step(3)
    c = client(served)
    pulses = c.get(f"{API}/symbols/BTC-USDT/pulses", params={"limit": 2}).json()["pulses"]
    assert [p["seq"] for p in pulses] == [3, 2]  # newest first
    three = c.get(f"{API}/symbols/BTC-USDT/pulses", params={"limit": 3}).json()["pulses"]
    placed = [i for p in three for i in p["intents"] if i["action"] == "place"]
    assert placed
    assert all(i["status"] == "acked" and i["price"] for i in placed)
    orders = c.get(f"{API}/symbols/BTC-USDT/orders").json()["orders"]
    resting = served.call(served.setup.exchange.fetch_open_orders("BTC/USDT"))
    assert sorted(o["client_order_id"] for o in orders) == sorted(o.client_order_id for o in resting)
    params = c.get(f"{API}/symbols/BTC-USDT/params").json()
    assert params["version"] == 1
    assert params["params"]["grid"]["levels"] == 6
    assert params["params"]["profit"]["min_net_bps"] == "10"


def _until_fills(served: Served, symbol: str, n: int) -> None:
    for _ in range(2_500):
        served.step()
        if len(served.journal.fills(symbol)) >= n:
            return
    pytest.fail(f"fewer than {n} fills of {symbol} in the replay")


def test_fills_and_cycles_page_in_order_without_gaps_or_repeats(served: Served) -> None:
    _until_fills(served, "BTC/USDT", 5)
    c = client(served)
    everything = [f.trade_id for f in served.journal.fills("BTC/USDT")]
    got: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = c.get(f"{API}/symbols/BTC-USDT/fills", params={"limit": 2, "offset": offset}).json()
        assert page["total"] == len(everything)
        got += [f["trade_id"] for f in page["items"]]
        offset = page["next_offset"]
    assert got == everything
    third = served.journal.fills("BTC/USDT")[2]
    since = c.get(f"{API}/symbols/BTC-USDT/fills", params={"since": third.ts_ms}).json()
    assert [f["trade_id"] for f in since["items"]] == [
        f.trade_id for f in served.journal.fills("BTC/USDT") if f.ts_ms >= third.ts_ms
    ]
    cycles = c.get(f"{API}/symbols/BTC-USDT/cycles", params={"limit": 1000}).json()
    assert [x["cycle_id"] for x in cycles["items"]] == [x.cycle_id for x in served.journal.cycles("BTC/USDT")]


def test_pause_stops_the_symbol_placing_and_the_journal_says_who_why_and_from_where(served: Served) -> None:
    served.step(2)
    r = client(served).post(f"{API}/symbols/BTC-USDT/pause", json={"reason": "news at 14:00"})
    assert r.json()["outcome"] == "applied"
    assert r.json()["status"] == "paused"
    placed_before = {i.client_order_id for i in served.journal.intents("BTC/USDT") if i.action == "place"}
    served.step(150)
    placed_after = {i.client_order_id for i in served.journal.intents("BTC/USDT") if i.action == "place"}
    assert placed_after == placed_before  # nothing new while paused
    eth = [i for i in served.journal.intents("ETH/USDT") if i.action == "place"]
    assert eth  # the other symbol trades on
    audit = [a for a in served.journal.audit_log(50) if a.action == "pause"]
    assert len(audit) == 1
    entry = audit[0]
    assert entry.actor == "olga"
    assert "symbol=BTC/USDT" in entry.detail
    assert "news at 14:00" in entry.detail
    assert "from 127.0.0.1" in entry.detail
    assert "was trading" in entry.detail
    assert "role=owner" in entry.detail


def test_kill_cancels_resting_orders_on_the_exchange_and_the_journal_keeps_it(served: Served) -> None:
    served.step(3)
    assert served.call(served.setup.exchange.fetch_open_orders("BTC/USDT"))
    r = client(served).post(f"{API}/symbols/BTC-USDT/kill", json={"reason": "something is off"})
    assert r.json()["status"] == "killed"
    assert not served.call(served.setup.exchange.fetch_open_orders("BTC/USDT"))
    served.step(20)
    assert not served.call(served.setup.exchange.fetch_open_orders("BTC/USDT"))
    assert served.call(served.setup.exchange.fetch_open_orders("ETH/USDT"))
    served.__exit__(None, None, None)
    with SqliteJournal(served.journal_path) as journal:  # reopened, as after a restart
        row = journal.load_symbol("BTC/USDT")
        assert row is not None
        assert row.status == "killed"
        assert "something is off" in row.status_reason
        kills = [a for a in journal.audit_log(100) if a.action == "kill"]
        assert len(kills) == 1
        assert kills[0].actor == "olga"
        cancels = [i for i in journal.intents("BTC/USDT") if i.action == "cancel"]
        assert cancels
        assert all(i.status == "done" for i in cancels)


def test_resuming_a_killed_symbol_needs_a_step_up_pausing_and_killing_do_not(served: Served) -> None:
    served.step(2)
    c = client(served)
    c.post(f"{API}/symbols/BTC-USDT/kill", json={"reason": "stop now"}).raise_for_status()
    body = is_problem(c.post(f"{API}/symbols/BTC-USDT/resume", json={"reason": "carry on"}), 403)
    assert "step-up" in str(body["detail"])
    is_problem(
        c.post(
            f"{API}/symbols/BTC-USDT/resume",
            json={"reason": "carry on"},
            headers=step_up(served, "params"),  # a step-up for another action
        ),
        403,
    )
    ok = c.post(
        f"{API}/symbols/BTC-USDT/resume",
        json={"reason": "carry on"},
        headers=step_up(served, "resume_killed"),
    )
    assert ok.json()["status"] == "idle"
    c.post(f"{API}/symbols/ETH-USDT/pause", json={"reason": "a pause"}).raise_for_status()
    assert c.post(f"{API}/symbols/ETH-USDT/resume", json={"reason": "go on"}).json()["status"] == "idle"


def test_a_parameter_change_lands_at_the_next_pulse_never_inside_one(served: Served) -> None:
    assert served.gated is not None
    gated = served.gated
    served.call(_close(gated))
    deadline = time.monotonic() + 10
    pulse = served.step_async()  # the pulse that places the ladder is held at its first place
    while not gated.waiting.is_set():
        assert time.monotonic() < deadline, "no pulse placed an order"
        if pulse.done():  # that pulse placed nothing: the next one
            pulse = served.step_async()
        time.sleep(0.01)
    answer: dict[str, httpx.Response] = {}

    def put() -> None:
        answer["r"] = client(served).put(
            f"{API}/symbols/BTC-USDT/params",
            json={"reason": "fewer levels", "patch": {"grid": {"levels": 3}}},
            headers=step_up(served, "params"),
        )

    sender = threading.Thread(target=put)
    sender.start()
    time.sleep(0.5)
    assert "r" not in answer  # the change waits for the pulse holding the symbol's lock
    assert len(served.journal.params_history("BTC/USDT")) == 1
    served.call(_open(gated))
    held = {r.symbol: r for r in pulse.result(10)}["BTC/USDT"]
    sender.join(10)
    r = answer["r"]
    assert r.status_code == 200, r.text
    assert r.json()["diff"] == [{"field": "grid.levels", "before": 6, "after": 3}]
    assert r.json()["version"] == 2
    # the held pulse decided with the old parameters: four levels (the budget's), not three
    assert len([i for i in held.intents if i.action == "place"]) == 4
    after = {r.symbol: r for r in served.step()}["BTC/USDT"]
    assert len([o for o in after.open_orders if o.side.value == "buy"]) == 3
    assert any(i.action == "cancel" for i in after.intents)
    history = served.journal.params_history("BTC/USDT")
    assert history[-1].actor == "olga"
    assert "grid.levels 6 -> 3" in history[-1].why
    assert json.loads(history[-1].config_json)["grid"]["levels"] == 3


async def _close(gated: object) -> None:
    gated.gate.clear()  # type: ignore[attr-defined]


async def _open(gated: object) -> None:
    gated.gate.set()  # type: ignore[attr-defined]


def test_another_accounts_symbol_is_a_404_that_leaks_nothing(served: Served) -> None:
    served.step(3)
    alice = client(served, "alice")
    assert [s["symbol"] for s in alice.get(f"{API}/status").json()["symbols"]] == ["BTC/USDT"]
    for path in ("status", "pulses", "orders", "fills", "cycles", "params"):
        theirs = is_problem(alice.get(f"{API}/symbols/ETH-USDT/{path}"), 404)
        nobody = is_problem(alice.get(f"{API}/symbols/DOGE-USDT/{path}"), 404)
        assert str(theirs["detail"]).replace("ETH-USDT", "X") == str(nobody["detail"]).replace(
            "DOGE-USDT", "X"
        )
    for action in ("pause", "kill", "resume"):
        is_problem(alice.post(f"{API}/symbols/ETH-USDT/{action}", json={"reason": "not mine"}), 404)
    is_problem(
        alice.put(
            f"{API}/symbols/ETH-USDT/params", json={"reason": "not mine", "patch": {"grid": {"levels": 3}}}
        ),
        404,
    )
    paused = alice.post(f"{API}/pause", json={"reason": "all of mine"}).json()
    assert [p["symbol"] for p in paused] == ["BTC/USDT"]
    assert served.plane.engine.worker("ETH/USDT").status != "paused"
    assert all("ETH" not in e["detail"] for e in alice.get(f"{API}/audit").json()["entries"])
    is_problem(alice.get("/metrics"), 403)  # metrics name every symbol


def test_a_kill_of_every_symbol_with_the_longest_command_id_kills_each_once(served: Served) -> None:
    served.step(2)
    olga = client(served)
    body = {"reason": "stop everything", "command_id": "k" * 128}  # the longest a client may give
    killed = olga.post(f"{API}/kill", json=body)
    assert killed.status_code == 200, killed.text
    ids = {k["symbol"]: k["command_id"] for k in killed.json()}
    assert set(ids) == {"BTC/USDT", "ETH/USDT"}
    assert len(set(ids.values())) == 2  # one id per symbol, each within the journals' 128 characters
    assert all(len(i) <= 128 and i.startswith("api:olga:kkk") for i in ids.values())
    assert [k["outcome"] for k in killed.json()] == ["applied", "applied"]
    assert {served.plane.engine.worker(s).status for s in ids} == {"killed"}
    again = olga.post(f"{API}/kill", json=body).json()  # the same key: a replay, not a second kill
    assert {k["symbol"]: k["command_id"] for k in again} == ids
    kills = [e for e in olga.get(f"{API}/audit").json()["entries"] if e["action"] == "kill"]
    assert len(kills) == 2


def test_a_viewers_mutating_calls_are_403_and_change_nothing(served: Served) -> None:
    served.step(2)
    viewer = client(served, "vic")
    assert viewer.get(f"{API}/status").status_code == 200
    for action in ("pause", "kill", "resume"):
        is_problem(viewer.post(f"{API}/symbols/BTC-USDT/{action}", json={"reason": "as a viewer"}), 403)
        is_problem(viewer.post(f"{API}/{action}", json={"reason": "as a viewer"}), 403)
    is_problem(
        viewer.put(
            f"{API}/symbols/BTC-USDT/params", json={"reason": "as a viewer", "patch": {"grid": {"levels": 3}}}
        ),
        403,
    )
    assert served.plane.engine.worker("BTC/USDT").status == "trading"
    assert served.journal.audit_log(10) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": "ok ok", "extra": 1}, "extra"),
        ({"reason": ""}, "reason"),
        ({"reason": 7}, "reason"),
        ({"reason": "fine reason", "command_id": "has space"}, "command_id"),
    ],
)
def test_bad_control_bodies_are_422_problems_naming_the_field(
    served: Served, body: dict[str, object], field: str
) -> None:
    problem = is_problem(client(served).post(f"{API}/symbols/BTC-USDT/pause", json=body), 422)
    assert [e["field"] for e in problem["errors"]] == [field]  # type: ignore[union-attr]
    assert served.journal.audit_log(10) == []


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"grid": {"levels": 0}}, "grid.levels"),
        ({"grid": {"spacing_bps": "-5"}}, "grid.spacing_bps"),
        ({"profit": {"min_net_bps": "abc"}}, "profit.min_net_bps"),
        ({"grid": {"levles": 3}}, "levles"),
        ({"market": {"tick_size": "0.1"}}, "market"),
        ({"nonsense": {"a": 1}}, "nonsense"),
        ({"grid": {"levels": 6}}, "changes nothing"),
    ],
)
def test_bad_parameter_patches_are_422_problems_naming_the_field(
    served: Served, patch: dict[str, object], named: str
) -> None:
    served.step()
    r = client(served).put(
        f"{API}/symbols/BTC-USDT/params",
        json={"reason": "try it", "patch": patch},
        headers=step_up(served, "params"),
    )
    problem = is_problem(r, 422)
    assert named in str(problem["detail"])
    assert len(served.journal.params_history("BTC/USDT")) == 1


def test_malformed_requests_are_4xx_problems(served: Served) -> None:
    c = client(served)
    r = c.post(
        f"{API}/symbols/BTC-USDT/pause", content=b"{not json", headers={"content-type": "application/json"}
    )
    is_problem(r, 422)
    is_problem(c.get(f"{API}/symbols/BTC-USDT/fills", params={"limit": "many"}), 422)
    is_problem(c.get(f"{API}/symbols/BTC-USDT/fills", params={"limit": 0}), 422)
    is_problem(c.get(f"{API}/events", headers={"Last-Event-ID": "abc"}), 422)
    is_problem(c.get(f"{API}/nothing-here"), 404)
    is_problem(c.delete(f"{API}/status"), 405)


def _read_events(
    served: Served, headers: dict[str, str], count: int, since: int | None = None
) -> list[tuple[int, str, dict[str, object]]]:
    got: list[tuple[int, str, dict[str, object]]] = []
    params = {} if since is None else {"since": since}
    with client(served).stream("GET", f"{API}/events", headers=headers, params=params) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        seq, kind = 0, ""
        for line in r.iter_lines():
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                got.append((seq, kind, json.loads(line[6:])))
                if len(got) >= count:
                    break
    return got


def test_the_event_stream_resumes_from_last_event_id_without_gaps_or_duplicates(served: Served) -> None:
    served.step(5)
    client(served).post(f"{API}/symbols/BTC-USDT/pause", json={"reason": "for the stream"}).raise_for_status()
    first = _read_events(served, {}, 6, since=0)
    journal = [e.seq for e in served.journal.events_since(0, 10_000)]
    assert [seq for seq, _, _ in first] == journal[:6]
    assert all(data["seq"] == seq and data["kind"] == kind for seq, kind, data in first)
    served.step(5)  # more events while disconnected
    journal = [e.seq for e in served.journal.events_since(0, 10_000)]
    resumed = _read_events(served, {"Last-Event-ID": str(first[-1][0])}, len(journal) - 6)
    assert [seq for seq, _, _ in resumed] == journal[6:]  # every later event, once, in order
    kinds = {kind for _, kind, _ in first + resumed}
    assert {"pulse", "audit"} <= kinds


def test_the_event_stream_delivers_live_events_and_heartbeats(served: Served) -> None:
    served.step(3)
    last = served.journal.events_since(0, 10_000)[-1].seq
    lines: list[str] = []
    with client(served).stream("GET", f"{API}/events", params={"since": last}) as r:
        pause = {"reason": "while streaming"}  # a pulse that changes nothing journals no event: a pause does
        stepper = threading.Thread(
            target=lambda: (time.sleep(0.5), client(served).post(f"{API}/symbols/BTC-USDT/pause", json=pause))
        )
        stepper.start()
        for line in r.iter_lines():
            lines.append(line)
            if any(x.startswith("data: ") for x in lines) and ": heartbeat" in lines:
                break
        stepper.join()
    assert ": heartbeat" in lines
    ids = [int(x[4:]) for x in lines if x.startswith("id: ")]
    assert ids
    assert ids[0] == last + 1


def test_a_subscriber_who_hangs_up_leaves_no_task_behind(served: Served) -> None:
    async def streams() -> int:
        names = ("EventStreamResponse._write", "_hung_up")
        return sum(any(n in repr(t.get_coro()) for n in names) for t in asyncio.all_tasks())

    with client(served).stream("GET", f"{API}/events") as r:
        lines = r.iter_lines()  # held: a dropped line iterator closes the connection (httpcore)
        assert next(lines) == "retry: 1000"
        assert served.call(streams()) == 2  # its writer and the task waiting for the hang-up
    deadline = time.monotonic() + 5
    while served.call(streams()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served.call(streams()) == 0  # no refresh needed: the hang-up itself ended both


def test_another_accounts_events_never_reach_the_stream(served: Served) -> None:
    served.step(5)
    client(served).post(f"{API}/symbols/ETH-USDT/pause", json={"reason": "bob's"}).raise_for_status()
    client(served).post(f"{API}/symbols/BTC-USDT/pause", json={"reason": "alice's"}).raise_for_status()
    with client(served, "alice").stream("GET", f"{API}/events", params={"since": 0}) as r:
        events = []
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["kind"] == "audit":
                    break
    assert events
    assert all(e["symbol"] in ("BTC/USDT", "") for e in events)
    assert all("ETH" not in json.dumps(e) for e in events)
    assert "alice's" in json.dumps(events[-1])


def test_metrics_count_pulses_fills_and_request_latency(served: Served) -> None:
    served.step(4)
    c = client(served)
    c.get(f"{API}/status")
    text = c.get("/metrics").text
    assert 'nutcracker_pulses_total{symbol="BTC/USDT"} 4.0' in text
    assert 'nutcracker_rail_headroom_base{symbol="BTC/USDT"} 0.15' in text
    assert 'nutcracker_dispatch_seconds_count{action="place"}' in text
    assert (
        'nutcracker_api_request_seconds_count{method="GET",route="/api/v1/status",status="200"} 1.0' in text
    )


def test_the_scrape_token_opens_metrics_and_nothing_else(served: Served) -> None:
    served.step(2)
    scraper = client(served, None, raw_token=SCRAPE_TOKEN)
    r = scraper.get("/metrics")
    assert r.status_code == 200, r.text
    assert 'nutcracker_pulses_total{symbol="BTC/USDT"} 2.0' in r.text
    is_problem(scraper.get(f"{API}/status"), 401)  # not a login: no other route takes it
    is_problem(scraper.post(f"{API}/kill", json={"reason": "scraper"}), 401)
    is_problem(client(served, None, raw_token=SCRAPE_TOKEN[:-1] + "y").get("/metrics"), 401)
    assert client(served, "vic").get("/metrics").status_code == 200  # a role on every account still does
    refused = is_problem(client(served, "alice").get("/metrics"), 403)
    assert "--metrics-token-file" in str(refused["detail"])
    assert SCRAPE_TOKEN not in client(served).get(f"{API}/openapi.json").text


def test_status_bodies_are_the_models_own_json_and_follow_every_report(served: Served) -> None:
    from nutcracker.api.schemas import StatusOut, SymbolStatusOut

    c = client(served)
    before = c.get(f"{API}/status")
    assert before.headers["content-type"] == "application/json"
    model = StatusOut.model_validate_json(before.content)  # the spliced body is a valid StatusOut ...
    assert before.content == model.model_dump_json().encode()  # ... byte for byte as pydantic writes it
    assert [s.reason for s in model.symbols] == ["waiting for the first pulse"] * 2
    served.step(3)
    after = StatusOut.model_validate_json(c.get(f"{API}/status").content)
    latest = served.setup.engine.latest()
    assert [(s.symbol, s.status, s.reason, s.updated_ts_ms) for s in after.symbols] == [
        (symbol, str(r.status), r.status_reason, r.ts_ms) for symbol, r in latest.items()
    ]
    one = c.get(f"{API}/symbols/BTC-USDT/status")
    assert SymbolStatusOut.model_validate_json(one.content) == after.symbols[0]
    c.post(f"{API}/symbols/BTC-USDT/pause", json={"reason": "cache"}).raise_for_status()
    paused = StatusOut.model_validate_json(c.get(f"{API}/status").content).symbols[0]
    assert paused.status == "paused"  # a control action's report replaces the cached body at once
    alice = StatusOut.model_validate_json(client(served, "alice").get(f"{API}/status").content)
    assert [s.symbol for s in alice.symbols] == ["BTC/USDT"]  # the bodies are filtered per caller


def test_status_is_gzipped_for_the_clients_that_accept_it_and_plain_for_the_others(served: Served) -> None:
    import gzip

    served.step(2)
    c = client(served)
    plain = c.get(f"{API}/status", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    with c.stream("GET", f"{API}/status", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        raw = b"".join(r.iter_raw())
    assert len(raw) < len(plain.content) / 2
    assert gzip.decompress(raw) == plain.content  # the same body, kept once and compressed once


def test_status_views_have_a_bounded_age_but_show_state_changes_and_commands_at_once(served: Served) -> None:
    """serve rebuilds the status body at most every ``STATUS_MAX_AGE_S`` (a replay pulses a symbol
    dozens of times a second); here the age is a minute, so the test does not race the clock."""
    from nutcracker.api.plane import STATUS_MAX_AGE_S

    assert 0 < STATUS_MAX_AGE_S <= 1  # what serve runs with: docs/api.md promises at most a second
    served.plane.status_max_age_s = 60.0
    c = client(served)

    def shown() -> dict[str, tuple[str, int]]:
        symbols = c.get(f"{API}/status").json()["symbols"]
        return {s["symbol"]: (s["status"], s["updated_ts_ms"]) for s in symbols}

    def latest() -> dict[str, tuple[str, int]]:
        return {s: (str(r.status), r.ts_ms) for s, r in served.setup.engine.latest().items()}

    def states() -> dict[str, str]:
        return {s: state for s, (state, _) in latest().items()}

    def reused_over_a_quiet_pulse() -> None:
        """Step until a pulse leaves every symbol in its state: the body shown before it stays
        shown; over a pulse that changed some symbol's state, only that symbol's view is new."""
        for _ in range(20):
            before, was = shown(), states()
            served.step()
            now = latest()
            if states() == was:
                assert shown() == before != now
                return
            assert shown() == {s: now[s] if now[s][0] != was[s] else before[s] for s in now}
        pytest.fail("every pulse changed some symbol's state")

    served.step()
    first = shown()
    assert first == latest()  # the first reports show at once
    reused_over_a_quiet_pulse()
    body = shown()
    one = c.get(f"{API}/symbols/ETH-USDT/status").json()
    assert (one["status"], one["updated_ts_ms"]) == body["ETH/USDT"]  # one symbol's view, as old
    c.post(f"{API}/symbols/BTC-USDT/pause", json={"reason": "age"}).raise_for_status()
    paused = shown()
    assert paused == latest()  # a command brings every view up to date: its effect is never hidden
    assert paused["BTC/USDT"][0] == "paused"
    reused_over_a_quiet_pulse()

    def btc_quote_limit() -> str:  # one symbol's view, rebuilt by its own rules
        return str(c.get(f"{API}/symbols/BTC-USDT/status").json()["committed_quote"]["limit"])

    assert btc_quote_limit() == "2000"
    r = c.put(
        f"{API}/symbols/BTC-USDT/params",
        json={"reason": "age", "patch": {"rails": {"max_quote": "2500"}}},
        headers=step_up(served, "params"),
    )
    assert r.status_code == 200, r.text
    served.step()
    assert latest()["BTC/USDT"][0] == "paused"  # no new state: only the command makes its view new
    assert btc_quote_limit() == "2500"  # the first report after a command shows at once
    served.plane.status_max_age_s = 0.0
    assert shown() == latest()


def test_a_status_poll_answered_before_the_router_is_the_routes_own_answer(served: Served) -> None:
    """``api.fastpath`` answers an authenticated ``GET /status`` without FastAPI's routing: its
    answer must be the route's, byte for byte (the route is called here through the router alone)."""
    served.step(3)
    token = served.users.token(served, "alice")  # type: ignore[attr-defined]

    async def answer(via_router: bool, accept_encoding: bytes) -> tuple[int, list[Any], bytes]:
        sent: list[dict[str, Any]] = []
        headers = [(b"authorization", b"Bearer " + token.encode()), (b"accept-encoding", accept_encoding)]
        path = f"{API}/status"
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode()}
        scope |= {"query_string": b"", "root_path": "", "headers": headers, "app": served.app}
        scope |= {"http_version": "1.1", "scheme": "http"}
        scope |= {"client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        if not via_router:
            await served.app(scope, receive, send)
            assert "endpoint" not in scope  # answered before any router matched it
        else:  # what FastAPI's own middleware hands its router
            async with contextlib.AsyncExitStack() as stack:
                scope["fastapi_middleware_astack"] = stack
                await served.app.router(scope, receive, send)
            assert "endpoint" in scope
        return sent[0]["status"], sent[0]["headers"], b"".join(m.get("body", b"") for m in sent[1:])

    for accept_encoding in (b"gzip, deflate", b"identity"):
        fast = served.call(answer(False, accept_encoding))
        assert fast[0] == 200
        assert fast == served.call(answer(True, accept_encoding))
    assert "ETH" not in json.dumps(client(served, "alice").get(f"{API}/status").json())  # bob's symbol


def test_status_refuses_a_missing_a_malformed_and_a_revoked_token_in_the_routes_words(served: Served) -> None:
    """The fast path answers only a token that authenticates; the rest get the route's problem."""
    token = served.users.token(served, "olga")  # type: ignore[attr-defined]
    is_problem(client(served, None).get(f"{API}/status"), 401)
    for header in (f"Basic {token}", f"Bearer{token}", "Bearer", f"Bearer {token}x"):
        is_problem(client(served, None).get(f"{API}/status", headers={"Authorization": header}), 401)
    assert client(served, None).get(f"{API}/status", headers={"Authorization": f"bearer  {token}"}).is_success
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{served.base_url}{API}/auth/logout", headers=bearer).status_code == 204
    revoked = httpx.get(f"{served.base_url}{API}/status", headers=bearer)
    is_problem(revoked, 401)
    assert "revoked" in revoked.json()["detail"]
