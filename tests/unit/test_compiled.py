"""The mypyc-compiled modules decide exactly as their Python source, and a stale build is refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from nutcracker import _build

SRC = Path(__file__).resolve().parents[2] / "src"

# Runs every example config over real candles and prints a hash of every decision (intents,
# state with its float indicators, reasons, hold bounds): any difference shows.
SCRIPT = """
import hashlib, sys
from pathlib import Path
from nutcracker.backtest.runner import run_backtest
from nutcracker.config import load_config
from nutcracker._build import compiled_modules
from nutcracker.marketdata.candles import load_candles_csv
digest = hashlib.sha256()
for path in sorted(Path(sys.argv[1]).glob("*btc-usdt.toml")):
    config = load_config(path)
    market = config.symbols[0].market
    candles = load_candles_csv(Path(sys.argv[2]), market.precision).slice(0, 20_000)
    result = run_backtest(config, {market.symbol: candles}, keep_decisions=True)
    for decision in result.decisions:
        digest.update(repr(decision).encode())
print(",".join(compiled_modules()), digest.hexdigest())
"""


def _decisions(pythonpath: Path, data_dir: Path) -> tuple[str, str]:
    examples = Path(__file__).resolve().parents[2] / "examples"
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(examples), str(data_dir / "binance_BTC-USDT_1m.csv.gz")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.split()
    return (out[0], out[1]) if len(out) == 2 else ("", out[0])


@pytest.mark.slow
def test_compiled_modules_decide_exactly_like_their_source(tmp_path: Path, data_dir: Path) -> None:
    if not _build.compiled_modules():
        pytest.skip("installed uncompiled (NUTCRACKER_PURE_PYTHON=1): nothing to compare")
    pure = tmp_path / "pure"
    shutil.copytree(
        SRC / "nutcracker", pure / "nutcracker", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    compiled_names, compiled = _decisions(SRC, data_dir)
    pure_names, uncompiled = _decisions(pure, data_dir)
    assert {"core/strategy", "exchange/matching", "backtest/runner"} <= set(compiled_names.split(","))
    assert pure_names == ""
    assert compiled == uncompiled


def _fake_build(tmp_path: Path, source: str, recorded: str | None) -> Path:
    (tmp_path / "strategy.py").write_text(source)
    (tmp_path / f"strategy{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    if recorded is not None:
        digest = hashlib.sha256(recorded.encode()).hexdigest()
        (tmp_path / "_compiled.json").write_text(json.dumps({"strategy": digest}))
    return tmp_path


def test_an_extension_built_from_its_current_source_is_accepted(tmp_path: Path) -> None:
    _build.check_compiled(_fake_build(tmp_path, "x = 1\n", "x = 1\n"))


def test_an_extension_built_from_an_older_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match=r"compiled strategy no longer match.*make build"):
        _build.check_compiled(_fake_build(tmp_path, "x = 2\n", "x = 1\n"))


def test_an_extension_without_a_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match="strategy"):
        _build.check_compiled(_fake_build(tmp_path, "x = 1\n", None))


def test_sources_without_extensions_need_no_manifest(tmp_path: Path) -> None:
    (tmp_path / "strategy.py").write_text("x = 1\n")
    _build.check_compiled(tmp_path)
