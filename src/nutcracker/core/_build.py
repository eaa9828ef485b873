"""Refuse compiled core modules built from other sources than the ones beside them.

``setup.py`` compiles the core with mypyc and records the hash of each source it compiled in
``_compiled.json``. Python prefers an extension module to the ``.py`` beside it, so after an
edit of the source the old extension would silently keep running: this check makes that an
error that says how to fix it. Without the manifest (a pure-Python install) it checks nothing.
"""

from __future__ import annotations

import hashlib
import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

HERE = Path(__file__).resolve().parent


def compiled_modules(here: Path = HERE) -> list[str]:
    """Return the core modules that run as compiled extensions in ``here``."""
    return sorted(
        path.stem
        for path in here.glob("*.py")
        if any((here / f"{path.stem}{s}").exists() for s in EXTENSION_SUFFIXES)
    )


def check_compiled(here: Path = HERE) -> None:
    """Raise ImportError when a compiled core module is stale (its source changed since the build)."""
    compiled = compiled_modules(here)
    if not compiled:
        return
    manifest = here / "_compiled.json"
    try:
        built: dict[str, str] = json.loads(manifest.read_text())
    except (OSError, ValueError):
        built = {}
    stale = [
        name
        for name in compiled
        if built.get(name) != hashlib.sha256((here / f"{name}.py").read_bytes()).hexdigest()
    ]
    if stale:
        raise ImportError(
            f"nutcracker.core: the compiled {', '.join(stale)} no longer match their sources; rebuild with "
            "`make build` (or `pip install -e .`), or delete the core's .so files to run uncompiled"
        )
