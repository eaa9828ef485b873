"""The configuration reference (``docs/configuration.md``) as data: each key's type, default and meaning.

The console's parameter form shows it as each field's help, so the help is the documentation itself,
never a second copy that drifts (a test checks every field of the schema has its row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["REFERENCE_FILE", "FieldHelp", "field_help"]

REFERENCE_FILE = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"

_SECTION = re.compile(r"^## `\[(?P<table>[a-z_.<>A-Z]+)\]`")
_ROW = re.compile(r"^\| `(?P<key>[a-z_0-9]+)` \|(?P<type>[^|]*)\|(?P<default>[^|]*)\|(?P<meaning>.*)\|\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


@dataclass(frozen=True, slots=True)
class FieldHelp:
    """One key of the reference: its type and range, default and meaning (markdown, links as text)."""

    type: str
    default: str
    meaning: str


@cache
def field_help(path: Path = REFERENCE_FILE) -> dict[str, dict[str, FieldHelp]]:
    """Return table -> key -> help (``symbol.rails`` -> ``max_base`` -> ...); {} without the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:  # an installed package without the docs: the form keeps its generic help
        return {}
    tables: dict[str, dict[str, FieldHelp]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("## "):
            found = _SECTION.match(line)
            table = found["table"] if found else ""
            continue
        row = _ROW.match(line) if table else None
        if row is not None:
            tables.setdefault(table, {})[row["key"]] = FieldHelp(
                type=row["type"].strip(),
                default=row["default"].strip(),
                meaning=_LINK.sub(r"\1", row["meaning"]).strip(),
            )
    return tables
