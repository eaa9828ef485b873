"""Benchmark the console over 50 symbols: login to a fully drawn overview in Chromium, and the
server-side cost of one overview refresh.

Run: ``.venv/bin/python bench/console.py [--symbols 50] [--rounds 3]`` (needs ``nutcracker serve``,
Debian's ``chromium`` and Playwright). It starts ``nutcracker serve`` in replay over a config of
``--symbols`` copies of the grid example (``S00/USDT`` ...; synthetic candles) and ``nutcracker
console`` on it, each in its own process, as a user would.

1. *Login to overview*: in a fresh browser page, from the click on "Log in" until the overview's
   metrics, its table and the line under it (drawn last) are on screen. Baseline in the same run:
   the same with one symbol. Target: <= 2 s with 50 symbols.
2. *One refresh*, server side: one run of the console's script on the Overview page (what the live
   fragment's rerun does, plus the header and the kill switch: an upper bound), timed in process with
   Streamlit's ``AppTest`` against the same API. Baseline: the ``GET /status`` it makes, alone.
   Target: <= 300 ms with 50 symbols.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "console"))

from console_stack import (  # noqa: E402  (the stack the end-to-end tests use)
    CHROMIUM,
    CHROMIUM_FLAGS,
    OPERATOR,
    OPERATOR_PASSWORD,
    serve_stack,
    why_not_runnable,
)

GRID = ROOT / "examples" / "grid-btc-usdt.toml"
APP = ROOT / "src" / "nutcracker" / "console" / "app.py"


def many_symbols(path: Path, count: int) -> Path:
    """The grid example's engine table and ``count`` copies of its symbol, S00/USDT ... ."""
    text = GRID.read_text(encoding="utf-8")
    head, symbol = text.split("[[symbol]]", 1)
    tables = [
        ("[[symbol]]" + symbol).replace('symbol = "BTC/USDT"', f'symbol = "S{i:02d}/USDT"')
        for i in range(count)
    ]
    path.write_text(head + "\n".join(tables), encoding="utf-8")
    return path


def login_to_overview(console_url: str, rounds: int) -> list[float]:
    from playwright.sync_api import expect, sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        for _ in range(rounds + 1):  # the first warms Streamlit's caches up: not counted
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(console_url)
            page.get_by_role("textbox", name="User").fill(OPERATOR)
            page.get_by_role("textbox", name="Password").fill(OPERATOR_PASSWORD)
            start = time.perf_counter()
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_test_id("stMetricLabel").first).to_be_visible()
            expect(page.get_by_test_id("stDataFrame")).to_be_visible()
            expect(page.get_by_text("refreshes every")).to_be_visible()
            times.append(time.perf_counter() - start)
            page.close()
        browser.close()
    return times[1:]


def refresh_cost(api: str, symbols: int, rounds: int) -> tuple[list[float], list[float]]:
    import os

    from streamlit.testing.v1 import AppTest

    from nutcracker.api.client import ApiClient
    from nutcracker.console.session import API_ENV

    os.environ[API_ENV] = api
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.text_input(key="login_user").input(OPERATOR)
    at.text_input(key="login_password").input(OPERATOR_PASSWORD)
    next(b for b in at.button if b.label == "Log in").click()
    at.run()
    assert not at.exception, "the overview failed"
    assert len(at.dataframe[0].value) == symbols, "the overview does not show every symbol"
    reruns, status = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - start)
    with ApiClient(api) as client:
        client.login(OPERATOR, OPERATOR_PASSWORD)
        for _ in range(rounds):
            start = time.perf_counter()
            client.status()
            status.append(time.perf_counter() - start)
    at.session_state["client"].close()
    return reruns, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    why = why_not_runnable()
    if why:
        sys.exit(f"cannot run: {why}")
    results: dict[int, tuple[float, float, float]] = {}
    for count in (1, args.symbols):
        with tempfile.TemporaryDirectory() as tmp:
            config = many_symbols(Path(tmp) / "bench.toml", count)
            with serve_stack(Path(tmp), config=config, speed=5) as stack:
                logins = login_to_overview(stack.console, args.rounds)
                reruns, status = refresh_cost(stack.api, count, args.rounds * 5)
        results[count] = (statistics.median(logins), statistics.median(reruns), statistics.median(status))
    base = results[1]
    print(
        f"{'measure (median)':<38}{'1 symbol':>12}{f'{args.symbols} symbols':>14}{'ratio':>8}{'target':>10}"
    )
    rows = [
        ("login -> overview drawn (Chromium)", 0, "<= 2 s"),
        ("one overview refresh (server side)", 1, "<= 300 ms"),
        ("  of which GET /status", 2, ""),
    ]
    for name, i, target in rows:
        one, many = base[i], results[args.symbols][i]
        print(f"{name:<38}{one * 1000:>10.0f}ms{many * 1000:>12.0f}ms{many / one:>8.2f}{target:>10}")
    login, refresh = results[args.symbols][0], results[args.symbols][1]
    verdict = "met" if login <= 2.0 and refresh <= 0.3 else "MISSED"
    print(f"targets: login -> overview <= 2 s, one refresh <= 300 ms with {args.symbols} symbols: {verdict}")


if __name__ == "__main__":
    main()
