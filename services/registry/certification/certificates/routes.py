"""Certificates (认证证书) over HTTP: thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import StringConstraints

from services.common.concurrency import etag
from services.common.deps import scoped_loader
from services.common.pagination import CURSOR_MAX_LENGTH, CURSOR_PATTERN, Page, PageParams
from services.common.problems import problem_responses
from services.common.responses import fast_json
from services.common.types import IdPath, IdQuery
from services.registry.certification.certificates import rules, service
from services.registry.certification.certificates.repository import CertificateFilters
from services.registry.certification.certificates.schemas import (
    CertificateCreate,
    CertificateRead,
    CertificateSummary,
    CertificateUpdate,
    DivisionPrefix,
    LegalDate,
    StatusChangeCreate,
    StatusChangeRead,
)
from services.registry.certification.models import Certificate, CertificateScheme, CertificateStatus
from services.registry.deps import (
    REGISTRY_WRITER_ROLES,
    AuditDep,
    DatabaseDep,
    IfMatchDep,
    OutboxDep,
    ReadSessionDep,
    RegistryWriter,
    SessionDep,
)
from services.registry.deps import PrincipalDep as ReaderDep

PREFIX = "/api/v1/registry"
CERTIFICATES = f"{PREFIX}/certificates"
router = APIRouter(prefix=PREFIX, tags=["certificates"])

# Query texts: what the document allows (no space at either end) is what the list accepts.
_TRIMMED = r"^\S(?:.*\S)?$"
NamePart = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=_TRIMMED)]
NumberQuery = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=_TRIMMED)]
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
EXPORT_CHUNK = 2000


async def certificate_page(
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=CURSOR_MAX_LENGTH,
            pattern=CURSOR_PATTERN,
            description="The `next_cursor` of the previous page, unchanged; omit it for the first page.",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


def _province_or_city(prefix: str) -> str:
    # "330000" names the province 33 and "330100" the city 3301: the prefix they stand for.
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


async def certificate_filters(
    status: CertificateStatus | None = None,
    scheme: CertificateScheme | None = None,
    body_id: IdQuery = None,
    holder_id: IdQuery = None,
    bureau_id: Annotated[
        int | None, Query(ge=1, le=2**53 - 1, description="The bureau keeping the record")
    ] = None,
    division_code: Annotated[
        DivisionPrefix | None,
        Query(
            description=(
                "The holder's division (GB/T 2260) as a prefix: a province (`33`), a city (`3301`) or a "
                "county (`330106`); `330000` and `330100` stand for the province and the city."
            )
        ),
    ] = None,
    expires_from: Annotated[
        LegalDate | None, Query(description="Expiring on or after this date (YYYY-MM-DD)")
    ] = None,
    expires_to: Annotated[
        LegalDate | None, Query(description="Expiring on or before this date (YYYY-MM-DD)")
    ] = None,
    q: Annotated[
        NamePart | None,
        Query(
            description=(
                "Part of the holder's name (证书持有人名称), at least 3 characters: the name index "
                "works on trigrams, and a shorter part would read every certificate"
            ),
        ),
    ] = None,
    number: Annotated[
        NumberQuery | None, Query(description="Exact certificate number, across schemes")
    ] = None,
    surveillance_overdue: Annotated[
        bool | None,
        Query(description="Valid certificates whose surveillance audit is overdue (true) or not (false)"),
    ] = None,
) -> CertificateFilters:
    return CertificateFilters(
        status=status,
        scheme=scheme,
        body_id=body_id,
        holder_id=holder_id,
        bureau_id=bureau_id,
        division_code=_province_or_city(division_code) if division_code else None,
        expires_from=expires_from,
        expires_to=expires_to,
        q=q,
        number=number.upper() if number else None,
        surveillance_overdue=surveillance_overdue,
    )


FiltersDep = Annotated[CertificateFilters, Depends(certificate_filters)]
# The certificate a write names, locked for the change: 403 without a writer's role, 404 when
# missing or kept outside the principal's scope (the two alike).
WritableCertificate = Annotated[
    Certificate,
    Depends(
        scoped_loader(service.load_certificate_for_change, noun="certificate", roles=REGISTRY_WRITER_ROLES)
    ),
]
PageDep = Annotated[PageParams, Depends(certificate_page)]


@router.get(
    "/certificates",
    response_model=Page[CertificateSummary],
    summary="List or look up certificates (认证证书)",
    description=(
        "Certificates (认证证书) of every scheme, newest first (keyset by id descending), readable by every "
        "authenticated principal. Filters combine with AND: `status`, `scheme`, `body_id`, "
        "`holder_id`, `bureau_id` (the keeping bureau), `division_code` (province / city / county "
        "prefix), `expires_from` / `expires_to` (expiry window), `q` (part of the holder's name), "
        "`number` (exact lookup across schemes: `?number=2016010901123456`) and "
        "`surveillance_overdue` (by the surveillance rules kept as data). "
        f"`limit` is at most {MAX_LIMIT}. `exchange_status`, `expired`, `surveillance_overdue` and "
        "`renewal_window_open` are computed from the dates as of today (Asia/Shanghai)."
    ),
    responses=problem_responses(),
)
async def list_certificates(
    session: ReadSessionDep, _: ReaderDep, filters: FiltersDep, page: PageDep
) -> Page[CertificateSummary]:
    items, next_cursor = await service.list_certificates(session, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


EXPORT_HEADER = [
    "id",
    "number",
    "scheme",
    "status",
    "exchange_status",
    "expired",
    "surveillance_overdue",
    "renewal_window_open",
    "body_id",
    "holder_id",
    "holder_name",
    "division_code",
    "issued_on",
    "expires_on",
    "last_surveillance_on",
    "suspended_until",
    "bureau_id",
    "version",
    "scope",
]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(name: str, value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # A free-text cell that a spreadsheet would run as a formula is written as text.
    if name in ("holder_name", "scope") and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


async def _csv_chunks(request: Request, filters: CertificateFilters, bom: bool) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    yield (("\ufeff" if bom else "") + buffer.getvalue()).encode()
    async for rows in service.export_rows(request.app.state.sessionmaker, filters, EXPORT_CHUNK):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_cell(name, row[name]) for name in EXPORT_HEADER] for row in rows)
        yield buffer.getvalue().encode()


@router.get(
    "/certificates.csv",
    summary="Export a filtered certificate list as CSV (证书清单导出)",
    description=(
        "The certificate list export (证书清单导出): "
        "the certificates matching the same filters as the list, all of them (no limit), newest "
        "first, streamed from a server-side cursor in chunks of "
        f"{EXPORT_CHUNK} rows so no export sits in memory. RFC 4180 CSV (CRLF line ends) with a "
        "header row, UTF-8 starting with a byte-order mark so spreadsheet programs read the Chinese "
        "names right (`bom=false` leaves it out for programs). Dates are YYYY-MM-DD, flags "
        "true/false, empty cells for no value; a name or scope beginning with `=`, `+`, `-` or `@` "
        "is prefixed with `'` so a spreadsheet does not run it as a formula."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The CSV file"},
        **problem_responses(),
    },
)
async def export_certificates(
    request: Request,
    _: ReaderDep,
    filters: FiltersDep,
    bom: Annotated[bool, Query(description="Start with a UTF-8 byte-order mark (for Excel)")] = True,
) -> StreamingResponse:
    filename = f"certificates-{rules.today():%Y%m%d}.csv"
    return StreamingResponse(
        _csv_chunks(request, filters, bom),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/certificates",
    response_model=CertificateRead,
    status_code=status.HTTP_201_CREATED,
    summary="Register a certificate (登记认证证书)",
    description=(
        "Registers a certificate (登记认证证书) "
        "issued by an approved certification body to an active enterprise, "
        "for products of that enterprise, with the auditors who audited. The number is checked per "
        "scheme (422 naming the rule); a scheme's number is registered once "
        "(`/problems/certificate-number-taken`). The holder's name and division are copied from the "
        "enterprise as printed. Rules: `/problems/body-not-approved`, `/problems/enterprise-merged`, "
        "`/problems/product-not-of-holder`. Needs role supervision, admin or system; the keeping "
        "bureau (`bureau_id`, the principal's own by default) must be in scope (404 otherwise)."
    ),
    responses=problem_responses(403, 404, 409),
)
async def create_certificate(
    session: SessionDep,
    audit: AuditDep,
    principal: RegistryWriter,
    data: CertificateCreate,
    response: Response,
) -> CertificateRead:
    certificate = await service.create_certificate(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{CERTIFICATES}/{certificate.id}"
    response.headers["ETag"] = etag(certificate.version)
    return certificate


@router.get(
    "/certificates/{certificate_id}",
    response_model=CertificateRead,
    summary="Read one certificate (认证证书) with its products and auditors",
    description=(
        "One certificate (认证证书), "
        "readable by every authenticated principal. `status` is the stored state (valid, suspended, "
        "revoked, cancelled); `exchange_status` is the exchange vocabulary (active, suspended, "
        "withdrawn, cancelled, expired); `expired`, `surveillance_overdue` and `renewal_window_open` "
        "are computed from the dates as of today (Asia/Shanghai). The ETag is the version to send "
        "in If-Match."
    ),
    responses=problem_responses(404),
)
async def get_certificate(db: DatabaseDep, _: ReaderDep, certificate_id: IdPath) -> Response:
    # The hot read: rows on the driver connection, written as CertificateRead by fast_json.
    row = await service.read_certificate_record(db, certificate_id)
    return fast_json(CertificateRead, row, headers={"ETag": etag(row["version"])})


@router.patch(
    "/certificates/{certificate_id}",
    response_model=CertificateRead,
    summary="Correct a certificate's scope or expiry date (If-Match required)",
    description=(
        "Corrections of the certified scope (认证范围) and the expiry date; the status changes only "
        "through `POST …/status-changes`. Needs role supervision, admin or system and the "
        "certificate kept in scope (404 otherwise); If-Match with the ETag read (428 without, 412 "
        "when stale)."
    ),
    responses=problem_responses(403, 404, 412, 428),
)
async def update_certificate(
    session: SessionDep,
    audit: AuditDep,
    principal: RegistryWriter,
    certificate: WritableCertificate,
    data: CertificateUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> CertificateRead:
    corrected = await service.update_certificate(session, audit, principal, certificate, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(corrected.version)
    return corrected


@router.post(
    "/certificates/{certificate_id}/status-changes",
    response_model=StatusChangeRead,
    status_code=status.HTTP_201_CREATED,
    summary="Suspend, restore, revoke or cancel a certificate (暂停、恢复、撤销、注销; If-Match required)",
    description=(
        "One step of the certificate's status: valid → suspended (suspend) → valid (restore); valid "
        "or suspended → revoked (revoke, 撤销) or cancelled (cancel, 注销). A step the current status "
        "does not allow is `/problems/invalid-transition`, listing the `allowed` steps. The reason is "
        "required; `case_ref` names the enforcement case that caused it. Answers the history record "
        "(who, when, why, case) with the certificate's new ETag and emits the event "
        "`registry.certificate.status_changed` for enforcement and statistics; `Location` is the "
        "history. Needs "
        "role supervision, admin or system and the certificate kept in scope (404 otherwise); "
        "If-Match with the certificate's ETag (428 without, 412 when stale)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def change_certificate_status(
    session: SessionDep,
    audit: AuditDep,
    outbox: OutboxDep,
    principal: RegistryWriter,
    certificate: WritableCertificate,
    data: StatusChangeCreate,
    response: Response,
    if_match: IfMatchDep = None,
) -> StatusChangeRead:
    change, version = await service.request_status_change(
        session, audit, outbox, principal, certificate, data, if_match
    )
    await session.commit()
    response.headers["Location"] = f"{CERTIFICATES}/{change.certificate_id}/history"
    response.headers["ETag"] = etag(version)
    return change


@router.get(
    "/certificates/{certificate_id}/history",
    response_model=Page[StatusChangeRead],
    summary="A certificate's status history (证书状态变更记录), oldest first",
    description=(
        "The status history (证书状态变更记录): "
        "every status step from the registration (nothing → valid) on: who (actor kind, id and "
        "bureau), when, why, the enforcement case and the decision event if one caused it, and the "
        "request id. Readable by every authenticated principal; keyset pages by id ascending."
    ),
    responses=problem_responses(404),
)
async def list_certificate_history(
    session: ReadSessionDep, _: ReaderDep, certificate_id: IdPath, page: PageDep
) -> Page[StatusChangeRead]:
    items, next_cursor = await service.list_status_changes(session, certificate_id, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)
