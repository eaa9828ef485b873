"""``RedisReports``: each symbol's latest pulse report, published by the worker that trades it.

A hash (``rep``) of symbol -> the report's text (``engine.report_codec``). Workers overwrite it
about once a second; ``nutcracker serve --store`` reads it to show status, pulses and history of
symbols whose engines run in other processes. It is a view, never a source of truth: the journal
is (a report lost with a dead worker is replaced by the new owner's first pulse).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

__all__ = ["RedisReports"]


class RedisReports:
    def __init__(self, client: redis.Redis, *, prefix: str = "nc:") -> None:
        self._r = client
        self._key = f"{prefix}rep"

    def publish(self, texts: Mapping[str, str]) -> None:
        """Store the reports (symbol -> text) in one round trip."""
        if texts:
            mapping: dict[Any, Any] = dict(texts)  # redis-py's stub wants its own key and value union
            self._r.hset(self._key, mapping=mapping)

    def read(self) -> dict[str, str]:
        """Return every symbol's latest report text."""
        return {str(k): str(v) for k, v in self._r.hgetall(self._key).items()}
