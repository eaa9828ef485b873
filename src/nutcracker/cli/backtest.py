"""``nutcracker backtest``: the decision core over candles; the results written and summarized."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nutcracker.cli._common import check_options, print_summary
from nutcracker.config import load_config
from nutcracker.errors import EXIT_CONFIG, ConfigError
from nutcracker.ranges import SEED, SYNTHETIC


def backtest(
    config_file: Annotated[Path, typer.Option("--config", help="TOML configuration file.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory for summary.json, fills.csv, orders.csv, decisions.csv, report.html."
        ),
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Candle CSV: FILE (symbol from its name, or the config's only symbol) or "
            "BASE/QUOTE=FILE. Without it: the built-in seeded synthetic market.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    trades: Annotated[
        list[str] | None,
        typer.Option(
            "--trades",
            help="Trade prints CSV (timestamp,price,amount,side): on the candles it covers, fills come "
            "from the prints, queue-aware. Named like --data.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    bbo: Annotated[
        list[str] | None,
        typer.Option(
            "--bbo",
            help="Top-of-book CSV (timestamp,bid,bid_size,ask,ask_size): the book the pulses it covers "
            "see, and the queue ahead of orders at the best price. Named like --data.",
            metavar="[SYMBOL=]FILE",
        ),
    ] = None,
    synthetic: Annotated[
        int, typer.Option(help="Synthetic candles per symbol when no --data is given.")
    ] = 43_200,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    skip: Annotated[
        bool, typer.Option(help="Skip candles on which nothing can change (same results, faster).")
    ] = True,
) -> None:
    """Run the live decision code over historical (or synthetic) candles and write the results."""
    check_options(("--synthetic", synthetic, SYNTHETIC), ("--seed", seed, SEED))
    from nutcracker.app.kernel import backtest as run_backtest
    from nutcracker.backtest.data import assign_data, load_data, load_prints, load_quotes
    from nutcracker.backtest.output import write_outputs
    from nutcracker.errors import DataError

    err = Console(stderr=True)
    try:
        config = load_config(config_file)
        candles = load_data(config, assign_data(config, data or []), synthetic=synthetic, seed=seed)
        prints = load_prints(config, assign_data(config, trades or [], "--trades"))
        quotes = load_quotes(config, assign_data(config, bbo or [], "--bbo"))
    except (ConfigError, DataError, OSError) as e:
        err.print(f"✗ {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CONFIG) from None
    from nutcracker.sizing import data_fit_warnings

    for warning in data_fit_warnings(config, candles):
        err.print(warning, markup=False, highlight=False, soft_wrap=True)
    total = sum(len(c.ts_ms) for c in candles.values())
    if err.is_terminal:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("backtest", total=total)
            result = run_backtest(
                config,
                candles,
                skip=skip,
                progress=lambda i: progress.update(task, completed=i),
                prints=prints,
                quotes=quotes,
            )
    else:
        result = run_backtest(config, candles, skip=skip, prints=prints, quotes=quotes)
    summary = write_outputs(result, config, out, report=report)
    print_summary(Console(), summary, out, report)
