"""Bulk sync HTTP API: upload a file of rows, read the import and its refused rows."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from services.common.pagination import Page, PageParams, page_params
from services.common.problems import ProblemError, problem_doc, problem_responses
from services.common.types import IdPath, IdQuery
from services.registry.deps import AuditDep, PrincipalDep, ReadSessionDep, RegistryWriter
from services.registry.imports import service
from services.registry.imports.models import ImportFormat, ImportKind, ImportStatus
from services.registry.imports.schemas import LIST_SEPARATOR, ImportBatchRead, ImportRowErrorRead

PREFIX = "/api/v1/registry"
IMPORTS_PATH = f"{PREFIX}/imports"
router = APIRouter(prefix=PREFIX, tags=["imports"])
PageDep = Annotated[PageParams, Depends(page_params)]

NDJSON = "application/x-ndjson"
MEDIA_TYPES = {
    NDJSON: ImportFormat.NDJSON,
    "application/ndjson": ImportFormat.NDJSON,
    "text/csv": ImportFormat.CSV,
}


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "The body's media type is not one this route reads"


def upload_format(content_type: str | None) -> ImportFormat:
    """The upload's format from its Content-Type (UTF-8 only)."""
    media, _, parameters = (content_type or "").partition(";")
    fmt = MEDIA_TYPES.get(media.strip().lower())
    charset = next(
        (
            v.strip().strip('"').lower()
            for k, _, v in (p.partition("=") for p in parameters.split(";"))
            if k.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if fmt is None or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"Send {NDJSON} (one JSON object a line) or text/csv (a header row, then one row a line), "
            f"in UTF-8; got {content_type or 'no Content-Type'}."
        )
    return fmt


ROW_FORMATS = """
Bulk sync (批量同步) for provincial information systems: upload **enterprises** (获证企业),
**products** (产品) or **certificates** (认证证书) as NDJSON (`Content-Type: application/x-ndjson`,
one JSON object a line) or CSV (`Content-Type: text/csv`, UTF-8, a header row naming the
fields, then one row a record; an empty cell is a field not given; `product_models` lists
models separated by `|`). The file is read as it arrives and written in batches, so it may
be large (up to the registry's `REGISTRY_IMPORT_MAX_BODY_BYTES`, 2 GiB by default).

Rows refer to other records by natural keys, never by ids: an enterprise by its unified
social credit code (`…credit_code`, GB 32100, checked) or older organisation code
(`…org_code`, GB 11714, checked); a body by its approval number `CNCA-R-YYYY-NNN`; a
product by its holder and model. A row whose key is already registered updates that record
(enterprise: credit code or organisation code — one enterprise under both is one record;
product: holder and model; certificate: scheme and number) — only where it differs, so a
re-sent file changes nothing and bumps no version. New rows are kept by the principal's
bureau (or `bureau_id`, a bureau of its subtree); rows kept by a bureau outside the
principal's subtree are refused (`out_of_scope`). A certificate's status is not set here:
new certificates are `valid`, and status changes go through their transitions.

Each row is written whole or not at all; a refused row does not stop the others. The
answer counts what happened; `GET /imports/{id}/errors` lists each refused row by its
number (the line it starts on in the file, the CSV header being line 1) with its errors,
whose `type` names the rule: field rules (`missing`, `extra_forbidden`, `string_too_long`,
`date_from_datetime_parsing`, `enum`…, and `credit_code`, `org_code`, `approval_number`,
`certificate_number` — CCC numbers are 16 digits, year + body code + category + serial, or
12 for older ones — `expiry_before_issue`, `enterprise_code_missing`,
`enterprise_codes_disagree`); reading (`json_invalid`, `csv_invalid`, `csv_cells`,
`unicode_invalid`, `row_too_long`); the registry (`unknown_division`, `unknown_holder`,
`unknown_body`, `unknown_product`, `certificate_number_body` — the body code inside a CCC
number is not the issuing body's —, `duplicate_in_file`, `out_of_scope`,
`credit_code_taken`, `org_code_taken`, `certificate_number_taken`).

Send an `Idempotency-Key`: the same key and file replays the stored answer.

{kinds}
"""

# One example row of each kind, shown as a CSV header and row and as an NDJSON line.
EXAMPLES: dict[ImportKind, tuple[str, dict[str, Any]]] = {
    ImportKind.ENTERPRISES: (
        "`credit_code` and/or `org_code`, `name`, `division_code` (GB/T 2260), `address` (optional)",
        {
            "credit_code": "91330100MA2B3C4D5N",
            "org_code": "",
            "name": "杭州某某电器有限公司",
            "division_code": "330100",
            "address": "杭州市西湖区文三路1号",
        },
    ),
    ImportKind.PRODUCTS: (
        "`holder_credit_code` and/or `holder_org_code`, `name`, `category_code` (CCC category or a "
        "voluntary code), `model`, `trademark` (optional)",
        {
            "holder_credit_code": "91330100MA2B3C4D5N",
            "holder_org_code": "",
            "name": "小型断路器",
            "category_code": "0201",
            "model": "DZ47-63 C16",
            "trademark": "某某",
        },
    ),
    ImportKind.CERTIFICATES: (
        "`scheme` (ccc, qms, ems, ohsms, fsms, voluntary), `number`, `body_approval_number`, "
        "`holder_credit_code` and/or `holder_org_code`, `issued_on`, `expires_on` (YYYY-MM-DD), "
        "`scope`, `product_models` (optional; when given, the certificate covers exactly these "
        "models of the holder's products)",
        {
            "scheme": "ccc",
            "number": "2021010201000123",
            "body_approval_number": "CNCA-R-2002-001",
            "holder_credit_code": "91330100MA2B3C4D5N",
            "holder_org_code": "",
            "issued_on": "2021-03-01",
            "expires_on": "2026-02-28",
            "scope": "小型断路器",
            "product_models": ["DZ47-63 C16", "DZ47-63 C32"],
        },
    ),
}


def example_csv(row: dict[str, Any]) -> str:
    cells = [LIST_SEPARATOR.join(v) if isinstance(v, list) else v for v in row.values()]
    return ",".join(row) + "\n" + ",".join(cells) + "\n"


def example_ndjson(row: dict[str, Any]) -> str:
    return orjson.dumps({k: v for k, v in row.items() if v != ""}).decode() + "\n"


def _kinds_text() -> str:
    return "\n".join(
        f"**{kind.value}** — {fields}:\n```\n{example_csv(row)}```\n```\n{example_ndjson(row)}```\n"
        for kind, (fields, row) in EXAMPLES.items()
    )


DESCRIPTION = ROW_FORMATS.replace("{kinds}", _kinds_text())
_CERTIFICATE = EXAMPLES[ImportKind.CERTIFICATES][1]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            NDJSON: {
                "schema": {"type": "string", "format": "binary"},
                "example": example_ndjson(_CERTIFICATE),
            },
            "text/csv": {
                "schema": {"type": "string", "format": "binary"},
                "example": example_csv(_CERTIFICATE),
            },
        },
    }
}


