"""Every SQL statement of the registry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, text, update
from sqlalchemy import select as core_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.db import Database, DriverQuery, driver_query, like_prefix
from services.registry.network.models import Bureau, BureauBody, Division, Officer, PilotDesignation, Post

_bureau = Bureau.__table__  # type: ignore[attr-defined]
_division = Division.__table__  # type: ignore[attr-defined]
_officer = Officer.__table__  # type: ignore[attr-defined]
_post = Post.__table__  # type: ignore[attr-defined]

# Bureau columns plus the division's name: the shape of BureauRead.
_BUREAU_READ = core_select(_bureau, _division.c.name.label("division_name")).select_from(
    _bureau.outerjoin(_division, _division.c.code == _bureau.c.division_code)
)


# --- divisions -------------------------------------------------------------


async def get_division(session: AsyncSession, code: str) -> Division | None:
    return await session.get(Division, code)


async def list_divisions(
    session: AsyncSession, *, parent_code: str | None, level: str | None, after: str | None, limit: int
) -> list[Division]:
    query = select(Division).order_by(Division.code).limit(limit)
    if parent_code is not None:
        query = query.where(Division.parent_code == parent_code)
    if level is not None:
        query = query.where(Division.level == level)
    if after is not None:
        query = query.where(Division.code > after)
    return list((await session.exec(query)).all())


# --- bureaus ---------------------------------------------------------------


async def bureau_row(session: AsyncSession, bureau_id: int) -> dict[str, Any] | None:
    """The hot read path: one Core statement, no ORM object."""
    result = await session.exec(_BUREAU_READ.where(_bureau.c.id == bureau_id))
    row = result.mappings().first()
    return dict(row) if row else None


# The hot reads run on the driver connection, compiled once per shape.
_BUREAU_BY_ID = driver_query(_BUREAU_READ.where(_bureau.c.id == bindparam("bureau_id")))
_SUBTREE_QUERIES: dict[tuple, DriverQuery] = {}


async def bureau_record(db: Database, bureau_id: int):
    """One bureau with its division's name (a record with BureauRead's columns), or None."""
    return await db.fetch_one(_BUREAU_BY_ID, bureau_id=bureau_id)


def _subtree_query(query, table, filter_names: tuple[str, ...], after: bool) -> DriverQuery:
    shape = (table.name, filter_names, after)
    compiled = _SUBTREE_QUERIES.get(shape)
    if compiled is None:
        query = query.where(_bureau.c.path.like(bindparam("path_pattern"), escape="/"))
        for column in filter_names:
            query = query.where(table.c[column] == bindparam(f"f_{column}"))
        if after:
            query = query.where(table.c.id > bindparam("after_id"))
        compiled = driver_query(query.order_by(table.c.id).limit(bindparam("limit")))
        _SUBTREE_QUERIES[shape] = compiled
    return compiled


async def _subtree_records(
    db: Database, query, table, *, within_path: str, filters: dict[str, Any], after_id: int | None, limit: int
) -> list:
    """``_subtree_rows`` on the driver connection: the same rows, as records."""
    present = {f"f_{k}": v for k, v in filters.items() if v is not None}
    compiled = _subtree_query(query, table, tuple(k[2:] for k in present), after_id is not None)
    return await db.fetch_all(
        compiled, path_pattern=like_prefix(within_path), after_id=after_id, limit=limit, **present
    )


async def list_bureau_records(
    db: Database, *, within_path: str, filters: dict[str, Any], after_id: int | None, limit: int
) -> list:
    return await _subtree_records(
        db, _BUREAU_READ, _bureau, within_path=within_path, filters=filters, after_id=after_id, limit=limit
    )


async def _subtree_rows(
    session: AsyncSession,
    query,
    table,
    *,
    within_path: str,
    filters: dict[str, Any],
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Rows of ``query`` whose bureau lies in the subtree at ``within_path``, after the cursor id."""
    query = (
        query.where(_bureau.c.path.startswith(within_path, autoescape=True)).order_by(table.c.id).limit(limit)
    )
    for column, value in filters.items():
        if value is not None:
            query = query.where(table.c[column] == value)
    if after_id is not None:
        query = query.where(table.c.id > after_id)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def get_bureau(session: AsyncSession, bureau_id: int, *, for_update: bool = False) -> Bureau | None:
    return await session.get(Bureau, bureau_id, with_for_update=for_update)


