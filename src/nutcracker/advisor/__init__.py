"""The advisor: an offline walk-forward search over the backtester, and a learned excursion model.

It reads a read-only snapshot of the journal and candle files, runs backtests (the live decision
code) in its own process, and files *suggestions*: records a user may accept or reject
(``nutcracker suggestions``). It can never change parameters itself: it does not import the engine,
the read-write journal (``store.sqlite``) or the config file editor (import-linter contracts in
``pyproject.toml``), and the only table it writes is the suggestions' own.

torch and optuna are imported by the modules that need them, never by this package's import.
"""
