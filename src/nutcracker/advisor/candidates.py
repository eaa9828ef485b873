"""Candidate parameters in the user's units: read from a config, applied as a validated patch.

A candidate maps tunable names (``"grid.spacing_bps"``) to values; applying it goes through
``control.params_patch.patched_config``, the path a manual edit takes, so a candidate the config
model refuses (a ladder over the rails, a step below two fees) is never backtested nor suggested.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal

from nutcracker.config import TUNABLES, NutcrackerConfig, parse_config
from nutcracker.control.params_patch import patched_config
from nutcracker.errors import AdvisorError

Value = Decimal | float | int
Candidate = dict[str, Value]


def symbol_index(config: NutcrackerConfig, symbol: str) -> int:
    for index, table in enumerate(config.symbol):
        if table.market.symbol == symbol:
            return index
    known = ", ".join(t.market.symbol for t in config.symbol)
    raise AdvisorError(f"{symbol}: not configured; the configured symbols are {known}")


def current_values(config: NutcrackerConfig, symbol: str, names: list[str]) -> Candidate:
    """Return the configured values of ``names`` for ``symbol`` (unset ones are left out)."""
    table = config.symbol[symbol_index(config, symbol)]
    out: Candidate = {}
    for name in names:
        section, key = name.split(".")
        value = getattr(getattr(table, section), key)
        if value is not None:
            out[name] = value
    return out


def as_patch(candidate: Mapping[str, Value]) -> dict[str, dict[str, str | float | int]]:
    """Return ``candidate`` as a patch of config sections (decimals as text, as in the file)."""
    patch: dict[str, dict[str, str | float | int]] = {}
    for name, value in sorted(candidate.items()):
        section, key = name.split(".")
        patch.setdefault(section, {})[key] = str(value) if isinstance(value, Decimal) else value
    return patch


def from_patch(patch: Mapping[str, Mapping[str, object]]) -> Candidate:
    """Return a patch (``as_patch``) as a candidate of typed values."""
    out: Candidate = {}
    for section, values in patch.items():
        for key, value in values.items():
            name = f"{section}.{key}"
            kind = TUNABLES[name].kind
            out[name] = (
                Decimal(str(value))
                if kind == "decimal"
                else float(str(value))
                if kind == "float"
                else int(str(value))
            )
    return out


def one_symbol(config: NutcrackerConfig, symbol: str) -> NutcrackerConfig:
    """Return ``config`` with ``symbol`` alone (and the portfolio rail of its quote, if any)."""
    data = tomllib.loads(config.to_toml())
    index = symbol_index(config, symbol)
    quote = config.symbol[index].market.quote
    data["symbol"] = [data["symbol"][index]]
    data["portfolio"] = {k: v for k, v in data.get("portfolio", {}).items() if k == quote}
    return parse_config(data, source=f"advisor: {symbol}")


def apply(config: NutcrackerConfig, symbol: str, candidate: Mapping[str, Value]) -> NutcrackerConfig:
    """Return ``config`` with ``candidate`` applied to ``symbol`` (``ConfigError`` if it is invalid)."""
    return patched_config(config, symbol, as_patch(candidate)) if candidate else config
