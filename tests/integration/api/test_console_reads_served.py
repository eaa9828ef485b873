"""What the console reads beside the status, on a real uvicorn over a stepped replay.

``/symbols/{symbol}/history``: one point per kept pulse, the close each pulse decided on, the Keltner
bands and EMA once warm, inventory and committed quote within the rails; another account's symbol does
not exist for the caller. ``/candles``: the closed candles the pulses read, exactly the exchange's, paged
by time. ``/levels``: the standing decision's orders, resting or why not. ``/config/reference``: help
for every parameter the form shows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from api_served import Served
from test_api_served import Users

from nutcracker.api.plane import PULSES_KEPT


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Users]:
    u = Users(tmp_path)
    yield u
    u.service.close()


@pytest.fixture
def served(tmp_path: Path, users: Users) -> Iterator[Served]:
    accounts = {"BTC/USDT": "binance/alice", "ETH/USDT": "binance/bob"}
    with Served(tmp_path, users.service, accounts=accounts, warmup=300) as s:
        yield s


def _get(served: Served, users: Users, user: str, path: str, **params: int | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {users.token(served, user)}"}
    return httpx.get(f"{served.base_url}/api/v1{path}", headers=headers, params=params)


def test_history_is_the_kept_pulses_close_bands_and_rails(served: Served, users: Users) -> None:
    served.step(PULSES_KEPT + 20)
    answer = _get(served, users, "alice", "/symbols/BTC-USDT/history", limit=1000)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["base"] == "BTC"
    assert body["quote"] == "USDT"
    points = body["points"]
    assert len(points) == PULSES_KEPT  # only the kept pulses: the oldest 20 are gone
    stamps = [p["ts_ms"] for p in points]
    assert stamps == sorted(stamps)
    candles = served.data["BTC/USDT"]
    tick = Decimal(str(served.config.symbols[0].market.tick_size))
    by_ts = {int(t): int(c) for t, c in zip(candles.ts_ms, candles.close, strict=True)}
    # each pulse decided on the last closed candle: its close is a candle's close of the data
    assert all(Decimal(p["close"]) / tick in {Decimal(c) for c in by_ts.values()} for p in points)
    warm = [p for p in points if p["ema"] is not None]
    assert warm, "after 300 warm-up candles the bands should be ready"
    for p in warm:
        assert Decimal(p["lower"]) < Decimal(p["ema"]) < Decimal(p["upper"])
    max_base, max_quote = Decimal(body["max_base"]), Decimal(body["max_quote"])
    assert all(Decimal(0) <= Decimal(p["inventory"]) <= max_base for p in points)
    assert all(Decimal(0) <= Decimal(p["committed_quote"]) <= max_quote for p in points)
    assert len(_get(served, users, "alice", "/symbols/BTC-USDT/history", limit=5).json()["points"]) == 5


def test_a_paused_symbols_pulses_show_no_market_but_keep_the_rails(served: Served, users: Users) -> None:
    served.step(20)
    headers = {"Authorization": f"Bearer {users.token(served, 'alice')}"}
    paused = httpx.post(
        f"{served.base_url}/api/v1/symbols/BTC-USDT/pause", json={"reason": "a look"}, headers=headers
    )
    assert paused.status_code == 200, paused.text
    served.step(10)
    points = _get(served, users, "alice", "/symbols/BTC-USDT/history").json()["points"]
    before, during = points[:20], [p for p in points[20:] if p["status"] == "paused"]
    assert len(during) >= 10
    assert all(p["close"] is not None for p in before)
    assert all(p["close"] is None and p["ema"] is None for p in during)  # the engine read no market
    assert all(p["inventory"] == before[-1]["inventory"] for p in during)
    resumed = httpx.post(
        f"{served.base_url}/api/v1/symbols/BTC-USDT/resume", json={"reason": "fine"}, headers=headers
    )
    assert resumed.status_code == 200, resumed.text
    served.step(3)
    points = _get(served, users, "alice", "/symbols/BTC-USDT/history").json()["points"]
    after = points[points.index([p for p in points if p["status"] == "paused"][-1]) + 1 :]
    assert after[0]["close"] is None  # the resume's own report: the stale close of the pause
    assert [p["close"] is not None for p in after[1:]] == [True, True, True]  # the pulses read the market


def test_another_accounts_symbol_has_no_history_for_you(served: Served, users: Users) -> None:
    served.step(3)
    answer = _get(served, users, "alice", "/symbols/ETH-USDT/history")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert _get(served, users, "alice", "/symbols/BTC-USDT/history", limit=0).status_code == 422


def test_the_config_reference_gives_every_parameter_its_help(served: Served, users: Users) -> None:
    answer = _get(served, users, "vic", "/config/reference")
    assert answer.status_code == 200, answer.text
    tables = answer.json()["tables"]
    params = _get(served, users, "vic", "/symbols/BTC-USDT/params").json()["params"]
    missing = [
        f"{section}.{key}"
        for section, keys in params.items()
        if isinstance(keys, dict)
        for key in keys
        if key not in tables.get(f"symbol.{section}", {})
    ]
    assert missing == [], f"parameters without help: {missing}"
    assert tables["symbol.profit"]["min_net_bps"]["meaning"].startswith(
        "Minimum net profit of a buy→sell cycle"
    )
    assert httpx.get(f"{served.base_url}/api/v1/config/reference").status_code == 401


def test_candles_are_the_closed_candles_the_pulses_read_paged_by_time(served: Served, users: Users) -> None:
    served.step(60)
    everything = _get(served, users, "alice", "/symbols/BTC-USDT/candles", limit=1000).json()
    assert everything["next_since"] is None
    kept = everything["candles"]
    data = served.data["BTC/USDT"]
    tick = Decimal(str(served.config.symbols[0].market.tick_size))
    rows = {
        int(t): (int(o), int(h), int(lo), int(c))
        for t, o, h, lo, c in zip(data.ts_ms, data.open, data.high, data.low, data.close, strict=True)
    }
    # the cold start's history and then one new candle a pulse, each exactly the exchange's, once
    assert len(kept) > 60
    stamps = [c["ts_ms"] for c in kept]
    assert all(b - a == 60_000 for a, b in itertools.pairwise(stamps))
    for c in kept:
        ticks = tuple(int(Decimal(c[k]) / tick) for k in ("open", "high", "low", "close"))
        assert ticks == rows[c["ts_ms"]]
        assert Decimal(c["volume"]) >= 0
    # the bands of each warm pulse are drawn on a candle it read, the newest on the newest
    points = _get(served, users, "alice", "/symbols/BTC-USDT/history").json()["points"]
    warm = [p["candle_ts_ms"] for p in points if p["ema"] is not None]
    assert warm
    assert set(warm) <= set(stamps)
    assert warm[-1] == stamps[-1]
    # no since: the newest; since: from that open time on, next_since to page on until the newest
    newest = _get(served, users, "alice", "/symbols/BTC-USDT/candles", limit=5).json()
    assert (newest["candles"], newest["next_since"]) == (kept[-5:], None)
    paged, since = [], stamps[0]
    while since is not None:
        page = _get(served, users, "alice", "/symbols/BTC-USDT/candles", since=since, limit=40).json()
        assert len(page["candles"]) <= 40
        paged += page["candles"]
        since = page["next_since"]
    assert paged == kept
    later = _get(served, users, "alice", "/symbols/BTC-USDT/candles", since=stamps[-3] - 1).json()
    assert later["candles"] == kept[-3:]


def test_a_bad_since_or_limit_of_the_candles_is_a_422_problem_naming_the_field(
    served: Served, users: Users
) -> None:
    served.step(2)
    headers = {"Authorization": f"Bearer {users.token(served, 'alice')}"}
    url = f"{served.base_url}/api/v1/symbols/BTC-USDT/candles"
    for field, value in (("since", "-1"), ("since", "yesterday"), ("limit", "0"), ("limit", "1001")):
        answer = httpx.get(url, headers=headers, params={field: value})
        assert answer.status_code == 422, (field, value, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert [e["field"] for e in problem["errors"]] == [field]
        assert field in problem["detail"]


def test_levels_are_the_standing_decisions_orders_resting_or_why_not(served: Served, users: Users) -> None:
    served.step(30)
    body = _get(served, users, "alice", "/symbols/BTC-USDT/levels").json()
    orders = _get(served, users, "alice", "/symbols/BTC-USDT/orders").json()["orders"]
    assert orders, "the demo grid rests its buys once warm"
    assert body["status"] == "trading"
    levels = body["levels"]
    prices = [Decimal(lv["price"]) for lv in levels]
    assert prices == sorted(prices, reverse=True)
    resting = {(lv["side"], Decimal(lv["price"])) for lv in levels if lv["resting"]}
    assert resting == {(o["side"], Decimal(o["price"])) for o in orders}
    assert all(lv["why"] == "resting" for lv in levels if lv["resting"])
    waiting = [lv for lv in levels if not lv["resting"]]
    assert waiting, "a sliding grid names the lattice levels below its window"
    assert all(lv["why"] and lv["why"] != "resting" for lv in waiting)
    assert any(lv["why"].startswith("outside the window of grid.levels = ") for lv in waiting)
    assert all(Decimal(lv["qty"]) > 0 for lv in levels)
    # a paused symbol plans nothing
    headers = {"Authorization": f"Bearer {users.token(served, 'alice')}"}
    paused = httpx.post(
        f"{served.base_url}/api/v1/symbols/BTC-USDT/pause", json={"reason": "a look"}, headers=headers
    )
    assert paused.status_code == 200, paused.text
    served.step(1)
    body = _get(served, users, "alice", "/symbols/BTC-USDT/levels").json()
    assert (body["status"], body["levels"]) == ("paused", [])


def test_another_accounts_symbol_has_no_candles_or_levels_for_you(served: Served, users: Users) -> None:
    served.step(3)
    for path in ("candles", "levels"):
        answer = _get(served, users, "alice", f"/symbols/ETH-USDT/{path}")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")
