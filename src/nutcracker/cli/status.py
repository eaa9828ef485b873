"""``nutcracker status``: every symbol's state as the journal tells it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from nutcracker.cli._common import journal_failed
from nutcracker.errors import EXIT_CONFIG

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nutcracker.core.records import ParamsRow


def status(
    journal: Annotated[Path, typer.Option(help="The engine's SQLite journal.")] = Path("nutcracker.db"),
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store", help="Workers' Redis store (redis://…): every symbol, owner, token, lease age."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --store: one JSON object per symbol.")
    ] = False,
) -> None:
    """Print the state of every symbol from the journal: trading, idle (and why), stalled, paused,
    killed, or stopped (when and why)."""
    if store_url is not None:
        from nutcracker.cli.worker import store_status

        store_status(store_url, as_json)
        return
    from nutcracker.status_view import read_lifecycle, symbol_status
    from nutcracker.store.sqlite import SqliteJournal

    err = Console(stderr=True)
    if not journal.exists():
        err.print(f"✗ no journal at {journal}: {_journal_hint()}", markup=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG)
    from nutcracker.errors import JournalError

    try:
        store = SqliteJournal(journal)
    except JournalError as e:
        journal_failed(err, e)
    try:
        rows = store.symbols()
        life = read_lifecycle(store)
        table = Table(title=f"journal {journal}", title_justify="left")
        for column in (
            "symbol",
            "status",
            "why",
            "inventory",
            "open lots",
            "cycles",
            "realized PnL",
            "open orders",
            "open intents",
            f"updated (UTC, {life.clock_label})",
        ):
            table.add_column(column, overflow="fold")
        running = 0
        for row in rows:
            shown = symbol_status(store, row, life)
            running += shown.status != "stopped"
            table.add_row(
                row.symbol,
                shown.status,
                shown.why,
                *_ledger_cells(row.state_json, store.params_history(row.symbol)),
                shown.open_orders,
                str(len(store.open_intents(row.symbol))),
                shown.updated,
            )
    finally:
        store.close()
    console = Console()
    if not console.is_terminal:  # piped or captured: do not fold the table into a narrow default width
        console = Console(width=200)
    console.print(table)
    if not rows:
        console.print("the journal holds no symbol yet", markup=False)
    elif running:  # nothing tells a live engine from one that died: say both
        console.print(
            "no stop journaled after the last activity: the engine is running, or ended without a "
            "clean stop (kill -9, a crash); its orders may still rest",
            markup=False,
            highlight=False,
        )


def _journal_hint() -> str:
    """Say how to find a journal; name the demo's when it is there."""
    demo = Path("out") / "demo" / "demo.db"
    if demo.exists():
        return f"the demo's journal is {demo}: nutcracker status --journal {demo}"
    return "run the engine first, or pass --journal PATH"


def _ledger_cells(state_json: str, params_history: Sequence[ParamsRow]) -> tuple[str, str, str, str]:
    """Return inventory (base), open lots, cycles and realized PnL (quote) of a journaled state."""
    import json

    from nutcracker.core.serialize import loads_params, state_from_dict

    if not state_json:
        return "-", "-", "-", "-"
    try:
        doc = json.loads(state_json)
        ledger = state_from_dict(doc.get("strategy", doc)).ledger
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):  # the engine halts it
        return "unreadable (see why)", "-", "-", "-"
    if not params_history:  # no market known: the units the ledger counts in
        return (
            f"{ledger.held} lots" + (f" + {ledger.dust} bu dust" if ledger.dust else ""),
            str(len(ledger.lots)),
            str(ledger.cycles_closed),
            f"{ledger.realized_pnl} qu",
        )
    market = loads_params(params_history[-1].params_json).market
    precision = market.precision
    dust = f" + {precision.bu_to_base(ledger.dust).normalize():f} dust" if ledger.dust else ""  # below a lot
    return (
        f"{precision.lots_to_qty(ledger.held)} {market.base}{dust}",
        str(len(ledger.lots)),
        str(ledger.cycles_closed),
        f"{precision.qu_to_quote(ledger.realized_pnl).normalize():f} {market.quote}",
    )
