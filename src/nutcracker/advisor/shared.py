"""The walk-forward search as one shared Optuna study, run by any number of worker processes.

``nutcracker advise worker --study NAME --storage URL`` processes on one or several machines share
a study per symbol (``NAME:SYMBOL``) in Optuna storage: a local journal file by default, Optuna's
Redis journal storage (``redis://``) or an RDB URL (``sqlite:///``, ``postgresql://``, ...).

Same result, whatever the number of workers: the sampling does not depend on who runs what. The
first worker creates the study (Optuna makes one creator win) and enqueues a fixed trial set drawn
from the seed (the current parameters first, then seeded draws on each tunable's grain); every
worker then claims waiting trials one at a time (the storage lets one claim win) until none is
left. A trial backtests its candidate on every window (each fold's training and test window, and
the latest window) and keeps the metrics on the trial. Once every trial is finished the verdict is
computed from them as the sequential search's is (``search.FoldResult``): per fold the best
candidate in sample (the current parameters win ties) judged out of sample, and the latest
window's best as the suggestion. The same inputs, seed and trial set give the same record.

A worker that joins a study made from other inputs (config, candles, seed, trial count) is refused.
A trial whose worker died (killed, its machine lost) is failed by a surviving or later worker once
its heartbeat stopped for the grace period, and its parameters are run once more
(``advisor.heartbeat``): the set still finishes, each of its parameters completed once, and the
verdict orders trials by their place in the set, not by trial number, so it is the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from nutcracker.advisor.candidates import Candidate
from nutcracker.advisor.folds import final_window, walk_forward
from nutcracker.advisor.metrics import Metrics
from nutcracker.advisor.search import (
    MIN_SEGMENT_TRADING,
    FoldResult,
    SymbolSearch,
    decode,
    evaluate,
    index_of,
    search_inputs,
)
from nutcracker.config import TUNABLES, NutcrackerConfig
from nutcracker.errors import AdvisorError, ConfigError
from nutcracker.marketdata.candles import CandleArrays

if TYPE_CHECKING:
    import optuna

    from nutcracker.advisor.heartbeat import Heartbeat

METHOD: Final = (
    "walk-forward search over a shared Optuna study: a fixed seeded trial set, each trial "
    "backtested on every window (advisor.shared); score: advisor.metrics"
)
DEFAULT_STORAGE: Final = "advisor-study.log"
REDIS_PREFIX: Final = "nutcracker:advisor"  # beside the engine's keys on the same server
READY_KEY: Final = "trial_set"  # set by the creator once the whole trial set is enqueued


def display_url(url: str) -> str:
    """Return ``url`` without its password (errors and output never show it)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def storage_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a storage backend raises when it cannot be reached or written."""
    import redis
    import sqlalchemy.exc

    return (redis.exceptions.RedisError, sqlalchemy.exc.SQLAlchemyError, OSError)


def open_storage(url: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    """Open the study storage ``url`` names (Redis, an RDB URL, or a journal file path), with ``heartbeat``.

    Raises:
        AdvisorError: it cannot be reached or created (one line, the password masked).
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from nutcracker.advisor.heartbeat import HeartbeatJournalStorage, retry_callback

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens
    shown = display_url(url)
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
        except (redis.exceptions.RedisError, ValueError) as e:
            raise AdvisorError(
                f"--storage {shown}: cannot reach Redis ({e}); start redis-server there or fix the URL"
            ) from None
        return redis_storage(url, heartbeat)
    if scheme:
        refused: tuple[type[BaseException], ...] = (ImportError, ValueError, *storage_errors())
        try:
            with warnings.catch_warnings():  # the heartbeat arguments are experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=heartbeat.interval_s,
                    grace_period=heartbeat.grace_s,
                    heartbeat_stale_trial_callback=retry_callback(),
                )
        except refused as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise AdvisorError(
                f"--storage {shown}: cannot open it as an Optuna RDB storage ({reason}); "
                "give redis://HOST:PORT, an SQLAlchemy URL or a file path"
            ) from None
    path = Path(url)
    if not path.parent.is_dir():
        raise AdvisorError(f"--storage {url}: the directory {path.parent} does not exist; create it first")
    try:
        return HeartbeatJournalStorage(JournalFileBackend(str(path)), heartbeat)
    except OSError as e:
        raise AdvisorError(f"--storage {url}: cannot write the study file ({e.strerror})") from None


