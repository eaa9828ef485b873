"""The journal adapters: append-only events plus read models of decisions and fills.

``sqlite.SqliteJournal`` is the embedded durable default, ``memory.InMemoryJournal`` the same
behaviour in dicts for the backtester and tests. SQL lives only here (``sqlite``, ``migrations``).
Imports ``core``, ``errors`` and the standard library only; never ``nutcracker.engine``, ``cli`` or
``backtest``: the journals fit the engine's ``Journal`` port structurally.
"""
