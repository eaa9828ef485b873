"""``calm_collector``: keep Python's cyclic garbage collector from holding the shared loop.

The engine and the API share one event loop, and a collection stops it. With the default
thresholds, ``bench/api.py``'s realistic pass (100 symbols, 200 consoles, 100 event streams)
saw about 400 young collections and 3 full ones in 14 s: a full collection walks every tracked
object (about 400,000: the config, the replay's candles, each symbol's kept reports, the event
feed's tail), and held the loop up to 340 ms, which was the p99 of both ``GET status`` and the
SSE delay. So, once the process has built what it keeps for its whole life:

- ``gc.freeze()`` moves those objects out of the collector's reach (they stay alive anyway;
  reference counting still frees any of them that is dropped, only cycles among them would wait);
- the young generation is collected every ``YOUNG`` allocations instead of 700, and the older
  ones less often too: the pauses are rarer, and a full one walks only what was built since.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG", "calm_collector"]

YOUNG = 20_000  # allocations (less deallocations) between two young collections (CPython: 700)
_MIDDLE = 20  # young collections per middle one (CPython: 10)
_OLD = 20  # middle collections per full one (CPython: 10; a full one also waits for 25 % growth)


def calm_collector() -> None:
    """Freeze the objects alive now and collect less often (module docstring); callable again."""
    gc.unfreeze()  # what an earlier call froze and has since become garbage is collected too
    gc.collect()  # what startup left as garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(YOUNG, _MIDDLE, _OLD)
