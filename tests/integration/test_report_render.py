"""The backtest's HTML report renders in a real browser (headless Chromium), offline, within size bounds.

The page is opened from a file with Chromium's ``--dump-dom`` after its scripts ran
(``--virtual-time-budget``). Console output is caught twice: a script injected into a copy of the
page records errors, warnings, uncaught exceptions and CSP violations into the DOM, and Chromium's
own log (``--enable-logging=stderr``) must show no ``CONSOLE`` line at all.
"""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nutcracker.backtest.report import (
    CHART_KINDS,
    DEFAULT_MAX_POINTS,
    ReportData,
    SymbolSeries,
    downsample,
    figures,
    write_report,
)
from nutcracker.core.units import Precision
from nutcracker.marketdata.synthetic import synthetic_candles

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"headless Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
    "(CI installs it) to check that the report renders",
)
PRECISION = Precision(Decimal("0.01"), Decimal("0.00001"))
CAPTURE_JS = """<script>
window.__ncErrors = [];
(function () {
  function push(kind, text) { window.__ncErrors.push(kind + ": " + text); }
  window.addEventListener("error", function (e) {
    push("error", e.message || (e.target && (e.target.src || e.target.href)) || String(e));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { push("rejection", String(e.reason)); });
  document.addEventListener("securitypolicyviolation", function (e) {
    push("csp", e.violatedDirective + " " + e.blockedURI);
  });
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      push(level, Array.prototype.join.call(arguments, " "));
      return original.apply(console, arguments);
    };
  });
  window.addEventListener("load", function () {
    setTimeout(function () {
      var pre = document.createElement("pre");
      pre.id = "nc-test-errors";
      pre.textContent = JSON.stringify(window.__ncErrors);
      document.body.appendChild(pre);
    }, 2000);
  });
})();
</script>"""


# --- building the data -------------------------------------------------------------------------------


