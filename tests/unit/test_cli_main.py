"""``python -m nutcracker.cli`` is the same CLI as the ``nutcracker`` script: every command is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = (
    "backtest",
    "demo",
    "run",
    "status",
    "recover",
    "config",
    "keys",
    "data",
    "sim-exchange",
    "users",
    "serve",
    "advise",
    "suggestions",
    "console",
    "worker",
)


@pytest.fixture(scope="module")
def help_text() -> str:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["COLUMNS"] = "200"  # one command a line, names unwrapped
    done = subprocess.run(
        [sys.executable, "-m", "nutcracker.cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_module_help_lists_every_command(help_text: str, command: str) -> None:
    assert f" {command} " in help_text


def test_module_help_names_the_program(help_text: str) -> None:
    assert "Usage: nutcracker " in help_text
