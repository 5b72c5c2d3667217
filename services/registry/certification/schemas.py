"""Request and response models of certification bodies, their personnel and activities."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from services.common.types import EntityId, InputModel
from services.registry.certification.identifiers import ApprovalNumber, CreditCode
from services.registry.certification.models import (
    ActivityKind,
    ActivityResult,
    AuditorStatus,
    BodyStatus,
    CertificateScheme,
)
from services.registry.network.schemas import Name, PersonName


def _unique(values: list) -> list:
    """The list without repeats, in its first order (a repeat says nothing more)."""
    return list(dict.fromkeys(values))


def _without_default(schema: dict) -> None:
    # The None default only marks "left out"; the document must not offer null as a value.
    schema.pop("default", None)


# A CCC product category (强制性产品认证目录的产品种类), four digits, e.g. 0901.
CccCategory = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
CccBodyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{2}$"),
    Field(description="The body's two-digit code in CCC certificate numbers (01 = CQC)"),
]
Schemes = Annotated[
    list[CertificateScheme],
    Field(min_length=1, max_length=len(CertificateScheme)),
    AfterValidator(_unique),
]
CccDesignations = Annotated[list[CccCategory], Field(max_length=500), AfterValidator(_unique)]
# Registration numbers of certification personnel (认证人员注册号) vary by year and
# scheme (e.g. 2016-N1QMS-1234567): letters, digits, '-' and '/', upper-cased.
RegistrationNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[0-9A-Za-z][0-9A-Za-z/-]{3,31}$"),
]
Qualification = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Qualifications = Annotated[list[Qualification], Field(max_length=20), AfterValidator(_unique)]
Notes = Annotated[str, StringConstraints(max_length=2000)]


def _date_text(value: Any) -> Any:
    # A JSON date is YYYY-MM-DD text; a number is not a Unix timestamp here.
    if not isinstance(value, str | date):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


# A legal date of the registry: bounded, so periods counted from it stay within the calendar.
LegalDate = Annotated[
    date,
    BeforeValidator(_date_text),
    Field(ge=date(1900, 1, 1), le=date(2199, 12, 31), description="A date from 1900-01-01 to 2199-12-31"),
]

BODY_EXAMPLE = {
    "approval_number": "CNCA-R-2002-001",
    "name": "中国质量认证中心",
    "credit_code": "91110000100006354P",
    "ccc_body_code": "01",
    "approved_on": "2020-06-01",
    "approved_schemes": ["ccc", "qms"],
    "ccc_designations": ["0901", "0902"],
}


# --- certification bodies ---------------------------------------------------


class BodyCreate(InputModel):
    """A certification body (认证机构) approved by the regulator."""

    model_config = ConfigDict(json_schema_extra={"examples": [BODY_EXAMPLE]})

    approval_number: ApprovalNumber = Field(description="Approval number (批准号) CNCA-R-YYYY-NNN")
    name: Name
    credit_code: CreditCode | None = Field(
        default=None, description="Unified social credit code (统一社会信用代码, GB 32100)"
    )
    ccc_body_code: CccBodyCode | None = None
    approved_on: LegalDate = Field(description="Day the approval was granted")
    approval_expires_on: LegalDate | None = Field(
        default=None,
        description="Last day of the approval; left out, six years from approved_on (the rule's period)",
    )
    approved_schemes: Schemes = Field(description="Certification schemes in the approved scope")
    ccc_designations: CccDesignations = Field(
        default_factory=list,
        description="CCC product categories the body is designated for (指定); needs the ccc scheme",
    )
    status: BodyStatus = BodyStatus.APPROVED
    bureau_id: EntityId | None = Field(
        default=None, description="Bureau keeping the record (in scope); the principal's own if left out"
    )


class BodyUpdate(InputModel):
    """Fields to change; ``credit_code`` and ``ccc_body_code`` may be set to null to clear them.

    A changed ``approved_on`` without ``approval_expires_on`` moves the expiry with it
    (the rule's period). ``status`` follows the allowed moves: approved ⇄ suspended,
    either → revoked or expired, expired → approved (renewed, with dates not expired);
    revoked is final.
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "suspended"}, {"approved_on": "2026-06-01"}]}
    )

    name: Name = Field(default=None, json_schema_extra=_without_default)
    credit_code: CreditCode | None = None
    ccc_body_code: CccBodyCode | None = None
    approved_on: LegalDate = Field(default=None, json_schema_extra=_without_default)
    approval_expires_on: LegalDate = Field(default=None, json_schema_extra=_without_default)
    approved_schemes: Schemes = Field(default=None, json_schema_extra=_without_default)
    ccc_designations: CccDesignations = Field(default=None, json_schema_extra=_without_default)
    status: BodyStatus = Field(default=None, json_schema_extra=_without_default)


class BodyRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **BODY_EXAMPLE,
                    "id": 7,
                    "approval_expires_on": "2026-05-31",
                    "status": "approved",
                    "approval_expired": False,
                    "renewal_due": True,
                    "bureau_id": 1,
                    "bureau_path": "1.",
                    "version": 1,
                    "created_at": "2026-05-10T08:00:00Z",
                    "updated_at": "2026-05-10T08:00:00Z",
                }
            ]
        }
    )

    id: int
    approval_number: str
    name: str
    credit_code: str | None
    ccc_body_code: str | None
    approved_on: date
    approval_expires_on: date
    approved_schemes: list[CertificateScheme]
    ccc_designations: list[str]
    status: BodyStatus
    approval_expired: bool = Field(description="Today is after approval_expires_on")
    renewal_due: bool = Field(
        description="Within the notice period (30 days) before expiry: renewal should be asked"
    )
    bureau_id: int
    bureau_path: str
    version: int
    created_at: datetime
    updated_at: datetime


# --- auditors -----------------------------------------------------------------


class AuditorCreate(InputModel):
    """Certification personnel (认证人员) registered with the national registration body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"registration_number": "2016-N1QMS-1234567", "name": "王审核", "qualifications": ["qms"]}
            ]
        }
    )

    registration_number: RegistrationNumber = Field(description="Registration number (注册号), unique")
    name: PersonName
    qualifications: Qualifications = Field(
        default_factory=list, description="Registered qualifications (e.g. QMS auditor)"
    )
    bureau_id: EntityId | None = Field(
        default=None, description="Bureau keeping the record (in scope); the principal's own if left out"
    )


class AuditorUpdate(InputModel):
    """Fields to change. A change of ``status`` is dated by ``status_changed_on`` (today if
    left out). Revoking ends the current affiliation on that day; a revoked auditor is
    registered again only once the bar (5 years, art. 72) has run."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "revoked", "status_changed_on": "2026-03-01"}]}
    )

    name: PersonName = Field(default=None, json_schema_extra=_without_default)
    qualifications: Qualifications = Field(default=None, json_schema_extra=_without_default)
    status: AuditorStatus = Field(default=None, json_schema_extra=_without_default)
    status_changed_on: LegalDate = Field(default=None, json_schema_extra=_without_default)


class AffiliationRead(BaseModel):
    id: int
    auditor_id: int
    body_id: int
    started_on: date
    ended_on: date | None
    created_at: datetime


class AuditorRead(BaseModel):
    id: int
    registration_number: str
    name: str
    qualifications: list[str]
    status: AuditorStatus
    status_changed_on: date | None
    barred_until: date | None = Field(
        default=None, description="Revoked: the first day the auditor may be registered again"
    )
    current_affiliation: AffiliationRead | None = Field(
        default=None, description="The body the auditor practises in now (one at a time)"
    )
    bureau_id: int
    bureau_path: str
    version: int
    created_at: datetime
    updated_at: datetime


class AffiliationCreate(InputModel):
    """The auditor starts practising in a body (执业机构)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"body_id": 7, "started_on": "2026-01-05"}]})

    body_id: EntityId
    started_on: LegalDate


class AffiliationEnd(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ended_on": "2026-06-30"}]})

    ended_on: LegalDate = Field(description="Last day of practice in the body")


# --- certification activities ---------------------------------------------------


class ActivityCreate(InputModel):
    """A step of certification (认证活动) as it happened: who, when, with what result."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "surveillance",
                    "body_id": 7,
                    "holder_id": 42,
                    "certificate_id": 1001,
                    "auditor_ids": [15, 16],
                    "performed_on": "2026-04-20",
                    "result": "conforming",
                    "notes": "第一次监督审核",
                }
            ]
        }
    )

    kind: ActivityKind
    body_id: EntityId = Field(description="The certification body that performed it")
    holder_id: EntityId = Field(description="The enterprise certified (or applying)")
    certificate_id: EntityId | None = Field(
        default=None, description="The certificate concerned; required for surveillance and recertification"
    )
    auditor_ids: Annotated[list[EntityId], Field(max_length=50), AfterValidator(_unique)] = Field(
        default_factory=list, description="Auditors who took part, each practising in the body that day"
    )
    performed_on: LegalDate = Field(description="Day it was performed; not in the future")
    result: ActivityResult
    notes: Notes = ""
    bureau_id: EntityId | None = Field(
        default=None, description="Bureau keeping the record (in scope); the principal's own if left out"
    )


class ActivityRead(BaseModel):
    id: int
    kind: ActivityKind
    body_id: int
    holder_id: int
    certificate_id: int | None
    auditor_ids: list[int]
    performed_on: date
    result: ActivityResult
    notes: str
    bureau_id: int
    bureau_path: str
    recorded_by: str
    created_at: datetime
