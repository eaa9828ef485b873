"""The composition root: the one package that picks concrete adapters and builds every mode.

``app.kernel`` builds backtest, replay, paper and live from (mode, config, store); the CLI only
parses arguments, calls it and prints. Nothing below ``app`` imports it.
"""
