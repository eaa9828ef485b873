"""Nutcracker: a deterministic, maker-only rebalancing engine for crypto spot accounts.

The hot modules are compiled with mypyc when installed (``setup.py``); the check below refuses
extensions built from other sources than the ones beside them.
"""

from nutcracker._build import check_compiled

__version__ = "0.1.0"

check_compiled()
