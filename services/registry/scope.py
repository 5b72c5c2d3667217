"""Writes within scope for the registry of certified subjects.

Every record (body, auditor, enterprise, product, certificate, activity) carries
the bureau that keeps it. Anyone authenticated reads it; only a principal whose
subtree holds that bureau writes it. Outside, the record is "not found" exactly
as a missing one is, so its existence does not leak.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.problems import NotFound, UnprocessableEntity
from services.registry.network import repository as network_repo
from services.registry.network.models import Bureau

T = TypeVar("T")


async def keeping_bureau(session: AsyncSession, principal: Principal, bureau_id: int | None) -> Bureau:
    """The bureau that keeps a new record: the one named (in scope) or the principal's own."""
    wanted = bureau_id if bureau_id is not None else principal.bureau_id
    bureau = await network_repo.get_bureau(session, wanted)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {wanted} not found.")
    return bureau


def writable(principal: Principal, record: T | None, noun: str, record_id: Any) -> T:
    """The record, if the principal may write it; otherwise the same 404 as a missing one."""
    if record is None or not principal.in_scope(record.bureau_path):  # type: ignore[attr-defined]
        raise NotFound(f"{noun} {record_id} not found.")
    return record


def field_error(loc: str, message: str, kind: str) -> UnprocessableEntity:
    """A 422 naming the field and the rule it breaks (``loc`` like ``body.holder_id``)."""
    return UnprocessableEntity(message, errors=[{"loc": loc, "message": message, "type": kind}])
