"""Shared test settings: hypothesis profiles and the location of the shared market data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from tests.redis_server import redis_client, redis_server, redis_url  # noqa: F401  (fixtures for every test)

settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile("dev")

# a git worktree (../wt/NAME) is one level deeper than the checkout: NUTCRACKER_DATA_DIR names the set
DATA_DIR = Path(
    os.environ.get("NUTCRACKER_DATA_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Return ../shared/data (or $NUTCRACKER_DATA_DIR), skipping the test with a reason when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared market data not found at {DATA_DIR}: tests on real candles need it")
    return DATA_DIR
