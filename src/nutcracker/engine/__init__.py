"""The live lifecycle: pulse, monitor, scheduler, per-symbol locks, data-stall, reconciliation.

Imports ``core`` and declares what it needs from the outside world as ports (``ports.py``).
Never imports an adapter (``exchange``, ``store``, ``secrets``): the CLI wires them.
"""
