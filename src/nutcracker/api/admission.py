"""``Admission``: at most a few requests are handled at once, so the engine keeps its turns of the loop.

The engine and the API share one event loop, which runs every ready callback once per turn. With
hundreds of requests in flight, each turn runs a step of every one of them before the engine's next
step: a pulse that awaits its journal a few times waits that many full turns. Admitting only
``limit`` requests at a time (the rest wait in order, costing nothing) bounds the handlers that are
suspended at once (a command awaiting the engine, a stream being set up); an idle engine loses
nothing by it, and 200 consoles polling every 2 s never queue.

What it does not bound: a handler that never suspends (``GET /status``) takes its slot and returns
it within one step, so every request that arrived still runs in the same turn. Under
``bench/api.py``'s saturation load (200 clients, no think time) a count of the loop's turns found
~200 ready callbacks and ~34 ms per turn, and a replayed pulse needs ~9 turns: the engine starves.
Bounding that needs the API off the engine's loop (its own loop in a thread), not a smaller limit.

A request holds its slot until its response starts: an event stream, which lasts as long as its
subscriber, holds one only while it is set up.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Admission"]


class Admission:
    """ASGI middleware: at most ``limit`` HTTP requests are handled at once (module docstring)."""

    def __init__(self, app: ASGIApp, limit: int = 4) -> None:
        self._app = app
        self._limit = limit
        self._slots: asyncio.Semaphore | None = None  # made on the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._limit)
        slots = self._slots
        await slots.acquire()
        held = True

        async def release_at_start(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                slots.release()
            await send(message)

        try:
            await self._app(scope, receive, release_at_start)
        finally:
            if held:
                slots.release()
