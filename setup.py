"""Build hook: compile the hot path with mypyc; everything else ships as plain Python.

The decision core, the matching engine and the backtest runner are strictly typed already, so
mypyc compiles the same source into C extensions (about 2x faster pulses; see bench/). Set
``NUTCRACKER_PURE_PYTHON=1`` to skip it, e.g. on a machine without a C compiler: the package
then runs the same code uncompiled. Each build records the hash of every compiled source, and
``import nutcracker`` refuses extensions built from other sources (see ``nutcracker/_build.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

PACKAGE = Path("src/nutcracker")
COMPILED = (  # one module a line: the Makefile reads this list
    "core/units",
    "core/model",
    "core/params",
    "core/orders",
    "core/ledger",
    "core/hold",
    "core/indicators",
    "core/strategy",
    "exchange/matching",
    "backtest/runner",
)
MANIFEST = PACKAGE / "_compiled.json"


def _ext_modules() -> list[object]:
    if os.environ.get("NUTCRACKER_PURE_PYTHON") == "1":  # and no extension of an earlier build left
        MANIFEST.unlink(missing_ok=True)
        for name in COMPILED:
            for ext in (PACKAGE / name).parent.glob(f"{Path(name).name}.*.so"):
                ext.unlink()
        for ext in PACKAGE.parent.glob("nutcracker_hot__mypyc.*.so"):
            ext.unlink()
        return []
    from mypyc.build import mypycify

    sources = {name: PACKAGE / f"{name}.py" for name in COMPILED}
    hashes = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in sources.items()}
    MANIFEST.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    return mypycify(
        ["--no-warn-unused-configs", *(str(path) for path in sources.values())],
        opt_level="3",
        group_name="nutcracker_hot",
    )


setup(ext_modules=_ext_modules())