@router.post(
    "/imports",
    response_model=ImportBatchRead,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file of enterprises, products or certificates (批量同步)",
    description=DESCRIPTION,
    responses={
        **problem_responses(403, 404, 413),
        415: problem_doc("The body is neither application/x-ndjson nor text/csv in UTF-8"),
    },
    openapi_extra=UPLOAD_BODY,
)
async def create_import(
    request: Request,
    session: ReadSessionDep,
    audit: AuditDep,
    principal: RegistryWriter,
    response: Response,
    kind: Annotated[ImportKind, Query(description="What the rows are")],
    bureau_id: Annotated[
        IdQuery,
        Query(description="The bureau of the principal's subtree that keeps new rows (default: its own)"),
    ] = None,
) -> ImportBatchRead:
    fmt = upload_format(request.headers.get("content-type"))
    target = await service.import_target(session, principal, bureau_id)
    settings = request.app.state.settings
    batch = await service.run_import(
        request.app.state.engine,
        audit,
        principal,
        kind,
        fmt,
        target,
        request.stream(),
        batch_rows=settings.import_batch_rows,
        max_row_bytes=settings.import_max_row_bytes,
    )
    response.headers["Location"] = f"{IMPORTS_PATH}/{batch.id}"
    return batch


@router.get(
    "/imports",
    response_model=Page[ImportBatchRead],
    summary="List the imports of the principal's subtree, newest first",
    description=(
        "The bulk-sync imports (批量同步) of the principal's bureau subtree, newest first; filters "
        "`kind` and `status`. Each with its counts of rows created, updated, unchanged and refused."
    ),
    responses=problem_responses(),
)
async def list_imports(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    kind: ImportKind | None = None,
    status: ImportStatus | None = None,
) -> Page[ImportBatchRead]:
    items, next_cursor = await service.list_batches(
        session, principal, {"kind": kind, "status": status}, page.cursor, page.limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/imports/{import_id}",
    response_model=ImportBatchRead,
    summary="Read one import: its status and what its rows did",
    description=(
        "One bulk-sync import (批量同步): its kind, format, status (`running`, `completed`, "
        "`failed`) and what its rows did; the refused rows are at `…/errors`."
    ),
    responses=problem_responses(404),
)
async def get_import(session: ReadSessionDep, principal: PrincipalDep, import_id: IdPath) -> ImportBatchRead:
    batch = await service.read_batch(session, principal, import_id)
    return ImportBatchRead.model_validate(batch, from_attributes=True)


@router.get(
    "/imports/{import_id}/errors",
    response_model=Page[ImportRowErrorRead],
    summary="The refused rows of an import, in row order",
    description=(
        "The refused rows of a bulk sync (批量同步): "
        "each refused row by its number with its errors (the `type` names the rule). Keyset "
        "pages as JSON; with `Accept: application/x-ndjson`, every refused row at once as NDJSON, "
        "streamed (one `ImportRowErrorRead` a line; `cursor` and `limit` do not apply)."
    ),
    responses={
        **problem_responses(404),
        200: {
            "description": "The refused rows",
            "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/ImportRowErrorRead"}}},
        },
    },
)
async def list_import_errors(
    request: Request, session: ReadSessionDep, principal: PrincipalDep, import_id: IdPath, page: PageDep
) -> Page[ImportRowErrorRead] | StreamingResponse:
    if NDJSON in request.headers.get("accept", "").lower():
        await service.read_batch(session, principal, import_id)
        return StreamingResponse(_errors_ndjson(request, import_id), media_type=NDJSON)
    items, next_cursor = await service.list_row_errors(session, principal, import_id, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


async def _errors_ndjson(request: Request, import_id: int):
    # A session of its own: the stream outlives the request's dependencies.
    async with request.app.state.read_sessionmaker() as session:
        async for chunk in service.stream_row_errors(session, import_id):
            yield chunk
