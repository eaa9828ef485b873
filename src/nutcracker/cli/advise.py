"""``nutcracker advise`` and ``nutcracker suggestions``: the advisor's search, and the user's decision."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from nutcracker.cli._common import EXIT_JOURNAL
from nutcracker.errors import EXIT_CONFIG, AdvisorError, ConfigError, DataError
from nutcracker.store.suggestions import Suggestions, SuggestionStore

if TYPE_CHECKING:
    from nutcracker.config import NutcrackerConfig
    from nutcracker.marketdata.candles import CandleArrays

JournalOption = Annotated[
    Path | None, typer.Option("--journal", help="The journal file the suggestions are kept in.")
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The workers' Redis (redis://[:PASSWORD@]HOST:PORT/DB): the suggestions `serve --store` serves.",
    ),
]
advise_app = typer.Typer(
    help="Search better parameters walk-forward; suggest them only if they win out of sample.",
    invoke_without_command=True,
)
suggestions_app = typer.Typer(
    help="List, show, accept or reject the advisor's suggestions.", no_args_is_help=True
)


def fail(err: Console, error: Exception, code: int = EXIT_CONFIG) -> typer.Exit:
    """Print ``error`` as its one line; return the exit to raise."""
    err.print(f"✗ {error}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def load_inputs(
    err: Console, config_file: Path, data: list[str] | None, *, trials: int, seed: int
) -> tuple[NutcrackerConfig, dict[str, CandleArrays]]:
    """Check the options ``advise`` and ``advise worker`` share, then load the config and its candles.

    Raises:
        typer.Exit: a bad option, config or candle file (one line, exit 2).
    """
    if trials < 1 or trials > 100_000:
        raise fail(err, ConfigError(f"--trials {trials}: give 1 to 100000 trials per study"))
    if seed < 0:
        raise fail(err, ConfigError(f"--seed {seed}: give a seed >= 0"))
    if not data:
        raise fail(
            err, ConfigError("--data: give the candle file of every symbol, e.g. --data BTC/USDT=FILE")
        )
    from nutcracker.backtest.data import assign_data, load_data
    from nutcracker.config import load_config

    try:
        config = load_config(config_file)
        return config, load_data(config, assign_data(config, data), synthetic=0, seed=0)
    except (ConfigError, DataError, OSError) as e:
        raise fail(err, e) from None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@advise_app.callback(invoke_without_command=True)
def advise(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML config: parameters and the \\[advisor] table.")
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal", help="Journal of a run: its period and record; suggestions are filed in it."
        ),
    ] = None,
    store: StoreOption = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="Candle CSV per symbol: BASE/QUOTE=FILE (or FILE).", metavar="[SYMBOL=]FILE"
        ),
    ] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials per study (one study per fold, one more).")] = 30,
    seed: Annotated[
        int, typer.Option(help="Seed of the search and the model: same inputs, same advice.")
    ] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write suggestions.json and report.html here.")
    ] = None,
) -> None:
    """Search better parameters walk-forward on your candles; suggest them only if they win out of sample.

    `nutcracker advise worker` spreads the search over processes sharing one Optuna study.
    """
    if ctx.invoked_subcommand is not None:
        return
    err = Console(stderr=True)
    if config_file is None:
        raise fail(err, ConfigError("--config: give the TOML config with its [advisor] table"))
    check_filing(err, journal, store)
    config, candles = load_inputs(err, config_file, data, trials=trials, seed=seed)
    from nutcracker.advisor.run import advise as run_advise
    from nutcracker.advisor.run import file_advice
    from nutcracker.store.migrations import JournalError

    try:
        kept = filing_store(journal, store)
        advices = run_advise(
            config,
            candles,
            journal=journal,
            trials=trials,
            seed=seed,
            progress=lambda m: err.print(m, style="dim", markup=False),
        )
        filed = (
            file_advice(kept, advices, now_ms=_now_ms(), expire_days=config.advisor.expire_days)
            if kept is not None and config.advisor is not None
            else []
        )
    except JournalError as e:
        raise fail(err, e, EXIT_JOURNAL) from None
    except (AdvisorError, ConfigError) as e:
        raise fail(err, e) from None
    console = Console()
    for a in advices:
        r = a.record
        console.print(f"{a.symbol}: {r['summary']}", markup=False, highlight=False, soft_wrap=True)
        if a.suggests:
            console.print(
                f"  suggestion {a.id}: {json.dumps(r['diff'])}", markup=False, highlight=False, soft_wrap=True
            )
        model = r["excursion_model"] or {}
        console.print(f"  excursion model: {model.get('verdict', model.get('skipped'))}", markup=False)
    if filed:
        console.print(
            f"filed {len(filed)} suggestion(s) in {where_kept(journal, store)}: "
            f"`nutcracker suggestions show ID {where_kept(journal, store, as_option=True)}`",
            markup=False,
            highlight=False,
            soft_wrap=True,  # a command to copy: never wrapped
        )
    elif any(a.suggests for a in advices):
        console.print("no --journal nor --store: nothing filed (accepting needs one)", markup=False)
    if out is not None:
        from nutcracker.advisor.report import write_outputs

        write_outputs(out, advices)
        console.print(f"evidence: {out}/suggestions.json, {(out / 'report.html').resolve()}", markup=False)
    console.print(
        advices[0].record["disclaimer"] if advices else "", markup=False, highlight=False, soft_wrap=True
    )


def check_filing(err: Console, journal: Path | None, store: str | None) -> None:
    """Refuse ``--journal`` with ``--store``: suggestions are kept in one place (exit 2)."""
    if journal is not None and store is not None:
        raise fail(
            err,
            ConfigError(
                "--journal and --store: give one (--journal: an engine's journal file; "
                "--store: the Redis of `nutcracker worker`s)"
            ),
        )


def filing_store(journal: Path | None, store: str | None) -> Suggestions | None:
    """Open where suggestions are filed: Redis (``--store``), a journal file, or nowhere.

    Raises:
        JournalError: the file or the Redis cannot keep them (one line with the fix).
    """
    if store is not None:
        from nutcracker.store.redis_suggestions import RedisSuggestions

        return RedisSuggestions(store)
    return None if journal is None else SuggestionStore(journal)


def where_kept(journal: Path | None, store: str | None, *, as_option: bool = False) -> str:
    """Name where suggestions are kept (a Redis URL without its password)."""
    if store is not None:
        from nutcracker.store.redis_connect import describe

        return f"--store {describe(store)}" if as_option else f"Redis {describe(store)}"
    return f"--journal {journal}" if as_option else str(journal)


def _store(err: Console, journal: Path | None, store: str | None) -> Suggestions:
    from nutcracker.store.migrations import JournalError

    check_filing(err, journal, store)
    try:
        kept = filing_store(journal, store)
    except JournalError as e:
        raise fail(err, e, EXIT_JOURNAL) from None
    if kept is None:
        raise fail(err, ConfigError("give --journal FILE (an engine's) or --store redis://… (the workers')"))
    return kept


def _journal_only(err: Console, journal: Path | None, store: str | None, verb: str) -> Path:
    """Decide in a journal file; with ``--store`` the decision goes through the API (exit 2)."""
    if store is not None:
        raise fail(
            err,
            ConfigError(
                f"--store: {verb} through the API of `nutcracker serve --store` (POST "
                f"/api/v1/symbols/SYMBOL/suggestions/ID/{verb}), so the symbol's worker journals it"
            ),
        )
    if journal is None:
        raise fail(err, ConfigError("--journal: give the engine's journal file the suggestion is in"))
    return journal


@suggestions_app.command("list")
def list_suggestions(journal: JournalOption = None, store: StoreOption = None) -> None:
    """List the suggestions, newest first, with their status."""
    kept = _store(Console(stderr=True), journal, store)
    kept.expire(_now_ms())
    console = Console()
    rows = kept.all()
    if not rows:
        console.print("no suggestions", markup=False)
    for s in rows:
        diff = json.loads(s.record_json)["diff"]
        console.print(
            f"{s.id}  {s.status:<8}  {s.symbol}  {json.dumps(diff)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@suggestions_app.command("show")
def show(
    suggestion_id: Annotated[str, typer.Argument(metavar="ID")],
    journal: JournalOption = None,
    store: StoreOption = None,
) -> None:
    """Print one suggestion's record: the diff, the per-fold evidence, the disclaimer."""
    err = Console(stderr=True)
    kept = _store(err, journal, store)
    kept.expire(_now_ms())
    found = kept.get(suggestion_id)
    if found is None:
        raise fail(
            err,
            ConfigError(f"{suggestion_id}: no such suggestion; list them with `nutcracker suggestions list`"),
        )
    Console().print(
        f"status: {found.status}\n{found.record_json}", markup=False, highlight=False, soft_wrap=True
    )


