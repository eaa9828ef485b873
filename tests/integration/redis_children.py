"""Child processes of the Redis scale-out tests: run as ``python redis_children.py ROLE URL ...``.

``writer URL SYMBOL``: lease SYMBOL (ttl 500 ms, never renewed: it believes it still owns it), fence
the journal, then write a pulse with one intent every 20 ms, printing ``wrote N``; a refused write
prints ``refused N <why>`` and exits 3.

``spender URL SYMBOL SEED locked|unlocked``: 300 rounds on a 1,000 USDT budget shared in Redis:
take the budget's section (or not), read the allowance, pause like a decide, then spend part of
it or give part back (``reserve``); prints ``done``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from decimal import Decimal

from nutcracker.core.records import IntentRecord, PulseRecord, StaleTokenError
from nutcracker.core.units import Precision
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_budget import RedisQuoteBudget
from nutcracker.store.redis_lease import RedisLease, server_ms

PRECISION = Precision(Decimal("0.01"), Decimal("0.001"))
QU = PRECISION.quote_to_qu(Decimal(1))
BUDGET = Decimal(1000)


def writer(url: str, symbol: str) -> int:
    journal = RedisJournal(url)
    lease = asyncio.run(RedisLease(journal.client).acquire(symbol, "old", 500, server_ms(journal.client)))
    assert lease is not None
    journal.fence(symbol, lease.token)
    n = 0
    while True:
        n += 1
        intent = IntentRecord(symbol, f"old-{n}", "place", "buy", 100, 1, "pending", "grid", n)
        try:
            journal.commit_pulse(PulseRecord(symbol, n, "{}", (), (), (), (intent,), ()))
        except StaleTokenError as e:
            print(f"refused {n} {e}", flush=True)
            return 3
        print(f"wrote {n}", flush=True)
        time.sleep(0.02)


def spender(url: str, symbol: str, seed: int, locked: bool) -> int:
    journal = RedisJournal(url)
    budget = RedisQuoteBudget(journal.client, {"USDT": BUDGET})
    budget.register(symbol, "USDT", PRECISION)
    budget.reserve(symbol, 0)
    rng = random.Random(seed)

    async def main() -> None:
        for _ in range(300):
            async with budget.hold(symbol) if locked else contextlib.nullcontext():
                own = budget.committed_qu(symbol) or 0
                allowance = budget.allowance(symbol, own)
                assert allowance is not None
                await asyncio.sleep(rng.random() / 500)  # the other worker runs here, as during a decide
                if rng.random() < 0.3:
                    spent = max(0, own - rng.randrange(0, 300 * QU))  # a sell or a cancel gives back
                else:
                    spent = own + min(allowance, rng.randrange(0, 400 * QU))
                budget.reserve(symbol, spent)
            await asyncio.sleep(0)

    asyncio.run(main())
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    role, url, symbol, *rest = sys.argv[1:]
    if role == "writer":
        sys.exit(writer(url, symbol))
    sys.exit(spender(url, symbol, int(rest[0]), rest[1] == "locked"))
