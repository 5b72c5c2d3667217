"""Request and response models of certificates (认证证书) and their status history."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.common.types import EntityId, InputModel
from services.registry.certification.identifiers import IdentifierError, certificate_number
from services.registry.certification.models import CertificateScheme, CertificateStatus

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    # A legal date is YYYY-MM-DD text in JSON: not a timestamp number, not a date-time.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


LegalDate = Annotated[date, BeforeValidator(_iso_date)]
NumberText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
ScopeText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
ReasonText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]
CaseRef = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\S{1,64}$")]
# GB/T 2260 prefix: a province (2 digits), a city (4) or a county (6); "330000" / "330100" are
# read as the province / city they name.
DivisionPrefix = Annotated[str, StringConstraints(pattern=r"^\d{2}(\d{2}(\d{2})?)?$")]


class CertificateStep(StrEnum):
    """A step of a certificate's status (DOMAIN.md, Certified subjects)."""

    SUSPEND = "suspend"  # 暂停
    RESTORE = "restore"  # 恢复
    REVOKE = "revoke"  # 撤销
    CANCEL = "cancel"  # 注销


class ExchangeStatus(StrEnum):
    """The international certificate database's vocabulary (DOMAIN.md, Vocabulary for exchange)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def _without_default(schema: dict) -> None:
    # The None default only marks "left out"; the document must not offer null as a value.
    schema.pop("default", None)


class CertificateCreate(InputModel):
    """A certificate to register. ``number`` is checked by the scheme's rule: CCC 16 digits
    (issue year, body code, product category, serial) or 12 for older ones; management-system
    and voluntary numbers leniently (6–40 digits, capitals, ``-`` or ``/``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scheme": "ccc",
                    "number": "2016010901123456",
                    "body_id": 12,
                    "holder_id": 3401,
                    "product_ids": [88120],
                    "auditor_ids": [501, 502],
                    "issued_on": "2016-03-01",
                    "scope": "电动自行车用充电器 型号 XH-36V",
                }
            ]
        }
    )

    scheme: CertificateScheme
    number: NumberText = Field(description="Certificate number (证书编号), checked per scheme")
    body_id: EntityId = Field(description="The issuing certification body (must be approved)")
    holder_id: EntityId = Field(description="The holder (获证企业), an active enterprise")
    product_ids: list[EntityId] = Field(
        default_factory=list, max_length=500, description="Certified products, all of the holder"
    )
    auditor_ids: list[EntityId] = Field(
        default_factory=list, max_length=100, description="The auditors who audited for it"
    )
    issued_on: LegalDate
    expires_on: LegalDate | None = Field(
        default=None,
        description=(
            "Last day of validity, after issued_on. Left out, the scheme's default validity applies "
            "(CCC: 5 years, from services/registry/data/certificate-validity.csv); a scheme without "
            "one must name it."
        ),
    )
    scope: ScopeText = Field(default="", description="The certified scope (认证范围)")
    bureau_id: EntityId | None = Field(
        default=None, description="The bureau keeping the record (in scope); the principal's own by default"
    )

    @field_validator("number")
    @classmethod
    def _number_by_scheme(cls, value: str, info: ValidationInfo) -> str:
        scheme = info.data.get("scheme")
        if scheme is None:  # the scheme itself is wrong and reported
            return value
        try:
            return certificate_number(scheme.value, value)
        except IdentifierError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("expires_on")
    @classmethod
    def _after_issue(cls, value: date | None, info: ValidationInfo) -> date | None:
        issued_on = info.data.get("issued_on")
        if value is not None and issued_on is not None and value <= issued_on:
            raise ValueError("expires_on must be after issued_on")
        return value

    @field_validator("product_ids", "auditor_ids")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("an id is named twice")
        return value


