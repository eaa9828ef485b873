"""The terminal's summary after a backtest or replay: each symbol's headline, rounded, then the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from nutcracker.cli._common import print_summary


def _section(ret: float, violations: int = 0) -> dict[str, Any]:
    return {
        "first_candle": "2024-07-26 14:15 UTC",
        "last_candle": "2024-08-25 14:23 UTC",
        "days": 30.006,
        "return_pct": ret,
        "realized_pnl_quote": "11.4562026071728",
        "fees_quote": "16.4701499029",
        "final_equity_quote": "4739.08626738",
        "max_drawdown_pct": 27.1827,
        "cycles_closed": 5,
        "cycles_per_day": 0.1666,
        "cancels_per_fill": 3.0,
        "in_market_pct": 91.6,
        "loaded_pct": 89.69,
        "at_rail_pct": 91.7,
        "rail_violations": violations,
        "baselines": {
            "buy_and_hold": {"return_pct": -5.3521},
            "static_grid_1pct": {"return_pct": -1.7899},
            "static_grid_2pct": {"return_pct": 0.4042},
        },
    }


def _printed(symbols: dict[str, Any]) -> str:
    console = Console(record=True, width=200)
    summary = {
        "candles": 43209,
        "pulses": 62,
        "fills": 20,
        "elapsed_s": 0.43,
        "candles_per_s": 100224,
        "realized_pnl_quote": "22.9124",
        "fees_quote": "32.94",
        "rail_violations": sum(s["rail_violations"] for s in symbols.values()),
        "symbols": symbols,
    }
    print_summary(console, summary, Path("out"), report=True)
    return console.export_text()


def test_each_symbol_reads_as_return_against_the_yardsticks_in_cents_and_percent() -> None:
    text = _printed({"BTC/USDT": _section(-5.2183)})
    assert "return -5.22 % · buy and hold -5.35 % · best static grid (2 %) +0.40 %" in text
    assert "The static 2 % grid did better over this period." in text
    assert "realized PnL 11.46 USDT after fees · fees 16.47 USDT" in text
    assert "final equity 4,739.09 USDT · no rail broken" in text
    assert "43,209 candles, 62 pulses, 20 fills" in text
    assert "11.4562026071728" not in text  # every digit stays in summary.json only
    assert "all symbols" not in text


def test_a_better_run_gets_no_grid_verdict_and_a_broken_rail_is_shouted() -> None:
    text = _printed({"BTC/USDT": _section(3.1), "ETH/USDT": _section(-9.0, violations=2)})
    assert text.count("did better over this period") == 1
    assert "✗ 2 rail violations" in text
    assert "all symbols: realized PnL 22.91 · fees 32.94 · rail violations 2" in text
    assert text.index("BTC/USDT") < text.index("ETH/USDT") < text.index("all symbols")
