"""Backtests through the API: an example or an uploaded config (and candle file), run in a worker process.

``POST /backtests`` takes a multipart form: ``example`` (a name from ``GET /backtests/examples``) or
``config`` (a TOML file), optionally ``candles`` (CSV or CSV.gz, for a one-symbol config), and
``synthetic``/``seed`` for the seeded synthetic market used without candles. The inputs are checked
here (413 over a size limit, 422 naming the field), then the job runs in a worker process
(``api.backtests``); ``GET /backtests/{id}`` tells its progress and summary, ``/report`` serves
its HTML report. Operators and owners only; each user sees only their own jobs.
"""

from __future__ import annotations

import tomllib
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from nutcracker.api.backtests import CANDLES_FILE, CONFIG_FILE, BacktestJob, BacktestJobs, JobLimitError
from nutcracker.api.deps import current_principal
from nutcracker.api.principal import Principal, rank
from nutcracker.api.problems import ProblemError, problem_responses
from nutcracker.backtest.headline import headline
from nutcracker.config import parse_config
from nutcracker.core.commands import Role
from nutcracker.errors import ConfigError
from nutcracker.marketdata.candles import CANDLE_HEADER
from nutcracker.ranges import SEED

__all__ = [
    "CANDLES_MAX_BYTES",
    "CONFIG_MAX_BYTES",
    "EXAMPLES_DIR",
    "SYNTHETIC_MAX",
    "BacktestOut",
    "jobs_of",
    "router",
]

EXAMPLES_DIR = Path(__file__).resolve().parents[4] / "examples"  # the checkout's, as `serve --demo` uses
CONFIG_MAX_BYTES = 64 * 1024
CANDLES_MAX_BYTES = 20 * 1024 * 1024  # ~250,000 one-minute candles as plain CSV; more as .csv.gz
SYNTHETIC_MAX = 200_000  # synthetic candles a console backtest may ask for (~140 days of 1m)
_FORM_SLACK = 64 * 1024  # multipart boundaries, headers and the small fields

router = APIRouter(tags=["backtests"])
Caller = Annotated[Principal, Depends(current_principal)]

_ERRORS = problem_responses(
    {
        400: "The multipart form cannot be read",
        401: "No valid access token",
        403: "Your role is viewer: backtests need operator or owner",
        404: "No such backtest among yours",
        409: "The backtest has no report (yet)",
        413: "An upload is above its size limit",
        422: "A field is invalid: errors[].field names it",
        415: "The request is not a multipart/form-data form",
        429: "You have as many backtests waiting or running as allowed",
    }
)


class BacktestOut(BaseModel):
    """A backtest job as its owner sees it."""

    id: str
    state: str  # queued, running, done, failed
    progress: float  # 0..1
    source: str
    created_ms: int
    finished_ms: int | None
    error: str
    headline: dict[str, list[str]]  # per symbol: the report's first lines
    summary: dict[str, Any] | None  # summary.json, once done


class Examples(BaseModel):
    examples: list[str]


def jobs_of(request: Request) -> BacktestJobs:
    """The app's backtest jobs (made at the first use: an API that runs none starts no process)."""
    jobs: BacktestJobs | None = getattr(request.app.state, "backtests", None)
    if jobs is None:
        jobs = request.app.state.backtests = BacktestJobs()
    return jobs


def _may_backtest(principal: Principal) -> Principal:
    if not any(rank(role) >= rank(Role.OPERATOR) for role in principal.accounts.values()):
        raise ProblemError(403, "backtests need the operator or owner role; yours is viewer")
    return principal


def backtester(principal: Caller) -> Principal:
    return _may_backtest(principal)


Backtester = Annotated[Principal, Depends(backtester)]


def _examples() -> dict[str, Path]:
    return {p.stem: p for p in sorted(EXAMPLES_DIR.glob("*.toml"))}


def _out(job: BacktestJob) -> BacktestOut:
    sections = (job.summary or {}).get("symbols") or {}
    return BacktestOut(
        id=job.id,
        state=job.state,
        progress=round(job.progress(), 4),
        source=job.source,
        created_ms=job.created_ms,
        finished_ms=job.finished_ms,
        error=job.error,
        headline={str(s): headline(str(s), section) for s, section in sections.items()},
        summary=job.summary,
    )


