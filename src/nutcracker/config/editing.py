"""Apply a parameter patch to the user's TOML file in place: comments and layout kept, atomically.

Only the patched keys' lines change (or are added under their table). The edited text must load
to exactly the expected config, else nothing is written; the previous file is kept beside it as
``FILE.bak``, and the new one replaces it with one rename.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from nutcracker.config.loading import load_config
from nutcracker.config.schema import NutcrackerConfig
from nutcracker.errors import ConfigError

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def edited_text(text: str, index: int, patch: Mapping[str, Mapping[str, object]], note: str = "") -> str:
    """Return ``text`` with ``patch`` set in the ``index``-th ``[[symbol]]``'s sections.

    A changed line's comment (which described the old value) is replaced by ``note``.
    """
    tail = f"  # {note}" if note else ""
    lines = text.splitlines()
    symbol = -1
    section = ""
    ends: dict[str, int] = {}  # section -> line after its last line, in our symbol
    found: dict[tuple[str, str], int] = {}
    symbol_end = len(lines)
    for n, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            name = header.group(1)
            if line.lstrip().startswith("[[") and name == "symbol":
                symbol += 1
                section = ""
                if symbol == index + 1:
                    symbol_end = n
                    break
                continue
            section = name.removeprefix("symbol.") if symbol == index and name.startswith("symbol.") else ""
            if section:
                ends[section] = n + 1
            if symbol == index and not name.startswith("symbol."):
                symbol_end = n
                break
            continue
        if symbol == index and section and "=" in line and not line.lstrip().startswith("#"):
            ends[section] = n + 1
            found[(section, line.split("=", 1)[0].strip())] = n
    inserts: dict[int, list[str]] = {}
    for sec, values in patch.items():
        for key, value in values.items():
            at = found.get((sec, key))
            if at is not None:
                lines[at] = f"{lines[at].split('=', 1)[0].rstrip()} = {_value(value)}{tail}"
            elif sec in ends:
                inserts.setdefault(ends[sec], []).append(f"{key} = {_value(value)}{tail}")
            else:
                inserts.setdefault(symbol_end, []).extend(
                    ["", f"[symbol.{sec}]", f"{key} = {_value(value)}{tail}"]
                )
    for at in sorted(inserts, reverse=True):
        lines[at:at] = inserts[at]
    return "\n".join(lines) + "\n"


def apply_to_file(
    path: Path,
    index: int,
    patch: Mapping[str, Mapping[str, object]],
    expected: NutcrackerConfig,
    note: str = "",
) -> Path:
    """Write ``patch`` into the config file at ``path``; return the backup's path.

    Raises:
        ConfigError: the edited file would not load to ``expected`` (nothing is written).
    """
    new_text = edited_text(path.read_text(encoding="utf-8"), index, patch, note)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    try:
        if load_config(tmp).model_dump() != expected.model_dump():
            raise ConfigError(f"{path}: could not apply the change to the file's text; edit it by hand")
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return backup
