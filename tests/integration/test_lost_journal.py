"""Issue 11 item 3: a journal lost after ``kill -9`` is never silently forgotten.

The engine runs live (``nutcracker run --mode live`` in a subprocess, the real ccxt client against
our SimServer) until its buys filled and their exits rest, then is killed with SIGKILL. The test
then loses the journal the ways a user can (deletes the ``-wal`` file, truncates the db, deletes
it) and restarts: the engine must refuse in one line naming ``nutcracker recover``, placing
nothing. ``nutcracker recover`` rebuilds lots, cycles and the client id counter from the
exchange's order and trade history and says so; a restart then trades on without reusing a client
order id and without breaking ``max_base`` (checked over every fill and open order the exchange saw).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from nutcracker.core.model import MarketInfo, Side
from nutcracker.core.orders import parse_slot
from nutcracker.core.units import BU_PER_LOT, Precision
from nutcracker.exchange.matching import MatchingEngine
from nutcracker.marketdata.synthetic import synthetic_candles
from nutcracker.secrets.keystore import PASSPHRASE_ENV, KeystoreSecretStore
from nutcracker.secrets.store import ApiCredentials
from nutcracker.simexchange.accounts import MarketSpec, SimAccount
from nutcracker.simexchange.server import SimServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SYMBOL = "BTC/USDT"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
KEY, SECRET = "LOSTJOURNALkey0123456789abcdefABCDEF", "LOSTJOURNALsecret9876543210zyxwvu"
ACCOUNT = SimAccount(KEY, SECRET, {"USDT": Decimal(10_000)}, name="trader")
PREFIX = "ncdemoBTCUSDT"
MAX_BASE_LOTS = 800  # 0.008 BTC: four of the six 200 USDT levels at ~100k
PASSPHRASE = "correct horse battery"
WAIT_S = 60.0


def _config(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "grid-btc-usdt.toml").read_text(encoding="utf-8")
    # the example as it was: six 200 USDT levels under a 0.008 BTC base rail
    text = re.sub(r'max_base = "[0-9.]+"', 'max_base = "0.008"', text)
    text = re.sub(r"order_fraction = .*", 'order_quote = "200"', text)
    text = text.replace('spacing_bps = "40"', 'spacing_bps = "31"')
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env[PASSPHRASE_ENV] = PASSPHRASE
    env["COLUMNS"] = "200"
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from nutcracker.cli import app; app()", *args]


def _connection(server: SimServer, keystore: Path) -> list[str]:
    return ["--key", "safe", "--keystore", str(keystore), "--exchange-url", server.url]


def _our_fills(engine: MatchingEngine) -> list[tuple[str, Side, int]]:
    return [(f.trade_id, f.side, f.qty) for f in engine.fills if f.client_order_id.startswith(PREFIX + "-")]


def _our_open(engine: MatchingEngine) -> list[tuple[str, Side]]:
    return [
        (o.client_order_id, o.side)
        for o in engine.open_orders(SYMBOL)
        if o.client_order_id.startswith(PREFIX)
    ]


def check_ids_and_max_base(engine: MatchingEngine) -> None:
    """No client order id was sent twice; at every event, inventory + open buys <= max_base."""
    sent = Counter(
        e.client_order_id
        for e in engine.events
        if e.event in ("placed", "rejected") and e.client_order_id.startswith(PREFIX + "-")
    )
    reused = [cid for cid, n in sent.items() if n > 1]
    assert not reused, f"client order ids reused: {reused}"
    held = 0
    open_buys: dict[str, int] = {}
    for e in engine.events:
        if not e.client_order_id.startswith(PREFIX + "-"):
            continue
        assert parse_slot(PREFIX, e.client_order_id) is not None
        if e.event == "placed" and e.side is Side.BUY:
            open_buys[e.client_order_id] = e.qty
        elif e.event == "cancelled":
            open_buys.pop(e.client_order_id, None)
        elif e.event in ("filled", "partially_filled"):
            if e.side is Side.BUY:
                open_buys[e.client_order_id] -= e.qty
                held += e.qty
            else:
                held -= e.qty
        assert held + sum(open_buys.values()) <= MAX_BASE_LOTS, f"max_base broken at {e}"


def _wait_for(what: str, condition: object, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"the engine exited ({proc.returncode}) waiting for {what}: {proc.stdout.read()}"
            )  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _journal_trade_ids(path: Path) -> set[str]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
        return {str(t) for (t,) in conn.execute("SELECT trade_id FROM fills")}


def _snapshot(journal: Path, to: Path) -> None:
    """Copy the journal as its main file held it at a checkpoint now (SQLite's backup API)."""
    with closing(sqlite3.connect(journal, timeout=10)) as src, closing(sqlite3.connect(to)) as dst:
        src.backup(dst)


def _lose(journal: Path, how: str, snapshot: Path) -> None:
    if how == "delete-wal":
        # the WAL is deleted: the file is what it held at its last checkpoint. Checkpoints now run
        # every 30 s, so the test puts one at a known point: before the fills (the snapshot)
        Path(f"{journal}-wal").unlink(missing_ok=True)
        Path(f"{journal}-shm").unlink(missing_ok=True)
        journal.write_bytes(snapshot.read_bytes())
    elif how == "truncate-db":
        for path in (journal, Path(f"{journal}-wal"), Path(f"{journal}-shm")):
            if path.exists():
                path.write_bytes(b"")
    else:
        for path in (journal, Path(f"{journal}-wal"), Path(f"{journal}-shm")):
            path.unlink(missing_ok=True)


@pytest.fixture
def server() -> SimServer:
    candles = synthetic_candles(11, 1_500, Decimal(100_000), BTC, symbol=SYMBOL)
    info = MarketInfo(SYMBOL, "BTC", "USDT", BTC.tick, BTC.lot, Decimal(5), Decimal("0.001"))
    sim = SimServer({SYMBOL: MarketSpec(info, candles)}, [ACCOUNT], manual=True)
    sim.start()
    sim.advance(400)
    yield sim  # type: ignore[misc]
    sim.stop()


@pytest.mark.parametrize("how", ["delete-wal", "truncate-db", "delete-db"])
def test_a_lost_journal_is_refused_then_recovered_from_the_exchange(
    server: SimServer, tmp_path: Path, how: str
) -> None:
    keystore = tmp_path / "keystore.json"
    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    try:
        KeystoreSecretStore(keystore).put(
            ApiCredentials(
                exchange_id="binance", name="safe", api_key=SecretStr(KEY), secret=SecretStr(SECRET)
            )
        )
    finally:
        del os.environ[PASSPHRASE_ENV]
    config, journal, snapshot = _config(tmp_path), tmp_path / "journal.db", tmp_path / "checkpoint.db"
    engine = server.engine(KEY)
    connection = _connection(server, keystore)
    run = ["run", "--config", str(config), "--mode", "live", *connection, "--journal", str(journal)]

    # 1. trade until buys filled and their exits rest, then kill -9
    proc = subprocess.Popen(
        _cli(*run, "--pulse-interval", "0.05"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for("the ladder", lambda: len(_our_open(engine)) >= 4, proc)
        _snapshot(journal, snapshot)

        def two_lots_booked() -> bool:
            if len([f for f in _our_fills(engine) if f[1] is Side.BUY]) < 2:
                server.advance(1)
                time.sleep(0.2)
                return False
            booked = _journal_trade_ids(journal)
            return all(t in booked for t, _, _ in _our_fills(engine)) and any(
                side is Side.SELL for _, side in _our_open(engine)
            )

        _wait_for("two lots bought and an exit resting", two_lots_booked, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    before = _our_fills(engine)
    held_before = sum(q if s is Side.BUY else -q for _, s, q in before)
    assert held_before > 0
    # what the lots hold: the whole lots each buy received, its commission taken in base (Binance)
    received = {f.trade_id: (f.qty * BU_PER_LOT - f.fee_base) // BU_PER_LOT for f in engine.fills}
    held_in_lots = sum(received[t] if s is Side.BUY else -q for t, s, q in before)
    placed_before = len([e for e in engine.events if e.event == "placed"])
    cancelled_before = len([e for e in engine.events if e.event == "cancelled"])

    # 2. lose the journal; a restart refuses in one line and places nothing
    _lose(journal, how, snapshot)
    refused = subprocess.run(
        _cli(*run, "--pulse-interval", "0.05", "--pulses", "3"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, refused.stderr
    assert "nutcracker recover" in lines[0]
    assert str(journal) in lines[0]
    assert len([e for e in engine.events if e.event == "placed"]) == placed_before  # nothing placed
    assert len([e for e in engine.events if e.event == "cancelled"]) == cancelled_before  # exits kept
    open_before = _our_open(engine)
    assert open_before, "the exits protecting the lots still rest"

    # 3. recover from the exchange's history; the report says what it rebuilt
    recovered = subprocess.run(
        _cli("recover", "--config", str(config), "--journal", str(journal), *connection),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    report = recovered.stdout
    assert SYMBOL in report
    buys = len([1 for _, s, _ in before if s is Side.BUY])
    assert f"{len(before)} fills" in report
    assert f"{buys} buys" in report
    assert f"{BTC.lots_to_qty(held_in_lots)} BTC held" in report
    seqs = [
        int(cid.rsplit("-", 1)[1], 16)
        for cid in {e.client_order_id for e in engine.events if e.client_order_id.startswith(PREFIX + "-")}
    ]
    assert f"next client order id counter {max(seqs) + 1:x}" in report
    assert f"{len(open_before)} open orders adopted" in report
    assert _our_open(engine) == open_before  # recovering sends nothing
    assert _journal_trade_ids(journal) == {t for t, _, _ in before}

    # 4. a restart trades on: no id reused, max_base held over every fill and open order
    again = subprocess.run(
        _cli(*run, "--pulse-interval", "0.05", "--pulses", "4"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    check_ids_and_max_base(engine)
    with closing(sqlite3.connect(journal)) as conn:
        (state_json,) = conn.execute("SELECT state_json FROM symbols WHERE symbol = ?", (SYMBOL,)).fetchone()
    ledger = json.loads(state_json)["strategy"]["ledger"]
    # the ledger holds, to the base unit, what the account holds: lots received less sold, plus dust
    held_bu = sum(lot["received"] - lot["sold"] * BU_PER_LOT for lot in ledger["lots"]) + ledger["dust"]
    account = (engine.free("BTC") + engine.locked("BTC")) / BTC.lot * BU_PER_LOT
    assert held_bu == account