def make_series(n: int, seed: int, symbol: str, n_cycles: int = 40) -> SymbolSeries:
    """Return a SymbolSeries over ``n`` synthetic candles with fake grid levels, fills and cycles."""
    candles = synthetic_candles(seed, n, Decimal("100"), PRECISION, symbol=symbol)
    tick = float(PRECISION.tick)
    close, high, low = candles.close * tick, candles.high * tick, candles.low * tick
    window = min(20, n)
    kernel = np.ones(window) / window
    mid = np.convolve(close, kernel, mode="full")[:n]
    atr = np.convolve(high - low, kernel, mode="full")[:n]
    mid[: window - 1] = np.nan  # warming up
    i = np.arange(n)
    resting = (i % 60) < 45
    best_buy = np.where(resting, np.round(close * 0.995, 2), np.nan)
    fill_at = np.arange(10, n, max(1, n // 120))
    is_buy = np.arange(len(fill_at)) % 2 == 0
    inventory = np.clip(np.cumsum(np.where(i % 120 < 60, 0.002, -0.002)), 0, None)
    rng = np.random.default_rng(seed)
    return SymbolSeries(
        symbol=symbol,
        interval_ms=candles.interval_ms,
        ts_ms=candles.ts_ms,
        close=close,
        high=high,
        low=low,
        keltner_mid=mid,
        keltner_upper=mid + 2 * atr,
        keltner_lower=mid - 2 * atr,
        best_buy=best_buy,
        deepest_buy=best_buy * 0.98,
        best_sell=np.where(resting, np.round(close * 1.005, 2), np.nan),
        equity_quote=1_000 + np.cumsum(rng.normal(0.0, 0.2, n)),
        buy_and_hold_quote=1_000 * close / close[0],
        inventory_base=inventory,
        committed_quote=inventory * close,
        max_base=0.2,
        max_quote=30.0,
        fill_ts_ms=candles.ts_ms[fill_at] + candles.interval_ms - 1,
        fill_is_buy=is_buy,
        fill_price=np.where(is_buy, low[fill_at] + 0.01, high[fill_at] - 0.01),
        cycle_pnl_quote=rng.normal(0.05, 0.2, n_cycles),
    )


def summary_of(series: list[SymbolSeries]) -> dict[str, Any]:
    per_symbol = {
        s.symbol: {"candles": len(s.ts_ms), "fills": len(s.fill_ts_ms), "rail_violations": 0} for s in series
    }
    return {
        "candles": sum(len(s.ts_ms) for s in series),
        "fills": sum(len(s.fill_ts_ms) for s in series),
        "rail_violations": 0,
        "final_equity_quote": "1012.34",
        "symbols": per_symbol,
        "config": {"engine": {"id": "demo"}, "symbol": [{"market": {"symbol": s.symbol}} for s in series]},
    }


# --- the browser harness -----------------------------------------------------------------------------


class Charts(HTMLParser):
    """Count, in a dumped DOM, what each ``section.nc-chart`` rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.charts: dict[str, dict[str, Any]] = {}
        self.in_errors = False
        self.errors: str | None = None
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "pre" and a.get("id") == "nc-test-errors":
            self.in_errors = True
        if tag == "section" and "nc-chart" in classes:
            self.section = str(a["id"])
            self.charts[self.section] = {
                "expected_traces": int(a["data-traces"] or -1),
                "rendered": a.get("data-rendered"),
                "traces": 0,
                "main_svg": 0,
                "points": 0,
                "plot_div": 0,
            }
            return
        if self.section is None:
            return
        chart = self.charts[self.section]
        chart["traces"] += tag == "g" and "trace" in classes
        chart["main_svg"] += tag == "svg" and "main-svg" in classes
        chart["points"] += "point" in classes
        chart["plot_div"] += tag == "div" and "js-plotly-plot" in classes

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None
        if tag == "pre":
            self.in_errors = False

    def handle_data(self, data: str) -> None:
        if self.in_errors:
            self.errors = (self.errors or "") + data


def open_in_chromium(page: Path, work: Path) -> tuple[Charts, list[str]]:
    """Return what Chromium rendered of ``page`` (with the capture script) and its console log lines."""
    probe = work / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + CAPTURE_JS, 1), "utf-8")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={work / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,1000",
        "--virtual-time-budget=15000",
        "--dump-dom",
        probe.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"chromium exited with {done.returncode}:\n{done.stderr[-3000:]}"
    charts = Charts()
    charts.feed(done.stdout)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return charts, console


# --- tests ---------------------------------------------------------------------------------------------


@needs_chromium
@pytest.mark.slow
def test_every_chart_renders_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    series = [
        make_series(3_000, seed=7, symbol="SYN/USDT"),
        make_series(500, seed=8, symbol="ALT/USDT", n_cycles=0),
    ]
    page = tmp_path / "report.html"
    write_report(page, ReportData("Backtest: two symbols", summary_of(series), tuple(series)))

    charts, console = open_in_chromium(page, tmp_path)

    assert console == [], "the page logged to the console:\n" + "\n".join(console)
    assert charts.errors is not None, "the capture script did not run (no #nc-test-errors in the DOM)"
    assert json.loads(charts.errors) == []
    expected = {f"{kind}-{i}" for i in range(len(series)) for kind in CHART_KINDS}
    assert set(charts.charts) == expected
    for name, chart in charts.charts.items():
        assert chart["rendered"] == "1", f"{name}: Plotly.newPlot did not finish"
        assert chart["plot_div"] == 1, name
        assert chart["main_svg"] >= 2, f"{name}: no plot SVG"
        assert chart["traces"] == chart["expected_traces"], f"{name}: {chart}"
    assert (
        charts.charts["price-0"]["expected_traces"] == 11
    )  # range (2), close, 3 bands, 3 grid lines, 2 fills
    assert charts.charts["price-0"]["points"] == len(series[0].fill_ts_ms)  # one marker per fill
    assert charts.charts["price-1"]["points"] == len(series[1].fill_ts_ms)
    assert charts.charts["cycles-0"]["points"] > 0  # histogram bars
    assert charts.charts["cycles-1"]["expected_traces"] == 0  # no closed cycles: an empty chart, no error
    assert {"summary", "config", "symbol-0", "symbol-1"} <= charts.ids


@needs_chromium
def test_the_harness_catches_console_errors(tmp_path: Path) -> None:
    """A negative control: a page that errs must not pass the checks the report passes."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<section class="nc-chart" id="x" data-traces="1"></section>'
        "<script>console.error('broken chart'); undefinedFunction();</script></body></html>"
    )
    charts, console = open_in_chromium(page, tmp_path)

    errors = json.loads(charts.errors or "null")
    assert any("broken chart" in e for e in errors), errors
    assert any("undefinedFunction" in e for e in errors), errors
    assert console, "chromium's log shows no console line"
    assert charts.charts["x"]["rendered"] is None


def test_the_page_is_self_contained_and_offline(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_report(page, ReportData("t", {"fills": 1}, (make_series(300, seed=3, symbol="SYN/USDT"),)))
    text = page.read_text(encoding="utf-8")

    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", text)
    assert "Content-Security-Policy" in text
    assert "default-src 'none'" in text
    assert "Plotly.newPlot" in text
    assert text.count('class="nc-chart') == len(CHART_KINDS)


def test_a_130k_candle_report_is_downsampled_to_a_few_megabytes(tmp_path: Path) -> None:
    n = 130_000
    series = make_series(n, seed=11, symbol="SYN/USDT", n_cycles=5_000)
    page = tmp_path / "report.html"
    write_report(page, ReportData("long", {"candles": n}, (series,)))

    size = page.stat().st_size
    assert size < 8_000_000, f"report of {n} candles is {size:,} bytes"
    for kind, fig in figures(series).items():
        for trace in fig["data"]:
            for axis in ("x", "y"):
                values = trace.get(axis)
                assert values is None or len(values) <= DEFAULT_MAX_POINTS, (kind, trace["name"], axis)


def test_downsampling_keeps_the_extremes_the_trend_and_the_gaps() -> None:
    interval = 60_000
    ts = np.arange(100_000, dtype=np.int64) * interval
    values = np.sin(np.arange(100_000) / 500.0)
    values[31_234] = 5.0  # a spike
    values[77_777] = -4.0
    r = downsample(ts, values, interval, max_points=1_000)
    assert len(r.y) <= 1_000
    assert np.nanmax(r.y) == 5.0
    assert np.nanmin(r.y) == -4.0
    assert r.x0 == 0.0
    assert r.dx * len(r.y) == pytest.approx(100_000 * interval, rel=0.01)

    # a falling bucket gives its max first
    falling = downsample(ts[:10], np.arange(10.0)[::-1], interval, max_points=2)
    assert falling.y.tolist() == [9.0, 0.0]

    # short series keep every candle; a missing candle is a NaN gap on the regular grid
    gappy = np.array([0, 1, 2, 5, 6], dtype=np.int64) * interval
    short = downsample(gappy, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), interval, max_points=100)
    assert short.dx == interval
    assert np.isnan(short.y[3:5]).all()
    assert short.y[[0, 1, 2, 5, 6]].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]

    # NaNs inside a bucket are ignored; an all-NaN bucket stays NaN
    warm = np.r_[np.full(500, np.nan), np.ones(500)]
    r = downsample(ts[:1_000], warm, interval, max_points=10)
    assert np.isnan(r.y[:2]).all()
    assert (r.y[-2:] == 1.0).all()

    lows = downsample(ts, values, interval, max_points=1_000, how="min")
    assert np.nanmin(lows.y) == -4.0
    assert (lows.y[::2] == lows.y[1::2]).all()


def test_series_of_different_lengths_are_refused() -> None:
    good = make_series(50, seed=1, symbol="SYN/USDT")
    fields = {name: getattr(good, name) for name in SymbolSeries.__dataclass_fields__}
    with pytest.raises(ValueError, match="close must be 1-d of length 50"):
        SymbolSeries(**{**fields, "close": good.close[:-1]})
    with pytest.raises(ValueError, match="fill_price must be 1-d"):
        SymbolSeries(**{**fields, "fill_price": good.fill_price[:-1]})
