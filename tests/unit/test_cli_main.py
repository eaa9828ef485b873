"""``python -m nutcracker.cli`` is the same CLI as the ``nutcracker`` script: every command is there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

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


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and sub-command (typer vendors its own click: its classes are not click's)."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, (*path, name)))
    return found


def test_no_help_text_loses_a_bracketed_word_to_rich_markup() -> None:
    """Rich reads ``[advisor]`` as a style tag and drops it: every bracket must reach the screen."""
    from nutcracker.cli import app

    runner = CliRunner()
    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        helps = [p.help for p in command.params if "[" in (getattr(p, "help", None) or "")]
        if not helps:
            continue
        shown = " ".join(
            runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"}, terminal_width=400).output.split()
        )
        for text in helps:
            for word in re.findall(r"\[[^\]]*\]", text.replace("\\[", "[")):
                assert word in shown, f"`nutcracker {' '.join(path)} --help` lost {word!r}"
                checked += 1
    assert checked >= 5