def redis_storage(url: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    """Return Optuna's Redis journal storage at ``url`` (our key prefix; its experimental notice muted)."""
    import optuna
    from optuna.storages.journal import JournalRedisBackend

    from nutcracker.advisor.heartbeat import HeartbeatJournalStorage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return HeartbeatJournalStorage(JournalRedisBackend(url, prefix=REDIS_PREFIX), heartbeat)


@dataclass(frozen=True, slots=True)
class Plan:
    """What every worker of one symbol's study computes alike: windows, bounds, the trial set."""

    symbol: str
    config: NutcrackerConfig  # the symbol alone
    candles: CandleArrays
    current: Candidate
    bounds: dict[str, tuple[Decimal, Decimal]]
    windows: dict[str, tuple[int, int]]  # "train1", "test1", ..., "final"
    trial_set: list[dict[str, int]]
    seed: int
    notes: list[str]

    def fingerprint(self) -> str:
        """A digest of the inputs: a worker on other inputs must not add to this study."""
        c = self.candles
        digest = hashlib.sha256()
        for array in (c.ts_ms, c.open, c.high, c.low, c.close):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(self.config.to_toml().encode())
        digest.update(json.dumps([self.trial_set, self.seed, sorted(self.windows.items())]).encode())
        return digest.hexdigest()[:24]


def trial_set(
    bounds: Mapping[str, tuple[Decimal, Decimal]], current: Candidate, trials: int, seed: int
) -> list[dict[str, int]]:
    """Return ``trials`` distinct trial parameters (grain indexes): the current first, then seeded draws."""
    sizes = {name: _steps(name, lo, hi) for name, (lo, hi) in bounds.items()}
    space = math.prod(n + 1 for n in sizes.values())
    out: list[dict[str, int]] = []
    seen: set[tuple[int, ...]] = set()
    first = {name: index_of(name, current[name], *bounds[name]) for name in bounds}
    if all(v is not None for v in first.values()):
        out.append({k: int(v) for k, v in first.items() if v is not None})
        seen.add(tuple(out[0][k] for k in sorted(bounds)))
    rng = np.random.default_rng(seed)
    while len(out) < min(trials, space):
        draw = {name: _low(name, bounds[name][0]) + int(rng.integers(0, n + 1)) for name, n in sizes.items()}
        key = tuple(draw[k] for k in sorted(bounds))
        if key not in seen:
            seen.add(key)
            out.append(draw)
    return out[:trials]


def _low(name: str, low: Decimal) -> int:
    return int(low) if TUNABLES[name].kind == "int" else 0


def _steps(name: str, low: Decimal, high: Decimal) -> int:
    if TUNABLES[name].kind == "int":
        return int(high) - int(low)
    return int((high - low) / TUNABLES[name].grain)


def plan(config: NutcrackerConfig, symbol: str, candles: CandleArrays, *, trials: int, seed: int) -> Plan:
    """Return the plan of ``symbol``'s study (as ``search.search_symbol`` checks its inputs).

    Raises:
        AdvisorError: no ``[advisor.tune]``, no tunable set for the symbol, too few candles.
    """
    settings = config.advisor
    single, current, bounds, notes, folds = search_inputs(config, symbol, len(candles))
    assert settings is not None  # search_inputs refused a config without it
    windows: dict[str, tuple[int, int]] = {}
    for fold in folds:
        windows[f"train{fold.index + 1}"] = fold.train
        windows[f"test{fold.index + 1}"] = fold.test
    windows["final"] = final_window(len(candles), settings.folds, settings.scheme)
    chosen = trial_set(bounds, current, trials, seed)
    return Plan(symbol, single, candles, current, bounds, windows, chosen, seed, notes)


def candidate_of(p: Plan, params: Mapping[str, int]) -> Candidate:
    return {**p.current, **{name: decode(name, int(params[name]), lo) for name, (lo, _) in p.bounds.items()}}


def _metrics_row(m: Metrics) -> list[float | int | None]:
    score = m.score if math.isfinite(m.score) else None  # -inf is not JSON
    return [m.net_pnl_quote, m.max_drawdown_quote, m.at_rail_pct, m.cycles_closed, m.rail_violations, score]


def _metrics(row: list[Any]) -> Metrics:
    score = -math.inf if row[5] is None else float(row[5])
    return Metrics(float(row[0]), float(row[1]), float(row[2]), int(row[3]), int(row[4]), score)


def measure_all(p: Plan, candidate: Candidate) -> dict[str, list[float | int | None]] | None:
    """Backtest ``candidate`` on every window of the plan; None when the config refuses it."""
    try:
        return {
            key: _metrics_row(evaluate(p.config, p.symbol, candidate, p.candles.slice(lo, hi)))
            for key, (lo, hi) in p.windows.items()
        }
    except ConfigError:
        return None


def join(storage: optuna.storages.BaseStorage, name: str, p: Plan, *, wait_s: float) -> optuna.Study:
    """Create the study and enqueue the trial set, or join it once its creator has enqueued it.

    Raises:
        AdvisorError: the study was made from other inputs, or its trial set never became complete.
    """
    import optuna

    fingerprint = p.fingerprint()
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage)
    else:
        study.set_user_attr("fingerprint", fingerprint)
        for params in p.trial_set:
            study.enqueue_trial(params)
        study.set_user_attr(READY_KEY, len(p.trial_set))
    deadline = time.monotonic() + wait_s
    while READY_KEY not in study.user_attrs:
        if time.monotonic() > deadline:
            raise AdvisorError(
                f"study {name}: its trial set was never completed by the worker that created it "
                "(it stopped?); use another --study name"
            )
        time.sleep(0.2)
    if study.user_attrs.get("fingerprint") != fingerprint:
        raise AdvisorError(
            f"study {name} was made from other inputs (config, candles, --seed or --trials): give the "
            "same ones as its other workers, or another --study name"
        )
    return study


