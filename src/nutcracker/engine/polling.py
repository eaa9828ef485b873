"""``poll``: run a step every so often until a stop; a failure is said once, and so is the recovery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["poll"]


async def poll(
    stop: asyncio.Event,
    every_s: float,
    step: Callable[[], Awaitable[None]],
    logger: logging.Logger,
    what: str,
    why: Callable[[Exception], str] = repr,
) -> None:
    """Await ``step()`` every ``every_s`` until ``stop``; an error is retried at the next round.

    A store that goes away fails every round (20 a second at 50 ms): the log says ``{what} not
    read`` once when it starts failing and ``{what} read again`` once when it works again.
    """
    failing = False
    while not stop.is_set():
        try:
            await step()
        except Exception as e:  # the store away (or a row it cannot read): the next round retries
            if not failing:
                logger.warning("%s not read, retrying every %g s: %s", what, every_s, why(e))
            failing = True
        else:
            if failing:
                logger.warning("%s read again", what)
            failing = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
