"""Nutcracker: a deterministic, maker-only rebalancing engine for crypto spot accounts."""

__version__ = "0.1.0"
