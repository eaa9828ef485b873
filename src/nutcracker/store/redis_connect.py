"""Opening a Redis store: the URL, the server's version and durability, checked before anything trades.

Every Redis part (journal, leases, budgets) connects through ``connect``; a wrong URL, a server
that cannot be reached, one older than ``MIN_REDIS`` or one without the append-only file gives one
``JournalError`` line that says what to fix. The URL's password never appears in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

import redis

from nutcracker.errors import JournalError

__all__ = ["MIN_REDIS", "check_server", "connect", "describe", "fsync_policy"]

MIN_REDIS: Final = (7, 0)  # the Lua scripts use nothing newer; 7.0 is what the tests run against
_CONNECT_TIMEOUT_S: Final = 3.0
_SCHEMES: Final = ("redis", "rediss", "unix")


def describe(url: str) -> str:
    """Return ``url`` without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def check_server(where: str, info: Mapping[str, object]) -> None:
    """Refuse a server older than ``MIN_REDIS`` or without AOF (``INFO server`` + ``persistence``).

    Raises:
        JournalError: one line naming the server and the fix.
    """
    version = str(info.get("redis_version", "0"))
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        found = (0, 0)
    if found < MIN_REDIS:
        need = ".".join(map(str, MIN_REDIS))
        raise JournalError(f"Redis {version} at {where} is too old: Nutcracker needs Redis {need} or newer")
    if str(info.get("aof_enabled", "0")) != "1":
        raise JournalError(
            f"Redis at {where} has no append-only file (appendonly no): a crash would lose journaled"
            " intents; set 'appendonly yes' in redis.conf (or CONFIG SET appendonly yes)"
        )


def _url_problem(url: str) -> str:
    """Return what is wrong with a Redis URL, or ""."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        return "not a Redis URL"
    if parts.scheme == "unix":
        return ""
    try:
        parts.port  # noqa: B018  (parsing it is the check)
    except ValueError:
        return "the port is not a number"
    if not parts.hostname:
        return "no host"
    if parts.path not in ("", "/") and not parts.path.lstrip("/").isdigit():
        return f"the database {parts.path.lstrip('/')!r} is not a number"
    return ""


def connect(url: str, *, check: bool = True) -> redis.Redis:
    """Return a client of the Redis at ``url`` (``redis://[:password@]host:port/db``), checked.

    ``check``: refuse a server that is too old or has no AOF (``check_server``).

    Raises:
        JournalError: a malformed URL, a server that cannot be reached or refuses the password,
            or one ``check_server`` refuses; one line with the fix.
    """
    where = describe(url)
    problem = _url_problem(url)
    if problem:
        raise JournalError(
            f"--store {where}: {problem}; write redis://HOST:PORT/DB (e.g. redis://127.0.0.1:6379/0)"
        )
    try:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_CONNECT_TIMEOUT_S * 10,
        )
    except ValueError as e:
        raise JournalError(f"--store {where}: {e}; write redis://HOST:PORT/DB") from None
    try:
        info = client.info("server") | client.info("persistence") if check else {}
        if not check:
            client.ping()
    except redis.AuthenticationError as e:
        client.close()
        raise JournalError(
            f"Redis at {where} refused the credentials ({e}); fix the password in --store"
        ) from None
    except redis.ResponseError as e:
        client.close()
        raise JournalError(
            f"Redis at {where} answered with an error ({e}); check --store (host, port, db)"
        ) from None
    except redis.RedisError as e:
        client.close()
        raise JournalError(
            f"cannot reach Redis at {where} ({e}); start redis-server there or fix --store"
        ) from None
    if check:
        try:
            check_server(where, info)
        except JournalError:
            client.close()
            raise
    return client


def fsync_policy(client: redis.Redis) -> str | None:
    """Return the server's ``appendfsync`` (always, everysec, no), or None when CONFIG is refused."""
    try:
        value = client.config_get("appendfsync").get("appendfsync")
    except redis.RedisError:  # managed Redis often renames CONFIG away
        return None
    return None if value is None else str(value)
