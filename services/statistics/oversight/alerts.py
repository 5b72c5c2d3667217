"""Raising an alert: once per key, whoever finds it first (the other finders change nothing)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.statistics.oversight.models import Alert


async def raise_alert(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    severity: str,
    subject_type: str,
    subject_id: int,
    bureau_id: int,
    bureau_path: str,
    message: str,
    due: date | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Insert the alert unless one of its key exists; True if this call raised it."""
    table = Alert.__table__
    statement = (
        pg_insert(table)
        .values(
            key=key,
            kind=kind,
            severity=severity,
            subject_type=subject_type,
            subject_id=subject_id,
            bureau_id=bureau_id,
            bureau_path=bureau_path,
            due=due,
            message=message,
            details=details or {},
        )
        .on_conflict_do_nothing(index_elements=[table.c.key])
        .returning(table.c.id)
    )
    return (await session.exec(statement)).first() is not None
