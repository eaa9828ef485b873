"""The configuration reference for forms: each key's type, default and meaning (``docs/configuration.md``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from nutcracker.api.deps import current_principal
from nutcracker.api.principal import Principal
from nutcracker.api.problems import problem_responses
from nutcracker.config.reference import field_help

__all__ = ["FieldHelpOut", "ReferenceOut", "router"]

router = APIRouter(tags=["parameters"])


class FieldHelpOut(BaseModel):
    type: str
    default: str
    meaning: str  # markdown


class ReferenceOut(BaseModel):
    tables: dict[str, dict[str, FieldHelpOut]]  # "symbol.rails" -> "max_base" -> help


@router.get(
    "/config/reference",
    response_model=ReferenceOut,
    summary="Every config key's type, default and meaning, from the configuration reference",
    responses=problem_responses({401: "No valid access token"}),
)
async def reference(principal: Annotated[Principal, Depends(current_principal)]) -> ReferenceOut:
    return ReferenceOut(
        tables={
            table: {
                key: FieldHelpOut(type=h.type, default=h.default, meaning=h.meaning)
                for key, h in keys.items()
            }
            for table, keys in field_help().items()
        }
    )
