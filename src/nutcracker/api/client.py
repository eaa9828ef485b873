"""A typed HTTP client of the control API (``/api/v1``): what the console and scripts call.

It holds one login's tokens and keeps them fresh: an access token about to expire (or refused
with 401) is traded for a new pair once, silently; when that fails the login is over
(``SessionEndedError``) and the caller shows the login again. Every failure is one ``ApiError`` whose
message is the API's own problem detail (or says the API cannot be reached): never a traceback.
It imports nothing of the engine: the console reaches the engine only through this client.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

import httpx

__all__ = [
    "API_PREFIX",
    "ApiClient",
    "ApiError",
    "AuditEntry",
    "Backtest",
    "CommandResult",
    "FieldError",
    "Me",
    "ParamsChange",
    "ParamsOut",
    "Rail",
    "SessionEndedError",
    "StatusOut",
    "SymbolStatus",
]

API_PREFIX = "/api/v1"
STEP_UP_MARGIN_S = 10.0  # a step-up token this close to expiry is not offered again
REFRESH_MARGIN_S = 30.0  # refresh this long before the access token expires: a kill never meets a 401


class FieldError(TypedDict):
    field: str
    message: str


class ApiError(Exception):
    """The API refused (``status``, its ``detail`` and per-field ``errors``) or could not be reached (0)."""

    def __init__(self, status: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


class SessionEndedError(ApiError):
    """The refresh token was refused (expired, revoked, reused): log in again."""


class Rail(TypedDict):
    used: str
    limit: str
    headroom: str
    asset: str


class SymbolStatus(TypedDict):
    symbol: str
    account: str
    status: str
    reason: str
    stalled: bool
    retry_in_s: float | None
    price: str | None
    inventory: Rail
    committed_quote: Rail
    open_orders: int
    realized_pnl: str
    fees: str
    equity_change: str | None
    buy_and_hold_change: str | None
    updated_ts_ms: int


class StatusOut(TypedDict):
    mode: str
    symbols: list[SymbolStatus]


class Me(TypedDict):
    user: str
    role: str
    accounts: dict[str, str]
    totp_enabled: bool


class CommandResult(TypedDict):
    symbol: str
    command_id: str
    outcome: str
    detail: str
    status: str


class ParamsOut(TypedDict):
    symbol: str
    version: int
    params: dict[str, Any]


class ParamsDiff(TypedDict):
    field: str
    before: Any
    after: Any


class ParamsChange(TypedDict):
    symbol: str
    command_id: str
    outcome: str
    detail: str
    version: int
    diff: list[ParamsDiff]


class AuditEntry(TypedDict):
    source: str
    seq: int
    ts_ms: int
    actor: str
    action: str
    detail: str


class Backtest(TypedDict):
    id: str
    state: str  # queued, running, done, failed
    progress: float  # 0..1
    source: str
    created_ms: int
    finished_ms: int | None
    error: str
    headline: dict[str, list[str]]  # per symbol: the report's first lines
    summary: dict[str, Any] | None


@dataclass
class _Tokens:
    access: str
    refresh: str
    access_expires_at: float


@dataclass
class ApiClient:
    """One login against ``base_url`` (``http://127.0.0.1:8080``); ``transport`` is for in-process apps."""

    base_url: str
    timeout_s: float = 10.0
    transport: httpx.BaseTransport | None = None
    clock: Callable[[], float] = time.monotonic
    _tokens: _Tokens | None = field(default=None, repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)
    _step_ups: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)

    # -- the session -------------------------------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        return self._tokens is not None

    def login(self, username: str, password: str, totp_code: str | None = None) -> None:
        body: dict[str, Any] = {"username": username, "password": password}
        if totp_code:
            body["totp_code"] = totp_code
        self._keep(self._send("POST", "/auth/login", json=body, auth=False))

    def refresh(self) -> None:
        """Trade the refresh token for a new pair; ``SessionEndedError`` (and logged out) when refused."""
        if self._tokens is None:
            raise SessionEndedError(401, "not logged in")
        try:
            pair = self._send(
                "POST", "/auth/refresh", json={"refresh_token": self._tokens.refresh}, auth=False
            )
        except ApiError as e:
            self._tokens = None
            if e.status == 0:
                raise
            raise SessionEndedError(e.status, f"your session ended ({e.detail}): log in again") from None
        self._keep(pair)

    def logout(self) -> None:
        """End the session on the server (best effort) and forget its tokens here."""
        if self._tokens is None:
            return
        refresh = self._tokens.refresh
        self._tokens = None
        self._step_ups.clear()
        with contextlib.suppress(ApiError):  # gone here either way; the server's expire on their own
            self._send("POST", "/auth/logout", json={"refresh_token": refresh}, auth=False)

    def me(self) -> Me:
        return cast(Me, self._call("GET", "/auth/me"))

    def step_up(self, action: str, totp_code: str) -> str:
        """A step-up token for ``action`` (params, resume_killed) for a fresh TOTP code; kept for reuse
        while it is valid (``step_up_token``), since one code may be used once only."""
        body = self._call("POST", "/auth/step-up", json={"action": action, "totp_code": totp_code})
        token = str(body["step_up_token"])
        self._step_ups[action] = (token, self.clock() + float(body["expires_in"]))
        return token

    def step_up_token(self, action: str) -> str | None:
        """The step-up token for ``action`` still valid for a while, if any (None: ask for a TOTP code)."""
        token, until = self._step_ups.get(action, ("", 0.0))
        return token if token and self.clock() < until - STEP_UP_MARGIN_S else None

    # -- reading -----------------------------------------------------------------------------------

    def status(self) -> StatusOut:
        return cast(StatusOut, self._call("GET", "/status"))

    def symbol_status(self, symbol: str) -> SymbolStatus:
        return cast(SymbolStatus, self._call("GET", f"/symbols/{_path(symbol)}/status"))

    def pulses(self, symbol: str, limit: int = 50) -> list[dict[str, Any]]:
        body = self._call("GET", f"/symbols/{_path(symbol)}/pulses", params={"limit": limit})
        return cast(list[dict[str, Any]], body["pulses"])

    def orders(self, symbol: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", f"/symbols/{_path(symbol)}/orders")["orders"])

    def fills(self, symbol: str, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return self._pages(f"/symbols/{_path(symbol)}/fills", since, limit)

    def cycles(self, symbol: str, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return self._pages(f"/symbols/{_path(symbol)}/cycles", since, limit)

    def history(self, symbol: str, limit: int = 200) -> dict[str, Any]:
        """The recent pulses' close, Keltner bands and EMA, inventory and committed quote (oldest first)."""
        return cast(
            dict[str, Any], self._call("GET", f"/symbols/{_path(symbol)}/history", params={"limit": limit})
        )

    def candles(self, symbol: str, since: int | None = None, limit: int = 200) -> dict[str, Any]:
        """The closed candles the pulses read, oldest first: from ``since`` on (``next_since`` pages on),
        or the newest ``limit``."""
        params = {"limit": limit} if since is None else {"limit": limit, "since": since}
        return cast(dict[str, Any], self._call("GET", f"/symbols/{_path(symbol)}/candles", params=params))

    def levels(self, symbol: str) -> dict[str, Any]:
        """Every exit and buy level the standing decision planned, highest first, resting or why not."""
        return cast(dict[str, Any], self._call("GET", f"/symbols/{_path(symbol)}/levels"))

    def config_reference(self) -> dict[str, dict[str, dict[str, str]]]:
        """Every config key's type, default and meaning: table (``symbol.rails``) -> key -> help."""
        return cast(dict[str, dict[str, dict[str, str]]], self._call("GET", "/config/reference")["tables"])

    def params(self, symbol: str) -> ParamsOut:
        return cast(ParamsOut, self._call("GET", f"/symbols/{_path(symbol)}/params"))

    def audit(self, limit: int = 500) -> list[AuditEntry]:
        return cast(list[AuditEntry], self._call("GET", "/audit", params={"limit": limit})["entries"])

    def suggestions(self, symbol: str) -> list[dict[str, Any]]:
        body = self._call("GET", f"/symbols/{_path(symbol)}/suggestions")
        return cast(list[dict[str, Any]], body["suggestions"])

    def suggestion(self, symbol: str, suggestion_id: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], self._call("GET", f"/symbols/{_path(symbol)}/suggestions/{suggestion_id}")
        )

    # -- backtests (in a worker process of the API) ------------------------------------------------

    def backtest_examples(self) -> list[str]:
        return cast(list[str], self._call("GET", "/backtests/examples")["examples"])

    def start_backtest(
        self,
        *,
        example: str | None = None,
        config: tuple[str, bytes] | None = None,
        candles: tuple[str, bytes] | None = None,
        synthetic: int | None = None,
        seed: int | None = None,
    ) -> Backtest:
        """Start a backtest of an example or an uploaded config (``(file name, bytes)``), on uploaded
        candles or the synthetic market; it runs in the API's worker process (poll ``backtest``)."""
        fields = {"example": example, "synthetic": synthetic, "seed": seed}
        data = {k: str(v) for k, v in fields.items() if v is not None}
        files = {k: v for k, v in (("config", config), ("candles", candles)) if v is not None}
        if not files:  # still a multipart form, as the API takes
            files = {"_": ("", b"")}
        return cast(Backtest, self._call("POST", "/backtests", data=data, files=files))

    def backtest(self, job_id: str) -> Backtest:
        return cast(Backtest, self._call("GET", f"/backtests/{_path(job_id)}"))

    def backtests(self) -> list[Backtest]:
        return cast(list[Backtest], self._call("GET", "/backtests"))

    def backtest_report(self, job_id: str) -> str:
        """A finished backtest's report, self-contained HTML."""
        return cast(str, self._call("GET", f"/backtests/{_path(job_id)}/report", raw=True))

    # -- steering ----------------------------------------------------------------------------------

    def pause(self, symbol: str, reason: str) -> CommandResult:
        return self._command(f"/symbols/{_path(symbol)}/pause", reason)

    def resume(self, symbol: str, reason: str, step_up_token: str | None = None) -> CommandResult:
        return self._command(f"/symbols/{_path(symbol)}/resume", reason, step_up_token)

    def kill(self, symbol: str, reason: str) -> CommandResult:
        return self._command(f"/symbols/{_path(symbol)}/kill", reason)

    def kill_all(self, reason: str) -> list[CommandResult]:
        return cast(list[CommandResult], self._call("POST", "/kill", json={"reason": reason}))

    def pause_all(self, reason: str) -> list[CommandResult]:
        return cast(list[CommandResult], self._call("POST", "/pause", json={"reason": reason}))

    def resume_all(self, reason: str, step_up_token: str | None = None) -> list[CommandResult]:
        headers = {"X-Step-Up-Token": step_up_token} if step_up_token else None
        return cast(
            list[CommandResult], self._call("POST", "/resume", json={"reason": reason}, headers=headers)
        )

    def change_params(
        self, symbol: str, patch: Mapping[str, Mapping[str, Any]], reason: str, step_up_token: str
    ) -> ParamsChange:
        body = {"patch": {k: dict(v) for k, v in patch.items()}, "reason": reason}
        headers = {"X-Step-Up-Token": step_up_token}
        return cast(
            ParamsChange,
            self._call("PUT", f"/symbols/{_path(symbol)}/params", json=body, headers=headers),
        )

    def accept_suggestion(
        self, symbol: str, suggestion_id: str, reason: str, step_up_token: str
    ) -> dict[str, Any]:
        """Apply a pending suggestion as the owner's parameter change (a ``params`` step-up)."""
        path = f"/symbols/{_path(symbol)}/suggestions/{suggestion_id}/accept"
        headers = {"X-Step-Up-Token": step_up_token}
        return cast(dict[str, Any], self._call("POST", path, json={"reason": reason}, headers=headers))

    def reject_suggestion(self, symbol: str, suggestion_id: str, reason: str) -> dict[str, Any]:
        path = f"/symbols/{_path(symbol)}/suggestions/{suggestion_id}/reject"
        return cast(dict[str, Any], self._call("POST", path, json={"reason": reason}))

    # -- plumbing ----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(self, path: str, reason: str, step_up_token: str | None = None) -> CommandResult:
        headers = {"X-Step-Up-Token": step_up_token} if step_up_token else None
        return cast(CommandResult, self._call("POST", path, json={"reason": reason}, headers=headers))

    def _pages(self, path: str, since: int, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None and len(items) < limit:
            page = self._call("GET", path, params={"since": since, "offset": offset, "limit": 1000})
            items.extend(page["items"])
            offset = page["next_offset"]
        return items[:limit]

    def _keep(self, pair: Any) -> None:
        self._tokens = _Tokens(
            access=str(pair["access_token"]),
            refresh=str(pair["refresh_token"]),
            access_expires_at=self.clock() + float(pair["expires_in"]),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated call: refresh first when the access token is about to expire, and once on 401."""
        if self._tokens is None:
            raise SessionEndedError(401, "not logged in")
        if self.clock() >= self._tokens.access_expires_at - REFRESH_MARGIN_S:
            self.refresh()
        try:
            return self._send(method, path, **kwargs)
        except ApiError as e:
            if e.status != 401 or self._tokens is None:
                raise
        self.refresh()
        return self._send(method, path, **kwargs)

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base_url.rstrip("/") + API_PREFIX,
                timeout=self.timeout_s,
                transport=self.transport,
            )
        return self._http

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
        auth: bool = True,
        raw: bool = False,
    ) -> Any:
        sent = dict(headers or {})
        if auth and self._tokens is not None:
            sent["Authorization"] = f"Bearer {self._tokens.access}"
        try:
            response = self._client().request(
                method, path, json=json, params=params, headers=sent, data=data, files=files
            )
        except httpx.HTTPError as e:
            raise ApiError(0, f"cannot reach the API at {self.base_url}: {_why(e)}") from None
        if response.status_code >= 400:
            raise _problem(response)
        if raw:
            return response.text
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _path(symbol: str) -> str:
    """The API's slug of a symbol: ``BTC/USDT`` -> ``BTC-USDT``."""
    return symbol.replace("/", "-")


def _why(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "nothing answers there (is `nutcracker serve` running, and is --api right?)"
    if isinstance(error, httpx.TimeoutException):
        return "it did not answer in time"
    return type(error).__name__


def _problem(response: httpx.Response) -> ApiError:
    """The problem+json document as an ``ApiError`` (a body that is not one: its status line)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ApiError(
            response.status_code, f"the API answered {response.status_code} {response.reason_phrase}"
        )
    errors = [
        FieldError(field=str(e.get("field", "")), message=str(e.get("message", "")))
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
    return ApiError(response.status_code, detail, errors)