@suggestions_app.command("accept")
def accept(
    suggestion_id: Annotated[str, typer.Argument(metavar="ID")],
    config_file: Annotated[
        Path, typer.Option("--config", help="The config file to change (FILE.bak is kept).")
    ],
    journal: JournalOption = None,
    store: StoreOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    actor: Annotated[str, typer.Option(help="Who accepts (journaled as the actor).")] = "",
) -> None:
    """Apply a pending suggestion to your config file, as your own change (journaled with its id)."""
    from nutcracker.app.suggestions import accept as accept_suggestion
    from nutcracker.app.suggestions import pending
    from nutcracker.store.migrations import JournalError

    err = Console(stderr=True)
    journal = _journal_only(err, journal, store, "accept")
    who = actor or f"user:{getpass.getuser()}"
    try:
        found = pending(_store(err, journal, None), suggestion_id, _now_ms())
        diff = json.loads(found.record_json)["diff"]
        if not yes and not typer.confirm(f"apply {json.dumps(diff)} to {found.symbol} in {config_file}?"):
            raise fail(err, ConfigError("not accepted: nothing changed"), 1)
        done = accept_suggestion(journal, config_file, suggestion_id, actor=who, now_ms=_now_ms())
    except JournalError as e:
        raise fail(err, e, EXIT_JOURNAL) from None
    except (ConfigError, OSError) as e:
        raise fail(err, e) from None
    Console().print(
        f"accepted {done.suggestion_id} for {done.symbol}: {config_file} changed (previous: {done.backup}); "
        "a running engine takes it at its next start",
        markup=False,
        highlight=False,
    )


@suggestions_app.command("reject")
def reject(
    suggestion_id: Annotated[str, typer.Argument(metavar="ID")],
    journal: JournalOption = None,
    store: StoreOption = None,
    actor: Annotated[str, typer.Option(help="Who rejects (journaled as the actor).")] = "",
) -> None:
    """Reject a pending suggestion (it can no longer be accepted)."""
    from nutcracker.app.suggestions import reject as reject_suggestion
    from nutcracker.store.migrations import JournalError

    err = Console(stderr=True)
    journal = _journal_only(err, journal, store, "reject")
    try:
        reject_suggestion(
            journal, suggestion_id, actor=actor or f"user:{getpass.getuser()}", now_ms=_now_ms()
        )
    except JournalError as e:
        raise fail(err, e, EXIT_JOURNAL) from None
    except ConfigError as e:
        raise fail(err, e) from None
    Console().print(f"rejected {suggestion_id}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``advise`` (and ``advise worker``) and ``suggestions`` to the CLI."""
    from nutcracker.cli.advise_worker import worker

    advise_app.command("worker")(worker)
    app.add_typer(advise_app, name="advise")
    app.add_typer(suggestions_app, name="suggestions")
