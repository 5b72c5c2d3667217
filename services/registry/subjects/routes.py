"""HTTP API of certified enterprises and their products.

Readable by every authenticated principal; written by a ``RegistryWriter``
(supervision, admin or a provincial system) within its bureau's subtree.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from services.common.concurrency import etag
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.responses import fast_json
from services.common.types import IdPath, IdQuery
from services.registry.certification.identifiers import IdentifierError, credit_code, org_code
from services.registry.deps import (
    AuditDep,
    DatabaseDep,
    EnterpriseToMerge,
    EnterpriseToWrite,
    IfMatchDep,
    PrincipalDep,
    ProductToWrite,
    ReadSessionDep,
    RegistryWriter,
    SessionDep,
)
from services.registry.scope import field_error
from services.registry.subjects import service
from services.registry.subjects.models import EnterpriseStatus
from services.registry.subjects.schemas import (
    EnterpriseCreate,
    EnterpriseMerge,
    EnterpriseRead,
    EnterpriseUpdate,
    ProductCreate,
    ProductRead,
    ProductUpdate,
)

PREFIX = "/api/v1/registry"
ENTERPRISES = f"{PREFIX}/enterprises"
PRODUCTS = f"{PREFIX}/products"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]
NameSearch = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Part of the name (case-insensitive)")
]
ENTERPRISE_TAG = "enterprises"
PRODUCT_TAG = "products"


def _code_query(value: str | None, rule, loc: str) -> str | None:
    """A code looked up as the rule writes it; a code breaking its rule is a 422 naming it."""
    if value is None:
        return None
    try:
        return rule(value)
    except IdentifierError as exc:
        raise field_error(loc, str(exc), "identifier") from None


# --- enterprises ----------------------------------------------------------------


@router.get(
    "/enterprises",
    response_model=Page[EnterpriseRead],
    tags=[ENTERPRISE_TAG],
    summary="List certified enterprises (获证企业)",
    responses=problem_responses(),
)
async def list_enterprises(
    session: ReadSessionDep,
    _: PrincipalDep,
    page: PageDep,
    division_code: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{6}$",
            description="GB/T 2260 code: a province's or city's code matches everything inside it",
        ),
    ] = None,
    status: EnterpriseStatus | None = None,
    q: NameSearch = None,
    credit_code_: Annotated[
        str | None, Query(alias="credit_code", max_length=32, description="Unified social credit code")
    ] = None,
    org_code_: Annotated[
        str | None,
        Query(
            alias="org_code",
            max_length=16,
            description="Organisation code: matches records under it and those whose credit code embeds it",
        ),
    ] = None,
) -> Page[EnterpriseRead]:
    """Certified enterprises (获证企业) by id. A lookup by either code finds the enterprise
    however it was recorded; a merged record answers with `merged_into_id`."""
    filters = {
        "division_code": division_code,
        "status": status,
        "q": q,
        "credit_code": _code_query(credit_code_, credit_code, "query.credit_code"),
        "org_code": _code_query(org_code_, org_code, "query.org_code"),
    }
    items, next_cursor = await service.list_enterprises(session, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/enterprises/{enterprise_id}",
    response_model=EnterpriseRead,
    tags=[ENTERPRISE_TAG],
    summary="Read one enterprise, with its certificate and product counts",
    responses=problem_responses(404),
)
async def get_enterprise(db: DatabaseDep, _: PrincipalDep, enterprise_id: IdPath) -> Response:
    """A certified enterprise (获证企业). A merged record is still answered, with
    `merged_into_id` naming the record that carries the enterprise now."""
    # The hot read: one row on the driver connection, written as EnterpriseRead by fast_json.
    row = await service.read_enterprise_record(db, enterprise_id)
    return fast_json(EnterpriseRead, row, headers={"ETag": etag(row["version"])})


@router.post(
    "/enterprises",
    response_model=EnterpriseRead,
    status_code=201,
    tags=[ENTERPRISE_TAG],
    summary="Record a certified enterprise (获证企业)",
    responses=problem_responses(403, 404, 409),
)
async def create_enterprise(
    session: SessionDep,
    audit: AuditDep,
    principal: RegistryWriter,
    data: EnterpriseCreate,
    response: Response,
) -> EnterpriseRead:
    """Record an enterprise (获证企业) by its unified social credit code (统一社会信用代码,
    checked by GB 32100's rule) or an older organisation code (组织机构代码). An
    enterprise already recorded under either code is 409 `/problems/enterprise-exists`
    with `existing_id`."""
    enterprise = await service.create_enterprise(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{ENTERPRISES}/{enterprise.id}"
    response.headers["ETag"] = etag(enterprise.version)
    return enterprise


@router.patch(
    "/enterprises/{enterprise_id}",
    response_model=EnterpriseRead,
    tags=[ENTERPRISE_TAG],
    summary="Change an enterprise's record, or add its credit code (If-Match required)",
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def update_enterprise(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    enterprise: EnterpriseToWrite,
    data: EnterpriseUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> EnterpriseRead:
    """Change an enterprise's (获证企业) name, division or address, or upgrade a record kept
    under its organisation code with the credit code that embeds it."""
    changed = await service.update_enterprise(session, audit, principal, enterprise, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(changed.version)
    return changed


@router.post(
    "/enterprises/{enterprise_id}/merge",
    response_model=EnterpriseRead,
    tags=[ENTERPRISE_TAG],
    summary="Fold a duplicate record of the same enterprise into this one",
    responses=problem_responses(403, 404, 409),
)
async def merge_enterprise(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    survivor: EnterpriseToMerge,
    data: EnterpriseMerge,
    response: Response,
) -> EnterpriseRead:
    """Merge (合并) a duplicate record into this one, the survivor: the duplicate becomes
    `merged` with `merged_into_id`, and its products, certificates and certification
    activities move to the survivor. Both records must be writable by the principal."""
    merged = await service.merge_enterprise(session, audit, principal, survivor, data)
    await session.commit()
    response.headers["ETag"] = etag(merged.version)
    return merged


# --- products ---------------------------------------------------------------------


@router.get(
    "/products",
    response_model=Page[ProductRead],
    tags=[PRODUCT_TAG],
    summary="List products (产品)",
    responses=problem_responses(),
)
async def list_products(
    session: ReadSessionDep,
    _: PrincipalDep,
    page: PageDep,
    holder_id: IdQuery = None,
    category_code: Annotated[str | None, Query(pattern=r"^[0-9A-Z]{2,8}$")] = None,
    q: NameSearch = None,
) -> Page[ProductRead]:
    """Products (产品) of certified enterprises, by id."""
    filters = {"holder_id": holder_id, "category_code": category_code, "q": q}
    items, next_cursor = await service.list_products(session, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/products/{product_id}",
    response_model=ProductRead,
    tags=[PRODUCT_TAG],
    summary="Read one product",
    responses=problem_responses(404),
)
async def get_product(
    session: ReadSessionDep, _: PrincipalDep, product_id: IdPath, response: Response
) -> ProductRead:
    """A product (产品): its holder, category and model (型号规格)."""
    product = await service.read_product(session, product_id)
    response.headers["ETag"] = etag(product.version)
    return product


@router.post(
    "/products",
    response_model=ProductRead,
    status_code=201,
    tags=[PRODUCT_TAG],
    summary="Record a product (产品) of an enterprise",
    responses=problem_responses(403, 404, 409),
)
async def create_product(
    session: SessionDep, audit: AuditDep, principal: RegistryWriter, data: ProductCreate, response: Response
) -> ProductRead:
    """Record a product (产品) of an active enterprise; a merged holder is 409
    `/problems/enterprise-merged` with `survivor_id`."""
    product = await service.create_product(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PRODUCTS}/{product.id}"
    response.headers["ETag"] = etag(product.version)
    return product


@router.patch(
    "/products/{product_id}",
    response_model=ProductRead,
    tags=[PRODUCT_TAG],
    summary="Change a product's record (If-Match required)",
    responses=problem_responses(403, 404, 412, 428),
)
async def update_product(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    product: ProductToWrite,
    data: ProductUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> ProductRead:
    """Change a product's (产品) name, category, model or trademark."""
    changed = await service.update_product(session, audit, principal, product, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(changed.version)
    return changed
