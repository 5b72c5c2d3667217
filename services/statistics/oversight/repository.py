"""Every SQL statement of alerts and supervision notices."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.statistics.oversight.models import Alert, SupervisionNotice


async def get_alert(session: AsyncSession, alert_id: int, *, for_update: bool = False) -> Alert | None:
    query = select(Alert).where(Alert.id == alert_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_alert(session: AsyncSession, alert_id: int) -> Alert | None:
    return await get_alert(session, alert_id, for_update=True)


async def list_alerts(
    session: AsyncSession,
    *,
    within_path: str,
    filters: dict[str, Any],
    acknowledged: bool | None,
    before_id: int | None,
    limit: int,
) -> list[Alert]:
    """Newest first (keyset on the id, descending)."""
    query = select(Alert).where(col(Alert.bureau_path).startswith(within_path))
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(Alert, name) == value)
    if acknowledged is not None:
        column = col(Alert.acknowledged_at)
        query = query.where(column.is_not(None) if acknowledged else column.is_(None))
    if before_id is not None:
        query = query.where(col(Alert.id) < before_id)
    return list((await session.exec(query.order_by(col(Alert.id).desc()).limit(limit))).all())


async def get_notice(
    session: AsyncSession, notice_id: int, *, for_update: bool = False
) -> SupervisionNotice | None:
    query = select(SupervisionNotice).where(SupervisionNotice.id == notice_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_notice(session: AsyncSession, notice_id: int) -> SupervisionNotice | None:
    return await get_notice(session, notice_id, for_update=True)


async def list_notices(
    session: AsyncSession, *, within_path: str, filters: dict[str, Any], after_id: int | None, limit: int
) -> list[SupervisionNotice]:
    """Oldest first (keyset on the id)."""
    query = select(SupervisionNotice).where(col(SupervisionNotice.bureau_path).startswith(within_path))
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(SupervisionNotice, name) == value)
    if after_id is not None:
        query = query.where(col(SupervisionNotice.id) > after_id)
    return list((await session.exec(query.order_by(col(SupervisionNotice.id)).limit(limit))).all())
