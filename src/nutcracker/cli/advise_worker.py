"""``nutcracker advise worker``: one of any number of processes sharing the advisor's search."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nutcracker.cli._common import EXIT_JOURNAL
from nutcracker.cli.advise import StoreOption, check_filing, fail, filing_store, load_inputs, where_kept
from nutcracker.errors import AdvisorError, ConfigError


def worker(
    config_file: Annotated[
        Path, typer.Option("--config", help="TOML config: parameters and the \\[advisor] table.")
    ],
    study: Annotated[
        str,
        typer.Option("--study", help="The shared study's name: every worker of one search gives the same."),
    ],
    storage: Annotated[
        str,
        typer.Option(
            "--storage",
            help="Where the study lives: redis://HOST:PORT/DB, an SQLAlchemy URL, or a file (the default).",
        ),
    ] = "advisor-study.log",
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="Candle CSV per symbol: BASE/QUOTE=FILE (or FILE).", metavar="[SYMBOL=]FILE"
        ),
    ] = None,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal", help="Journal of a run: its period and record; the suggestions are filed in it."
        ),
    ] = None,
    store: StoreOption = None,
    trials: Annotated[int, typer.Option(help="The study's trial set per symbol (each: every window).")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the trial set: same inputs, same advice.")] = 0,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for other workers' trials before reporting.")
    ] = 600.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write suggestions.json and report.html here.")
    ] = None,
    heartbeat: Annotated[
        int, typer.Option("--heartbeat", help="Seconds between the heartbeats of the trial this worker runs.")
    ] = 10,
    grace: Annotated[
        int,
        typer.Option(
            "--grace",
            help="Seconds without a heartbeat after which a running trial's worker counts as dead: "
            "its trial is failed and its parameters run again.",
        ),
    ] = 60,
) -> None:
    """Run trials of a study shared with other workers (here or on other machines), then report its advice."""
    err = Console(stderr=True)
    if not 0 <= wait <= 86_400:
        raise fail(err, ConfigError(f"--wait {wait}: give 0 to 86400 seconds"))
    if not study.strip() or len(study) > 200:
        raise fail(err, ConfigError("--study: give a name of 1 to 200 characters"))
    if not 1 <= heartbeat < grace <= 86_400:
        raise fail(
            err, ConfigError(f"--heartbeat {heartbeat} --grace {grace}: give 1 <= heartbeat < grace <= 86400")
        )
    check_filing(err, journal, store)
    config, candles = load_inputs(err, config_file, data, trials=trials, seed=seed)
    from nutcracker.advisor.heartbeat import Heartbeat
    from nutcracker.advisor.run import file_advice, journal_windows
    from nutcracker.advisor.shared import METHOD, run_worker
    from nutcracker.advisor.suggestion import advice
    from nutcracker.store.migrations import JournalError

    progress = lambda m: err.print(m, style="dim", markup=False)  # noqa: E731
    try:
        kept = filing_store(journal, store)
        windows = journal_windows(journal, config, candles) if journal is not None else {}
        data_of = {
            s: c if s not in windows else c.slice(windows[s].start, windows[s].stop)
            for s, c in candles.items()
        }
        runs = run_worker(
            config,
            data_of,
            study=study,
            storage_url=storage,
            trials=trials,
            seed=seed,
            wait_s=wait,
            heartbeat=Heartbeat(heartbeat, grace),
            progress=progress,
        )
        source = f"journal {journal.name}" if journal is not None else "config backtest on candle files"
        advices = [
            advice(
                config,
                r.search,
                data_of[r.symbol],
                source=source,
                history=windows[r.symbol].summary if r.symbol in windows else None,
                method=METHOD,
            )
            for r in runs
            if r.search is not None
        ]
        filed = (
            file_advice(
                kept, advices, now_ms=time.time_ns() // 1_000_000, expire_days=config.advisor.expire_days
            )
            if kept is not None and config.advisor is not None
            else []
        )
    except JournalError as e:
        raise fail(err, e, EXIT_JOURNAL) from None
    except (AdvisorError, ConfigError) as e:
        raise fail(err, e) from None
    console = Console()
    by_symbol = {a.symbol: a for a in advices}
    for r in runs:
        console.print(
            f"{r.symbol}: this worker ran {len(r.ran)} trials of {r.total} in study {r.study}; "
            f"{r.finished} of {r.total} finished",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        if r.dead:
            console.print(
                f"  {r.dead} trial(s) lost their worker (no heartbeat for --grace): failed, and their "
                "parameters run again",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        a = by_symbol.get(r.symbol)
        if a is None:
            console.print(
                f"  {r.total - r.finished} trials still run elsewhere after --wait {wait:g} s: run a worker "
                "again later to report the advice",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            continue
        console.print(f"  {a.record['summary']}", markup=False, highlight=False, soft_wrap=True)
        if a.suggests:
            console.print(
                f"  suggestion {a.id}: {json.dumps(a.record['diff'])}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    if filed:
        console.print(
            f"filed {len(filed)} suggestion(s) in {where_kept(journal, store)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if out is not None and advices:
        from nutcracker.advisor.report import write_outputs

        write_outputs(out, advices)
        console.print(f"evidence: {out}/suggestions.json, {(out / 'report.html').resolve()}", markup=False)
    if advices:
        console.print(advices[0].record["disclaimer"], markup=False, highlight=False, soft_wrap=True)
