"""A journal the API cannot read now (Redis went away) is a 503 naming the store, never a 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import redis
from fastapi import FastAPI
from tests.redis_server import RedisServer

from nutcracker.api.problems import install_problem_handlers
from nutcracker.store.redis_suggestions import RedisSuggestions


def test_a_redis_that_went_away_is_a_503_that_names_it_without_its_password(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    client = redis.Redis(port=server.port, decode_responses=True, socket_connect_timeout=0.5)
    url = f"redis://:hunter2@127.0.0.1:{server.port}/0"  # as the user gave it: the message masks it
    kept = RedisSuggestions(url, client=client)
    kept.file("s1", "BTC/USDT", "{}", 1, 2)
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/suggestions")
    def listed() -> list[str]:
        return [s.id for s in kept.all()]

    async def ask() -> tuple[list[str], httpx.Response]:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            before = (await http.get("/suggestions")).json()
            server.stop()
            return before, await http.get("/suggestions")

    try:
        before, r = asyncio.run(ask())
    finally:
        client.close()
        server.stop()
    assert before == ["s1"]
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "5"
    detail = r.json()["detail"]
    assert detail.startswith(f"Redis at redis://:***@127.0.0.1:{server.port}/0: suggestions not kept")
    assert detail.endswith("check the server")
    assert "hunter2" not in r.text
    assert "Traceback" not in r.text
