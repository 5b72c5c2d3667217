"""Keyset (cursor) pagination: lists stay fast at millions of rows.

A cursor is the opaque, URL-safe encoding of the sort key of the last row
returned; the next page is the rows strictly after it. Offsets are never used.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

from services.common.problems import UnprocessableEntity
from services.common.types import BIGINT_MAX, BIGINT_MIN

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


# URL-safe base64 without padding: groups of four characters, then two or three.
CURSOR_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
CURSOR_MAX_LENGTH = 512


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None,
        description=(
            "Pass as `cursor` to read the next page; null on the last page. Opaque: "
            "URL-safe base64 without padding."
        ),
    )


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, *key_types: type) -> list[Any] | None:
    """The sort key a cursor carries, checked against the types this list sorts by."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        key = None
    valid = (
        isinstance(key, list)
        and len(key) == len(key_types)
        and all(type(v) is t for v, t in zip(key, key_types, strict=True))
        and all(BIGINT_MIN <= v <= BIGINT_MAX for v in key if type(v) is int)
        and not any("\x00" in v for v in key if type(v) is str)
    )
    if not valid:
        raise UnprocessableEntity(
            "The cursor is not one this list issued.",
            errors=[{"loc": "query.cursor", "message": "invalid cursor", "type": "cursor"}],
        )
    return key


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


async def page_params(
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=CURSOR_MAX_LENGTH,
            pattern=CURSOR_PATTERN,
            description=(
                "The `next_cursor` of the previous page, unchanged (opaque, URL-safe base64 without "
                "padding). Omit it for the first page; a cursor this list did not issue is a 422."
            ),
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


def make_page(rows: list[Any], limit: int, key_of) -> tuple[list[Any], str | None]:
    """Split the ``limit + 1`` rows a query fetched into a page and the next cursor."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(key_of(rows[-1]))
    return rows, None