class CertificateUpdate(InputModel):
    """A correction of the certified scope or the expiry date. The status changes only by
    its steps (``POST …/status-changes``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"expires_on": "2026-02-28"}]})

    scope: ScopeText = Field(default=None, json_schema_extra=_without_default)
    expires_on: LegalDate = Field(default=None, json_schema_extra=_without_default)


class StatusChangeCreate(InputModel):
    """One step of a certificate's status; who and when are taken from the request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "step": "suspend",
                    "reason": "监督抽查不合格，责令整改",
                    "case_ref": "浙质监罚〔2008〕12号",
                    "suspended_until": "2008-12-31",
                }
            ]
        }
    )

    step: CertificateStep
    reason: ReasonText = Field(description="Why (required): the finding or decision")
    case_ref: CaseRef | None = Field(default=None, description="The enforcement case that caused it, if one")
    suspended_until: LegalDate | None = Field(
        default=None, description="For suspend only: when the suspension ends unless lifted"
    )

    @field_validator("suspended_until")
    @classmethod
    def _only_for_suspend(cls, value: date | None, info: ValidationInfo) -> date | None:
        step = info.data.get("step")
        if value is not None and step is not None and step != CertificateStep.SUSPEND:
            raise ValueError("suspended_until is given only with the suspend step")
        return value


class CertifiedProduct(BaseModel):
    id: int
    name: str
    category_code: str
    model: str


class CertifyingAuditor(BaseModel):
    id: int
    registration_number: str
    name: str


class CertificateSummary(BaseModel):
    """A certificate as listed; the computed conditions are as of today (Asia/Shanghai)."""

    id: int
    number: str
    scheme: CertificateScheme
    status: CertificateStatus
    exchange_status: ExchangeStatus = Field(
        description="The status in the exchange vocabulary: active, suspended, withdrawn, cancelled, "
        "or expired for a valid certificate past its expiry"
    )
    expired: bool = Field(description="Valid but past expires_on: leads to cancellation (not a state)")
    surveillance_due_on: date | None = Field(
        description="When the next surveillance audit is due, for schemes with surveillance rules"
    )
    surveillance_overdue: bool = Field(description="Valid and the surveillance period has passed")
    renewal_window_open: bool = Field(description="Renewal may be applied for (CCC: the last 90 days)")
    body_id: int
    holder_id: int
    holder_name: str
    division_code: str | None
    issued_on: date
    expires_on: date
    last_surveillance_on: date | None
    suspended_until: date | None
    bureau_id: int
    version: int
    status_changed_at: datetime
    updated_at: datetime


class CertificateRead(CertificateSummary):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1001,
                    "number": "2016010901123456",
                    "scheme": "ccc",
                    "status": "valid",
                    "exchange_status": "active",
                    "expired": False,
                    "surveillance_due_on": None,
                    "surveillance_overdue": False,
                    "renewal_window_open": False,
                    "body_id": 12,
                    "holder_id": 3401,
                    "holder_name": "杭州某电器有限公司",
                    "division_code": "330106",
                    "scope": "电动自行车用充电器 型号 XH-36V",
                    "issued_on": "2016-03-01",
                    "expires_on": "2021-02-28",
                    "last_surveillance_on": None,
                    "suspended_until": None,
                    "bureau_id": 7,
                    "bureau_path": "1.7.",
                    "products": [{"id": 88120, "name": "充电器", "category_code": "0901", "model": "XH-36V"}],
                    "auditors": [{"id": 501, "registration_number": "2016-N1QMS-1234567", "name": "王五"}],
                    "version": 1,
                    "status_changed_at": "2016-03-01T02:00:00Z",
                    "created_at": "2016-03-01T02:00:00Z",
                    "updated_at": "2016-03-01T02:00:00Z",
                }
            ]
        }
    )

    scope: str
    bureau_path: str
    products: list[CertifiedProduct]
    auditors: list[CertifyingAuditor]
    created_at: datetime


class StatusChangeRead(BaseModel):
    """One step of the status history (状态变更记录): who, when, why, and the case if one caused it."""

    id: int
    certificate_id: int
    step: str = Field(description="issue (the registration), suspend, restore, revoke or cancel")
    from_status: CertificateStatus | None
    to_status: CertificateStatus
    reason: str
    case_ref: str | None
    suspended_until: date | None
    decision_event_id: str | None = Field(description="The enforcement decision event applied, if one")
    actor_kind: str
    actor_id: str
    actor_bureau_id: int | None
    request_id: str | None
    changed_at: datetime