def _field(status: int, name: str, message: str) -> ProblemError:
    return ProblemError(status, f"{name}: {message}", errors=[{"field": name, "message": message}])


@router.get("/backtests/examples", response_model=Examples, summary="The example configs", responses=_ERRORS)
async def examples(principal: Backtester) -> Examples:
    return Examples(examples=list(_examples()))


def _too_big(limit: int) -> ProblemError:
    megabytes = limit // (1024 * 1024)
    return ProblemError(
        413, f"the upload is above {megabytes} MB: send fewer candles, or gzip them (.csv.gz)"
    )


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_big(limit)
        yield chunk


async def _form(request: Request) -> Any:
    """The multipart form, read no further than the size limits allow (413 past them)."""
    limit = CONFIG_MAX_BYTES + CANDLES_MAX_BYTES + _FORM_SLACK
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_big(limit)
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise ProblemError(
            415,
            "send a multipart/form-data form: example or config (a file), candles (a file), synthetic, seed",
        )
    body = [chunk async for chunk in _limited(request, limit)]
    replay = iter([*body, b""])

    async def receive() -> dict[str, Any]:
        chunk = next(replay, b"")
        return {"type": "http.request", "body": chunk, "more_body": chunk != b""}

    try:
        return await Request(request.scope, receive).form(max_files=2, max_fields=8)
    except ClientDisconnect:
        raise ProblemError(400, "the upload was cut off: send it again") from None
    except Exception as e:  # the multipart parser's errors: a form it cannot read
        raise ProblemError(
            400, f"the form cannot be read ({type(e).__name__}): send multipart/form-data"
        ) from None


def _text_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, UploadFile):
        raise _field(422, name, "send it as a form field, not a file")
    return str(value).strip()


async def _file(form: Any, name: str, limit: int) -> tuple[str, bytes] | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, UploadFile):
        raise _field(422, name, "send it as a file")
    data = await value.read(limit + 1)
    if len(data) > limit:
        size = "64 KB" if limit < 1024 * 1024 else f"{limit // (1024 * 1024)} MB"
        raise _field(413, name, f"the file is above {size}: send a smaller one")
    return value.filename or name, data


