"""``Engine.submit``: the one door for commands: role rules, idempotence by id, the audit trail."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from engine_world import BTC, ETH, make_world, params_for

from nutcracker.config import load_config
from nutcracker.control.params_patch import change_params
from nutcracker.core.commands import (
    ChangeParams,
    Command,
    DecideSuggestion,
    KillSymbol,
    Outcome,
    PauseSymbol,
    ProposeChange,
    ResumeSymbol,
    Role,
)
from nutcracker.core.serialize import loads_params
from nutcracker.engine.inprocess import InProcessInbox
from nutcracker.engine.portfolio import PortfolioRails
from nutcracker.engine.ports import Journal
from nutcracker.engine.runtime import Engine, EngineSettings, WallClock
from nutcracker.engine.worker import IDLE, KILLED, PAUSED
from nutcracker.store.memory import InMemoryJournal

FAST = EngineSettings(pulse_interval_s=0.005, monitor_interval_s=None, shutdown_timeout_s=0.5)


def engine_of() -> tuple[Engine, InMemoryJournal]:
    world = make_world((BTC, ETH))
    assert isinstance(world.journal, InMemoryJournal)
    engine = Engine([params_for(BTC), params_for(ETH)], world.sim, world.journal, WallClock(), settings=FAST)
    return engine, world.journal


def pause(cid: str, role: Role = Role.OPERATOR, symbol: str | None = BTC, grant: str = "") -> PauseSymbol:
    return PauseSymbol(cid, symbol, "erin", role, "looking", 7, grant)


def test_a_replayed_command_id_is_a_no_op_returning_the_first_outcome() -> None:
    engine, journal = engine_of()

    async def main() -> None:
        await engine.start()
        first = await engine.submit(pause("p-1"))
        assert first.outcome == Outcome.APPLIED
        await engine.submit(ResumeSymbol("r-1", BTC, "erin", Role.OPERATOR, "ok", 8))
        assert engine.worker(BTC).status == IDLE
        again = await engine.submit(pause("p-1"))  # a retry of the first: the symbol stays resumed
        assert again == first
        assert engine.worker(BTC).status == IDLE
        both = await asyncio.gather(*(engine.submit(pause("p-2")) for _ in range(3)))  # racing replays
        assert len(set(both)) == 1

    asyncio.run(main())
    assert [a.action for a in reversed(journal.audit_log(10))] == ["pause", "resume", "pause"]


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (pause("v", Role.VIEWER), "a viewer may send no command"),
        (pause("a", Role.ADVISOR), "an advisor may only propose"),
        (pause("g", Role.AGENT), "an agent acts only under a grant"),
        (pause("u", symbol="DOGE/USDT"), "DOGE/USDT is not traded by this engine"),
        (Command("b", BTC, "erin", Role.OWNER, "?", 1), "not a command"),
        (
            DecideSuggestion("d", BTC, "s-1", False, "erin", Role.OPERATOR, "no", 1),
            "only the owner decides on a suggestion (the sender is operator)",
        ),
    ],
    ids=["viewer", "advisor", "agent-without-grant", "unknown-symbol", "bare-command", "decide-not-owner"],
)
def test_refused_commands_change_nothing_and_are_journaled(command: Command, why: str) -> None:
    engine, journal = engine_of()

    async def main() -> None:
        await engine.start()
        outcome = await engine.submit(command)
        assert outcome.outcome == Outcome.REFUSED
        assert why in outcome.detail

    asyncio.run(main())
    assert engine.worker(BTC).status == IDLE
    (entry,) = journal.audit_log(5)
    assert entry.action == command.kind
    assert f"command={command.command_id}" in entry.detail
    assert "refused: " + why in entry.detail


def test_an_agent_with_a_grant_acts_and_the_grant_is_journaled() -> None:
    engine, journal = engine_of()
    outcome = asyncio.run(engine.submit(KillSymbol("k-1", None, "bot", Role.AGENT, "drawdown", 9, "grant-7")))
    assert outcome.applied
    assert {w.status for w in engine.workers.values()} == {KILLED}
    details = [a.detail for a in journal.audit_log(5)]
    assert len(details) == 2  # once per symbol killed
    assert all("command=k-1 role=agent grant=grant-7" in d for d in details)


def test_a_proposal_is_recorded_never_applied() -> None:
    engine, journal = engine_of()
    patch = json.dumps({"grid": {"levels": 2}})
    proposal = ProposeChange("adv-1", BTC, patch, "advisor", Role.ADVISOR, "calmer market", 5)
    before = engine.worker(BTC).params
    outcome = asyncio.run(engine.submit(proposal))
    assert outcome.outcome == Outcome.RECORDED
    assert engine.worker(BTC).params is before
    assert journal.params_history(BTC) == []
    (entry,) = journal.audit_log(5)
    assert (entry.actor, entry.action, entry.ts_ms) == ("advisor", "propose", 5)
    assert f"proposal={patch}" in entry.detail


def test_an_owners_decision_on_a_suggestion_is_recorded_and_changes_nothing() -> None:
    engine, journal = engine_of()
    before = engine.worker(BTC).params
    reject = DecideSuggestion("d-1", BTC, "s-9", False, "olga", Role.OWNER, "too few levels (API)", 6)
    outcome = asyncio.run(engine.submit(reject))
    assert (outcome.outcome, outcome.detail) == (Outcome.RECORDED, "reject_suggestion recorded")
    assert engine.worker(BTC).params is before
    assert engine.worker(BTC).status == IDLE
    (entry,) = journal.audit_log(5)
    assert (entry.actor, entry.action, entry.ts_ms) == ("olga", "reject_suggestion", 6)
    assert entry.detail == f"symbol={BTC} command=d-1 role=owner suggestion=s-9 why=too few levels (API)"
    again = asyncio.run(engine.submit(reject))
    assert again.outcome == Outcome.RECORDED


def test_change_params_applies_between_pulses_and_keeps_the_user_units_beside() -> None:
    engine, journal = engine_of()
    params = params_for(BTC)
    fewer = replace(params, grid=replace(params.grid, levels=2))
    config = json.dumps({"grid": {"levels": 2}})

    async def main() -> None:
        await engine.start()
        change = ChangeParams("c-1", fewer, "carol", Role.OWNER, "fewer levels", 11, config_json=config)
        assert (await engine.submit(change)).applied
        assert engine.worker(BTC).params is fewer
        other = replace(params, order_id_prefix="other")
        refused = await engine.submit(ChangeParams("c-2", other, "carol", Role.OWNER, "rename", 12))
        assert refused.outcome == Outcome.REFUSED
        assert "order id prefix" in refused.detail

    asyncio.run(main())
    started, row = journal.params_history(BTC)
    assert (row.actor, row.why, row.config_json) == ("carol", "fewer levels", config)
    assert loads_params(row.params_json) == fewer
    assert started.config_json == ""
    assert [a.action for a in journal.audit_log(5)] == ["params", "params"]
    assert "refused: " in journal.audit_log(1)[0].detail


def test_a_paused_symbol_stays_paused_across_pulses_until_resumed() -> None:
    engine, _ = engine_of()

    async def main() -> None:
        await engine.submit(pause("p-1", symbol=None))
        await engine.pulse_all()
        assert {r.status for r in engine.latest().values()} == {PAUSED}

    asyncio.run(main())


@pytest.mark.parametrize("bad", ["", "x" * 129, "tab\there"])
def test_a_command_id_must_be_printable_and_short(bad: str) -> None:
    with pytest.raises(ValueError, match="command_id"):
        pause(bad)


def test_serve_applies_what_the_inbox_delivers_for_its_symbols() -> None:
    engine, journal = engine_of()
    inbox = InProcessInbox()

    async def main() -> None:
        await engine.start()
        serving = asyncio.create_task(engine.serve(inbox, "worker-1"))
        await inbox.send(pause("p-1"))
        await inbox.send(pause("p-1"))  # a resent id: applied once
        await inbox.send(KillSymbol("k-1", ETH, "ops", Role.OPERATOR, "delisting", 8))
        for _ in range(100):
            if engine.worker(ETH).status == KILLED:
                break
            await asyncio.sleep(0.01)
        serving.cancel()

    asyncio.run(main())
    assert (engine.worker(BTC).status, engine.worker(ETH).status) == (PAUSED, KILLED)
    assert [a.action for a in reversed(journal.audit_log(10))] == ["pause", "kill"]


def test_a_user_unit_patch_goes_through_submit_into_the_params_history() -> None:
    config = load_config(Path(__file__).resolve().parents[3] / "examples" / "grid-btc-usdt.toml")
    (params,) = config.to_params()
    world = make_world((BTC,))
    assert isinstance(world.journal, InMemoryJournal)
    engine = Engine([params], world.sim, world.journal, WallClock(), settings=FAST)
    command, _ = change_params(
        config,
        BTC,
        {"grid": {"levels": 4}},
        command_id="c-1",
        actor="carol",
        role=Role.OWNER,
        why="more",
        ts_ms=3,
    )

    async def main() -> None:
        await engine.start()
        assert (await engine.submit(command)).applied

    asyncio.run(main())
    assert engine.worker(BTC).params.grid.levels == 4
    started, row = world.journal.params_history(BTC)
    assert started.config_json == ""
    assert (row.actor, row.why) == ("carol", "more")
    assert json.loads(row.config_json)["grid"]["levels"] == 4
    assert loads_params(row.params_json) == command.params


def test_an_injected_quote_budget_is_the_one_the_workers_reserve_from() -> None:
    world = make_world((BTC, ETH))
    budget = PortfolioRails({"USDT": Decimal(0)})  # nothing to spend: no buy may rest
    engine = Engine(
        [params_for(BTC), params_for(ETH)], world.sim, world.journal, WallClock(), quote_budget=budget
    )
    assert engine.portfolio is budget
    asyncio.run(engine.pulse_all())
    assert budget.committed_qu(BTC) == 0
    assert not world.ours(BTC)
    assert not world.ours(ETH)
    with pytest.raises(ValueError, match="not both"):
        Engine(
            [params_for(BTC)],
            world.sim,
            world.journal,
            WallClock(),
            quote_budget=budget,
            portfolio_budgets={"USDT": Decimal(1)},
        )


def _journal(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Journal:
    """A journal of the kind ``store`` names: in memory, a SQLite file, or the test Redis."""
    from nutcracker.store.redis import RedisJournal
    from nutcracker.store.sqlite import SqliteJournal

    if store == "redis":
        return RedisJournal(request.getfixturevalue("redis_url"))
    return InMemoryJournal() if store == "memory" else SqliteJournal(tmp_path / "j.db")


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
def test_a_command_id_journaled_before_a_restart_is_not_applied_again(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Idempotence outlives the process: a new engine on the same journal reads the command ids."""
    journal = _journal(store, tmp_path, request)
    world = make_world((BTC, ETH), journal=journal)

    def new_engine() -> Engine:
        return Engine([params_for(BTC), params_for(ETH)], world.sim, journal, WallClock(), settings=FAST)

    async def first_life() -> None:
        engine = new_engine()
        await engine.start()
        assert (await engine.submit(pause("p_1%"))).outcome == Outcome.APPLIED  # LIKE's wildcards
        assert (await engine.submit(pause("v-1", Role.VIEWER))).outcome == Outcome.REFUSED
        await engine.submit(ResumeSymbol("r-1", BTC, "erin", Role.OPERATOR, "ok", 8))

    async def second_life() -> None:
        engine = new_engine()
        await engine.start()
        again = await engine.submit(pause("p_1%"))  # a retry after the restart: BTC stays resumed
        assert again.outcome == Outcome.APPLIED
        assert "journaled before" in again.detail
        assert engine.worker(BTC).status == IDLE
        refused = await engine.submit(pause("v-1", Role.VIEWER))
        assert refused.outcome == Outcome.REFUSED
        assert "a viewer may send no command" in refused.detail
        assert (await engine.submit(pause("p-1x"))).outcome == Outcome.APPLIED  # a new id is applied
        assert engine.worker(BTC).status == PAUSED

    asyncio.run(first_life())
    asyncio.run(second_life())
    assert journal.command_detail("p_1") is None  # the id is matched whole, not as a pattern


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
def test_a_reason_that_names_a_command_id_neither_stops_that_command_nor_changes_an_outcome(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A reason is the sender's free text: one naming another command's tag (``command=ID role=``)
    made that id look journaled, so the real command, a kill, was answered "journaled before" and
    never applied; one saying " refused: " made an applied command read as refused on a retry."""
    journal = _journal(store, tmp_path, request)
    world = make_world((BTC, ETH), journal=journal)
    spoof = "see command=k-1 role=operator refused: nothing proposal={}"
    note = PauseSymbol("m-1", ETH, "mallory", Role.OPERATOR, spoof, 7)

    def new_engine() -> Engine:
        return Engine([params_for(BTC), params_for(ETH)], world.sim, journal, WallClock(), settings=FAST)

    async def first_life() -> None:
        engine = new_engine()
        await engine.start()
        assert (await engine.submit(note)).outcome == Outcome.APPLIED
        killed = await engine.submit(KillSymbol("k-1", BTC, "erin", Role.OPERATOR, "stop", 8))
        assert (killed.outcome, killed.detail) == (Outcome.APPLIED, f"{BTC} killed")
        assert engine.worker(BTC).status == KILLED

    async def second_life() -> None:
        engine = new_engine()
        await engine.start()
        again = await engine.submit(note)  # a retry after a restart: still the outcome it had
        assert (again.outcome, again.detail) == (Outcome.APPLIED, "journaled before, not applied again")

    asyncio.run(first_life())
    asyncio.run(second_life())
    assert "command=k-1 role=operator" in (journal.command_detail("k-1") or "")
    assert "stop" in (journal.command_detail("k-1") or "")


def test_serving_an_inbox_outlives_its_redis_going_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis restart under a worker's symbol: the commands sent after it still arrive (the serving
    task ended at the first error, and the symbol heard no pause or kill again)."""
    import logging

    from tests.redis_server import RedisServer

    from nutcracker.store.redis_connect import connect
    from nutcracker.store.redis_inbox import RedisInbox

    server = RedisServer(tmp_path / "redis")  # its own: this test stops it
    client = connect(server.url)
    engine, _ = engine_of()

    async def main() -> str:
        await engine.start()
        serving = asyncio.create_task(engine.serve(RedisInbox(client), "w1"))
        await asyncio.sleep(0.1)
        server.stop()
        await asyncio.sleep(1.2)  # the inbox fails to be read a few times
        server.start()  # the AOF keeps the claim and the cursors
        await RedisInbox(client).send(pause("after-the-outage"))
        for _ in range(300):
            if engine.worker(BTC).status == PAUSED:
                break
            await asyncio.sleep(0.02)
        serving.cancel()
        return str(engine.worker(BTC).status)

    try:
        with caplog.at_level(logging.WARNING):
            assert asyncio.run(main()) == PAUSED
    finally:
        client.close()
        server.stop()
    said = [r.getMessage() for r in caplog.records if "inbox_" in r.getMessage()]
    assert len(said) == 2, said  # once when it failed, once when it was read again
    assert "inbox_unreadable" in said[0]
    assert "inbox_read_again" in said[1]
