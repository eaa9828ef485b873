"""The console end to end, in headless Chromium (Debian's) against a real ``nutcracker serve --demo``:
log in with TOTP, see the overview, pause a symbol, refuse bad parameters with the API's message,
change one with step-up, kill everything, log out; screenshots at 1400 and 390 px; no console error."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from console_stack import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    OPERATOR,
    OPERATOR_PASSWORD,
    OWNER,
    OWNER_PASSWORD,
    WATCHER,
    WATCHER_PASSWORD,
    Stack,
    serve_stack,
    why_not_runnable,
)

from nutcracker.api.client import ApiClient

SKIP = why_not_runnable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

SYMBOL = "BTC/USDT"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with serve_stack(tmp_path_factory.mktemp("console"), speed=20) as running:  # warm-up in ~12 s
        yield running


def _api(stack: Stack) -> ApiClient:
    client = ApiClient(stack.api)
    client.login(WATCHER, WATCHER_PASSWORD)
    return client


def _eventually(check: Callable[[], Any], what: str, timeout_s: float = 10) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.2)


def _no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px: it scrolls sideways"


def test_console_in_chromium(stack: Stack, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    checker = _api(stack)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(20_000)
        try:
            _walk_through(page, stack, checker, shots)
        except BaseException:
            _shot(page, shots / "failure.png")
            raise
        finally:
            browser.close()
            checker.close()
    print(f"screenshots: {shots}")
    assert errors == [], f"browser console errors: {errors}"


def _walk_through(page: Any, stack: Stack, checker: ApiClient, shots: Path) -> None:
    from playwright.sync_api import expect

    params_before = checker.params(SYMBOL)

    page.goto(stack.console)
    expect(page.get_by_text("non-discretionary")).to_be_visible()
    _shot(page, shots / "login-1400.png")
    page.set_viewport_size({"width": 390, "height": 844})
    _no_horizontal_scroll(page)
    _shot(page, shots / "login-390.png")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.get_by_role("textbox", name="User").fill(OWNER)
    page.get_by_role("textbox", name="Password").fill(OWNER_PASSWORD)
    page.get_by_role("textbox", name="TOTP code").fill(stack.totp.now())
    page.get_by_role("button", name="Log in").click()

    # the overview: the symbol, its state and why, the rails, the kill switch, the footer
    expect(page.get_by_test_id("stMetricLabel").first).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("KILL ALL"))).to_be_visible()
    expect(page.get_by_text("non-discretionary")).to_be_visible()
    page.wait_for_timeout(2500)  # one live refresh
    _shot(page, shots / "overview-1400.png")
    expect(page.locator(".st-key-overview_cards")).to_be_hidden()  # a desktop: the table
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(800)
    _no_horizontal_scroll(page)
    expect(page.get_by_role("button", name=re.compile("KILL ALL"))).to_be_in_viewport()
    # a phone: a card per symbol with its state and why, instead of a table scrolled sideways
    expect(page.locator(".st-key-overview_table")).to_be_hidden()
    cards = page.locator(".st-key-overview_cards")
    expect(cards.get_by_text(SYMBOL)).to_be_visible()
    expect(cards.get_by_text(re.compile(r"PnL .* USDT · fees"))).to_be_visible()
    _shot(page, shots / "overview-390.png")
    page.set_viewport_size({"width": 1400, "height": 900})

    # pause through the console, seen paused through the API
    page.get_by_role("button", name="Pause").click()
    _eventually(lambda: checker.symbol_status(SYMBOL)["status"] == "paused", "the symbol paused")
    expect(page.get_by_text(re.compile("now paused"))).to_be_visible()

    # parameters: bad input shows the API's message on the field and changes nothing
    _go(page, "Parameters")
    max_base = page.get_by_role("textbox", name="rails.max_base")
    expect(max_base).to_be_visible()
    # each field's help is its row of docs/configuration.md
    page.get_by_role("button", name="Help for rails.max_base").hover()
    expect(page.get_by_text(re.compile(r"Most base the engine may hold"))).to_be_visible()
    page.mouse.move(0, 0)
    page.get_by_role("textbox", name="Reason (journaled with your name)").fill("tighter rail")
    page.get_by_role("textbox", name="TOTP code (step-up)").fill(stack.fresh_code())
    bad = {
        "rails.max_base": ("-1", "rails.max_base: must be greater than 0"),
        "rails.max_quote": ("lots", "rails.max_quote: expected a decimal number"),
        "profit.min_net_bps": ("-50", "profit.min_net_bps: must be greater than 0"),
        # min profit the grid's spacing cannot earn after both fees: a cross-field rule of the config
        "grid.spacing_bps": ("12", "cannot earn profit.min_net_bps=10 after two maker fees"),
    }
    for field, (value, message) in bad.items():
        for other in bad:
            page.get_by_role("textbox", name=other).fill(str(_value(params_before, other)))
        page.get_by_role("textbox", name=field).fill(value)
        page.get_by_role("button", name="Apply").click()
        expect(page.get_by_text(message).first).to_be_visible()  # the API's own words, on the field
        assert checker.params(SYMBOL) == params_before, f"a refused {field} changed the parameters"
        _shot(page, shots / f"params-bad-{field}-1400.png")

    # a good change, with the step-up still valid
    for other in bad:
        page.get_by_role("textbox", name=other).fill(str(_value(params_before, other)))
    page.get_by_role("textbox", name="profit.min_net_bps").fill("15")
    page.get_by_role("button", name="Preview diff").click()
    expect(page.get_by_text("Changes", exact=True)).to_be_visible()
    page.get_by_role("button", name="Apply").click()
    after = _eventually(
        lambda: (q := checker.params(SYMBOL))["version"] > params_before["version"] and q, "the change"
    )
    assert after["params"]["profit"]["min_net_bps"] == "15"
    _shot(page, shots / "params-1400.png")

    # resume, wait for resting orders, then the kill switch: one click and a confirmation
    _go(page, "Overview")
    page.get_by_role("button", name="Resume").click()
    _eventually(lambda: checker.symbol_status(SYMBOL)["status"] != "paused", "the symbol resumed")
    _eventually(lambda: checker.orders(SYMBOL), "orders resting after resume", timeout_s=30)

    # the Symbol page with orders resting: candles, band, EMA, orders, planned levels, fills
    _go(page, "Symbol")
    expect(page.get_by_text(re.compile(r"^The last \d+ candles the engine read"))).to_be_visible()
    traces = _price_traces(page)
    assert traces["candlestick"] > 0, f"no candles drawn on the Symbol page: {traces}"
    assert traces["EMA"] > 0, f"no EMA drawn on the Symbol page: {traces}"
    expect(page.get_by_text("Grid levels", exact=False)).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"\d+ planned orders resting or held, \d+ not placed"))
    ).to_be_visible()
    _shot(page, shots / "symbol-trading-1400.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(800)
    _no_horizontal_scroll(page)
    _shot(page, shots / "symbol-trading-390.png")
    page.set_viewport_size({"width": 1400, "height": 900})
    _go(page, "Overview")

    page.get_by_role("button", name=re.compile("KILL ALL")).click()
    page.get_by_role("button", name="Yes, kill all").click()
    _eventually(lambda: checker.symbol_status(SYMBOL)["status"] == "killed", "the symbol killed")
    # a cancel the exchange refused (the order filling meanwhile) is retried at the next pulse
    _eventually(lambda: checker.orders(SYMBOL) == [], "no order resting after the kill switch")
    expect(page.get_by_text(re.compile(r"Killed 1 of 1"))).to_be_visible()
    _shot(page, shots / "killed-1400.png")
    page.set_viewport_size({"width": 390, "height": 844})
    _no_horizontal_scroll(page)
    _shot(page, shots / "killed-390.png")
    page.set_viewport_size({"width": 1400, "height": 900})

    _go(page, "Symbol")
    expect(page.get_by_text("Recent decisions")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^The last \d+ candles the engine read"))).to_be_visible()
    traces = _price_traces(page)  # killed: the candles it read before stay drawn
    assert traces["candlestick"] > 0, f"no candles drawn on the Symbol page: {traces}"
    _shot(page, shots / "symbol-1400.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(800)
    _no_horizontal_scroll(page)
    _shot(page, shots / "symbol-390.png")
    page.set_viewport_size({"width": 1400, "height": 900})
    _go(page, "Audit")
    expect(page.get_by_role("button", name="Export CSV")).to_be_visible()
    _shot(page, shots / "audit-1400.png")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_backtest_page_runs_a_backtest_through_the_api_in_chromium(stack: Stack, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (ROOT / "examples" / "grid-btc-usdt.toml").read_text().replace('max_base = "', 'max_base = "-')
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(30_000)
        try:
            page.goto(stack.console)
            page.get_by_role("textbox", name="User").fill(OPERATOR)
            page.get_by_role("textbox", name="Password").fill(OPERATOR_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=60_000)
            expect(page.get_by_role("button", name=re.compile("KILL ALL"))).to_be_visible()
            _go(page, "Backtest")

            # an uploaded config the API refuses: its message, naming the field, and no job
            page.get_by_test_id("stRadio").get_by_text("Upload", exact=True).click()
            _settled(page)
            page.locator(".st-key-bt_config input[type=file]").set_input_files(str(bad))
            sent = re.compile(r"bad\.toml \([\d.]+ KB\) ready to send")  # the server has it
            expect(page.get_by_text(sent)).to_be_visible()
            page.get_by_role("button", name="Run backtest").click()
            expect(page.get_by_text(re.compile(r"rails\.max_base")).first).to_be_visible()
            _shot(page, shots / "backtest-refused-1400.png")

            # an example on the synthetic market: a progress bar, then the headline and the report inline
            page.get_by_test_id("stRadio").get_by_text("Example", exact=True).click()
            _settled(page)
            candles = page.get_by_role("spinbutton", name="Synthetic candles (without a candle file)")
            candles.fill("60000")
            candles.press("Enter")  # a number input commits on Enter (or leaving it)
            _settled(page)
            expect(candles).to_have_value("60000")
            page.get_by_role("button", name="Run backtest").click()
            expect(
                page.get_by_text(re.compile(r"synthetic market \(60,000 candles, seed 7\)")).first
            ).to_be_visible()
            expect(page.get_by_test_id("stProgress").first).to_be_visible()
            expect(page.get_by_text(re.compile(r"^done · "))).to_be_visible(timeout=120_000)
            expect(page.get_by_text(re.compile(r"return [+-−]?\d")).first).to_be_visible()
            report = page.frame_locator("iframe").first
            expect(report.locator(".nc-chart").first).to_be_visible(timeout=30_000)
            expect(page.get_by_role("button", name="Download the report (HTML)")).to_be_visible()
            _shot(page, shots / "backtest-1400.png")
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(800)
            _shot(page, shots / "backtest-390.png")
        except BaseException:
            _shot(page, shots / "backtest-failure.png")
            raise
        finally:
            browser.close()
    print(f"screenshots: {shots}")
    with ApiClient(stack.api) as checker:
        checker.login(OPERATOR, OPERATOR_PASSWORD)
        jobs = checker.backtests()
    assert [j["state"] for j in jobs] == ["done"], (
        "the refused upload started a job, or the example did not run"
    )
    assert errors == [], f"browser console errors: {errors}"


def _price_traces(page: Any, timeout_s: float = 15) -> dict[str, int]:
    """The points of the price chart's candlestick and EMA traces, as plotly drew them in the page.

    Polled: Streamlit loads plotly's component lazily and draws after the page's text is shown.
    """
    page.locator(".js-plotly-plot").first.wait_for()
    deadline = time.monotonic() + timeout_s
    while True:
        counts: dict[str, int] = page.evaluate(
            """() => {
                const out = {candlestick: 0, EMA: 0};
                for (const plot of document.querySelectorAll('.js-plotly-plot')) {
                    for (const t of plot.data || []) {
                        if (t.type === 'candlestick') out.candlestick += t.close.length;
                        if (t.name === 'EMA') out.EMA += t.y.filter(v => v !== null).length;
                    }
                }
                return out;
            }"""
        )
        drawn = page.locator(".js-plotly-plot g.trace.boxes path").count()  # plotly's candle bodies
        if (drawn and counts["candlestick"] and counts["EMA"]) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(200)
    assert drawn > 0, "plotly drew no candle in the page"
    return counts


def _shot(page: Any, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to fit it."""
    size = page.viewport_size
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=stMain], section, body')]"
        ".map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, 6000))})
    page.wait_for_timeout(300)
    page.screenshot(path=path)
    page.set_viewport_size(size)


def _go(page: Any, name: str) -> None:
    page.get_by_role("radio", name=name).click()
    _settled(page)


def _settled(page: Any) -> None:
    """Wait for the rerun a click started to end: what is typed while a rerun is on can be reset by it
    (CI once saw the candle count typed after "Example" go back to its default)."""
    page.wait_for_timeout(250)  # the click's rerun request reaches the server first
    page.locator("[data-testid=stApp][data-test-script-state=notRunning]").wait_for()


def _value(params: Any, field: str) -> Any:
    section, key = field.split(".")
    return params["params"][section][key]
