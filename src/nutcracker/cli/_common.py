"""What every command shares: option ranges, the journal's exit code and the results summary."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from nutcracker.backtest.headline import cell, headline, scalar
from nutcracker.errors import EXIT_CONFIG, ConfigError
from nutcracker.ranges import Range, check_option


def check_options(*checks: tuple[str, float | None, Range]) -> None:
    """Refuse, before anything runs, an option value outside its documented range: one line, exit 2."""
    try:
        for name, value, allowed in checks:
            check_option(name, value, allowed)
    except ConfigError as e:
        Console(stderr=True).print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None


def print_summary(console: Console, summary: dict[str, object], out: Path, report: bool) -> None:
    """Print each symbol's headline (return against the yardsticks, risk, activity), then the run."""
    symbols = summary.get("symbols")
    sections = symbols if isinstance(symbols, dict) else {}
    say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
    for symbol, section in sections.items():
        if not isinstance(section, dict):
            continue
        console.print(Text(str(symbol), style="bold"))
        for line in headline(str(symbol), section):
            say(f"  {line}")
        quote = str(symbol).rpartition("/")[2]
        violations = section.get("rail_violations", 0)
        rails = "no rail broken" if not violations else f"✗ {violations} rail violations"
        say(f"  final equity {cell('_quote', section.get('final_equity_quote'))} {quote} · {rails}")
    if len(sections) > 1:
        say(
            f"all symbols: realized PnL {cell('_quote', summary.get('realized_pnl_quote'))} · fees "
            f"{cell('_quote', summary.get('fees_quote'))} · rail violations {summary.get('rail_violations')}"
        )
    say(
        f"{scalar(summary.get('candles'))} candles, {scalar(summary.get('pulses'))} pulses, "
        f"{scalar(summary.get('fills'))} fills in {scalar(summary.get('elapsed_s'))} s "
        f"({scalar(summary.get('candles_per_s'))} candles/s)"
    )
    say(f"results: {out}/summary.json (every digit), fills.csv, orders.csv, decisions.csv")
    if report:
        say(f"report: {(out / 'report.html').resolve()}")


EXIT_JOURNAL = 3  # the journal is damaged, unusable, or behind the exchange: nothing was started


def journal_failed(err: Console, error: Exception) -> NoReturn:
    """Print a journal error as its one line (file, fault, fix) and exit ``EXIT_JOURNAL``."""
    err.print(f"✗ {error}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_JOURNAL) from None
