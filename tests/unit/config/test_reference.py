"""The configuration reference as data: every field of the schema has its row, so every field of the
console's parameter form has help from the documentation itself."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from nutcracker.config import NutcrackerConfig
from nutcracker.config.reference import field_help
from nutcracker.config.schema import SymbolConfig


def _tables(model: type[BaseModel], prefix: str) -> dict[str, set[str]]:
    keys = {name for name, f in model.model_fields.items() if not _is_model(f.annotation)}
    out = {prefix: keys} if keys else {}
    for name, f in model.model_fields.items():
        if _is_model(f.annotation):
            out.update(_tables(f.annotation, f"{prefix}.{name}"))  # type: ignore[arg-type]
    return out


def _is_model(kind: object) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def test_every_symbol_field_of_the_schema_has_its_row_in_the_reference() -> None:
    reference = field_help()
    missing = [
        f"[{table}] {key}"
        for table, keys in _tables(SymbolConfig, "symbol").items()
        for key in sorted(keys)
        if key not in reference.get(table, {})
    ]
    assert missing == [], f"docs/configuration.md has no row for: {missing}"
    engine = set(NutcrackerConfig.model_fields["engine"].annotation.model_fields)  # type: ignore[union-attr]
    assert engine <= set(reference["engine"])


def test_a_row_gives_type_default_and_meaning_with_links_as_text() -> None:
    # the doc says "(see [Rules](#rules-across-fields))"
    rails = field_help()["symbol.rails"]["max_quote"]
    assert rails.type == "amount > 0, quote"
    assert rails.default == "required"
    assert rails.meaning.endswith("Must cover the whole buy ladder (see Rules).")


def test_without_the_reference_file_there_is_no_help_and_no_error(tmp_path: Path) -> None:
    assert field_help(tmp_path / "missing.md") == {}