def _int_field(form: Any, name: str, default: int, low: int, high: int) -> int:
    text = _text_field(form, name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise _field(422, name, f"expected a whole number from {low:,} to {high:,}") from None
    if not low <= value <= high:
        raise _field(422, name, f"must be from {low:,} to {high:,}")
    return value


def _config_text(example: str | None, upload: tuple[str, bytes] | None) -> tuple[str, str]:
    """The config's TOML and the job's source in words; 422 naming the field when it is not usable."""
    if example and upload:
        raise _field(422, "example", "give an example or a config file, not both")
    if example:
        found = _examples().get(example)
        if found is None:
            raise _field(422, "example", f"no example {example[:40]!r}: one of {', '.join(_examples())}")
        return found.read_text(), f"example {example}"
    if upload is None:
        raise _field(422, "config", f"give an example ({', '.join(_examples())}) or a config file (TOML)")
    name, data = upload
    try:
        return data.decode("utf-8"), f"config {Path(name).name[:60]}"
    except UnicodeDecodeError:
        raise _field(422, "config", "is not UTF-8 text: save it as UTF-8") from None


def _check_config(text: str) -> int:
    """Validate the config as the CLI does; return how many symbols it trades."""
    try:
        config = parse_config(tomllib.loads(text), source="config")
    except tomllib.TOMLDecodeError as e:
        raise _field(422, "config", f"invalid TOML: {e}; fix the syntax there") from None
    except ConfigError as e:
        lines = [line.strip(" -") for line in str(e).splitlines()[1:] if line.strip()] or [str(e)]
        raise ProblemError(
            422,
            "config: " + "; ".join(lines),
            errors=[{"field": "config", "message": line} for line in lines],
        ) from None
    return len(config.symbols)


def _check_candles(name: str, data: bytes, symbols: int) -> str:
    """Check the candle file's header (the worker parses the rest); return its file name in the job."""
    if symbols != 1:
        raise _field(
            422, "candles", f"the config trades {symbols} symbols: upload a one-symbol config with candles"
        )
    gz = data[:2] == b"\x1f\x8b"
    try:
        head = zlib.decompressobj(wbits=31).decompress(data, 4096) if gz else data[:4096]
    except zlib.error:
        raise _field(422, "candles", "is not a valid gzip file: send the CSV, or gzip it again") from None
    first = head.split(b"\n", 1)[0].strip().decode("utf-8", "replace").lower()
    if first != CANDLE_HEADER:
        raise _field(
            422, "candles", f"the first line must be the header {CANDLE_HEADER} (timestamp = epoch ms)"
        )
    return CANDLES_FILE + (".gz" if gz else "")


@router.post(
    "/backtests",
    response_model=BacktestOut,
    status_code=202,
    summary="Start a backtest in a worker process",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "example": {"type": "string", "description": "an example's name"},
                            "config": {"type": "string", "format": "binary", "description": "TOML, ≤ 64 KB"},
                            "candles": {
                                "type": "string",
                                "format": "binary",
                                "description": "CSV or CSV.gz, ≤ 20 MB",
                            },
                            "synthetic": {
                                "type": "integer",
                                "description": "synthetic candles without a file",
                            },
                            "seed": {"type": "integer"},
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
async def start(request: Request, principal: Backtester) -> BacktestOut:
    form = await _form(request)
    try:
        config_text, source = _config_text(
            _text_field(form, "example") or None, await _file(form, "config", CONFIG_MAX_BYTES)
        )
        symbols = _check_config(config_text)
        candles = await _file(form, "candles", CANDLES_MAX_BYTES)
        candles_name = _check_candles(candles[0], candles[1], symbols) if candles else None
        synthetic = _int_field(form, "synthetic", 43_200, 1, SYNTHETIC_MAX)
        seed = _int_field(form, "seed", 7, int(SEED.low), int(SEED.high))
    finally:
        await form.close()
    jobs = jobs_of(request)
    try:
        job_id, directory = jobs.new_directory(principal.user)
    except JobLimitError as e:
        raise ProblemError(429, str(e), headers={"Retry-After": "5"}) from None
    (directory / CONFIG_FILE).write_text(config_text)
    if candles is not None and candles_name is not None:
        (directory / candles_name).write_bytes(candles[1])
        source += f", candles {Path(candles[0]).name[:60]}"
    else:
        source += f", synthetic market ({synthetic:,} candles, seed {seed})"
    job = jobs.submit(job_id, directory, principal.user, source, synthetic=synthetic, seed=seed)
    return _out(job)


def _job(request: Request, principal: Principal, job_id: str) -> BacktestJob:
    job = jobs_of(request).get(principal.user, job_id)
    if job is None:
        raise ProblemError(404, f"no backtest {job_id[:40]!r} among yours: GET /api/v1/backtests lists them")
    return job


@router.get(
    "/backtests", response_model=list[BacktestOut], summary="Your backtests, newest first", responses=_ERRORS
)
async def mine(request: Request, principal: Backtester) -> list[BacktestOut]:
    return [_out(job) for job in jobs_of(request).of(principal.user)]


@router.get(
    "/backtests/{job_id}",
    response_model=BacktestOut,
    summary="A backtest's progress and summary",
    responses=_ERRORS,
)
async def one(request: Request, job_id: str, principal: Backtester) -> BacktestOut:
    return _out(_job(request, principal, job_id))


@router.get(
    "/backtests/{job_id}/report",
    response_class=FileResponse,
    summary="A finished backtest's HTML report",
    responses={**_ERRORS, 200: {"content": {"text/html": {}}, "description": "The report"}},
)
async def report(request: Request, job_id: str, principal: Backtester) -> FileResponse:
    job = _job(request, principal, job_id)
    path = job.directory / "report.html"
    if job.state != "done" or not path.is_file():
        raise ProblemError(409, f"backtest {job.id} is {job.state}: its report exists once it is done")
    # the report is self-contained (plotly inline): it may run its own scripts, fetch nothing
    policy = "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    policy += "img-src data:"
    return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": policy})
