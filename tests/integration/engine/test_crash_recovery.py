"""SIGKILL the live engine at random points, restart it, and check it against the exchange's truth.

A real engine process (``crash_engine.py``: ``SqliteJournal`` + ``CcxtExchange`` + ``SymbolWorker``)
trades BTC/USDT on a SimServer that this test runs with a manual clock. The test advances the
market and injects lost answers (``drop_after_accept``) while the engine pulses, kills it with
SIGKILL at seeded random moments (sometimes before its first pulse even finished) and starts a
new one over the same journal, ``KILLS`` times. Checked against the SimServer's matching engine:

- after each restart's first pulse (the market held still meanwhile): the journal's fills are
  exactly the exchange's fills of our orders, by trade id, and the ledger's inventory equals
  both the fills and the account's base balance (nothing lost, nothing counted twice); no slot
  has two open orders;
- after each kill: no client order id was ever sent twice, and replaying every order event of
  the account, inventory + open buys <= max_base and cost held + open buy notional <= max_quote.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nutcracker.core.model import MarketInfo, Side
from nutcracker.core.orders import parse_slot, slot_level
from nutcracker.core.params import SymbolParams
from nutcracker.core.serialize import dumps_params
from nutcracker.core.units import Precision, notional_qu
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer

pytestmark = pytest.mark.slow

SEED = 20_240_601
KILLS = 80
SYMBOL = "BTC/USDT"
PRECISION = Precision(Decimal("0.01"), Decimal("0.00001"))
MARKET = MarketInfo(SYMBOL, "BTC", "USDT", PRECISION.tick, PRECISION.lot, Decimal(5), Decimal(0))
ACCOUNT = SimAccount("crash-key", "crash-secret", {"USDT": Decimal(10_000), "BTC": Decimal(0)})
HARNESS = Path(__file__).with_name("crash_engine.py")
WAIT_S = 30.0


def crash_params() -> SymbolParams:
    """A tight trailing grid whose rails bind: fills, exits, re-pricing and refusals all happen."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from factories import symbol_params

    params = symbol_params()
    return replace(
        params,
        rails=replace(params.rails, max_base_lots=700, max_quote_qu=PRECISION.quote_to_qu(Decimal(350))),
        market=replace(params.market, maker_fee_ppm=0),  # no fees: exits close to the buys fill often
        min_profit_ppm=500,
        grid=replace(params.grid, spacing_ppm=1_000, trailing_up=True, trailing_down=True),
        gates=replace(params.gates, requote_ppm=200),
        order_id_prefix="ncrashBTCUSDT",
    )


