"""Every SQL statement of the case documents: templates and the bureaus' document prefixes."""

from __future__ import annotations

from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.enforcement.cases.models import BureauDocumentPrefix
from services.enforcement.documents.models import DocumentKind, DocumentTemplate


async def templates(session: AsyncSession, kind: DocumentKind | None = None) -> list[DocumentTemplate]:
    """Every version, by kind and newest first."""
    query = select(DocumentTemplate)
    if kind is not None:
        query = query.where(DocumentTemplate.kind == kind)
    query = query.order_by(col(DocumentTemplate.kind), col(DocumentTemplate.version).desc())
    return list((await session.exec(query)).all())


async def newest_template(session: AsyncSession, kind: DocumentKind) -> DocumentTemplate | None:
    query = (
        select(DocumentTemplate)
        .where(DocumentTemplate.kind == kind)
        .order_by(col(DocumentTemplate.version).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def newest_versions(session: AsyncSession) -> dict[str, int]:
    query = select(DocumentTemplate.kind, func.max(DocumentTemplate.version)).group_by(
        col(DocumentTemplate.kind)
    )
    return {str(kind): int(version) for kind, version in (await session.exec(query)).all()}


async def lock_template_kind(session: AsyncSession, kind: DocumentKind) -> None:
    """Serialises new versions of one kind, so two editors never take the same number."""
    await session.exec(  # type: ignore[call-overload]
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), params={"k": f"document_template:{kind}"}
    )


async def add(session: AsyncSession, row: DocumentTemplate) -> DocumentTemplate:
    session.add(row)
    await session.flush()
    return row


async def prefix_of(session: AsyncSession, bureau_id: int) -> str | None:
    row = await session.get(BureauDocumentPrefix, bureau_id)
    return row.prefix if row else None


async def set_prefix(session: AsyncSession, bureau_id: int, prefix: str) -> str | None:
    """Stores the prefix; returns the one it replaced (None: the default was in use)."""
    conn = await session.connection()
    previous = (
        await conn.execute(
            text("SELECT prefix FROM bureau_document_prefix WHERE bureau_id = :b FOR UPDATE"),
            {"b": bureau_id},
        )
    ).scalar()
    await conn.execute(
        text(
            "INSERT INTO bureau_document_prefix (bureau_id, prefix) VALUES (:b, :p) "
            "ON CONFLICT (bureau_id) DO UPDATE SET prefix = EXCLUDED.prefix"
        ),
        {"b": bureau_id, "p": prefix},
    )
    return previous
