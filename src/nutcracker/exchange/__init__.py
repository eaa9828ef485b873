"""Exchange adapters: the simulated matching engine and the exchanges that fit the engine's port.

Adapters import ``nutcracker.core``, ``nutcracker.errors`` and their own library. They never import
``nutcracker.engine`` (they fit its ``Exchange`` port structurally), ``nutcracker.cli`` or
``nutcracker.backtest``.
"""
