"""Refuse compiled modules built from other sources than the ones beside them.

``setup.py`` compiles the hot modules with mypyc and records the hash of each source it
compiled in ``_compiled.json``. Python prefers an extension module to the ``.py`` beside it, so
after an edit of the source the old extension would silently keep running: this check makes
that an error that says how to fix it. Without extensions (a pure-Python install) it checks
nothing.
"""

from __future__ import annotations

import hashlib
import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = "_compiled.json"


def compiled_modules(root: Path = HERE) -> list[str]:
    """Return the modules under ``root`` that run as compiled extensions, as paths like ``core/strategy``."""
    return sorted(
        path.relative_to(root).with_suffix("").as_posix()
        for path in root.rglob("*.py")
        if any(path.with_name(path.stem + suffix).exists() for suffix in EXTENSION_SUFFIXES)
    )


def check_compiled(root: Path = HERE) -> None:
    """Raise ImportError when a compiled module is stale (its source changed since the build)."""
    compiled = compiled_modules(root)
    if not compiled:
        return
    try:
        built: dict[str, str] = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        built = {}
    stale = [
        name
        for name in compiled
        if built.get(name) != hashlib.sha256((root / f"{name}.py").read_bytes()).hexdigest()
    ]
    if stale:
        raise ImportError(
            f"nutcracker: the compiled {', '.join(stale)} no longer match their sources; rebuild with "
            "`make build` (or `pip install -e .`), or delete the .so files under src/ to run uncompiled"
        )
