"""``/api/v1/backtests`` on a real ``nutcracker serve --demo`` (uvicorn, the worker processes it spawns),
driven with httpx and the typed client: an example and an upload of real candles run to their report,
every bad input is one problem+json naming the field, viewers are refused, jobs are their owner's."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_stack import (
    OPERATOR,
    OPERATOR_PASSWORD,
    OWNER,
    OWNER_PASSWORD,
    WATCHER,
    WATCHER_PASSWORD,
    Stack,
    serve_stack,
)

from nutcracker.api.client import ApiClient, ApiError, Backtest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
GRID = (ROOT / "examples" / "grid-btc-usdt.toml").read_bytes()
MULTI = (ROOT / "examples" / "multi-symbol.toml").read_bytes()
HEADER = b"timestamp,open,high,low,close,volume\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with serve_stack(tmp_path_factory.mktemp("backtests"), speed=20, console=False) as running:
        yield running


@pytest.fixture
def operator(stack: Stack) -> Iterator[ApiClient]:
    with ApiClient(stack.api, timeout_s=30) as client:
        client.login(OPERATOR, OPERATOR_PASSWORD)
        yield client


def _finished(client: ApiClient, job: Backtest, timeout_s: float = 120) -> tuple[Backtest, list[float]]:
    seen = [job["progress"]]
    deadline = time.monotonic() + timeout_s
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, (
            f"backtest {job['id']} still {job['state']} after {timeout_s:.0f} s"
        )
        time.sleep(0.2)
        job = client.backtest(job["id"])
        seen.append(job["progress"])
    return job, seen


def _candles(data_dir: Path, rows: int) -> bytes:
    with gzip.open(data_dir / "binance_BTC-USDT_1m.csv.gz", "rb") as f:
        lines = f.read().splitlines(keepends=True)
    assert lines[0] == HEADER
    return b"".join(lines[: rows + 1])


def test_an_example_runs_in_a_worker_to_its_report(operator: ApiClient) -> None:
    assert "grid-btc-usdt" in operator.backtest_examples()
    job = operator.start_backtest(example="grid-btc-usdt", synthetic=20_000, seed=3)
    assert job["state"] in ("queued", "running")
    assert "example grid-btc-usdt" in job["source"]
    assert "20,000 candles" in job["source"]
    done, progress = _finished(operator, job)
    assert done["state"] == "done", done["error"]
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert done["progress"] == 1.0
    assert done["summary"] is not None
    assert done["summary"]["candles"] == 20_000
    assert done["headline"]["BTC/USDT"][1].startswith("return ")
    html = operator.backtest_report(job["id"])
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype html")
    assert "BTC/USDT" in html
    assert operator.backtests()[0]["id"] == job["id"]


def test_an_uploaded_config_runs_on_uploaded_real_candles(operator: ApiClient, data_dir: Path) -> None:
    csv = _candles(data_dir, 3_000)
    job = operator.start_backtest(config=("mine.toml", GRID), candles=("btc.csv.gz", gzip.compress(csv)))
    assert job["source"] == "config mine.toml, candles btc.csv.gz"
    done, _ = _finished(operator, job)
    assert done["state"] == "done", done["error"]
    assert done["summary"] is not None
    assert done["summary"]["candles"] == 3_000
    first_ts = int(csv.splitlines()[1].split(b",")[0])
    assert done["summary"]["symbols"]["BTC/USDT"]["first_candle"].startswith(
        time.strftime("%Y-%m-%d", time.gmtime(first_ts / 1000))
    )


def test_candles_too_short_for_the_warm_up_fail_the_job_with_one_line(
    operator: ApiClient, data_dir: Path
) -> None:
    job = operator.start_backtest(config=("grid.toml", GRID), candles=("short.csv", _candles(data_dir, 12)))
    done, _ = _finished(operator, job)
    assert done["state"] == "failed"
    assert "needs at least" in done["error"]
    assert "\n" not in done["error"]
    with pytest.raises(ApiError) as refused:
        operator.backtest_report(job["id"])
    assert refused.value.status == 409


def _post(stack: Stack, token: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.api}/api/v1/backtests", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
    )


def _token(stack: Stack, user: str, password: str) -> str:
    answer = httpx.post(f"{stack.api}/api/v1/auth/login", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


BAD_CASES: list[tuple[str, dict[str, Any], int, str, str]] = [
    # (case, multipart fields, status, field named, words in its message)
    ("nothing given", {"data": {"seed": "1"}, "files": {"x": ("", b"")}}, 422, "config", "give an example"),
    (
        "unknown example",
        {"data": {"example": "moon"}, "files": {"x": ("", b"")}},
        422,
        "example",
        "no example",
    ),
    (
        "example and config",
        {"data": {"example": "grid-btc-usdt"}, "files": {"config": ("c.toml", GRID)}},
        422,
        "example",
        "not both",
    ),
    ("not TOML", {"files": {"config": ("c.toml", b"[engine\nid=1")}}, 422, "config", "invalid TOML"),
    ("not UTF-8", {"files": {"config": ("c.toml", b"\xff\xfe[engine]")}}, 422, "config", "UTF-8"),
    (
        "negative rail",
        {"files": {"config": ("c.toml", GRID.replace(b'max_base = "', b'max_base = "-'))}},
        422,
        "config",
        "rails.max_base",
    ),
    (
        "candles without the header",
        {"files": {"config": ("c.toml", GRID), "candles": ("c.csv", b"1,2,3,4,5,6\n")}},
        422,
        "candles",
        "header",
    ),
    (
        "candles not gzip after all",
        {"files": {"config": ("c.toml", GRID), "candles": ("c.csv.gz", b"\x1f\x8bnot gzip")}},
        422,
        "candles",
        "gzip",
    ),
    (
        "candles for a multi-symbol config",
        {"files": {"config": ("m.toml", MULTI), "candles": ("c.csv", HEADER + b"1,2,3,1,2,6\n")}},
        422,
        "candles",
        "symbols",
    ),
    (
        "synthetic not a number",
        {"data": {"example": "grid-btc-usdt", "synthetic": "lots"}, "files": {"x": ("", b"")}},
        422,
        "synthetic",
        "whole number",
    ),
    (
        "synthetic too many",
        {"data": {"example": "grid-btc-usdt", "synthetic": "5000000"}, "files": {"x": ("", b"")}},
        422,
        "synthetic",
        "200,000",
    ),
    (
        "seed negative",
        {"data": {"example": "grid-btc-usdt", "seed": "-1"}, "files": {"x": ("", b"")}},
        422,
        "seed",
        "must be from",
    ),
    ("config too big", {"files": {"config": ("c.toml", GRID + b"#" * 70_000)}}, 413, "config", "64 KB"),
]


@pytest.mark.parametrize(
    ("case", "form", "status", "field", "words"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_input_is_one_problem_naming_the_field(
    stack: Stack, case: str, form: dict[str, Any], status: int, field: str, words: str
) -> None:
    token = _token(stack, OPERATOR, OPERATOR_PASSWORD)
    before = httpx.get(f"{stack.api}/api/v1/backtests", headers={"Authorization": f"Bearer {token}"}).json()
    answer = _post(stack, token, **form)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["errors"][0]["field"] == field
    assert words in body["detail"], body["detail"]
    assert "Traceback" not in answer.text
    after = httpx.get(f"{stack.api}/api/v1/backtests", headers={"Authorization": f"Bearer {token}"}).json()
    assert after == before, "a refused backtest was started"


def test_an_upload_above_the_limit_is_refused_before_it_is_read(stack: Stack) -> None:
    token = _token(stack, OPERATOR, OPERATOR_PASSWORD)
    huge = HEADER + b"1,2,3,1,2,6\n" * 2_000_000  # ~26 MB
    answer = _post(stack, token, files={"config": ("c.toml", GRID), "candles": ("c.csv", huge)})
    assert answer.status_code == 413
    assert "20 MB" in answer.json()["detail"]
    assert "gzip" in answer.json()["detail"]


def test_a_form_that_is_not_multipart_is_refused(stack: Stack) -> None:
    answer = _post(stack, _token(stack, OPERATOR, OPERATOR_PASSWORD), json={"example": "grid-btc-usdt"})
    assert answer.status_code == 415
    assert "multipart/form-data" in answer.json()["detail"]


def test_a_viewer_may_not_run_backtests(stack: Stack) -> None:
    with ApiClient(stack.api) as viewer:
        viewer.login(WATCHER, WATCHER_PASSWORD)
        for call in (viewer.backtests, lambda: viewer.start_backtest(example="grid-btc-usdt")):
            with pytest.raises(ApiError) as refused:
                call()
            assert refused.value.status == 403
            assert "operator or owner" in refused.value.detail


def test_another_users_backtest_does_not_exist_for_you(stack: Stack, operator: ApiClient) -> None:
    job = operator.start_backtest(example="grid-btc-usdt", synthetic=2_000)
    with ApiClient(stack.api) as owner:
        owner.login(OWNER, OWNER_PASSWORD, stack.totp.now())
        for call in (lambda: owner.backtest(job["id"]), lambda: owner.backtest_report(job["id"])):
            with pytest.raises(ApiError) as refused:
                call()
            assert refused.value.status == 404
        assert all(j["id"] != job["id"] for j in owner.backtests())
    _finished(operator, job)


def test_a_user_runs_two_backtests_at_once_at_most(operator: ApiClient) -> None:
    jobs = [operator.start_backtest(example="market-making-btc-usdt", synthetic=200_000) for _ in range(2)]
    with pytest.raises(ApiError) as refused:
        operator.start_backtest(example="grid-btc-usdt", synthetic=1_000)
    assert refused.value.status == 429
    assert "wait for one to finish" in refused.value.detail
    for job in jobs:
        done, _ = _finished(operator, job, timeout_s=240)
        assert done["state"] == "done", done["error"]
