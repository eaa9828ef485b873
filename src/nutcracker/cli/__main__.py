"""``python -m nutcracker.cli``: the ``nutcracker`` command, every command registered."""

from nutcracker.cli import app

app(prog_name="nutcracker")
