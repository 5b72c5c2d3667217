"""Case documents HTTP API (执法文书): the bureaus' document prefixes, the templates and their
versions, and each case's documents as DOCX. Thin handlers: parse, authorize, call, respond."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from services.common.auth import Principal, Role
from services.common.concurrency import etag
from services.common.deps import (
    AuditDep,
    Authorize,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    require_national_roles,
)
from services.common.problems import problem_responses
from services.common.types import IdPath
from services.enforcement.calendar.service import shanghai_today
from services.enforcement.deps import CaseToRead, RegistryDep
from services.enforcement.documents import service
from services.enforcement.documents.models import DocumentKind
from services.enforcement.documents.rendering import DOCX_MEDIA_TYPE
from services.enforcement.documents.schemas import (
    CaseDocument,
    DocumentPrefixRead,
    DocumentPrefixUpdate,
    DocumentTemplateRead,
    DocumentTemplates,
    DocumentTemplateUpdate,
)

PREFIX = "/api/v1/enforcement"
router = APIRouter(prefix=PREFIX, tags=["documents"])

# A bureau's document prefix: an administrator whose scope holds the bureau.
PrefixAdmin = Authorize(Role.ADMIN)
# The templates are the same for every bureau: an administrator of the national regulator.
NationalAdmin = Annotated[Principal, require_national_roles(Role.ADMIN)]
KindPath = Annotated[DocumentKind, Path(description="opening_approval, prior_notice or decision")]
DOCX_RESPONSE = {
    200: {
        "description": "The document as DOCX",
        "content": {DOCX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


# --- document prefixes -------------------------------------------------------------


@router.get(
    "/bureaus/{bureau_id}/document-prefix",
    response_model=DocumentPrefixRead,
    summary="A bureau's document prefix",
    description=(
        "The prefix of the bureau's document numbers (文号), e.g. 浙质监罚字 in 浙质监罚字〔2008〕12号; "
        "`is_default` while the bureau uses the platform's 执法罚字. A bureau outside the caller's "
        "subtree answers 404 like one that does not exist."
    ),
    responses=problem_responses(404),
)
async def read_document_prefix(
    session: ReadSessionDep, registry: RegistryDep, principal: PrincipalDep, bureau_id: IdPath
) -> DocumentPrefixRead:
    return await service.read_prefix(session, registry, principal, bureau_id, shanghai_today().year)


@router.put(
    "/bureaus/{bureau_id}/document-prefix",
    response_model=DocumentPrefixRead,
    summary="Set a bureau's document prefix",
    description=(
        "Sets the prefix of the bureau's document numbers (文号): cases the bureau opens from now on are "
        "numbered `<prefix>〔<year>〕<n>号`; numbers already given stay. 1–16 Chinese characters, ASCII "
        "letters or digits, without 〔, 〕 or 号 (422). Audited. An administrator whose subtree holds the "
        "bureau (403 `/problems/role-required` for other roles, 404 outside the subtree)."
    ),
    responses=problem_responses(403, 404),
)
async def set_document_prefix(
    session: SessionDep,
    audit: AuditDep,
    registry: RegistryDep,
    principal: PrefixAdmin,
    bureau_id: IdPath,
    data: DocumentPrefixUpdate,
) -> DocumentPrefixRead:
    read = await service.set_prefix(
        session, audit, registry, principal, bureau_id, data, shanghai_today().year
    )
    await session.commit()
    return read


# --- templates ---------------------------------------------------------------------


@router.get(
    "/document-templates",
    response_model=DocumentTemplates,
    summary="The document templates and their versions",
    description=(
        "Every version of the templates of the case documents (文书式样): the opening approval form "
        "(立案审批表), the prior notice of the proposed penalty (行政处罚告知书) and the penalty decision "
        "(行政处罚决定书), newest first; `current` marks the version documents are rendered from. "
        "`placeholders` lists the fields a template may name. `current_only=true` keeps the newest of "
        "each kind."
    ),
    responses=problem_responses(),
)
async def list_document_templates(
    session: ReadSessionDep,
    principal: PrincipalDep,
    kind: DocumentKind | None = None,
    current_only: bool = False,
) -> DocumentTemplates:
    return await service.list_templates(session, kind, current_only)


@router.get(
    "/document-templates/{kind}",
    response_model=DocumentTemplateRead,
    summary="One document template (the newest version unless one is named)",
    description=(
        "The template (文书式样) of one kind of case document: the newest version, or `version`. "
        "The ETag names the newest version, for `If-Match` on the next edit."
    ),
    responses=problem_responses(404),
)
async def read_document_template(
    session: ReadSessionDep,
    principal: PrincipalDep,
    kind: KindPath,
    response: Response,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> DocumentTemplateRead:
    read = await service.read_template(session, kind, version)
    newest = read.version if read.current else (await service.read_template(session, kind, None)).version
    response.headers["ETag"] = etag(newest)
    return read


@router.put(
    "/document-templates/{kind}",
    response_model=DocumentTemplateRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a new version of a document template",
    description=(
        "Stores a new version of the template (文书式样) of one kind of case document; the old versions "
        "are kept, and every document rendered from now on uses the new one (and names it in its "
        "footer). The body is plain text, one paragraph a line, with `{placeholder}` fields of the "
        "listed names only (422 for any other field, a format spec or a stray brace: nothing in a "
        "template is evaluated). `If-Match` names the newest version (412 for an older one, 428 "
        "without it or with `*`). Two versions stored at the same moment: 409 "
        "`/problems/template-version-exists`. Audited. National administrators only."
    ),
    responses=problem_responses(403, 409, 412, 428),
)
async def add_document_template_version(
    session: SessionDep,
    audit: AuditDep,
    principal: NationalAdmin,
    kind: KindPath,
    data: DocumentTemplateUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> DocumentTemplateRead:
    read = await service.add_template_version(session, audit, principal, kind, data, if_match)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/document-templates/{kind}?version={read.version}"
    response.headers["ETag"] = etag(read.version)
    return read


# --- a case's documents ---------------------------------------------------------------


@router.get(
    "/cases/{case_id}/documents",
    response_model=list[CaseDocument],
    summary="The case's documents and which its state allows",
    description=(
        "The numbered documents of a case (执法文书): the opening approval form (立案审批表) once the case "
        "is opened, the prior notice (行政处罚告知书) once served, the penalty decision "
        "(行政处罚决定书) once decided; each with the template version it would be rendered from and, "
        "when available, where to fetch it."
    ),
    responses=problem_responses(404),
)
async def list_case_documents(session: ReadSessionDep, case: CaseToRead) -> list[CaseDocument]:
    return await service.list_documents(session, case, f"{PREFIX}/cases/{case.id}/documents")


@router.get(
    "/cases/{case_id}/documents/{kind}",
    response_class=Response,
    summary="One document of the case as DOCX",
    description=(
        "The document rendered from the newest version of its template (文书式样) with the case's "
        "number (文号), party, facts, violation and legal basis, penalty items with their amounts in "
        "yuan and in capitals (大写), dates and officers with their credential numbers; the decision adds "
        "the payment deadline and the rights to reconsideration (行政复议) and litigation (行政诉讼). "
        "A document the case's state does not allow yet answers 409 `/problems/document-not-available`. "
        "The `Document-Template-Version` header and the footer name the template version."
    ),
    responses={**DOCX_RESPONSE, **problem_responses(404, 409)},
)
async def get_case_document(
    session: ReadSessionDep, registry: RegistryDep, case: CaseToRead, kind: KindPath
) -> Response:
    content, rendered = await service.render_document(session, registry, case, kind)
    return Response(
        content,
        media_type=DOCX_MEDIA_TYPE,
        headers={
            "Content-Disposition": service.content_disposition(case, kind),
            "Document-Template-Version": str(rendered.template_version),
            "Cache-Control": "no-store",
        },
    )
