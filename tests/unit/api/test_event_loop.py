"""``nutcracker serve``'s event loop: uvloop's where it is installed, asyncio's otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from nutcracker.api.server import new_loop, run


async def _loop_and(value: int) -> tuple[asyncio.AbstractEventLoop, int]:
    await asyncio.sleep(0)
    return asyncio.get_running_loop(), value


def test_run_returns_the_coroutines_value_from_a_uvloop_loop() -> None:
    loop, value = run(_loop_and(7))
    assert value == 7
    assert isinstance(loop, uvloop.Loop)
    assert loop.is_closed()  # run closes what it made, as asyncio.run does


def test_without_uvloop_the_loop_is_asyncios_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    loop = new_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.BaseEventLoop)
    finally:
        loop.close()
