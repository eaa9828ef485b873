"""The suite every journal must pass: the SQLite file and the in-memory dicts give the same answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nutcracker.core.model import Fill, Side
from nutcracker.core.records import (
    ACCOUNT,
    ClosedCycleRecord,
    CycleRow,
    FillRow,
    IntentRecord,
    IntentRow,
    ParamsRow,
    PulseRecord,
    StoredSymbol,
)
from nutcracker.engine.ports import Journal, JournalStore, ReadModels
from nutcracker.store.memory import InMemoryJournal
from nutcracker.store.redis import RedisJournal
from nutcracker.store.sqlite import SqliteJournal

AnyJournal = SqliteJournal | InMemoryJournal | RedisJournal
BTC, ETH = "BTC/USDT", "ETH/USDT"


def _fits_the_port(journal: AnyJournal) -> Journal:
    return journal  # mypy checks that both journals fit the engine's port


def _fits_the_read_models(journal: AnyJournal) -> tuple[ReadModels, JournalStore]:
    return journal, journal  # ... and offer every read model


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AnyJournal:
    if kind == "redis":  # a real redis-server (tests/redis_server.py), emptied for the test
        return RedisJournal(request.getfixturevalue("redis_url"), prefix=f"{tmp_path.name}:")
    return SqliteJournal(tmp_path / "journal.sqlite") if kind == "sqlite" else InMemoryJournal()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyJournal]:
    opened = _open(request.param, tmp_path, request)
    yield opened
    opened.close()


def fill(
    trade_id: str, side: Side = Side.BUY, *, price: int = 10_000, ts_ms: int = 1_000, fee: int = 5
) -> Fill:
    return Fill(trade_id, f"nct-B0-{trade_id}", side, price, 50, fee, ts_ms)


def place(client_order_id: str, *, price: int = 9_900, ts_ms: int = 1_000, symbol: str = BTC) -> IntentRecord:
    return IntentRecord(symbol, client_order_id, "place", "buy", price, 50, "pending", "grid level 0", ts_ms)


def cancel(client_order_id: str, *, ts_ms: int = 2_000) -> IntentRecord:
    return IntentRecord(BTC, client_order_id, "cancel", "", 0, 0, "pending", "out of band", ts_ms)


def pulse(
    *,
    symbol: str = BTC,
    ts_ms: int = 1_000,
    state: str = '{"seq": 1}',
    fills: tuple[Fill, ...] = (),
    cycles: tuple[ClosedCycleRecord, ...] = (),
    intents: tuple[IntentRecord, ...] = (),
) -> PulseRecord:
    return PulseRecord(symbol, ts_ms, state, fills, tuple(1 for _ in fills), cycles, intents, ("because",))


CYCLE = ClosedCycleRecord(
    1, cost_qu=500, proceeds_qu=505, fees_qu=2, pnl_qu=3, opened_ts_ms=1_000, closed_ts_ms=2_000
)


def test_a_committed_pulse_is_read_back_whole(journal: AnyJournal) -> None:
    journal.commit_pulse(
        pulse(
            ts_ms=2_000,
            fills=(fill("t1", ts_ms=1_000), fill("t2", Side.SELL, price=10_100, ts_ms=1_500)),
            cycles=(CYCLE,),
            intents=(place("nct-B0-3"),),
        )
    )
    assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"seq": 1}', 1_500, "idle", "", 2_000)
    assert journal.fills(BTC) == [
        FillRow(BTC, "t1", "nct-B0-t1", Side.BUY, 10_000, 50, 5, 1_000, 1),
        FillRow(BTC, "t2", "nct-B0-t2", Side.SELL, 10_100, 50, 5, 1_500, 1),
    ]
    assert journal.cycles(BTC) == [CycleRow(BTC, 1, 500, 505, 2, 3, 1_000, 2_000)]
    assert journal.open_intents(BTC) == [place("nct-B0-3")]
    assert journal.known_trade_ids(BTC, since_ms=0) == {"t1", "t2"}


def test_a_fill_committed_twice_is_stored_once(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(fills=(fill("t1"),)))
    journal.commit_pulse(pulse(ts_ms=2_000, fills=(fill("t1"), fill("t2", ts_ms=1_800))))
    assert [row.trade_id for row in journal.fills(BTC)] == ["t1", "t2"]
    second = json.loads(journal.recent_events(BTC, 1)[0].payload)
    assert [f["trade_id"] for f in second["fills"]] == ["t2"]


def test_a_cycle_committed_twice_is_stored_once(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(cycles=(CYCLE,)))
    journal.commit_pulse(pulse(cycles=(CYCLE,)))
    assert journal.cycles(BTC) == [CycleRow(BTC, 1, 500, 505, 2, 3, 1_000, 2_000)]


def test_the_fill_cursor_only_moves_forward(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(fills=(fill("t2", ts_ms=5_000),)))
    journal.commit_pulse(pulse(fills=(fill("t1", ts_ms=4_000),)))
    journal.commit_pulse(pulse())
    stored = journal.load_symbol(BTC)
    assert stored is not None
    assert stored.last_fill_ts_ms == 5_000


def test_known_trade_ids_are_those_at_or_after_since_ms(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(fills=(fill("a", ts_ms=100), fill("b", ts_ms=200), fill("c", ts_ms=300))))
    journal.commit_pulse(pulse(symbol=ETH, fills=(fill("z", ts_ms=300),)))
    assert journal.known_trade_ids(BTC, since_ms=200) == {"b", "c"}
    assert journal.known_trade_ids(BTC, since_ms=301) == set()
    assert journal.known_trade_ids("XRP/USDT", since_ms=0) == set()


def test_an_acked_intent_closes_and_an_ambiguous_one_stays_open(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"), place("b", price=9_800), place("c", price=9_700))))
    journal.update_intents(
        BTC, [("a", "acked", ""), ("b", "ambiguous", "timeout"), ("c", "rejected", "-2010")], 1_100
    )
    assert [i.client_order_id for i in journal.open_intents(BTC)] == ["b"]
    assert journal.open_intents(BTC)[0].status == "ambiguous"
    journal.update_intents(BTC, [("b", "never_placed", "not found by client id")], 1_200)
    assert journal.open_intents(BTC) == []
    assert [(i.client_order_id, i.status, i.detail, i.updated_ts_ms) for i in journal.intents(BTC)] == [
        ("a", "acked", "", 1_100),
        ("b", "never_placed", "not found by client id", 1_200),
        ("c", "rejected", "-2010", 1_100),
    ]


def test_open_intents_keep_record_order_when_one_reopens(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"), place("b", price=9_800))))
    journal.update_intents(BTC, [("a", "acked", "")], 1_100)
    journal.update_intents(BTC, [("a", "ambiguous", "lost on the wire")], 1_200)
    assert [i.client_order_id for i in journal.open_intents(BTC)] == ["a", "b"]


def test_an_update_goes_to_the_cancel_recorded_after_the_placement(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    journal.update_intents(BTC, [("a", "acked", "")], 1_100)
    journal.commit_pulse(pulse(ts_ms=2_000, intents=(cancel("a"),)))
    assert [(i.action, i.status) for i in journal.open_intents(BTC)] == [("cancel", "pending")]
    journal.update_intents(BTC, [("a", "done", "")], 2_100)
    assert [(i.action, i.status) for i in journal.intents(BTC)] == [("place", "acked"), ("cancel", "done")]


def test_an_update_for_an_unknown_intent_keeps_none_of_the_batch(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    with pytest.raises(ValueError, match="no intent 'ghost'"):
        journal.update_intents(BTC, [("a", "acked", ""), ("ghost", "acked", "")], 1_100)
    assert [i.status for i in journal.intents(BTC)] == ["pending"]
    assert [e.kind for e in journal.recent_events(BTC, 10)] == ["pulse"]


def test_an_update_with_an_unknown_status_is_refused(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    with pytest.raises(ValueError, match="unknown status 'filled'"):
        journal.update_intents(BTC, [("a", "filled", "")], 1_100)
    assert [i.status for i in journal.intents(BTC)] == ["pending"]


def test_an_empty_update_writes_nothing(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    journal.update_intents(BTC, [], 1_100)
    assert [e.kind for e in journal.recent_events(BTC, 10)] == ["pulse"]


def test_an_intent_recorded_again_unchanged_is_kept_once_with_its_status(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    journal.update_intents(BTC, [("a", "acked", "")], 1_100)
    journal.commit_pulse(pulse(ts_ms=1_200, intents=(place("a", ts_ms=1_200),)))
    assert [(i.client_order_id, i.status, i.created_ts_ms) for i in journal.intents(BTC)] == [
        ("a", "acked", 1_000)
    ]
    assert json.loads(journal.recent_events(BTC, 1)[0].payload)["intents"] == []


def test_an_intent_id_reused_for_another_order_refuses_the_whole_pulse(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    with pytest.raises(ValueError, match="recorded for another order"):
        journal.commit_pulse(
            pulse(
                ts_ms=2_000,
                state='{"seq": 2}',
                fills=(fill("t9"),),
                intents=(place("b"), place("a", price=1)),
            )
        )
    stored = journal.load_symbol(BTC)
    assert stored is not None
    assert (stored.state_json, stored.updated_ts_ms) == ('{"seq": 1}', 1_000)
    assert journal.fills(BTC) == []
    assert [i.client_order_id for i in journal.intents(BTC)] == ["a"]
    assert [e.kind for e in journal.recent_events(BTC, 10)] == ["pulse"]


def test_a_saved_state_is_read_back_and_a_later_commit_supersedes_it(journal: AnyJournal) -> None:
    journal.save_state(BTC, '{"ema": 1}', 500)
    assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"ema": 1}', -1, "idle", "", 500)
    journal.commit_pulse(pulse(ts_ms=1_000, state='{"ema": 2}'))
    journal.save_state(BTC, '{"ema": 3}', 1_500)
    journal.flush()
    assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"ema": 3}', -1, "idle", "", 1_500)
    journal.commit_pulse(pulse(ts_ms=2_000, state='{"ema": 4}'))
    assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"ema": 4}', -1, "idle", "", 2_000)


def test_saving_state_appends_no_event(journal: AnyJournal) -> None:
    journal.save_state(BTC, "{}", 500)
    journal.flush()
    assert journal.recent_events(BTC, 10) == []


def test_a_status_change_keeps_the_state(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(fills=(fill("t1"),)))
    journal.set_status(BTC, "paused", "owner asked", 3_000)
    assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"seq": 1}', 1_000, "paused", "owner asked", 3_000)
    journal.commit_pulse(pulse(ts_ms=4_000, state='{"seq": 2}'))
    assert journal.load_symbol(BTC) == StoredSymbol(BTC, '{"seq": 2}', 1_000, "paused", "owner asked", 4_000)


def test_a_status_for_a_new_symbol_creates_it_without_state(journal: AnyJournal) -> None:
    journal.set_status(ETH, "killed", "kill switch", 10)
    assert journal.symbols() == [StoredSymbol(ETH, "", -1, "killed", "kill switch", 10)]


def test_an_unknown_symbol_status_is_refused(journal: AnyJournal) -> None:
    with pytest.raises(ValueError, match="unknown status 'sleeping'"):
        journal.set_status(BTC, "sleeping", "", 10)
    assert journal.load_symbol(BTC) is None


def test_symbols_are_listed_by_symbol_with_saved_states(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(symbol=ETH))
    journal.save_state(BTC, '{"ema": 1}', 7)
    journal.save_state("ADA/USDT", '{"ema": 2}', 8)
    assert [(s.symbol, s.state_json) for s in journal.symbols()] == [
        ("ADA/USDT", '{"ema": 2}'),
        (BTC, '{"ema": 1}'),
        (ETH, '{"seq": 1}'),
    ]


def test_an_unknown_symbol_reads_as_empty(journal: AnyJournal) -> None:
    assert journal.load_symbol(BTC) is None
    assert journal.symbols() == []
    assert journal.open_intents(BTC) == []
    assert journal.intents(BTC) == []
    assert journal.fills(BTC) == []
    assert journal.cycles(BTC) == []
    assert journal.params_history(BTC) == []
    assert journal.recent_events(BTC, 5) == []
    assert journal.audit_log(5) == []
    assert journal.events_since(0) == []


def test_params_versions_count_up_per_symbol(journal: AnyJournal) -> None:
    journal.record_params(BTC, '{"levels": 5}', "owner", "first", 10)
    journal.record_params(ETH, '{"levels": 3}', "owner", "first", 11)
    journal.record_params(BTC, '{"levels": 6}', "agent:7", "wider range", 12)
    assert journal.params_history(BTC) == [
        ParamsRow(BTC, 1, '{"levels": 5}', "owner", "first", 10),
        ParamsRow(BTC, 2, '{"levels": 6}', "agent:7", "wider range", 12),
    ]
    assert json.loads(journal.recent_events(BTC, 1)[0].payload) == {
        "version": 2,
        "params": {"levels": 6},
        "actor": "agent:7",
        "why": "wider range",
    }


def test_params_that_are_not_json_are_refused(journal: AnyJournal) -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        journal.record_params(BTC, "levels=5", "owner", "typo", 10)
    assert journal.params_history(BTC) == []


def test_audit_entries_are_listed_newest_first_and_logged_account_wide(journal: AnyJournal) -> None:
    journal.audit("owner", "login", "totp ok", 1)
    journal.audit("owner", "pause", BTC, 2)
    journal.audit("agent:7", "propose", "levels=6", 3)
    assert [(a.seq, a.actor, a.action) for a in journal.audit_log(2)] == [
        (3, "agent:7", "propose"),
        (2, "owner", "pause"),
    ]
    assert [json.loads(e.payload)["action"] for e in journal.recent_events(ACCOUNT, 10)] == [
        "propose",
        "pause",
        "login",
    ]


def test_every_durable_write_appends_one_event_newest_first(journal: AnyJournal) -> None:
    journal.commit_pulse(pulse(intents=(place("a"),)))
    journal.update_intents(BTC, [("a", "acked", "")], 1_100)
    journal.set_status(BTC, "trading", "", 1_200)
    journal.record_params(BTC, "{}", "owner", "", 1_300)
    journal.audit("owner", "resume", BTC, 1_400)
    events = journal.recent_events(BTC, 10)
    assert [(e.kind, e.ts_ms) for e in events] == [
        ("params", 1_300),
        ("status", 1_200),
        ("intents", 1_100),
        ("pulse", 1_000),
    ]
    assert [e.seq for e in events] == [4, 3, 2, 1]
    assert [e.kind for e in journal.recent_events(BTC, 2)] == ["params", "status"]
    assert journal.recent_events(BTC, 0) == []
    assert json.loads(events[2].payload) == {
        "updates": [{"client_order_id": "a", "action": "place", "status": "acked", "detail": ""}]
    }


def test_quote_units_beyond_64_bits_are_kept_exactly(journal: AnyJournal) -> None:
    big = 10**20 + 7
    cycle = ClosedCycleRecord(
        1, cost_qu=big, proceeds_qu=big * 3, fees_qu=big, pnl_qu=-big, opened_ts_ms=1, closed_ts_ms=2
    )
    journal.commit_pulse(pulse(fills=(fill("t1", fee=big),), cycles=(cycle,)))
    assert journal.fills(BTC)[0].fee == big
    assert journal.cycles(BTC) == [CycleRow(BTC, 1, big, big * 3, big, -big, 1, 2)]
    payload = json.loads(journal.recent_events(BTC, 1)[0].payload)
    assert (payload["fills"][0]["fee"], payload["closed_cycles"][0]["pnl_qu"]) == (str(big), str(-big))


def test_fills_are_listed_oldest_first(journal: AnyJournal) -> None:
    journal.commit_pulse(
        pulse(fills=(fill("late", ts_ms=900), fill("early", ts_ms=100), fill("tie", ts_ms=900)))
    )
    assert [f.trade_id for f in journal.fills(BTC)] == ["early", "late", "tie"]


def test_every_journal_logs_the_same_events_for_the_same_calls(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    logs = []
    for kind in ("memory", "sqlite", "redis"):
        opened = _open(kind, tmp_path, request)
        opened.commit_pulse(pulse(fills=(fill("t1"),), cycles=(CYCLE,), intents=(place("a"), place("b"))))
        opened.update_intents(BTC, [("a", "acked", ""), ("b", "rejected", "post-only")], 1_100)
        opened.commit_pulse(pulse(ts_ms=2_000, fills=(fill("t1"), fill("t2")), intents=(cancel("a"),)))
        opened.set_status(BTC, "stalled", "timeout", 2_100)
        opened.record_params(BTC, '{"levels": 5}', "owner", "why not", 2_200)
        opened.audit("owner", "pause", BTC, 2_300)
        logs.append(
            (
                opened.recent_events(BTC, 100),
                opened.recent_events(ACCOUNT, 100),
                opened.intents(BTC),
                opened.symbols(),
            )
        )
        opened.close()
    assert logs[0] == logs[1] == logs[2]
    assert logs[0][2][0] == IntentRow(
        BTC, "a", "place", "buy", 9_900, 50, "acked", "grid level 0", "", 1_000, 1_100
    )


def test_a_pulse_whose_cycle_ids_do_not_match_its_fills_is_refused() -> None:
    with pytest.raises(ValueError, match="2 fills, 1 cycle ids"):
        PulseRecord(BTC, 1, "{}", (fill("a"), fill("b")), (1,), (), (), ())


def test_a_pulse_with_an_intent_for_another_symbol_is_refused() -> None:
    with pytest.raises(ValueError, match="is for ETH/USDT"):
        pulse(intents=(place("a", symbol=ETH),))


def test_an_intent_with_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action 'amend'"):
        IntentRecord(BTC, "a", "amend", "buy", 1, 1, "pending", "", 0)


def test_events_since_is_a_stream_cursor_over_every_symbol(journal: AnyJournal) -> None:
    journal.record_params(BTC, '{"levels": 5}', "owner", "first", 10)
    journal.audit("owner", "pause", BTC, 11)
    journal.set_status(ETH, "paused", "by owner", 12)
    journal.commit_pulse(pulse(ts_ms=13))
    events = journal.events_since(0)
    assert [(e.seq, e.symbol, e.kind) for e in events] == [
        (1, BTC, "params"),
        (2, ACCOUNT, "audit"),
        (3, ETH, "status"),
        (4, BTC, "pulse"),
    ]
    assert journal.events_since(2) == events[2:]
    assert journal.events_since(1, limit=2) == events[1:3]
    assert journal.events_since(4) == []
    assert journal.events_since(0, limit=0) == []
    journal.audit("owner", "resume", BTC, 14)
    assert [e.seq for e in journal.events_since(events[-1].seq)] == [5]  # only what followed


def test_params_keep_the_user_unit_config_beside_the_core_parameters(journal: AnyJournal) -> None:
    config = '{"grid": {"levels": 6}, "profit": {"min_net_bps": "25"}}'
    journal.record_params(BTC, '{"levels": 6}', "owner", "wider", 10, config)
    assert journal.params_history(BTC) == [ParamsRow(BTC, 1, '{"levels": 6}', "owner", "wider", 10, config)]
    assert json.loads(journal.recent_events(BTC, 1)[0].payload)["config"] == json.loads(config)