def work(storage: optuna.storages.BaseStorage, study: optuna.Study, p: Plan, *, worker: str) -> list[int]:
    """Claim and run waiting trials until none is left; return the numbers of those this worker finished.

    A trial failed as stale meanwhile (this worker was too slow to beat) is not counted: its
    retry's result is the one the study keeps.
    """
    import optuna
    from optuna.trial import TrialState

    from nutcracker.advisor.heartbeat import beating

    ran: list[int] = []
    while True:
        claimed = None
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                    claimed = t
                    break
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        if claimed is None:
            return ran
        trial = optuna.trial.Trial(study, claimed._trial_id)
        with beating(storage, claimed._trial_id):
            params = {  # the enqueued values (a fixed or retried trial draws nothing)
                name: trial.suggest_int(name, _low(name, lo), _low(name, lo) + _steps(name, lo, hi))
                for name, (lo, hi) in p.bounds.items()
            }
            trial.set_user_attr("worker", worker)
            rows = measure_all(p, candidate_of(p, params))
            try:
                if rows is None:
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    trial.set_user_attr("metrics", rows)
                    final = rows["final"][5]
                    study.tell(trial, -1e300 if final is None else float(final))
            except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
                if storage.get_trial(claimed._trial_id).state != TrialState.FAIL:
                    raise  # not taken from this worker: a real fault
                continue
        ran.append(claimed.number)


