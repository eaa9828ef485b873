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
