"""Response models of the dossiers (档案): a registry record, its links in the certification
chain, and its enforcement chain as the enforcement service answers it."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from services.common.pagination import Page
from services.registry.certification.certificates.schemas import (
    CertificateRead,
    CertificateSummary,
    CertifiedProduct,
    StatusChangeRead,
)
from services.registry.certification.schemas import AffiliationRead, AuditorRead, BodyRead
from services.registry.inspections.schemas import InspectionRead
from services.registry.subjects.schemas import EnterpriseRead, ProductRead


class SubjectType(StrEnum):
    """The registry records the enforcement service keeps leads and cases of (its `subject_type`)."""

    CERTIFICATION_BODY = "certification_body"
    AUDITOR = "auditor"
    ENTERPRISE = "enterprise"
    CERTIFICATE = "certificate"
    PRODUCT = "product"


class ChainSubject(BaseModel):
    subject_type: SubjectType
    subject_id: int


# The enforcement service owns these documents: the fields below are the ones a dossier relies
# on; every other field enforcement answers (deadlines, fines, review state…) is passed on as is.
class ChainLead(BaseModel):
    """A lead (案件线索) concerning the record."""

    model_config = ConfigDict(extra="allow")

    id: int
    bureau_id: int
    subject_type: str
    subject_id: int
    subject_name: str
    summary: str
    received_on: date
    state: str
    case_id: int | None = Field(description="The case opened from the lead, if one")


class ChainCase(BaseModel):
    """A case (案件) concerning the record, with its decision (处罚决定) once taken."""

    model_config = ConfigDict(extra="allow")

    id: int
    number: str
    bureau_id: int
    lead_id: int | None
    state: str
    title: str
    party_name: str
    subject_type: str
    subject_id: int
    opened_on: date
    decision_kind: str | None = Field(description="The decision taken (fine, warning…), null before it")
    decided_on: date | None
    closed_on: date | None


class EnforcementChain(BaseModel):
    """Leads and cases of the records in ``subjects``, within the caller's scope (the bureau
    subtree the caller's token names): another bureau's leads and cases are not shown."""

    subjects: list[ChainSubject] = Field(description="The records whose leads and cases were asked for")
    leads: list[ChainLead]
    cases: list[ChainCase]


class ChainAnswer(BaseModel):
    """``GET /api/v1/enforcement/chain`` as the registry reads it."""

    subject_type: str
    subject_id: int
    leads: list[ChainLead]
    cases: list[ChainCase]


class Dossier(BaseModel):
    enforcement: EnforcementChain | None = Field(
        description="The enforcement chain (执法链条); null when the enforcement service could not be reached"
    )
    enforcement_unavailable: bool = Field(
        description="True when the enforcement service could not be reached: the registry part is complete"
    )


class CertificateDossier(Dossier):
    """A certificate's dossier (证书档案)."""

    certificate: CertificateRead
    body: BodyRead = Field(description="The certification body that issued it")
    holder: EnterpriseRead = Field(description="The holder enterprise (证书持有人)")
    products: list[CertifiedProduct] = Field(description="The certified products")
    status_history: Page[StatusChangeRead] = Field(
        description="Status steps, oldest first; continue with `GET …/certificates/{id}/history?cursor=`"
    )
    inspections: Page[InspectionRead] = Field(
        description="Inspections (监督检查) of the certificate by the caller's bureau and those under it"
    )


class EnterpriseDossier(Dossier):
    """An enterprise's dossier (获证企业档案)."""

    enterprise: EnterpriseRead
    products: Page[ProductRead] = Field(description="Continue with `GET …/products?holder_id=&cursor=`")
    certificates: Page[CertificateSummary] = Field(
        description="Newest first; continue with `GET …/certificates?holder_id=&cursor=`"
    )
    inspections: Page[InspectionRead] = Field(
        description="Inspections of the enterprise by the caller's bureau and those under it"
    )


class BodyDossier(Dossier):
    """A certification body's dossier (认证机构档案)."""

    body: BodyRead
    auditors: Page[AuditorRead] = Field(
        description="Auditors practising in the body now; continue with `GET …/auditors?body_id=&cursor=`"
    )
    certificates: Page[CertificateSummary] = Field(
        description=(
            "Certificates it issued, newest first; continue with `GET …/certificates?body_id=&cursor=`"
        )
    )
    inspections: Page[InspectionRead] = Field(
        description="Inspections of the body by the caller's bureau and those under it"
    )


class AuditorDossier(Dossier):
    """An auditor's dossier (认证人员档案)."""

    auditor: AuditorRead
    affiliations: Page[AffiliationRead] = Field(
        description=(
            "Practice in bodies, oldest first; continue with `GET …/auditors/{id}/affiliations?cursor=`"
        )
    )
    inspections: Page[InspectionRead] = Field(
        description="Inspections of the auditor by the caller's bureau and those under it"
    )
