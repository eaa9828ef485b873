"""What every command shares: option ranges, the journal's exit code and the results summary."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

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
    table = Table(title="summary", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if key not in ("config", "symbols", "starting_balances"):
            table.add_row(key, str(value))
    console.print(table)
    console.print(
        f"results: {out}/summary.json, fills.csv, orders.csv, decisions.csv", markup=False, highlight=False
    )
    if report:
        console.print(f"report: {(out / 'report.html').resolve()}", markup=False, highlight=False)


EXIT_JOURNAL = 3  # the journal is damaged, unusable, or behind the exchange: nothing was started


def journal_failed(err: Console, error: Exception) -> NoReturn:
    """Print a journal error as its one line (file, fault, fix) and exit ``EXIT_JOURNAL``."""
    err.print(f"✗ {error}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_JOURNAL) from None
