"""Rules of the certified subjects: enterprises (获证企业) and their products (产品).

One enterprise is one record, whether it is known by its unified social credit code
or by the older organisation code the credit code embeds (characters 9–17). A record
under either code is found by the other; a second record of the same enterprise is
refused (409 ``enterprise-exists`` naming the first), and duplicates that exist
already are folded together by a merge that moves every reference to the survivor.
Functions here never commit: the route commits once.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.concurrency import check_if_match
from services.common.db import Database
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, NotFound
from services.registry.certification.identifiers import org_code_of
from services.registry.network import repository as network_repo
from services.registry.scope import field_error, keeping_bureau, writable
from services.registry.subjects import repository as repo
from services.registry.subjects.models import Enterprise, EnterpriseStatus, Product
from services.registry.subjects.schemas import (
    EnterpriseCreate,
    EnterpriseMerge,
    EnterpriseRead,
    EnterpriseUpdate,
    ProductCreate,
    ProductRead,
    ProductUpdate,
)

# Division levels by the zeros a GB/T 2260 code ends with: 330000 province, 330100 city.
_DIVISION_PREFIX = ((4, 2), (2, 4))


def division_range(code: str) -> tuple[str, str]:
    """The codes lying in a division: a province's or city's code covers its subdivisions."""
    for zeros, keep in _DIVISION_PREFIX:
        if code.endswith("0" * zeros):
            prefix = code[:keep]
            return prefix + "0" * zeros, prefix + "9" * zeros
    return code, code


async def _check_division(session: AsyncSession, code: str | None) -> None:
    if code is not None and await network_repo.get_division(session, code) is None:
        raise field_error(
            "body.division_code",
            f"{code} is not a division of the registry's GB/T 2260 revision.",
            "division_code",
        )


async def survivor_of(session: AsyncSession, enterprise: Enterprise) -> Enterprise:
    """The record that carries a merged enterprise now (merges keep the chain one hop long)."""
    seen = set()
    while enterprise.merged_into_id is not None and enterprise.id not in seen:
        seen.add(enterprise.id)
        following = await repo.get_enterprise(session, enterprise.merged_into_id)
        if following is None:
            break
        enterprise = following
    return enterprise


async def _refuse_same_enterprise(
    session: AsyncSession, credit_code: str | None, org_code: str | None, other_than: int | None = None
) -> None:
    found = await repo.same_enterprise(session, credit_code, org_code, other_than=other_than)
    if found is None:
        return
    existing = await survivor_of(session, found)
    raise Conflict(
        f"Enterprise {existing.id} ({existing.name}) is this enterprise already"
        f" (credit code {existing.credit_code or '—'}, organisation code {existing.org_code or '—'});"
        " upgrade or merge that record instead of registering it twice.",
        slug="enterprise-exists",
        existing_id=existing.id,
    )


def _refuse_merged(enterprise: Enterprise, survivor_id: int) -> None:
    raise Conflict(
        f"Enterprise {enterprise.id} was merged into {survivor_id}; use that record.",
        slug="enterprise-merged",
        survivor_id=survivor_id,
    )


async def active_holder(session: AsyncSession, holder_id: int, loc: str = "body.holder_id") -> Enterprise:
    """The enterprise a product, certificate or activity names as holder: it must exist
    (422 on the field) and not be merged (409 naming the survivor)."""
    holder = await repo.get_enterprise(session, holder_id)
    if holder is None:
        raise field_error(loc, f"No enterprise {holder_id} in the registry.", "reference")
    if holder.status == EnterpriseStatus.MERGED:
        _refuse_merged(holder, (await survivor_of(session, holder)).id)  # type: ignore[arg-type]
    return holder


# --- enterprises ----------------------------------------------------------------


async def read_enterprise(
    session: AsyncSession, enterprise_id: int, *, holdings: bool = False
) -> EnterpriseRead:
    row = await repo.enterprise_row(session, enterprise_id)
    if row is None:
        raise NotFound(f"Enterprise {enterprise_id} not found.")
    if holdings:
        row["certificate_count"], row["product_count"] = await repo.holdings(session, enterprise_id)
    return EnterpriseRead.model_validate(row)


async def read_enterprise_record(db: Database, enterprise_id: int) -> dict[str, Any]:
    """``read_enterprise`` with its holdings, on the driver connection: the row EnterpriseRead is
    written from (for the item route's fast_json; the same fields and values)."""
    row = await repo.enterprise_record(db, enterprise_id)
    if row is None:
        raise NotFound(f"Enterprise {enterprise_id} not found.")
    return row


async def list_enterprises(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[EnterpriseRead], str | None]:
    after = decode_cursor(cursor, int)
    if filters.get("division_code") is not None:
        filters = {**filters, "division_range": division_range(filters["division_code"])}
    rows = await repo.list_enterprise_rows(session, filters, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [EnterpriseRead.model_validate(r) for r in page], next_cursor


async def create_enterprise(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: EnterpriseCreate
) -> EnterpriseRead:
    bureau = await keeping_bureau(session, principal, data.bureau_id)
    if data.credit_code is None and data.org_code is None:
        raise field_error(
            "body.credit_code",
            "Give the unified social credit code (or, for an older record, the organisation code).",
            "missing",
        )
    org_code = data.org_code
    if data.credit_code is not None:
        embedded = org_code_of(data.credit_code)
        if org_code is not None and org_code != embedded:
            raise field_error(
                "body.org_code",
                f"The credit code {data.credit_code} embeds the organisation code {embedded},"
                f" not {org_code}.",
                "org_code_mismatch",
            )
        # Kept with the credit code, so the unique organisation code refuses a second
        # record of the enterprise even when two registrations race.
        org_code = embedded
    await _check_division(session, data.division_code)
    await _refuse_same_enterprise(session, data.credit_code, org_code)
    values = data.model_dump(exclude={"bureau_id", "org_code"})
    enterprise = await repo.add(
        session, Enterprise(**values, org_code=org_code, bureau_id=bureau.id, bureau_path=bureau.path)
    )
    await audit.record(
        session,
        principal,
        "enterprise.created",
        "enterprise",
        enterprise.id,
        {**data.model_dump(mode="json"), "org_code": org_code, "bureau_id": bureau.id},
    )
    return await read_enterprise(session, enterprise.id)


async def _code_changes(
    session: AsyncSession, enterprise: Enterprise, changes: dict[str, Any]
) -> dict[str, Any]:
    """The codes the update leaves on the record, checked: a credit code is added once and
    must embed the record's organisation code; an organisation code alone may be corrected."""
    credit = changes.get("credit_code")
    org = changes.get("org_code")
    if credit is not None and enterprise.credit_code is not None and credit != enterprise.credit_code:
        raise Conflict(
            f"Enterprise {enterprise.id} is recorded under the credit code {enterprise.credit_code},"
            " which does not change; a different code is a different enterprise.",
            slug="credit-code-fixed",
        )
    final_credit = credit or enterprise.credit_code
    if final_credit is not None:
        embedded = org_code_of(final_credit)
        known_org = org or enterprise.org_code
        if known_org is not None and known_org != embedded:
            raise Conflict(
                f"The credit code {final_credit} embeds the organisation code {embedded}, but the record's"
                f" is {known_org}: they name different enterprises.",
                slug="org-code-mismatch",
                embedded_org_code=embedded,
            )
        org = embedded
    codes = {}
    if final_credit != enterprise.credit_code:
        codes["credit_code"] = final_credit
    if org is not None and org != enterprise.org_code:
        codes["org_code"] = org
    if codes:
        await _refuse_same_enterprise(session, codes.get("credit_code"), codes.get("org_code"), enterprise.id)
    return codes


async def update_enterprise(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    enterprise: Enterprise,
    data: EnterpriseUpdate,
    if_match: str | None,
) -> EnterpriseRead:
    """Change the enterprise (loaded, locked and in the principal's scope)."""
    enterprise_id: int = enterprise.id  # type: ignore[assignment]
    check_if_match(if_match, enterprise.version)
    if enterprise.status == EnterpriseStatus.MERGED:
        _refuse_merged(enterprise, (await survivor_of(session, enterprise)).id)  # type: ignore[arg-type]
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise field_error("body", "Name at least one field to change.", "empty_update")
    if "division_code" in changes:
        await _check_division(session, changes["division_code"])
    codes = await _code_changes(session, enterprise, changes)
    values = {k: v for k, v in changes.items() if k not in ("credit_code", "org_code")} | codes
    if values:
        await repo.update_enterprise(session, enterprise_id, values)
        await audit.record(session, principal, "enterprise.updated", "enterprise", enterprise_id, values)
    session.expire_all()
    return await read_enterprise(session, enterprise_id)


async def merge_enterprise(
    session: AsyncSession, audit: AuditLog, principal: Principal, survivor: Enterprise, data: EnterpriseMerge
) -> EnterpriseRead:
    """Fold the duplicate into the survivor (loaded and in the principal's scope): the
    duplicate ends ``merged`` pointing at the survivor, and its products, certificates and
    certification activities move over."""
    survivor_id: int = survivor.id  # type: ignore[assignment]
    duplicate_id = data.duplicate_id
    if duplicate_id == survivor_id:
        raise field_error("body.duplicate_id", "A record cannot be merged into itself.", "merge_self")
    locked = await repo.lock_enterprises(session, [survivor_id, duplicate_id])
    survivor = writable(principal, locked.get(survivor_id), "Enterprise", survivor_id)
    duplicate = writable(principal, locked.get(duplicate_id), "Enterprise", duplicate_id)
    for record in (survivor, duplicate):
        if record.status == EnterpriseStatus.MERGED:
            _refuse_merged(record, (await survivor_of(session, record)).id)  # type: ignore[arg-type]
    if survivor.credit_code and duplicate.credit_code:
        raise Conflict(
            f"Enterprises {survivor_id} and {duplicate_id} carry different credit codes"
            f" ({survivor.credit_code}, {duplicate.credit_code}): two legal persons, not one.",
            slug="enterprise-codes-differ",
        )
    if duplicate.credit_code and not survivor.credit_code:
        raise Conflict(
            f"Enterprise {duplicate_id} carries the credit code {duplicate.credit_code}: merge"
            f" {survivor_id} into it, so the surviving record is the one under the current code.",
            slug="merge-into-credit-code-record",
            suggested_survivor_id=duplicate_id,
        )
    moved = await repo.move_references(session, duplicate_id, survivor_id)
    await repo.update_enterprise(
        session, duplicate_id, {"status": EnterpriseStatus.MERGED, "merged_into_id": survivor_id}
    )
    await repo.update_enterprise(session, survivor_id, {})
    await audit.record(
        session,
        principal,
        "enterprise.merged",
        "enterprise",
        duplicate_id,
        {"merged_into_id": survivor_id, "moved": moved},
    )
    await audit.record(
        session,
        principal,
        "enterprise.absorbed",
        "enterprise",
        survivor_id,
        {"duplicate_id": duplicate_id, "moved": moved},
    )
    session.expire_all()
    return await read_enterprise(session, survivor_id, holdings=True)


# --- products ---------------------------------------------------------------------


async def read_product(session: AsyncSession, product_id: int) -> ProductRead:
    row = await repo.product_row(session, product_id)
    if row is None:
        raise NotFound(f"Product {product_id} not found.")
    return ProductRead.model_validate(row)


async def list_products(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[ProductRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_product_rows(session, filters, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [ProductRead.model_validate(r) for r in page], next_cursor


async def create_product(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: ProductCreate
) -> ProductRead:
    bureau = await keeping_bureau(session, principal, data.bureau_id)
    await active_holder(session, data.holder_id)
    product = await repo.add(
        session,
        Product(**data.model_dump(exclude={"bureau_id"}), bureau_id=bureau.id, bureau_path=bureau.path),
    )
    await audit.record(
        session,
        principal,
        "product.created",
        "product",
        product.id,
        {**data.model_dump(mode="json"), "bureau_id": bureau.id},
    )
    return await read_product(session, product.id)  # type: ignore[arg-type]


async def update_product(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    product: Product,
    data: ProductUpdate,
    if_match: str | None,
) -> ProductRead:
    """Change the product (loaded, locked and in the principal's scope)."""
    product_id: int = product.id  # type: ignore[assignment]
    check_if_match(if_match, product.version)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise field_error("body", "Name at least one field to change.", "empty_update")
    await repo.update_product(session, product_id, changes)
    await audit.record(session, principal, "product.updated", "product", product_id, changes)
    session.expire_all()
    return await read_product(session, product_id)
