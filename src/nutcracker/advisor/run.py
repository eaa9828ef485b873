"""One advisor run: read the history, search every symbol, fit the excursion model, file the advice.

With a journal, the search runs on the candles of the period the journal covers (its parameter
history to its last event), read from a snapshot of the file; without one, on the whole candle
files. Suggestions are filed in the journal's suggestions table (``store.suggestions``), the only
thing this run writes there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nutcracker.advisor.excursion import excursions, fit_model, proposals
from nutcracker.advisor.search import search_symbol
from nutcracker.advisor.suggestion import Advice, advice
from nutcracker.config import NutcrackerConfig
from nutcracker.core.units import Precision
from nutcracker.errors import AdvisorError
from nutcracker.marketdata.candles import CandleArrays
from nutcracker.store.snapshot import JournalSnapshot
from nutcracker.store.suggestions import Suggestions

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Window:
    """The part of the candles the journal covers for one symbol, and what the user's run did there."""

    start: int
    stop: int
    summary: dict[str, Any]


def journal_windows(
    path: Path, config: NutcrackerConfig, candles: Mapping[str, CandleArrays]
) -> dict[str, Window]:
    """Return, per configured symbol, the candles the journal's history covers and its record.

    Raises:
        JournalError: the file is missing or not a journal.
        AdvisorError: the journal is empty, a symbol has no fills, or the candles miss the period.
    """
    snapshot = JournalSnapshot(path)
    try:
        known = snapshot.symbols()
        if not known:
            raise AdvisorError(
                f"{path}: the journal holds no history yet; run the engine first, "
                "or advise from --config alone"
            )
        last = snapshot.last_ts_ms()
        out = {}
        for table in config.symbol:
            symbol = table.market.symbol
            history = snapshot.params_history(symbol)
            fills = snapshot.fills(symbol)
            if not history or not fills:
                raise AdvisorError(
                    f"{symbol}: the journal {path} has no fills for it; remove it from the config or "
                    "advise once it has traded"
                )
            first = history[0].ts_ms
            c = candles[symbol]
            start = int(np.searchsorted(c.ts_ms, first - c.interval_ms + 1))
            stop = int(np.searchsorted(c.ts_ms, last, side="right"))
            if stop - start < 1 or c.ts_ms[0] > first or c.ts_ms[-1] + c.interval_ms < last:
                raise AdvisorError(
                    f"{symbol}: the candles ({_day(int(c.ts_ms[0]))} to {_day(int(c.ts_ms[-1]))}) do not "
                    f"cover the journal's period ({_day(first)} to {_day(last)}); give --data with candles "
                    "of that period"
                )
            cycles = snapshot.cycles(symbol)
            precision: Precision = table.market.precision
            out[symbol] = Window(
                start,
                stop,
                {
                    "fills": len(fills),
                    "cycles_closed": len(cycles),
                    "realized_pnl_quote": str(precision.qu_to_quote(sum(c.pnl_qu for c in cycles))),
                    "parameter_versions": len(history),
                    "changed_by": sorted({h.actor for h in history}),
                },
            )
        return out
    finally:
        snapshot.close()


def _day(ts_ms: int) -> str:
    return str(np.datetime64(ts_ms, "ms").astype("datetime64[m]")).replace("T", " ")


def advise(
    config: NutcrackerConfig,
    candles: Mapping[str, CandleArrays],
    *,
    journal: Path | None,
    trials: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> list[Advice]:
    """Return the advice for every configured symbol (the search's verdict and the model's view)."""
    windows = journal_windows(journal, config, candles) if journal is not None else {}
    out = []
    for table in config.symbol:
        symbol = table.market.symbol
        window = windows.get(symbol)
        data = candles[symbol] if window is None else candles[symbol].slice(window.start, window.stop)
        search = search_symbol(config, symbol, data, trials=trials, seed=seed, progress=progress)
        model: dict[str, Any]
        try:
            fitted = fit_model(excursions(data, table.to_params(config.engine.id).keltner), seed=seed)
            tune = config.advisor.tune if config.advisor is not None else {}
            model = {**fitted, "proposals_not_backtested": proposals(fitted, dict(tune))}
        except AdvisorError as e:
            model = {"skipped": str(e)}
        source = f"journal {journal.name}" if journal is not None else "config backtest on candle files"
        out.append(
            advice(
                config,
                search,
                data,
                source=source,
                model=model,
                history=None if window is None else window.summary,
            )
        )
    return out


def file_advice(store: Suggestions, advices: list[Advice], *, now_ms: int, expire_days: int) -> list[str]:
    """File the suggestions among ``advices`` in ``store`` (a journal file's, Redis's); return their ids."""
    filed = []
    for a in advices:
        if a.suggests:
            store.file(a.id, a.symbol, a.to_json(), now_ms, now_ms + expire_days * DAY_MS)
            filed.append(a.id)
    return filed
