"""Every kind of command crosses the Redis inbox whole (a real redis-server)."""

from __future__ import annotations

import asyncio

import redis
from tests.factories import symbol_params

from nutcracker.core.commands import (
    ChangeParams,
    Command,
    DecideSuggestion,
    KillSymbol,
    PauseSymbol,
    ProposeChange,
    ResumeSymbol,
    Role,
)
from nutcracker.store.redis_inbox import RedisInbox


def test_every_command_kind_arrives_equal_to_what_was_sent(redis_client: redis.Redis) -> None:
    params = symbol_params()
    symbol = params.market.symbol
    sent: list[Command] = [
        PauseSymbol("c-1", symbol, "ops", Role.OPERATOR, "why", 1),
        ResumeSymbol("c-2", symbol, "ops", Role.OPERATOR, "", 2, "grant-7"),
        KillSymbol("c-3", symbol, "owner", Role.OWNER, "kill switch", 3),
        ChangeParams("c-4", params, "owner", Role.OWNER, "wider", 4, config_json='{"grid": {"levels": 6}}'),
        ProposeChange("c-5", symbol, '{"grid": {"levels": 7}}', "agent:1", Role.AGENT, "idea", 5, "g-1"),
        PauseSymbol("c-6", None, "ops", Role.OPERATOR, "every symbol", 6),
        DecideSuggestion("c-7", symbol, "s-1", False, "owner", Role.OWNER, "too few levels", 7),
        DecideSuggestion("c-8", symbol, "s-2", True, "owner", Role.OWNER, "accepted suggestion s-2", 8),
    ]

    async def main() -> list[Command | None]:
        inbox = RedisInbox(redis_client)
        await inbox.claim("w", [symbol])
        for command in sent:
            await inbox.send(command)
        return [await inbox.receive("w", 0.5) for _ in range(len(sent) + 1)]

    got = asyncio.run(main())
    assert got == [*sent, None]


def _scripts_run(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def test_idle_receivers_run_no_script_and_a_command_wakes_only_its_owner(redis_client: redis.Redis) -> None:
    """One read of the streams' last numbers per poll serves every receiver (``_Doorbell``): an idle
    symbol costs no script, where each ran its script every 20 ms (``bench/inbox.py``)."""
    symbols = [f"S{i}/USDT" for i in range(20)]

    async def main() -> tuple[int, int, int, list[Command]]:
        inbox = RedisInbox(redis_client)
        for s in symbols:
            await inbox.claim(f"w:{s}", [s])
        got: list[Command] = []

        async def receiver(s: str) -> None:
            while True:
                command = await inbox.receive(f"w:{s}")
                assert command is not None
                got.append(command)

        tasks = [asyncio.create_task(receiver(s)) for s in symbols]
        await asyncio.sleep(0.2)  # every receiver ran its first script and waits
        before = _scripts_run(redis_client)
        await asyncio.sleep(0.5)  # 25 polls
        idle = _scripts_run(redis_client) - before
        await inbox.send(PauseSymbol("c-1", symbols[3], "ops", Role.OPERATOR, "one", 1))
        await asyncio.sleep(0.3)
        one = _scripts_run(redis_client) - before - idle - 1  # less the send's own script
        await inbox.send(PauseSymbol("c-2", None, "ops", Role.OPERATOR, "every symbol", 2))
        await asyncio.sleep(0.3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return idle, one, len(got), got

    idle, one, count, got = asyncio.run(main())
    assert idle == 0
    assert one <= 2  # its owner's script (and at most one more once the command was taken)
    assert got[0].command_id == "c-1"
    assert got[0].symbol == symbols[3]
    assert count == 1 + len(symbols)  # the command for every symbol reached every receiver
    assert {c.command_id for c in got[1:]} == {"c-2"}


def test_a_receiver_that_claimed_elsewhere_still_gets_its_commands(redis_client: redis.Redis) -> None:
    async def main() -> Command | None:
        RedisInbox(redis_client)  # another process's inbox claims; this one only receives
        await RedisInbox(redis_client).claim("w", ["BTC/USDT"])
        inbox = RedisInbox(redis_client)
        waiting = asyncio.create_task(inbox.receive("w", 2.0))
        await asyncio.sleep(0.1)
        await RedisInbox(redis_client).send(PauseSymbol("c-1", "BTC/USDT", "ops", Role.OPERATOR, "x", 1))
        return await waiting

    got = asyncio.run(main())
    assert got is not None
    assert got.command_id == "c-1"