async def find_bureau(session: AsyncSession, parent_id: int | None, name: str) -> Bureau | None:
    query = select(Bureau).where(Bureau.name == name)
    query = query.where(Bureau.parent_id.is_(None) if parent_id is None else Bureau.parent_id == parent_id)  # type: ignore[union-attr]
    return (await session.exec(query)).first()


async def next_bureau_id(session: AsyncSession) -> int:
    return (await session.exec(text("SELECT nextval(pg_get_serial_sequence('bureau', 'id'))"))).scalar_one()


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


async def bump_bureau(session: AsyncSession, bureau_id: int, values: dict[str, Any]) -> None:
    await session.exec(
        update(_bureau)
        .where(_bureau.c.id == bureau_id)
        .values(**values, version=_bureau.c.version + 1, updated_at=func.now())
    )


async def has_current_pilot_designation(session: AsyncSession, provincial_bureau_id: int) -> bool:
    query = select(PilotDesignation.id).where(
        PilotDesignation.provincial_bureau_id == provincial_bureau_id,
        PilotDesignation.withdrawn_on.is_(None),  # type: ignore[union-attr]
    )
    return (await session.exec(query)).first() is not None


async def list_bodies(session: AsyncSession, bureau_id: int) -> list[BureauBody]:
    query = select(BureauBody).where(BureauBody.bureau_id == bureau_id).order_by(BureauBody.id)
    return list((await session.exec(query)).all())


# --- posts -----------------------------------------------------------------


async def get_post(session: AsyncSession, post_id: int, *, for_update: bool = False) -> Post | None:
    return await session.get(Post, post_id, with_for_update=for_update)


async def post_bureau_path(session: AsyncSession, post_id: int) -> str | None:
    """The path of the bureau a post belongs to (its scope), or None for no such post."""
    query = core_select(_bureau.c.path).join(_post, _post.c.bureau_id == _bureau.c.id)
    return (await session.exec(query.where(_post.c.id == post_id))).scalar_one_or_none()


async def list_posts(
    session: AsyncSession, bureau_id: int, *, after_id: int | None, limit: int
) -> list[Post]:
    query = select(Post).where(Post.bureau_id == bureau_id).order_by(Post.id).limit(limit)
    if after_id is not None:
        query = query.where(Post.id > after_id)
    return list((await session.exec(query)).all())


async def find_post(session: AsyncSession, bureau_id: int, name: str) -> Post | None:
    query = select(Post).where(Post.bureau_id == bureau_id, Post.name == name)
    return (await session.exec(query)).first()


# --- officers --------------------------------------------------------------

_OFFICER_READ = core_select(_officer, _bureau.c.path.label("bureau_path")).select_from(
    _officer.join(_bureau, _bureau.c.id == _officer.c.bureau_id)
)


async def officer_row(session: AsyncSession, officer_id: int) -> dict[str, Any] | None:
    row = (await session.exec(_OFFICER_READ.where(_officer.c.id == officer_id))).mappings().first()
    return dict(row) if row else None


async def list_officer_rows(
    session: AsyncSession, *, within_path: str, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    return await _subtree_rows(
        session,
        _OFFICER_READ,
        _officer,
        within_path=within_path,
        filters=filters,
        after_id=after_id,
        limit=limit,
    )


async def get_officer(session: AsyncSession, officer_id: int, *, for_update: bool = False) -> Officer | None:
    return await session.get(Officer, officer_id, with_for_update=for_update)


async def find_officer_by_credential(session: AsyncSession, credential_number: str) -> Officer | None:
    query = select(Officer).where(Officer.credential_number == credential_number)
    return (await session.exec(query)).first()


# An officer with its bureau's path and its post's steps: the officer's standing.
_STANDING = core_select(
    _officer.c.id.label("officer_id"),
    _officer.c.name,
    _officer.c.bureau_id,
    _bureau.c.path.label("bureau_path"),
    _officer.c.body,
    _officer.c.active,
    _officer.c.credential_number,
    _post.c.id.label("post_id"),
    _post.c.name.label("post_name"),
    _post.c.steps.label("post_steps"),
).select_from(
    _officer.join(_bureau, _bureau.c.id == _officer.c.bureau_id).outerjoin(
        _post, _post.c.id == _officer.c.post_id
    )
)


async def officer_standing_row(session: AsyncSession, officer_id: int) -> dict[str, Any] | None:
    row = (await session.exec(_STANDING.where(_officer.c.id == officer_id))).mappings().first()
    return dict(row) if row else None
