"""Bad input on the command line (issue 11 item 12): a table of cases, each run through the real CLI.

Every row is refused before anything runs, with a non-zero exit code and one line that names the
field, option or file and what is allowed; never a traceback. ``tests/unit/test_config.py``
(``BAD_CASES``) holds the same kind of table for every config field, checked in-process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from nutcracker.api.auth import AuthStore, Passwords, UserAdmin
from nutcracker.cli import EXIT_CONFIG, EXIT_JOURNAL, app
from nutcracker.core.commands import Role
from nutcracker.core.units import Precision
from nutcracker.marketdata.candles import write_candles_csv
from nutcracker.marketdata.synthetic import synthetic_candles

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "examples" / "grid-btc-usdt.toml"
MULTI = ROOT / "examples" / "multi-symbol.toml"
BTC = Precision(Decimal("0.01"), Decimal("0.00001"))
ETH = Precision(Decimal("0.01"), Decimal("0.0001"))
ACCOUNTS = """
[[account]]
name = "alice"
api_key = "alice-key"
secret = "alice-secret"
balances = { USDT = 10000, BTC = 0.5 }
permissions = { enableReading = true, enableSpotAndMarginTrading = true, enableWithdrawals = false }
"""

Args = Callable[[Path], list[str]]


def _config(tmp: Path, old: str, new: str, name: str = "bad.toml") -> str:
    """Write the grid example with ``old`` replaced by ``new`` and return the path."""
    text = GRID.read_text(encoding="utf-8")
    assert old in text
    path = tmp / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return str(path)


def _candles(tmp: Path, name: str, rows: int = 600, *, seconds: bool = False, eth: bool = False) -> str:
    """Write ``rows`` synthetic one-minute candles; ``seconds`` writes epoch seconds instead of ms."""
    precision, symbol, start = (ETH, "ETH/USDT", 3000) if eth else (BTC, "BTC/USDT", 60_000)
    path = tmp / name
    write_candles_csv(path, synthetic_candles(3, rows, Decimal(start), precision, symbol=symbol), precision)
    if seconds:
        header, *lines = path.read_text().splitlines()
        rows_s = [f"{int(line.split(',', 1)[0]) // 1000},{line.split(',', 1)[1]}" for line in lines]
        path.write_text("\n".join([header, *rows_s]) + "\n")
    return str(path)


def _trades_in_seconds(tmp: Path) -> str:
    path = tmp / "trades.csv"
    path.write_text(
        "timestamp,price,amount,side\n1700000000,60000.00,0.001,buy\n1700000001,60000.01,0.002,sell\n"
    )
    return str(path)


def _accounts(tmp: Path) -> str:
    path = tmp / "accounts.toml"
    path.write_text(ACCOUNTS)
    return str(path)


def _backtest(*extra: str) -> Args:
    return lambda tmp: ["backtest", "--config", str(GRID), "--out", str(tmp / "out"), *extra]


def _replay(*extra: str) -> Args:
    return lambda tmp: ["run", "--config", str(GRID), "--journal", str(tmp / "j.db"), "--headless", *extra]


def _paper(*extra: str) -> Args:
    # no exchange is listening there: a valid option would fail later, an invalid one must not get that far
    url = "http://127.0.0.1:9"
    return lambda tmp: [
        "run",
        "--config",
        str(GRID),
        "--mode",
        "paper",
        "--exchange-url",
        url,
        "--journal",
        str(tmp / "j.db"),
        *extra,
    ]


def _download(*extra: str) -> Args:
    return lambda tmp: [
        "data",
        "download",
        "--exchange",
        "binance",
        "--symbol",
        "BTC/USDT",
        "--out",
        str(tmp / "c.csv"),
        *extra,
    ]


def _sim(*extra: str) -> Args:
    return lambda tmp: [
        "sim-exchange",
        "--data",
        _candles(tmp, "binance_BTC-USDT_1m.csv"),
        "--accounts",
        _accounts(tmp),
        *extra,
    ]


# (id, arguments, expected exit code, fragments of the one error line: the field/option first)
def _token_file(tmp: Path, token: str, mode: int) -> str:
    """A /metrics scrape token file holding ``token`` with ``mode``."""
    path = tmp / "scrape.token"
    path.write_text(token + "\n")
    path.chmod(mode)
    return str(path)


def _users_file(tmp: Path) -> str:
    """A users file holding alice (owner), as `nutcracker users add` leaves it."""
    path = tmp / "users.db"
    if not path.exists():
        store = AuthStore.open(path, create=True)
        UserAdmin(
            store, actor="test", passwords=Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
        ).add("alice", Role.OWNER, [], "correct horse battery staple")
        store.close()
    return str(path)


def _advise_worker(tmp: Path, *args: str) -> list[str]:
    config = tmp / "tune.toml"
    config.write_text(GRID.read_text() + '\n[advisor]\nfolds = 2\n\n[advisor.tune]\n"grid.levels" = [2, 6]\n')
    data = _candles(tmp, "BTC-USDT.csv")
    return ["advise", "worker", "--config", str(config), "--data", data, "--study", "s", *args]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _users(*args: str) -> Args:
    return lambda tmp: ["users", *args, "--users", _users_file(tmp)]


CASES: list[tuple[str, Args, int, tuple[str, ...]]] = [
    # --- advise and suggestions (more rows in tests/integration/test_advisor_cli.py) ---------------
    (
        "advise: --trials 0",
        lambda t: ["advise", "--config", str(GRID), "--data", _candles(t, "BTC-USDT.csv"), "--trials", "0"],
        EXIT_CONFIG,
        ("--trials 0", "1 to 100000"),
    ),
    (
        "advise: no [advisor.tune] table",
        lambda t: ["advise", "--config", str(GRID), "--data", _candles(t, "BTC-USDT.csv"), "--trials", "2"],
        EXIT_CONFIG,
        ("[advisor.tune]",),
    ),
    (
        "advise worker: --trials 0",
        lambda t: _advise_worker(t, "--trials", "0"),
        EXIT_CONFIG,
        ("--trials 0", "1 to 100000"),
    ),
    (
        "advise worker: --seed -1",
        lambda t: _advise_worker(t, "--seed", "-1"),
        EXIT_CONFIG,
        ("--seed -1", "a seed >= 0"),
    ),
    (
        "advise worker: an empty --study",
        lambda t: _advise_worker(t, "--study", " "),
        EXIT_CONFIG,
        ("--study", "1 to 200 characters"),
    ),
    (
        "advise worker: --wait -1",
        lambda t: _advise_worker(t, "--wait", "-1"),
        EXIT_CONFIG,
        ("--wait -1", "0 to 86400 seconds"),
    ),
    (
        "advise worker: a grace period no longer than the heartbeat",
        lambda t: _advise_worker(t, "--heartbeat", "5", "--grace", "5"),
        EXIT_CONFIG,
        ("--heartbeat 5 --grace 5", "1 <= heartbeat < grace <= 86400"),
    ),
    (
        "advise worker: unreachable Redis storage, its password masked",
        lambda t: _advise_worker(t, "--storage", f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"),
        EXIT_CONFIG,
        ("cannot reach Redis", ":***@127.0.0.1", "start redis-server there or fix the URL"),
    ),
    (
        "advise worker: storage file in a missing directory",
        lambda t: _advise_worker(t, "--storage", str(t / "no" / "such" / "study.log")),
        EXIT_CONFIG,
        ("does not exist", "create it first"),
    ),
    (
        "advise worker: an RDB URL whose driver is not installed",
        lambda t: _advise_worker(t, "--storage", "mssql+pymssql://u:secret@127.0.0.1/db"),
        EXIT_CONFIG,
        ("cannot open it as an Optuna RDB storage", "u:***@127.0.0.1"),
    ),
    (
        "suggestions: missing journal",
        lambda t: ["suggestions", "list", "--journal", str(t / "missing.db")],
        3,
        ("no such journal file",),
    ),
    (
        "suggestions: neither --journal nor --store",
        lambda t: ["suggestions", "list"],
        EXIT_CONFIG,
        ("give --journal FILE", "or --store redis://"),
    ),
    (
        "suggestions: both --journal and --store",
        lambda t: ["suggestions", "show", "s1", "--journal", str(t / "j.db"), "--store", "redis://h:1/0"],
        EXIT_CONFIG,
        ("--journal and --store: give one",),
    ),
    (
        "suggestions: unreachable --store, its password masked",
        lambda t: ["suggestions", "list", "--store", f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"],
        EXIT_JOURNAL,
        ("cannot reach Redis at redis://:***@127.0.0.1", "fix --store"),
    ),
    (
        "suggestions: --store that is not a Redis URL",
        lambda t: ["suggestions", "list", "--store", "http://127.0.0.1:6379"],
        EXIT_JOURNAL,
        ("not a Redis URL", "redis://HOST:PORT/DB"),
    ),
    (
        "suggestions accept: --store decides through the API",
        lambda t: ["suggestions", "accept", "s1", "--config", str(GRID), "--store", "redis://h:1/0"],
        EXIT_CONFIG,
        ("accept through the API of `nutcracker serve --store`", "/suggestions/ID/accept"),
    ),
    (
        "suggestions reject: neither --journal nor --store",
        lambda t: ["suggestions", "reject", "s1"],
        EXIT_CONFIG,
        ("--journal: give the engine's journal file",),
    ),
    (
        "advise: both --journal and --store",
        lambda t: ["advise", "--config", str(GRID), "--journal", str(t / "j.db"), "--store", "redis://h:1/0"],
        EXIT_CONFIG,
        ("--journal and --store: give one",),
    ),
    # --- config values (every field has a row in tests/unit/test_config.py) ---------------------
    (
        "config check: min_net_bps = 1e30",
        lambda t: ["config", "check", _config(t, 'min_net_bps = "10"', "min_net_bps = 1e30")],
        EXIT_CONFIG,
        ("symbol[0].profit.min_net_bps", "(allowed: 0 < min_net_bps <= 5000)"),
    ),
    (
        "config check: max_quote = 1e21",
        lambda t: ["config", "check", _config(t, 'max_quote = "2000"', "max_quote = 1e21")],
        EXIT_CONFIG,
        ("symbol[0].rails.max_quote", "(allowed: 0 < max_quote <= 1000000000000000)"),
    ),
    (
        "config check: max_quote above what the market's units can count",
        lambda t: ["config", "check", _config(t, 'max_quote = "2000"', 'max_quote = "1e12"')],
        EXIT_CONFIG,
        ("symbol[0].rails.max_quote", "100000000000 USDT at most"),
    ),
    (
        "config check: min_net_bps = nan",
        lambda t: ["config", "check", _config(t, 'min_net_bps = "10"', "min_net_bps = nan")],
        EXIT_CONFIG,
        ("symbol[0].profit.min_net_bps", "expected a finite number, got nan"),
    ),
    (
        "config check: requote_spacing = 2",
        lambda t: [
            "config",
            "check",
            _config(t, "[symbol.grid]", '[symbol.orders]\nrequote_spacing = "2"\n\n[symbol.grid]'),
        ],
        EXIT_CONFIG,
        ("symbol[0].orders.requote_spacing", "(allowed: 0 <= requote_spacing <= 1)"),
    ),
    (
        "config check: max_base = inf",
        lambda t: ["config", "check", _config(t, 'max_base = "0.15"', "max_base = inf")],
        EXIT_CONFIG,
        ("symbol[0].rails.max_base", "expected a finite number"),
    ),
    (
        "config check: pulse_interval_s = 0",
        lambda t: ["config", "check", _config(t, "pulse_interval_s = 60", "pulse_interval_s = 0")],
        EXIT_CONFIG,
        ("engine.pulse_interval_s", "(allowed: 1 <= pulse_interval_s <= 86400)"),
    ),
    (
        "backtest: max_quote = 1e21 is refused before the run",
        lambda t: [
            *_backtest("--synthetic", "600")(t)[:2],
            _config(t, 'max_quote = "2000"', "max_quote = 1e21"),
            *_backtest("--synthetic", "600")(t)[3:],
        ],
        EXIT_CONFIG,
        ("symbol[0].rails.max_quote", "<= 1000000000000000"),
    ),
    # --- run ---------------------------------------------------------------------------------------
    (
        "run: --pulse-interval 0",
        _paper("--pulse-interval", "0"),
        EXIT_CONFIG,
        ("--pulse-interval 0: out of range", "allowed: 0.01 <= --pulse-interval <= 86400"),
    ),
    ("run: --pulse-interval -5", _paper("--pulse-interval", "-5"), EXIT_CONFIG, ("--pulse-interval -5",)),
    ("run: --pulse-interval nan", _paper("--pulse-interval", "nan"), EXIT_CONFIG, ("--pulse-interval nan",)),
    ("run: --pulse-interval inf", _paper("--pulse-interval", "inf"), EXIT_CONFIG, ("--pulse-interval inf",)),
    ("run: --pulse-interval 1e30", _paper("--pulse-interval", "1e30"), EXIT_CONFIG, ("<= 86400",)),
    ("run: --pulses 0", _paper("--pulses", "0"), EXIT_CONFIG, ("--pulses 0", "1 <= --pulses <=")),
    ("run: --pulses -3", _paper("--pulses", "-3"), EXIT_CONFIG, ("--pulses -3", "1 <= --pulses <=")),
    ("run: --speed -1", _replay("--speed", "-1"), EXIT_CONFIG, ("--speed -1", "0 <= --speed <= 1000000")),
    ("run: --speed nan", _replay("--speed", "nan"), EXIT_CONFIG, ("--speed nan", "0 <= --speed")),
    ("run: --speed inf", _replay("--speed", "inf"), EXIT_CONFIG, ("--speed inf", "0 <= --speed")),
    ("run: --candles 0", _replay("--candles", "0"), EXIT_CONFIG, ("--candles 0", "1 <= --candles <=")),
    ("run: --candles -5", _replay("--candles", "-5"), EXIT_CONFIG, ("--candles -5", "1 <= --candles")),
    ("run: --synthetic 0", _replay("--synthetic", "0"), EXIT_CONFIG, ("--synthetic 0", "1 <= --synthetic")),
    ("run: --synthetic 1e9", _replay("--synthetic", "1000000000"), EXIT_CONFIG, ("<= 10000000",)),
    ("run: --seed -1", _replay("--seed", "-1"), EXIT_CONFIG, ("--seed -1", "0 <= --seed <= 4294967295")),
    # --- backtest and demo -------------------------------------------------------------------------
    ("backtest: --synthetic 0", _backtest("--synthetic", "0"), EXIT_CONFIG, ("--synthetic 0",)),
    ("backtest: --synthetic -7", _backtest("--synthetic", "-7"), EXIT_CONFIG, ("--synthetic -7",)),
    (
        "backtest: --synthetic shorter than the warm-up",
        _backtest("--synthetic", "10"),
        EXIT_CONFIG,
        ("--synthetic 10", "BTC/USDT needs at least 20 candles", "keltner.ema_period = 20"),
    ),
    ("backtest: --seed -1", _backtest("--seed", "-1"), EXIT_CONFIG, ("--seed -1",)),
    ("backtest: --seed 2^64", _backtest("--seed", str(2**64)), EXIT_CONFIG, ("<= 4294967295",)),
    ("demo: --speed -1", lambda t: ["demo", "--out", str(t), "--speed", "-1"], EXIT_CONFIG, ("--speed -1",)),
    (
        "demo: --speed nan",
        lambda t: ["demo", "--out", str(t), "--speed", "nan"],
        EXIT_CONFIG,
        ("--speed nan",),
    ),
    (
        "demo: --candles 0",
        lambda t: ["demo", "--out", str(t), "--candles", "0"],
        EXIT_CONFIG,
        ("--candles 0",),
    ),
    # --- data download -----------------------------------------------------------------------------
    (
        "data download: --since in epoch seconds",
        _download("--since", "1700000000"),
        EXIT_CONFIG,
        ("--since 1700000000", "epoch seconds", "1700000000000"),
    ),
    ("data download: --since 0", _download("--since", "0"), EXIT_CONFIG, ("--since 0", "<= --since <=")),
    (
        "data download: --since far in the future",
        _download("--since", "99999999999999"),
        EXIT_CONFIG,
        ("--since 99999999999999", "epoch milliseconds"),
    ),
    (
        "data download: --until before --since",
        _download("--since", "2025-05-20", "--until", "2025-05-01"),
        EXIT_CONFIG,
        ("--until 2025-05-01", "is not after --since"),
    ),
    (
        "data download: --timeframe 0m",
        _download("--since", "2025-05-20", "--timeframe", "0m"),
        EXIT_CONFIG,
        ("--timeframe 0m", "unsupported timeframe"),
    ),
    # --- sim-exchange --------------------------------------------------------------------------------
    ("sim-exchange: --speed nan", _sim("--speed", "nan"), EXIT_CONFIG, ("--speed nan", "0 < --speed <=")),
    ("sim-exchange: --speed inf", _sim("--speed", "inf"), EXIT_CONFIG, ("--speed inf", "0 < --speed <=")),
    ("sim-exchange: --speed -1", _sim("--speed", "-1"), EXIT_CONFIG, ("--speed -1",)),
    ("sim-exchange: --port 70000", _sim("--port", "70000"), EXIT_CONFIG, ("--port 70000",)),
    (
        "sim-exchange: --fault-timeout-ms 0",
        _sim("--fault-timeout-ms", "0"),
        EXIT_CONFIG,
        ("--fault-timeout-ms 0", "1 <= --fault-timeout-ms <= 600000"),
    ),
    ("sim-exchange: --seed -1", _sim("--seed", "-1"), EXIT_CONFIG, ("--seed -1", "0 <= --seed")),
    ("sim-exchange: --warmup -1", _sim("--warmup", "-1"), EXIT_CONFIG, ("--warmup -1", "0 <= --warmup")),
    (
        "sim-exchange: --warmup beyond the data",
        _sim("--warmup", "5000", "--manual"),
        EXIT_CONFIG,
        ("--warmup 5000", "600 candles"),
    ),
    # --- data files ----------------------------------------------------------------------------------
    (
        "backtest: candle timestamps in seconds",
        lambda t: _backtest("--data", _candles(t, "btc.csv", seconds=True))(t),
        EXIT_CONFIG,
        ("btc.csv", "epoch seconds", "multiply them by 1000"),
    ),
    (
        "backtest: trade prints in seconds",
        lambda t: _backtest("--synthetic", "600", "--trades", _trades_in_seconds(t))(t),
        EXIT_CONFIG,
        ("trades.csv", "epoch seconds", "multiply them by 1000"),
    ),
    (
        "backtest: a file named for another symbol",
        lambda t: _backtest("--data", _candles(t, "binance_ETH-USDT_1m.csv", eth=True))(t),
        EXIT_CONFIG,
        (
            "binance_ETH-USDT_1m.csv",
            "the file name says ETH/USDT but the config trades BTC/USDT",
            "--data BTC/USDT=",
        ),
    ),
    (
        "backtest: a file shorter than the warm-up",
        lambda t: _backtest("--data", _candles(t, "btc.csv", rows=12))(t),
        EXIT_CONFIG,
        ("btc.csv", "12 candles", "needs at least 20 candles", "keltner.atr_period = 14"),
    ),
    (
        "backtest: data for only some symbols of a multi-symbol config",
        lambda t: [
            "backtest",
            "--config",
            str(MULTI),
            "--out",
            str(t / "o"),
            "--data",
            f"BTC/USDT={_candles(t, 'btc.csv')}",
        ],
        EXIT_CONFIG,
        ("--data", "ETH/USDT", "has no file", "synthetic"),
    ),
    (
        "run: data for only some symbols of a multi-symbol config",
        lambda t: [
            "run",
            "--config",
            str(MULTI),
            "--journal",
            str(t / "j.db"),
            "--headless",
            "--data",
            f"BTC/USDT={_candles(t, 'btc.csv')}",
        ],
        EXIT_CONFIG,
        ("--data", "ETH/USDT", "has no file"),
    ),
    # --- nutcracker users (the control plane's users file) ----------------------------------------
    (
        "users add: unknown role",
        _users("add", "bob", "--role", "admin"),
        EXIT_CONFIG,
        ("unknown role 'admin'", "owner|operator|viewer"),
    ),
    (
        "users add: agent is no person's role",
        _users("add", "bob", "--role", "agent"),
        EXIT_CONFIG,
        ("unknown role 'agent'",),
    ),
    (
        "users add: upper-case name",
        _users("add", "Bob", "--role", "viewer"),
        EXIT_CONFIG,
        ("'Bob' is not a valid user name", "lowercase"),
    ),
    (
        "users add: account without a key name",
        _users("add", "bob", "--role", "viewer", "--account", "binance"),
        EXIT_CONFIG,
        ("'binance' is not an account", "EXCHANGE/KEYNAME"),
    ),
    (
        "users add: duplicate user",
        _users("add", "alice", "--role", "viewer", "--password-stdin"),
        EXIT_CONFIG,
        ("user 'alice' already exists",),
    ),
    (
        "users add: --password-stdin with nothing on stdin",
        _users("add", "bob", "--role", "viewer", "--password-stdin"),
        EXIT_CONFIG,
        ("no password on standard input",),
    ),
    (
        "users add: no terminal and no --password-stdin",
        _users("add", "bob", "--role", "viewer"),
        EXIT_CONFIG,
        ("no terminal to ask the password on", "--password-stdin"),
    ),
    (
        "users add: --users in a missing folder",
        lambda t: ["users", "add", "bob", "--role", "viewer", "--users", str(t / "no" / "users.db")],
        EXIT_CONFIG,
        ("the folder", "does not exist"),
    ),
    (
        "users list: missing users file",
        lambda t: ["users", "list", "--users", str(t / "missing.db")],
        EXIT_CONFIG,
        ("no users file at", "nutcracker users add NAME --role owner"),
    ),
    (
        "users list: --users is not a users file",
        lambda t: ["users", "list", "--users", _candles(t, "c.csv", rows=10)],
        EXIT_CONFIG,
        ("is not a Nutcracker users file", "check --users"),
    ),
    ("users remove: unknown user", _users("remove", "carol"), EXIT_CONFIG, ("no user 'carol'", "users list")),
    (
        "users passwd: unknown user",
        _users("passwd", "carol", "--password-stdin"),
        EXIT_CONFIG,
        ("no user 'carol'",),
    ),
    ("users totp enable: unknown user", _users("totp", "enable", "carol"), EXIT_CONFIG, ("no user 'carol'",)),
    (
        "users remove: missing users file",
        lambda t: ["users", "remove", "alice", "--users", str(t / "missing.db")],
        EXIT_CONFIG,
        ("no users file at",),
    ),
    # --- nutcracker console (a client of the control API) ------------------------------------------
    (
        "console: --port out of range",
        lambda t: ["console", "--port", "70000"],
        EXIT_CONFIG,
        ("--port", "65535"),
    ),
    (
        "console: --api is not a URL",
        lambda t: ["console", "--api", "localhost:8080"],
        EXIT_CONFIG,
        ("--api must be a URL like http://127.0.0.1:8080",),
    ),
    (
        "console: --api in clear text to another machine",
        lambda t: ["console", "--api", "http://192.0.2.7:8080"],
        EXIT_CONFIG,
        ("clear text", "https://"),
    ),
    (
        "console: --host other than loopback",
        lambda t: ["console", "--host", "0.0.0.0"],
        EXIT_CONFIG,
        ("--host 0.0.0.0", "TLS proxy"),
    ),
    # --- nutcracker serve (the control API beside the engine) -------------------------------------
    (
        "serve: a non-loopback bind without TLS",
        lambda t: ["serve", "--config", str(GRID), "--host", "0.0.0.0", "--users", _users_file(t)],
        EXIT_CONFIG,
        ("--host 0.0.0.0", "clear text", "--tls-cert and --tls-key", "--behind-proxy"),
    ),
    (
        "serve: a host name is not known to be loopback",
        lambda t: ["serve", "--config", str(GRID), "--host", "example.org", "--users", _users_file(t)],
        EXIT_CONFIG,
        ("--host example.org", "--tls-cert"),
    ),
    (
        "serve: port above 65535",
        lambda t: ["serve", "--config", str(GRID), "--port", "70000"],
        EXIT_CONFIG,
        ("--port 70000", "0 <= --port <= 65535"),
    ),
    (
        "serve: negative port",
        lambda t: ["serve", "--config", str(GRID), "--port", "-1"],
        EXIT_CONFIG,
        ("--port -1", "0 <= --port <= 65535"),
    ),
    (
        "serve: missing TLS certificate file",
        lambda t: [
            "serve",
            "--config",
            str(GRID),
            "--tls-cert",
            str(t / "no.pem"),
            "--tls-key",
            str(t / "k.pem"),
        ],
        EXIT_CONFIG,
        ("--tls-cert", "no such file"),
    ),
    (
        "serve: a TLS certificate without its key",
        lambda t: ["serve", "--config", str(GRID), "--tls-cert", str(GRID)],
        EXIT_CONFIG,
        ("--tls-cert and --tls-key go together",),
    ),
    (
        "serve: unknown mode",
        lambda t: ["serve", "--config", str(GRID), "--mode", "backtest"],
        EXIT_CONFIG,
        ("--mode must be replay, paper or live", "'backtest'"),
    ),
    (
        "serve: neither --config nor --demo",
        lambda t: ["serve"],
        EXIT_CONFIG,
        ("give --config FILE", "--demo"),
    ),
    (
        "serve: --demo with a --config",
        lambda t: ["serve", "--demo", "--config", str(GRID)],
        EXIT_CONFIG,
        ("--demo serves the built-in replay demo", "leave out --config"),
    ),
    (
        "serve: a metrics scrape token file others can read",
        lambda t: ["serve", "--config", str(GRID), "--metrics-token-file", _token_file(t, "t" * 40, 0o644)],
        EXIT_CONFIG,
        ("--metrics-token-file", "readable by others", "chmod 600"),
    ),
    (
        "serve: a metrics scrape token too short",
        lambda t: ["serve", "--config", str(GRID), "--metrics-token-file", _token_file(t, "short", 0o600)],
        EXIT_CONFIG,
        ("--metrics-token-file", "at least 32 characters", "delete the file"),
    ),
    (
        "serve: a metrics scrape token file that is a directory",
        lambda t: ["serve", "--config", str(GRID), "--metrics-token-file", str(t)],
        EXIT_CONFIG,
        ("--metrics-token-file", "is a directory"),
    ),
    (
        "serve: missing users file",
        lambda t: ["serve", "--config", str(GRID), "--users", str(t / "missing.db")],
        EXIT_CONFIG,
        ("no users file at", "nutcracker users add NAME --role owner"),
    ),
    (
        "serve: bad --speed",
        lambda t: ["serve", "--config", str(GRID), "--speed", "-2"],
        EXIT_CONFIG,
        ("--speed -2", "allowed"),
    ),
    (
        "serve: --store with --mode (the workers trade; serve runs no engine)",
        lambda t: ["serve", "--store", "redis://127.0.0.1:6379/0", "--config", str(GRID), "--mode", "live"],
        EXIT_CONFIG,
        ("--store serves the workers' symbols", "leave out --mode"),
    ),
    (
        "serve: --store with --demo",
        lambda t: ["serve", "--store", "redis://127.0.0.1:6379/0", "--demo"],
        EXIT_CONFIG,
        ("--store serves the workers' symbols", "leave out --demo"),
    ),
    (
        "serve: --store unreachable, its password masked",
        lambda t: [
            "serve",
            "--store",
            f"redis://:hunter2@127.0.0.1:{_closed_port()}/0",
            "--config",
            str(GRID),
            "--users",
            _users_file(t),
        ],
        EXIT_JOURNAL,
        ("cannot reach Redis", ":***@127.0.0.1"),
    ),
    # --- the Redis store of workers (issue 17): refused before anything trades -------------------
    (
        "worker: --store not a Redis URL",
        lambda t: ["worker", "--store", "http://127.0.0.1:6379/0", "--config", str(GRID)],
        EXIT_JOURNAL,
        ("--store http://127.0.0.1:6379/0", "not a Redis URL", "redis://HOST:PORT/DB"),
    ),
    (
        "worker: --store with a database that is not a number",
        lambda t: ["worker", "--store", "redis://127.0.0.1:6379/x", "--config", str(GRID)],
        EXIT_JOURNAL,
        ("--store redis://127.0.0.1:6379/x", "the database 'x' is not a number"),
    ),
    (
        "worker: Redis unreachable",
        lambda t: ["worker", "--store", "redis://127.0.0.1:1/0", "--config", str(GRID)],
        EXIT_JOURNAL,
        ("cannot reach Redis at redis://127.0.0.1:1/0", "start redis-server there or fix --store"),
    ),
    (
        "worker: the password is never shown",
        lambda t: ["worker", "--store", "redis://:hunter2@127.0.0.1:1/0", "--config", str(GRID)],
        EXIT_JOURNAL,
        ("cannot reach Redis at redis://:***@127.0.0.1:1/0",),
    ),
    (
        "worker: --lease-ttl 0",
        lambda t: ["worker", "--store", "redis://127.0.0.1:1/0", "--config", str(GRID), "--lease-ttl", "0"],
        EXIT_CONFIG,
        ("--lease-ttl 0", "out of range"),
    ),
    (
        "worker: --mode replay",
        lambda t: ["worker", "--store", "redis://127.0.0.1:1/0", "--config", str(GRID), "--mode", "replay"],
        EXIT_CONFIG,
        ("--mode must be paper or live",),
    ),
    (
        "status: --store unreachable",
        lambda t: ["status", "--store", "redis://127.0.0.1:1/0", "--json"],
        EXIT_JOURNAL,
        ("cannot reach Redis at redis://127.0.0.1:1/0",),
    ),
]


def test_a_worker_refuses_a_redis_without_aof_before_anything_trades(tmp_path: Path) -> None:
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis", appendonly=False)
    try:
        result = CliRunner().invoke(app, ["worker", "--store", server.url, "--config", str(GRID)])
    finally:
        server.stop()
    assert result.exit_code == EXIT_JOURNAL, result.output
    assert "has no append-only file (appendonly no)" in result.output
    assert "set 'appendonly yes'" in result.output


@pytest.mark.parametrize(("args", "code", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_what_is_allowed(
    tmp_path: Path, args: Args, code: int, fragments: tuple[str, ...]
) -> None:
    result = CliRunner().invoke(app, args(tmp_path))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if fragments[0] in line]
    assert lines, result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output
    assert not (tmp_path / "out" / "summary.json").exists()  # refused before anything ran


def test_the_largest_accepted_amount_runs_a_backtest_to_its_outputs(tmp_path: Path) -> None:
    config = _config(tmp_path, 'max_quote = "2000"', 'max_quote = "100000000000"')  # 10^24 quote units
    result = CliRunner().invoke(
        app, ["backtest", "--config", config, "--out", str(tmp_path / "out"), "--synthetic", "600"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["config", "check", "{min_net}"], "(allowed: 0 < min_net_bps <= 5000)"),
        (["backtest", "--config", "{max_quote}", "--out", "{tmp}/o", "--synthetic", "600"], "max_quote <="),
        (["config", "check", "{nan}"], "expected a finite number, got nan"),
        (["run", "--config", str(GRID), "--mode", "paper", "--pulse-interval", "0"], "--pulse-interval 0"),
    ],
    ids=["min_net_bps=1e30", "max_quote=1e21", "nan", "--pulse-interval 0"],
)
def test_the_issue_examples_in_a_real_process(tmp_path: Path, args: list[str], fragment: str) -> None:
    files = {
        "min_net": _config(tmp_path, 'min_net_bps = "10"', "min_net_bps = 1e30", "min_net.toml"),
        "max_quote": _config(tmp_path, 'max_quote = "2000"', "max_quote = 1e21", "max_quote.toml"),
        "nan": _config(tmp_path, 'min_net_bps = "10"', "min_net_bps = nan", "nan.toml"),
        "tmp": str(tmp_path),
    }
    argv = [arg.format(**files) for arg in args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", "from nutcracker.cli import app; app(prog_name='nutcracker')", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_CONFIG, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert fragment in done.stderr
    assert done.stdout == ""
