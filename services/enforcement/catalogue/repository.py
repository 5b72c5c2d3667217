"""Every SQL statement of the catalogue."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, nulls_last, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlmodel.ext.asyncio.session import AsyncSession

from services.enforcement.catalogue.models import PenaltyRule, PenaltyThreshold, Violation

_violation = Violation.__table__  # type: ignore[attr-defined]
_threshold = PenaltyThreshold.__table__  # type: ignore[attr-defined]
_rule = PenaltyRule.__table__  # type: ignore[attr-defined]


async def newest_violation(session: AsyncSession, code: str, regulation: str | None) -> Violation | None:
    """The violation of ``code`` in ``regulation``, or in the text in force last when None."""
    query = select(Violation).where(Violation.code == code)
    if regulation is not None:
        query = query.where(Violation.regulation == regulation)
    query = query.order_by(Violation.in_force_from.desc(), Violation.id.desc()).limit(1)  # type: ignore[union-attr]
    return (await session.exec(query)).scalars().first()  # type: ignore[call-overload]


async def get_violation(session: AsyncSession, violation_id: int) -> Violation | None:
    return await session.get(Violation, violation_id)


async def violation_exists(session: AsyncSession, regulation: str, code: str) -> bool:
    query = select(_violation.c.id).where(_violation.c.regulation == regulation, _violation.c.code == code)
    return (await session.exec(query)).first() is not None  # type: ignore[call-overload]


async def list_violations(
    session: AsyncSession,
    *,
    regulation: str | None,
    article: str | None,
    code: str | None,
    title_contains: str | None,
    after_id: int | None,
    limit: int,
) -> list[Violation]:
    query = select(Violation).order_by(Violation.id).limit(limit)  # type: ignore[arg-type]
    if regulation is not None:
        query = query.where(Violation.regulation == regulation)
    if article is not None:
        query = query.where(Violation.article == article)
    if code is not None:
        query = query.where(Violation.code == code)
    if title_contains is not None:
        query = query.where(Violation.title.icontains(title_contains, autoescape=True))  # type: ignore[attr-defined]
    if after_id is not None:
        query = query.where(Violation.id > after_id)  # type: ignore[operator]
    return list((await session.exec(query)).scalars().all())  # type: ignore[call-overload]


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


async def threshold_in_force(
    session: AsyncSession,
    kind: str,
    *,
    province_bureau_id: int | None,
    bureau_level: str | None,
    party_kind: str,
) -> PenaltyThreshold | None:
    """The row that applies: the province's own before the default, a row of the bureau's
    level before one for every level."""
    query = (
        select(PenaltyThreshold)
        .where(
            PenaltyThreshold.kind == kind,
            PenaltyThreshold.party_kind == party_kind,
            or_(
                _threshold.c.province_bureau_id.is_(None),
                _threshold.c.province_bureau_id == province_bureau_id,
            ),
            or_(_threshold.c.bureau_level.is_(None), _threshold.c.bureau_level == bureau_level),
        )
        .order_by(
            nulls_last(_threshold.c.province_bureau_id.desc()),
            nulls_last(_threshold.c.bureau_level.desc()),
        )
        .limit(1)
    )
    return (await session.exec(query)).scalars().first()  # type: ignore[call-overload]


async def thresholds_of(session: AsyncSession, province_bureau_id: int | None) -> list[PenaltyThreshold]:
    """The default rows and, with a province, that province's own rows."""
    condition = _threshold.c.province_bureau_id.is_(None)
    if province_bureau_id is not None:
        condition = or_(condition, _threshold.c.province_bureau_id == province_bureau_id)
    query = (
        select(PenaltyThreshold)
        .where(condition)
        .order_by(
            _threshold.c.kind,
            _threshold.c.bureau_level,
            _threshold.c.party_kind,
            nulls_last(_threshold.c.province_bureau_id.desc()),
        )
    )
    return list((await session.exec(query)).scalars().all())  # type: ignore[call-overload]


async def replace_province_thresholds(
    session: AsyncSession, kind: str, province_bureau_id: int, rows: list[dict[str, Any]]
) -> None:
    await session.exec(
        delete(_threshold).where(
            _threshold.c.kind == kind, _threshold.c.province_bureau_id == province_bureau_id
        )
    )  # type: ignore[call-overload]
    if rows:
        await session.exec(insert(_threshold).values(rows))  # type: ignore[call-overload]


async def lock_province_thresholds(session: AsyncSession, kind: str, province_bureau_id: int) -> None:
    """Serialise writers of one province's rows of one kind (a transaction-scoped lock)."""
    key = func.hashtextextended(f"penalty_threshold:{kind}:{province_bureau_id}", 0)
    await session.exec(select(func.pg_advisory_xact_lock(key)))  # type: ignore[call-overload]


async def rules_in_force(session: AsyncSession, on: date) -> dict[str, Any]:
    """Each rule key's value in force on ``on``: the latest dated row not after it, else the baseline."""
    query = (
        select(_rule.c.key, _rule.c.value)
        .where(or_(_rule.c.in_force_from.is_(None), _rule.c.in_force_from <= on))
        .order_by(_rule.c.key, nulls_last(_rule.c.in_force_from.desc()))
        .ext(distinct_on(_rule.c.key))
    )
    return {r.key: r.value for r in (await session.exec(query)).all()}  # type: ignore[call-overload]
