"""The pure decision core: values in, intents out.

Forbidden here: clocks, randomness, I/O, asyncio and every other ``nutcracker`` package.
Prices are integer ticks, quantities integer lots and money integer quote units (see ``units``).
The hot modules are compiled with mypyc when installed (``setup.py``); the import-time check
below is the one file read here: it refuses extensions built from other sources.
"""

from nutcracker.core._build import check_compiled

check_compiled()