def finished(study: optuna.Study) -> tuple[int, int]:
    """Return (finished trials, trials in the set)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return len(done), int(study.user_attrs[READY_KEY])


def verdict(study: optuna.Study, p: Plan) -> SymbolSearch:
    """Return the search's outcome from the finished trials (as ``search.search_symbol`` decides)."""
    from optuna.trial import TrialState

    current_rows = measure_all(p, p.current)
    if current_rows is None:
        raise AdvisorError(f"{p.symbol}: the current parameters do not pass the config's checks")
    entries: list[tuple[int, Candidate, dict[str, Metrics]]] = [
        (-1, p.current, {k: _metrics(v) for k, v in current_rows.items()})
    ]
    # a retried trial has a later number than its place in the set: order by the place, as one worker does
    place = {_key(params): i for i, params in enumerate(p.trial_set)}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        rows = t.user_attrs["metrics"]
        entries.append(
            (place[_key(t.params)], candidate_of(p, t.params), {k: _metrics(v) for k, v in rows.items()})
        )

    def best(window: str) -> tuple[int, Candidate, dict[str, Metrics]]:
        return max(entries, key=lambda e: (e[2][window].score, -e[0]))  # the current wins ties

    folds = walk_forward_of(p)
    results = []
    for fold in folds:
        key = str(fold.index + 1)
        _, winner, metrics = best(f"train{key}")
        cur = entries[0][2]
        results.append(
            FoldResult(
                fold,
                winner,
                cur[f"train{key}"],
                metrics[f"train{key}"],
                cur[f"test{key}"],
                metrics[f"test{key}"],
            )
        )
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    settings = p.config.advisor
    assert settings is not None  # plan() checked it
    return SymbolSearch(
        p.symbol,
        dict(p.current),
        results,
        best("final")[1],
        p.windows["final"],
        len(p.trial_set),
        p.seed,
        settings.scheme,
        pruned,
        p.notes,
    )


def _key(params: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((name, int(v)) for name, v in params.items()))


def walk_forward_of(p: Plan) -> list[Any]:
    """Return the plan's folds (as ``plan`` cut them)."""
    settings = p.config.advisor
    assert settings is not None
    warmup = p.config.symbol[0].warmup_candles
    return walk_forward(
        len(p.candles), settings.folds, settings.scheme, min_segment=warmup + MIN_SEGMENT_TRADING
    )


@dataclass(frozen=True, slots=True)
class WorkerRun:
    """What one worker did for one symbol, and the search's outcome once the study is finished."""

    symbol: str
    study: str
    ran: list[int]
    finished: int
    total: int
    search: SymbolSearch | None
    dead: int  # trials failed because their worker stopped beating (each enqueued again, up to the retries)


def run_worker(
    config: NutcrackerConfig,
    candles: Mapping[str, CandleArrays],
    *,
    study: str,
    storage_url: str,
    trials: int,
    seed: int,
    wait_s: float,
    heartbeat: Heartbeat,
    progress: Callable[[str], None] | None = None,
) -> list[WorkerRun]:
    """Work on every symbol's study in turn; wait up to ``wait_s`` for other workers' trials to end.

    While it waits it fails the trials of workers that stopped beating and runs their retries.

    Raises:
        AdvisorError: bad inputs, an unreachable storage (one line), a study of other inputs.
    """
    from optuna.trial import TrialState

    from nutcracker.advisor.heartbeat import fail_stale

    if trials < 1:
        raise AdvisorError(f"--trials {trials}: give at least 1 trial")
    storage = open_storage(storage_url, heartbeat)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    out = []
    try:
        for table in config.symbol:
            symbol = table.market.symbol
            p = plan(config, symbol, candles[symbol], trials=trials, seed=seed)
            name = f"{study}:{symbol}"
            shared = join(storage, name, p, wait_s=wait_s)
            if progress is not None:
                progress(f"{name}: working on its {len(p.trial_set)} trials as {worker}")
            ran = work(storage, shared, p, worker=worker)
            deadline = time.monotonic() + wait_s
            done, total = finished(shared)
            while done < total and time.monotonic() < deadline:
                time.sleep(0.2)
                fail_stale(shared)  # a dead worker's trial goes back to the queue: run it here
                ran += work(storage, shared, p, worker=worker)
                done, total = finished(shared)
            search = verdict(shared, p) if done == total else None
            dead = len(shared.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
            out.append(WorkerRun(symbol, name, ran, done, total, search, dead))
    except storage_errors() as e:
        raise AdvisorError(f"--storage {display_url(storage_url)}: {type(e).__name__}: {e}") from None
    return out
