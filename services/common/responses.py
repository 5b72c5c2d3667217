"""JSON responses built straight from database rows, for the hottest reads.

A route normally returns a pydantic model that FastAPI validates against the
route's ``response_model`` and serializes again: twice the work for rows that the
database's own types already constrain. :func:`fast_json` writes the fields of the
(declared) response model from a row mapping with orjson, giving the same JSON as
pydantic for the types rows carry (str, int, bool, None, UTC datetimes as ``…Z``,
dates, Decimal as a string, enums by value, lists/dicts from JSON columns). The
route keeps ``response_model=`` so its OpenAPI is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # as pydantic writes Decimal in JSON
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_REQUIRED = object()


@cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, str, Any], ...]:
    """(row key, JSON key, default or _REQUIRED) of each field of ``model``, in declaration order."""
    if model.model_computed_fields:
        raise TypeError(f"{model.__name__} has computed fields; fast_json cannot write them")
    out = []
    for name, info in model.model_fields.items():
        default = _REQUIRED if info.is_required() else info.get_default(call_default_factory=True)
        out.append((name, info.serialization_alias or name, default))
    return tuple(out)


def row_dict(model: type[BaseModel], row: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of ``model`` taken from ``row`` (a missing optional column → its default)."""
    return {
        key: row[name] if default is _REQUIRED else row.get(name, default)
        for name, key, default in _fields(model)
    }


def fast_json(
    model: type[BaseModel], row: Mapping[str, Any], *, status_code: int = 200, headers: dict | None = None
) -> Response:
    return Response(
        orjson.dumps(row_dict(model, row), default=_default, option=_OPTIONS),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def fast_page(model: type[BaseModel], rows: Iterable[Mapping[str, Any]], next_cursor: str | None) -> Response:
    """A ``Page[model]`` (``{"items": [...], "next_cursor": ...}``) from rows."""
    body = {"items": [row_dict(model, r) for r in rows], "next_cursor": next_cursor}
    return Response(orjson.dumps(body, default=_default, option=_OPTIONS), media_type="application/json")
