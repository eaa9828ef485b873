"""Parameter changes in the user's units: a patch of the config's own names becomes ``ChangeParams``.

A patch is a table of the symbol's config sections, as in the TOML file, e.g.
``{"profit": {"min_net_bps": "25"}, "grid": {"levels": 8}}``. It is merged into the symbol's
current config and the whole config is validated again by the config model, so a bad patch fails
exactly as the same mistake in the file would: one ``ConfigError`` naming each field and its fix.
The result carries the core parameters and, beside them, the symbol's new config in user units
(JSON), which the journal keeps in the parameter history.

Today's rules hold: the ``market`` section (hence the market and the client order id prefix)
cannot change while the engine runs; changed Keltner periods restart the indicators (the engine
does that when it applies the change).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from nutcracker.config import NutcrackerConfig, parse_config
from nutcracker.core.commands import ChangeParams, ProposeChange, Role
from nutcracker.errors import ConfigError

__all__ = ["change_params", "patched_config", "propose_change"]


def patched_config(config: NutcrackerConfig, symbol: str, patch: Mapping[str, Any]) -> NutcrackerConfig:
    """Return ``config`` with ``patch`` applied to ``symbol``'s table, validated as a whole.

    Raises:
        ConfigError: the symbol is not configured, the patch touches ``market`` or is not a table
            of tables, or the patched config is invalid (each field named, as for the file).
    """
    index = _index_of(config, symbol)
    where = f"symbol[{index}]"
    if not isinstance(patch, Mapping) or not patch:
        raise ConfigError(f"{symbol}: a parameter change must be a non-empty table of sections")
    for section, values in patch.items():
        if section == "market":
            raise ConfigError(
                f"{where}.market: the market cannot change while the engine runs; "
                "edit the config file and restart the engine instead"
            )
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{where}.{section}: expected a table of keys, e.g. {{{section!r}: {{...}}}}, "
                f"got {json.dumps(values, default=str)}"
            )
    data = tomllib.loads(config.to_toml())  # the effective config, every default filled in
    table = data["symbol"][index]
    for section, values in patch.items():
        current = table.get(section)
        table[section] = {**current, **values} if isinstance(current, dict) else dict(values)
    return parse_config(data, source=f"parameter change of {symbol}")


def change_params(
    config: NutcrackerConfig,
    symbol: str,
    patch: Mapping[str, Any],
    *,
    command_id: str,
    actor: str,
    role: Role,
    why: str,
    ts_ms: int,
    grant_id: str = "",
) -> tuple[ChangeParams, NutcrackerConfig]:
    """Return the ``ChangeParams`` of a patch in user units, and the config it makes current.

    Raises:
        ConfigError: see ``patched_config``; also a value the new config cannot put on the
            exchange's grid (as ``SymbolConfig.to_params``).
    """
    new = patched_config(config, symbol, patch)
    index = _index_of(new, symbol)
    params = new.symbol[index].to_params(new.engine.id)
    table = tomllib.loads(new.to_toml())["symbol"][index]
    config_json = json.dumps(table, sort_keys=True, default=_plain)
    command = ChangeParams(command_id, params, actor, role, why, ts_ms, grant_id, config_json)
    return command, new


def propose_change(
    config: NutcrackerConfig,
    symbol: str,
    patch: Mapping[str, Any],
    *,
    command_id: str,
    actor: str,
    role: Role,
    why: str,
    ts_ms: int,
    grant_id: str = "",
) -> ProposeChange:
    """Return a ``ProposeChange`` of a patch that would be valid (checked as ``change_params``)."""
    change_params(config, symbol, patch, command_id=command_id, actor=actor, role=role, why=why, ts_ms=ts_ms)
    patch_json = json.dumps(patch, sort_keys=True, default=_plain)
    return ProposeChange(command_id, symbol, patch_json, actor, role, why, ts_ms, grant_id)


def _index_of(config: NutcrackerConfig, symbol: str) -> int:
    for index, table in enumerate(config.symbol):
        if table.market.symbol == symbol:
            return index
    known = ", ".join(t.market.symbol for t in config.symbol)
    raise ConfigError(f"{symbol}: not configured; the configured symbols are {known}")


def _plain(value: object) -> str:
    """JSON for what TOML or a caller holds beyond JSON: decimals and dates as their text."""
    if isinstance(value, Decimal | date | datetime | time):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
