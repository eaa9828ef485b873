"""The composition root builds each mode from (mode, config, store); replay journals into the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nutcracker.app.kernel import CONNECTED_MODES, Mode, backtest, replay
from nutcracker.backtest.data import load_data
from nutcracker.config import load_config, starting_balances
from nutcracker.store.sqlite import SqliteJournal

ROOT = Path(__file__).resolve().parents[2]


def test_every_mode_is_named_once() -> None:
    assert [str(m) for m in Mode] == ["backtest", "replay", "paper", "live"]
    assert set(CONNECTED_MODES) == {Mode.PAPER, Mode.LIVE}


def test_replay_journals_into_the_store_and_closes_it(tmp_path: Path) -> None:
    config = load_config(ROOT / "examples" / "grid-btc-usdt.toml")
    data = load_data(config, {}, synthetic=400, seed=7)
    store = tmp_path / "runs" / "replay.db"  # the kernel makes the store's directory
    reports: list[str] = []

    result = asyncio.run(
        replay(
            config,
            data,
            store,
            speed=0,
            candles=50,
            stop=asyncio.Event(),
            on_report=lambda r: reports.append(r.symbol),
        )
    )

    assert reports == [config.symbols[0].market.symbol] * 50
    assert result.starting_balances == starting_balances(config)
    with SqliteJournal(store) as journal:  # closed by the kernel: opens again, holds the symbol
        assert [row.symbol for row in journal.symbols()] == [config.symbols[0].market.symbol]


def test_backtest_mode_needs_no_store() -> None:
    config = load_config(ROOT / "examples" / "grid-btc-usdt.toml")
    data = load_data(config, {}, synthetic=400, seed=7)

    result = backtest(config, data)

    assert result.candles == 400
    assert result.starting_balances == starting_balances(config)