class ForkServer:
    """The engine fork server: spawn, reap, and the lines the engines print."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HARNESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        self.pulses: dict[int, int] = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.expect("ready")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _next(self) -> str:
        line = self.lines.get(timeout=WAIT_S)
        words = line.split()
        if words[0] == "pulse":
            self.pulses[int(words[1])] = int(words[2])
        elif words[0] == "error":
            self.errors.append(line)
        return line

    def expect(self, word: str) -> list[str]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            words = self._next().split()
            if words[0] == word:
                return words
        raise AssertionError(f"no {word!r} line within {WAIT_S} s")

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def spawn(self, config: dict[str, Any]) -> int:
        self.send({"cmd": "spawn", **config})
        return int(self.expect("spawned")[1])

    def wait_pulse(self, pid: int, seq: int = 1) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.pulses.get(pid, 0) < seq:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"engine {pid} did not finish pulse {seq}"
            try:
                self._next()
            except queue.Empty:
                continue

    def drain(self) -> None:
        while True:
            try:
                self.lines.get_nowait()
            except queue.Empty:
                return

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        self.send({"cmd": "reap", "pid": pid})
        while True:
            words = self.expect("reaped")
            if int(words[1]) == pid:
                return

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.send({"cmd": "exit"})
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        self.proc.stdout.close()


# --- the exchange's truth ----------------------------------------------------------------------------


def our_fills(engine: MatchingEngine, prefix: str) -> dict[str, tuple[Side, int]]:
    return {f.trade_id: (f.side, f.qty) for f in engine.fills if f.client_order_id.startswith(prefix + "-")}


def journal_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        return conn.execute(sql, (SYMBOL,)).fetchall()


def check_books_match_the_exchange(path: Path, engine: MatchingEngine, params: SymbolParams) -> None:
    """Journal fills == exchange fills by trade id; ledger inventory == fills == base balance."""
    prefix = params.order_id_prefix
    exchange = our_fills(engine, prefix)
    booked = [str(t) for (t,) in journal_rows(path, "SELECT trade_id FROM fills WHERE symbol = ?")]
    assert Counter(booked) == Counter(exchange.keys()), "a fill was lost or booked twice"
    (state_json,) = journal_rows(path, "SELECT state_json FROM symbols WHERE symbol = ?")[0]
    ledger = json.loads(state_json)["strategy"]["ledger"]
    held = sum(lot["bought"] - lot["sold"] for lot in ledger["lots"])
    filled = sum(qty if side is Side.BUY else -qty for side, qty in exchange.values())
    base = engine.free("BTC") + engine.locked("BTC")
    assert held == filled == PRECISION.qty_to_lots(base)


def check_one_order_per_slot(engine: MatchingEngine, params: SymbolParams) -> None:
    prefix = params.order_id_prefix
    slots = Counter(parse_slot(prefix, o.client_order_id) for o in engine.open_orders(SYMBOL))
    slots.pop(None, None)
    assert not slots or max(slots.values()) == 1, f"two open orders for one slot: {slots}"


def check_orders_and_rails(engine: MatchingEngine, params: SymbolParams) -> int:
    """No client id sent twice; replaying every event, the rails hold. Return the events replayed."""
    prefix = params.order_id_prefix + "-"
    sent = Counter(e.client_order_id for e in engine.events if e.event in ("placed", "rejected"))
    assert not [cid for cid in sent if " " in cid], "the exchange saw a client order id reused"
    assert max(sent.values(), default=0) <= 1
    rails = params.rails
    lots: dict[int, list[int]] = {}  # level -> [bought, sold, cost]
    open_buys: dict[str, tuple[int, int]] = {}  # cid -> (price, remaining)
    replayed = 0
    for e in engine.events:
        if not e.client_order_id.startswith(prefix):
            continue
        slot = parse_slot(params.order_id_prefix, e.client_order_id)
        assert slot is not None
        level = slot_level(slot)
        if e.event == "placed" and e.side is Side.BUY:
            open_buys[e.client_order_id] = (e.price, e.qty)
        elif e.event == "cancelled":
            open_buys.pop(e.client_order_id, None)
        elif e.event in ("filled", "partially_filled"):
            if e.side is Side.BUY:
                price, remaining = open_buys.pop(e.client_order_id)
                if remaining > e.qty:
                    open_buys[e.client_order_id] = (price, remaining - e.qty)
                lot = lots.setdefault(level, [0, 0, 0])
                lot[0] += e.qty
                lot[2] += notional_qu(e.price, e.qty)
            else:
                lot = lots[level]
                lot[1] += e.qty
                if lot[1] == lot[0]:
                    del lots[level]  # the cycle closed
        held = sum(b - s for b, s, _ in lots.values())
        held_cost = sum(c * (b - s) // b for b, s, c in lots.values())
        open_lots = sum(q for _, q in open_buys.values())
        open_notional = sum(notional_qu(p, q) for p, q in open_buys.values())
        assert held + open_lots <= rails.max_base_lots, f"max_base broken at {e}"
        assert held_cost + open_notional <= rails.max_quote_qu, f"max_quote broken at {e}"
        replayed += 1
    return replayed


# --- the test ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the engine fork server needs os.fork")
def test_sigkill_at_random_points_loses_no_fill_and_doubles_no_order(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    candles = synthetic_candles(SEED, 3_000, Decimal(50_000), PRECISION, symbol=SYMBOL)
    server = SimServer({SYMBOL: MarketSpec(MARKET, candles)}, [ACCOUNT], warmup=120, seed=SEED)
    server.start()
    engine = server.engine(ACCOUNT.api_key)
    params = crash_params()
    journal = tmp_path / "journal.sqlite"
    config = {
        "url": server.url,
        "api_key": ACCOUNT.api_key,
        "secret": ACCOUNT.secret,
        "journal": str(journal),
        "params": dumps_params(params),
        "pause_s": 0.005,
    }
    forks = ForkServer()
    started = time.monotonic()
    blind = checked = 0
    try:
        for _ in range(KILLS):
            pid = forks.spawn(config)
            if rng.random() < 0.3:  # kill blind: in start-up, resolution, the first pulse, anywhere
                time.sleep(rng.uniform(0.0, 0.3))
                blind += 1
            else:
                forks.wait_pulse(pid)  # the market held still since the restart
                check_books_match_the_exchange(journal, engine, params)
                check_one_order_per_slot(engine, params)
                checked += 1
                for _ in range(rng.randint(1, 8)):
                    roll = rng.random()
                    if roll < 0.6:
                        server.advance(rng.randint(1, 8))
                    elif roll < 0.75:
                        server.fail_next("drop_after_accept", "POST /api/v3/order")
                    time.sleep(rng.uniform(0.0, 0.08))
            forks.kill(pid)
            check_orders_and_rails(engine, params)
        # a last restart, with no fault left queued: everything settles
        server.set_faults(clear=True)
        pid = forks.spawn(config)
        forks.wait_pulse(pid)
        check_books_match_the_exchange(journal, engine, params)
        check_one_order_per_slot(engine, params)
        forks.wait_pulse(pid, forks.pulses[pid] + 1)
        forks.kill(pid)
        replayed = check_orders_and_rails(engine, params)
        open_intents = journal_rows(
            journal, "SELECT count(*) FROM intents WHERE symbol = ? AND status IN ('pending', 'ambiguous')"
        )[0][0]
        assert open_intents == 0
        assert not forks.errors, forks.errors
    finally:
        forks.close()
        server.stop()
    time.monotonic() - started
    # the run exercised what it claims: fills both ways, refusals and lost answers, within budget
    fills = our_fills(engine, params.order_id_prefix)
    assert {side for side, _ in fills.values()} == {Side.BUY, Side.SELL}
    placements = "SELECT status FROM intents WHERE symbol = ? AND action = 'place'"
    outcomes = Counter(status for (status,) in journal_rows(journal, placements))
    ambiguous = (
        "SELECT count(*) FROM events WHERE symbol = ? AND kind = 'intents' AND payload LIKE '%ambiguous%'"
    )
    lost_answers = journal_rows(journal, ambiguous)[0][0]
    assert len(fills) > 10
    assert outcomes["acked"] > 30
    assert outcomes["never_placed"] > 0
    assert lost_answers > 0  # lost answers were resolved by client order id
    assert blind >= 5
    assert checked >= 40
    assert replayed > 100
