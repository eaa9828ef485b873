"""RedisJournal beyond the contract: group commit, fencing, durability, bad servers (a real redis-server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.redis_server import RedisServer, free_port

from nutcracker.core.model import Fill, Side
from nutcracker.core.records import IntentRecord, PulseRecord, StaleTokenError
from nutcracker.engine.journaling import JournalLane
from nutcracker.engine.ports import FencedJournal, GroupCommitJournal
from nutcracker.errors import JournalError
from nutcracker.store.redis import RedisJournal
from nutcracker.store.redis_connect import check_server, connect, describe, fsync_policy
from nutcracker.store.redis_lease import RedisLease

BTC, ETH = "BTC/USDT", "ETH/USDT"


def place(cid: str, symbol: str = BTC, *, side: str = "buy", price: int = 9_900) -> IntentRecord:
    return IntentRecord(symbol, cid, "place", side, price, 50, "pending", "grid level 0", 1_000)


def pulse(
    symbol: str = BTC,
    *,
    ts_ms: int = 1_000,
    state: str = '{"seq": 1}',
    intents: tuple[IntentRecord, ...] = (),
) -> PulseRecord:
    fills = (Fill(f"t{ts_ms}", "nct-B0-x", Side.BUY, 10_000, 50, 5, ts_ms),)
    return PulseRecord(symbol, ts_ms, state, fills, (1,), (), intents, ("because",))


def _fits(journal: RedisJournal) -> tuple[GroupCommitJournal, FencedJournal]:
    return journal, journal  # mypy: the Redis journal offers group commit and fencing


@pytest.fixture
def journal(redis_url: str) -> Iterator[RedisJournal]:
    opened = RedisJournal(redis_url)
    yield opened
    opened.close()


def test_a_batch_answers_per_write_and_a_refused_write_keeps_nothing_of_its_own(
    journal: RedisJournal,
) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    reused = place("a", side="sell", price=10_100)
    answers = journal.commit_batch(
        [
            pulse(ETH, intents=(place("e", ETH),)),
            pulse(ts_ms=1_200, state='{"seq": 2}', intents=(place("b"), reused)),
            (BTC, [("a", "acked", ""), ("ghost", "acked", "")], 1_300),
            (BTC, [("a", "rejected", "post-only")], 1_400),
        ]
    )
    assert answers[0] is None
    assert isinstance(answers[1], ValueError)
    assert "recorded for another order" in str(answers[1])
    assert isinstance(answers[2], ValueError)
    assert "no intent 'ghost'" in str(answers[2])
    assert answers[3] is None
    assert journal.known_trade_ids(BTC, 0) == {"t1000"}  # the refused pulse kept none of its fills
    assert [(i.client_order_id, i.status) for i in journal.intents(BTC)] == [("a", "rejected")]
    assert [i.client_order_id for i in journal.open_intents(ETH)] == ["e"]
    stored = journal.load_symbol(BTC)
    assert stored is not None
    assert stored.state_json == '{"seq": 1}'


def test_the_engine_lane_groups_writes_on_the_redis_journal(journal: RedisJournal) -> None:
    lane = JournalLane(journal)
    assert lane.group_commit

    async def main() -> None:
        await asyncio.gather(
            *(lane.commit_pulse(pulse(f"S{n}/USDT", intents=(place("a", f"S{n}/USDT"),))) for n in range(5))
        )
        await lane.update_intents("S0/USDT", [("a", "acked", "")], 2_000)

    asyncio.run(main())
    lane.close()
    assert lane.batches == 2
    assert [s.symbol for s in journal.symbols()] == [f"S{n}/USDT" for n in range(5)]
    assert journal.open_intents("S0/USDT") == []


def test_a_stale_token_is_refused_as_soon_as_the_lease_moves_on(redis_url: str) -> None:
    with connect(redis_url) as client:
        leases = RedisLease(client)
        old_owner, new_owner, stranger = (
            RedisJournal(redis_url),
            RedisJournal(redis_url),
            RedisJournal(redis_url),
        )
        try:
            first = asyncio.run(leases.acquire(BTC, "a", 60_000, now_ms=0))
            assert first is not None
            old_owner.fence(BTC, first.token)
            old_owner.commit_pulse(pulse(intents=(place("a1"),)))
            second = asyncio.run(leases.acquire(BTC, "b", 60_000, now_ms=60_000))
            assert second is not None
            # refused before the new owner wrote anything, fenced or not
            with pytest.raises(StaleTokenError, match="another process holds the lease now"):
                old_owner.commit_pulse(pulse(ts_ms=2_000, intents=(place("a2"),)))
            new_owner.fence(BTC, second.token)
            new_owner.commit_pulse(pulse(ts_ms=3_000, intents=(place("b1"),)))
            for write in (
                lambda: old_owner.update_intents(BTC, [("a1", "acked", "")], 4_000),
                lambda: old_owner.set_status(BTC, "paused", "x", 4_000),
                lambda: old_owner.record_params(BTC, "{}", "owner", "x", 4_000),
                lambda: stranger.commit_pulse(pulse(ts_ms=4_000)),  # never fenced: "ours none"
            ):
                with pytest.raises(StaleTokenError):
                    write()
            assert isinstance(old_owner.commit_batch([pulse(ts_ms=5_000), pulse(ETH)])[0], StaleTokenError)
            with pytest.raises(StaleTokenError, match="is stale"):
                old_owner.fence(BTC, first.token)  # it cannot take the symbol back
            assert [i.client_order_id for i in new_owner.intents(BTC)] == ["a1", "b1"]
            assert [i.status for i in new_owner.intents(BTC)] == ["pending", "pending"]
            assert new_owner.load_symbol(ETH) is not None  # a symbol nobody leased writes freely
        finally:
            for j in (old_owner, new_owner, stranger):
                j.close()


def test_a_buffered_state_is_written_with_the_next_write_and_read_back_before(journal: RedisJournal) -> None:
    journal.save_state(BTC, '{"ema": 1}', 500)
    client = journal.client
    assert client.hget("nc:s:" + BTC, "state") is None  # not written yet
    assert journal.load_symbol(BTC) is not None
    journal.commit_pulse(pulse(ETH))
    assert client.hget("nc:s:" + BTC, "state") == '{"ema": 1}'


def test_journaled_writes_survive_a_redis_restart_from_the_aof(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    try:
        journal = RedisJournal(server.url)
        journal.commit_pulse(pulse(intents=(place("a"),)))
        journal.update_intents(BTC, [("a", "ambiguous", "timeout")], 1_100)
        journal.close()
        server.restart()
        journal = RedisJournal(server.url)
        assert [(i.client_order_id, i.status) for i in journal.open_intents(BTC)] == [("a", "ambiguous")]
        assert [e.kind for e in journal.events_since(0)] == ["pulse", "intents"]
        journal.close()
    finally:
        server.stop()


# -- bad input: one line, before anything trades ----------------------------------------------------


def test_a_redis_without_aof_is_refused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=False)
    try:
        with pytest.raises(JournalError, match=r"no append-only file \(appendonly no\).*appendonly yes"):
            RedisJournal(server.url)
    finally:
        server.stop()


def test_an_unreachable_redis_is_refused_in_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(
        JournalError, match=r"cannot reach Redis at redis://127\.0\.0\.1:.*start redis-server"
    ) as e:
        RedisJournal(url)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/0", "not a Redis URL; write redis://HOST:PORT/DB"),
        ("127.0.0.1:6379", "not a Redis URL"),
        ("redis://127.0.0.1:6379/notadb", "write redis://HOST:PORT/DB"),
    ],
)
def test_a_wrong_redis_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(JournalError, match=message):
        RedisJournal(url)


def test_a_wrong_password_is_refused_and_never_shown(redis_url: str) -> None:
    with connect(redis_url) as client:
        client.config_set("requirepass", "s3cret-pw")
        try:
            wrong = redis_url.replace("redis://", "redis://:wrong-pw@")
            with pytest.raises(JournalError, match="refused the credentials") as e:
                RedisJournal(wrong)
            assert "wrong-pw" not in str(e.value)
        finally:
            with redis.Redis.from_url(redis_url.replace("redis://", "redis://:s3cret-pw@")) as admin:
                admin.config_set("requirepass", "")


def test_a_redis_too_old_or_without_aof_is_refused_by_its_info() -> None:
    with pytest.raises(JournalError, match=r"Redis 6\.2\.14 at r is too old: Nutcracker needs Redis 7\.0"):
        check_server("r", {"redis_version": "6.2.14", "aof_enabled": 1})
    with pytest.raises(JournalError, match="no append-only file"):
        check_server("r", {"redis_version": "7.2.4", "aof_enabled": 0})
    check_server("r", {"redis_version": "7.0.15", "aof_enabled": 1})


def test_a_password_is_never_in_a_description() -> None:
    assert describe("redis://:pw@host:1/0") == "redis://:***@host:1/0"
    assert describe("redis://user:pw@host:1/0") == "redis://user:***@host:1/0"
    assert describe("redis://host:1/0") == "redis://host:1/0"


def test_the_fsync_policy_is_read_from_the_server(tmp_path: Path, redis_client: redis.Redis) -> None:
    assert fsync_policy(redis_client) == "everysec"  # the test server's (tests/redis_server.py)
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    try:
        with connect(server.url) as client:
            assert fsync_policy(client) == "always"
    finally:
        server.stop()


def test_a_command_id_is_found_by_its_index_without_reading_the_audit(
    journal: RedisJournal, redis_client: redis.Redis
) -> None:
    journal.audit("olga", "pause", "symbol=BTC/USDT command=c-1 role=operator why=x", 1)
    journal.audit("olga", "pause", "symbol=BTC/USDT command=c-1 role=operator why=again", 2)  # a replay
    journal.audit("engine", "reconciliation", '{"placed": 0}', 3)  # names no command
    for i in range(500):  # a long audit: reading it all, as before, grew with every entry
        journal.audit("olga", "pause", f"symbol=ETH/USDT command=k-{i} role=operator grant=g why=x", 4)
    journal.audit(
        "olga", "pause", "symbol=BTC/USDT command=c-2 role=operator why=see command=c-3 role=owner", 5
    )

    def lranges() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0))

    before = lranges()
    assert journal.command_detail("c-1") == "symbol=BTC/USDT command=c-1 role=operator why=x"  # the first
    assert journal.command_detail("k-499") == "symbol=ETH/USDT command=k-499 role=operator grant=g why=x"
    assert journal.command_detail("c-3") is None  # named in a reason, after the tag: not a tag
    assert journal.command_detail("c-") is None  # whole ids only
    assert journal.command_detail("k-5000") is None
    assert lranges() == before


def test_the_command_ids_of_an_audit_written_before_the_index_are_indexed_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    old = [
        [1, "olga", "pause", "symbol=BTC/USDT why=first command=c-1 role=operator"],
        [2, "olga", "pause", "symbol=BTC/USDT why=replayed command=c-1 role=operator"],
        [3, "bob", "kill", 'symbol=* why=say "command=x role=" command=k:2 role=owner grant=g-7'],
    ]
    for row in old:  # as a journal before the index wrote them: the audit list alone
        redis_client.rpush("nc:audit", json.dumps(row))
    opened = RedisJournal(redis_url)
    try:
        assert opened.command_detail("c-1") == old[0][3]
        assert opened.command_detail("k:2") == old[2][3]
        assert opened.command_detail("x") == old[2][3]  # as the scan it replaces read it
        assert redis_client.get("nc:cmdv") == "1"
        redis_client.hdel("nc:cmdd", "c-1")
        RedisJournal(redis_url).close()  # indexed once: a second journal does not index again
        assert opened.command_detail("c-1") is None
    finally:
        opened.close()
