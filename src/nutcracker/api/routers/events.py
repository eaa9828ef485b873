"""The SSE event stream: the journal's events (pulses, fills, intents, states, parameters, audits).

``id:`` is the journal's event ``seq``; a client that reconnects with ``Last-Event-ID`` (or
``?since=``) gets every later event it may see, in order, none twice; ``?since=0`` replays the
journal from its first event, and a stream opened with neither starts with the next event.
Events of symbols of other accounts are skipped (the cursor still moves past them); account-wide
audits reach only callers with a role on every account, except an audit naming one of the
caller's symbols. A comment line every ``heartbeat_s`` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from nutcracker.api.access import plane_of, visible_symbols
from nutcracker.api.deps import current_principal
from nutcracker.api.plane import ControlPlane
from nutcracker.api.principal import ALL_ACCOUNTS, Principal
from nutcracker.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["events"])

_BATCH = 500


async def _stream(
    plane: ControlPlane, principal: Principal, cursor: int, heartbeat_s: float
) -> AsyncIterator[bytes]:
    symbols = frozenset(visible_symbols(plane, principal))
    everything = principal.role_for(ALL_ACCOUNTS) is not None
    feed = plane.feed
    yield b"retry: 1000\n\n"
    while True:
        if cursor < feed.last_seq:  # else it has sent all the feed holds: nothing to ask for
            text, after = feed.chunk_after(cursor, symbols, everything, _BATCH)
            if after != cursor:
                cursor = after
                if text:
                    yield text
                continue
        before = feed.last_seq
        await feed.wait(heartbeat_s)
        if feed.last_seq == before:
            yield b": heartbeat\n\n"


class EventStreamResponse(StreamingResponse):
    """An endless stream whose chunks go from its generator straight to the server's ``send``.

    Starlette's ``StreamingResponse`` runs each stream in an anyio task group and every chunk
    through it: a cost paid by each of a hundred subscribers at every refresh of the feed, on the
    loop the engine pulses on. Here one task writes the chunks and a second only waits for the
    client to hang up (which cancels the first).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        writer = asyncio.ensure_future(self._write(send))
        hangup = asyncio.ensure_future(_hung_up(receive))
        try:
            done, _ = await asyncio.wait((writer, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            writer.cancel()
            hangup.cancel()
        if writer in done:
            writer.result()  # the body's own error, if it ended with one
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send) -> None:
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _hung_up(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


@router.get(
    "/events",
    summary="Server-sent events: pulses, fills, states, parameters, audits (resume with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "an endless stream",
        },
        **problem_responses({401: "No valid access token", 422: "since or Last-Event-ID is invalid"}),
    },
)
async def events(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    since: Annotated[
        int | None,
        Query(
            ge=0, le=2**62, description="start after this event seq (0: from the first; default: from now)"
        ),
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    plane = plane_of(request)
    cursor = since if since is not None else plane.feed.last_seq  # no cursor: from now on
    if last_event_id is not None:  # a reconnecting EventSource: it wins over ?since=
        if not last_event_id.strip().isdigit():
            raise ProblemError(
                422,
                "Last-Event-ID must be the id of an event received (a whole number)",
                errors=[{"field": "Last-Event-ID", "message": "expected a whole number"}],
            )
        cursor = int(last_event_id.strip())
    heartbeat_s: float = request.app.state.heartbeat_s
    return EventStreamResponse(
        _stream(plane, principal, cursor, heartbeat_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
