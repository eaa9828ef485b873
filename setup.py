"""Build hook: compile the decision core with mypyc; everything else ships as plain Python.

The core is strictly typed already, so mypyc compiles the same source into C extensions
(about 2x faster decisions; see bench/decide.py). Set ``NUTCRACKER_PURE_PYTHON=1`` to skip it,
e.g. on a machine without a C compiler: the package then runs the same code uncompiled.
Each build records the hash of every compiled source, and ``nutcracker.core`` refuses to
import extensions built from other sources than the ones beside them (see ``core/_build.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

CORE = Path("src/nutcracker/core")
COMPILED = ("units", "model", "params", "orders", "ledger", "hold", "indicators", "strategy")
MANIFEST = CORE / "_compiled.json"


def _ext_modules() -> list[object]:
    if os.environ.get("NUTCRACKER_PURE_PYTHON") == "1":
        MANIFEST.unlink(missing_ok=True)
        return []
    from mypyc.build import mypycify

    sources = [CORE / f"{name}.py" for name in COMPILED]
    hashes = {path.stem: hashlib.sha256(path.read_bytes()).hexdigest() for path in sources}
    MANIFEST.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    return mypycify(
        ["--no-warn-unused-configs", *(str(path) for path in sources)],
        opt_level="3",
        group_name="nutcracker_core",
    )


setup(ext_modules=_ext_modules())
