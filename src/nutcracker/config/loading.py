"""Loading: a TOML file read, validated into the schema, every problem explained as field, problem, fix."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from nutcracker.config.problems import (
    _BrokenRulesError,
    _format_lines,
    _problem_line,
    _show,
)
from nutcracker.config.schema import NutcrackerConfig
from nutcracker.errors import ConfigError


def load_config(path: str | Path) -> NutcrackerConfig:
    """Return the validated configuration read from the TOML file at ``path``.

    Raises:
        ConfigError: the file is missing, unreadable, not TOML, or invalid; the message says what to fix.
    """
    file = Path(path)
    data = read_toml(file, missing_hint="check the path (examples/ holds templates)")
    return parse_config(data, source=str(file))


def read_toml(
    file: Path,
    *,
    kind: str = "file",
    missing_hint: str = "check the path",
    parse_float: Callable[[str], Any] = float,
) -> dict[str, Any]:
    """Return the TOML document in ``file``; every way it can fail is a ConfigError that says the fix."""
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle, parse_float=parse_float)
    except FileNotFoundError as e:
        raise ConfigError(f"{file}: no such {kind}; {missing_hint}") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{file}: is a directory; give the path of a .toml file") from e
    except OSError as e:
        raise ConfigError(f"{file}: cannot be read ({e.strerror}); check the path and its permissions") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{file}: is not UTF-8 text; save it as UTF-8") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: invalid TOML: {e}; fix the syntax there") from e


def parse_config(data: Mapping[str, Any], source: str = "config") -> NutcrackerConfig:
    """Return the validated configuration from parsed TOML ``data``.

    Raises:
        ConfigError: listing every problem as field path, problem and fix; ``source`` heads the message.
    """
    try:
        return NutcrackerConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_explain(e, source)) from e


# --- messages -------------------------------------------------------------------------------------


_EXPECTED_TYPES: Final = {
    "int_type": "a whole number such as 5 (no quotes, no decimals)",
    "bool_type": "true or false (no quotes)",
    "float_type": "a number such as 1.5 (no quotes)",
    "decimal_type": 'a decimal number, best quoted, such as "0.01"',
    "decimal_parsing": 'a decimal number, best quoted, such as "0.01"',
    "string_type": 'a quoted string such as "text"',
    "model_type": "a table, e.g. [section] or key = { ... }",
    "dict_type": "a table of tables, e.g. [portfolio.USDT]",
    "tuple_type": "one or more [[symbol]] tables",
    "list_type": "one or more [[symbol]] tables",
    "finite_number": "a finite number",
}
_BOUNDS: Final = {  # pydantic error type -> (problem, fix), formatted with the limit
    "greater_than": ("must be greater than {}", "set a value above {}"),
    "greater_than_equal": ("must be at least {}", "set a value of {} or more"),
    "less_than": ("must be less than {}", "set a value below {}"),
    "less_than_equal": ("must be at most {}", "set a value of {} or less"),
}


def _explain(error: ValidationError, source: str) -> str:
    lines: list[str] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _BrokenRulesError):
            lines += [_problem_line(_join(_path(loc), field), text) for field, text in cause.problems]
        else:
            lines.append(_describe(item["type"], loc, item))
    return _format_lines(source, lines)


def _describe(kind: str, loc: tuple[int | str, ...], item: Mapping[str, Any]) -> str:
    path, value, ctx = _path(loc), item.get("input"), item.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return _problem_line(path, _missing(loc))
    if kind == "value_error":
        return _problem_line(path, str(ctx.get("error", item["msg"])))
    allowed = _allowed_range(loc)
    if kind in _EXPECTED_TYPES:
        fix = "give a number in range" if kind == "finite_number" else "change it to that type"
        return _problem_line(path, f"expected {_EXPECTED_TYPES[kind]}, got {_show(value)}; {fix}{allowed}")
    if kind in _BOUNDS:
        limit = _show(next(iter(ctx.values())))
        problem, fix = _BOUNDS[kind]
        return _problem_line(
            path, f"{problem.format(limit)}, got {_show(value)}; {fix.format(limit)}{allowed}"
        )
    return _problem_line(path, f"{item['msg']} (got {_show(value)}){allowed}")


def _allowed_range(loc: tuple[int | str, ...]) -> str:
    """Return `` (allowed: 0 < key <= 5000)`` from the bounds declared on the field at ``loc``, if any."""
    model = _model_at(loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    if field is None:
        return ""
    low = high = ""
    for bound in _bounds_of(field.metadata, field.annotation):
        if isinstance(bound, Gt):
            low = f"{_show(bound.gt)} < "
        elif isinstance(bound, Ge):
            low = f"{_show(bound.ge)} <= "
        elif isinstance(bound, Lt):
            high = f" < {_show(bound.lt)}"
        elif isinstance(bound, Le):
            high = f" <= {_show(bound.le)}"
    return f" (allowed: {low}{loc[-1]}{high})" if low or high else ""


def _bounds_of(metadata: list[Any], annotation: Any) -> Iterator[Any]:
    """Yield the annotated-types bounds of a field, also those inside ``Annotated[...] | None``."""
    yield from metadata
    for arg in get_args(annotation):
        for extra in getattr(arg, "__metadata__", ()):
            yield from getattr(extra, "metadata", ())


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key, parent = str(loc[-1]), loc[:-1]
    where = f"in {_path(parent)}" if parent else "at the top level"
    model = _model_at(parent)
    allowed = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r} {where}; {hint}allowed: {', '.join(allowed)}"


def _missing(loc: tuple[int | str, ...]) -> str:
    parent, key = loc[:-1], str(loc[-1])
    model = _model_at(parent)
    field = model.model_fields.get(key) if model is not None else None
    table = _table(parent)
    if field is not None and _is_model(field.annotation):
        return f"missing section; add a [{_table(loc)}] table"
    if key == "symbol" and not parent:
        return "no symbol is configured; add at least one [[symbol]] table"
    example = field.examples[0] if field is not None and field.examples else "..."
    shown = f'"{example}"' if isinstance(example, str) else str(example)
    under = f" under [{table}]" if table else ""
    return f"missing required key; add {key} = {shown}{under}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Return the model class found at ``loc`` inside ``NutcrackerConfig``, if any."""
    kind: Any = NutcrackerConfig
    for part in loc:
        origin, args = get_origin(kind), get_args(kind)
        if _is_model(kind) and isinstance(part, str) and part in kind.model_fields:
            kind = kind.model_fields[part].annotation
        elif origin in (tuple, list) and isinstance(part, int):
            kind = args[0]
        elif origin is dict and isinstance(part, str):
            kind = args[1]
        else:
            return None
    return kind if _is_model(kind) else None


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _table(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if isinstance(part, str))


def _join(base: str, field: str) -> str:
    return ".".join(part for part in (base, field) if part)
