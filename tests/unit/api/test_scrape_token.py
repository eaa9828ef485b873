"""The /metrics scrape token's file: made once (owner-only, random), read back, refused when unsafe."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nutcracker.api.auth import UsersError
from nutcracker.api.auth.tokens import load_or_create_scrape_token


def test_the_token_is_made_owner_only_at_first_start_and_kept_after(tmp_path: Path) -> None:
    path = tmp_path / "scrape.token"
    first = load_or_create_scrape_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_or_create_scrape_token(path) == first  # a restart keeps Prometheus's copy valid
    assert load_or_create_scrape_token(tmp_path / "other.token") != first


def test_a_token_written_by_hand_is_read_without_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "scrape.token"
    path.write_text("a" * 40 + "\n")
    path.chmod(0o600)
    assert load_or_create_scrape_token(path) == "a" * 40


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("a" * 40, 0o640, "readable by others"),
        ("a" * 31, 0o600, "at least 32 characters"),
        ("a" * 20 + " " + "a" * 20, 0o600, "without spaces"),
        ("", 0o600, "delete the file"),
    ],
)
def test_an_unsafe_or_weak_token_file_is_refused(tmp_path: Path, text: str, mode: int, message: str) -> None:
    path = tmp_path / "scrape.token"
    path.write_text(text)
    path.chmod(mode)
    with pytest.raises(UsersError, match=message) as e:
        load_or_create_scrape_token(path)
    assert "a" * 20 not in str(e.value)  # the message never shows the token
