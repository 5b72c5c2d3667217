"""Every SQL statement of the review queue and the major-case filings."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.statistics.legal.models import Filing, FilingState, Review, ReviewState

# --- reviews ---------------------------------------------------------------------


async def get_review(session: AsyncSession, review_id: int, *, for_update: bool = False) -> Review | None:
    query = select(Review).where(Review.id == review_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_review(session: AsyncSession, review_id: int) -> Review | None:
    return await get_review(session, review_id, for_update=True)


async def open_review(session: AsyncSession, values: dict[str, Any]) -> Review | None:
    """Insert the case's next round unless one of the case is pending (or this event made one):
    the new row, or None when nothing was made."""
    table = Review.__table__
    rounds = (
        select(func.coalesce(func.max(Review.round), 0) + 1)
        .where(Review.case_id == values["case_id"])
        .scalar_subquery()
    )
    statement = pg_insert(table).values(**values, round=rounds).on_conflict_do_nothing().returning(table.c.id)
    new_id = (await (await session.connection()).execute(statement)).scalar_one_or_none()
    return None if new_id is None else await get_review(session, new_id)


async def pending_review_of_case(session: AsyncSession, case_id: int) -> Review | None:
    query = select(Review).where(Review.case_id == case_id, Review.state == ReviewState.PENDING)
    return (await session.exec(query)).first()


async def list_reviews(
    session: AsyncSession,
    *,
    within_path: str,
    state: str | None,
    overdue_on: date | None,
    not_overdue_on: date | None,
    bureau_id: int | None,
    case_id: int | None,
    after_id: int | None,
    limit: int,
) -> list[Review]:
    query = select(Review).where(col(Review.bureau_path).startswith(within_path, autoescape=True))
    if state is not None:
        query = query.where(Review.state == state)
    if overdue_on is not None:  # pending past its due day
        query = query.where(Review.state == ReviewState.PENDING, col(Review.due) < overdue_on)
    if not_overdue_on is not None:
        query = query.where(or_(Review.state != ReviewState.PENDING, col(Review.due) >= not_overdue_on))
    if bureau_id is not None:
        query = query.where(Review.bureau_id == bureau_id)
    if case_id is not None:
        query = query.where(Review.case_id == case_id)
    if after_id is not None:
        query = query.where(col(Review.id) > after_id)
    return list((await session.exec(query.order_by(col(Review.id)).limit(limit))).all())


async def pending_reviews_due_by(session: AsyncSession, last_day: date) -> list[Review]:
    query = select(Review).where(Review.state == ReviewState.PENDING, col(Review.due) <= last_day)
    return list((await session.exec(query.order_by(col(Review.id)))).all())


# --- filings ---------------------------------------------------------------------


async def get_filing(session: AsyncSession, filing_id: int, *, for_update: bool = False) -> Filing | None:
    query = select(Filing).where(Filing.id == filing_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_filing(session: AsyncSession, filing_id: int) -> Filing | None:
    return await get_filing(session, filing_id, for_update=True)


async def filing_of_case(session: AsyncSession, case_id: int) -> Filing | None:
    return (await session.exec(select(Filing).where(Filing.case_id == case_id))).first()


async def expect_filing(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert the case's filing unless it has one: the new id, or None."""
    table = Filing.__table__
    statement = (
        pg_insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[table.c.case_id])
        .returning(table.c.id)
    )
    return (await (await session.connection()).execute(statement)).scalar_one_or_none()


async def list_filings(
    session: AsyncSession,
    *,
    within_path: str,
    state: str | None,
    late: bool | None,
    as_of: date,
    bureau_id: int | None,
    case_id: int | None,
    after_id: int | None,
    limit: int,
) -> list[Filing]:
    query = select(Filing).where(col(Filing.bureau_path).startswith(within_path, autoescape=True))
    if state is not None:
        query = query.where(Filing.state == state)
    if late is not None:
        # Late: filed after its due day, or not filed and its due day passed.
        is_late = or_(
            Filing.on_time.is_(False),  # type: ignore[union-attr]
            (col(Filing.filed_on).is_(None)) & (col(Filing.due) < as_of),
        )
        query = query.where(is_late if late else ~is_late)
    if bureau_id is not None:
        query = query.where(Filing.bureau_id == bureau_id)
    if case_id is not None:
        query = query.where(Filing.case_id == case_id)
    if after_id is not None:
        query = query.where(col(Filing.id) > after_id)
    return list((await session.exec(query.order_by(col(Filing.id)).limit(limit))).all())


async def filings_to_watch(session: AsyncSession, near_until: date) -> list[Filing]:
    """Filings not (or no longer) standing filed and due by ``near_until``, and those filed late."""
    query = select(Filing).where(
        or_(
            col(Filing.state).in_([FilingState.EXPECTED, FilingState.RETURNED])
            & (col(Filing.due) <= near_until),
            Filing.on_time.is_(False),  # type: ignore[union-attr]
        )
    )
    return list((await session.exec(query.order_by(col(Filing.id)))).all())
