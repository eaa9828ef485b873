"""``Admission``: at most ``limit`` requests inside the app at once; a started response frees its slot."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from nutcracker.api.admission import Admission


class App:
    """An ASGI app whose requests wait for ``go`` before their response starts; counts who is inside."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.go = asyncio.Event()
        self.streaming = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            if scope["path"] == "/events":  # a stream: starts at once and never ends
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await self.streaming.wait()
                return
            await self.go.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.inside -= 1


async def _receive() -> Message:
    return {"type": "http.request", "body": b""}


def _request(gate: Admission, path: str, sent: list[Message]) -> asyncio.Task[None]:
    async def send(message: Message) -> None:
        sent.append(message)

    return asyncio.create_task(gate({"type": "http", "path": path}, _receive, send))


def test_no_more_than_the_limit_are_handled_at_once_and_every_request_is_answered() -> None:
    async def scenario() -> tuple[int, int, int]:
        app = App()
        gate = Admission(app, limit=3)
        sent: list[Message] = []
        tasks = [_request(gate, "/status", sent) for _ in range(10)]
        for _ in range(5):
            await asyncio.sleep(0)
        waiting_inside = app.inside
        app.go.set()
        await asyncio.gather(*tasks)
        return waiting_inside, app.most, sum(m["type"] == "http.response.start" for m in sent)

    inside, most, answered = asyncio.run(scenario())
    assert inside == 3
    assert most == 3
    assert answered == 10


def test_an_open_event_stream_does_not_hold_a_slot() -> None:
    async def scenario() -> int:
        app = App()
        gate = Admission(app, limit=1)
        sent: list[Message] = []
        streams = [_request(gate, "/events", sent) for _ in range(3)]  # each frees its slot when started
        for _ in range(5):
            await asyncio.sleep(0)
        app.go.set()
        await asyncio.wait_for(_request(gate, "/status", sent), 5)  # not stuck behind the streams
        app.streaming.set()
        await asyncio.gather(*streams)
        return sum(m["type"] == "http.response.start" for m in sent)

    assert asyncio.run(scenario()) == 4
