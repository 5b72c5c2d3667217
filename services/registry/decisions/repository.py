"""Every SQL statement of the decision-event consumer."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registry.certification.models import Certificate


async def certificate_by_id(session: AsyncSession, certificate_id: int) -> Certificate | None:
    """The certificate, locked (``FOR UPDATE``) so its status step is taken against its current state."""
    return await session.get(Certificate, certificate_id, with_for_update=True)


async def certificates_by_number(session: AsyncSession, number: str) -> list[Certificate]:
    """Certificates printed with ``number`` (unique per scheme), locked; at most a few."""
    query = select(Certificate).where(Certificate.number == number).order_by(Certificate.id).limit(2)
    return list((await session.exec(query.with_for_update())).all())
