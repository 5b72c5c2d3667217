"""Tables of the certification chain: bodies, their personnel, certificates and activities."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from services.registry.base import (
    RegistryModel,
    fk_column,
    id_column,
    instant_column,
    link_column,
)


class BodyStatus(StrEnum):
    APPROVED = "approved"
    SUSPENDED = "suspended"  # business suspended for rectification (暂停)
    REVOKED = "revoked"  # approval revoked (撤销批准)
    EXPIRED = "expired"  # approval not renewed


class AuditorStatus(StrEnum):
    REGISTERED = "registered"
    SUSPENDED = "suspended"
    REVOKED = "revoked"  # qualification revoked: no re-registration for 5 years (art. 72)


class CertificateScheme(StrEnum):
    CCC = "ccc"  # compulsory product certification (强制性产品认证)
    QMS = "qms"  # quality management system (GB/T 19001)
    EMS = "ems"  # environmental management system (GB/T 24001)
    OHSMS = "ohsms"  # occupational health and safety (GB/T 45001)
    FSMS = "fsms"  # food safety management system
    VOLUNTARY = "voluntary"  # voluntary product certification (自愿性产品认证)


MANAGEMENT_SYSTEM_SCHEMES = frozenset(
    {CertificateScheme.QMS, CertificateScheme.EMS, CertificateScheme.OHSMS, CertificateScheme.FSMS}
)


# The date a valid certificate's surveillance period runs from (its last surveillance, else its
# issue), NULL where no surveillance rule applies: the schemes services/registry/data/
# surveillance-rules.csv names. Written as PostgreSQL prints it back, so that Alembic's
# comparison of the models with the migrations sees the index unchanged.
SURVEILLANCE_REFERENCE_SQL = (
    "(\nCASE\n"
    "    WHEN status::text = 'valid'::text AND (scheme::text = ANY (ARRAY[{schemes}])) "
    "THEN COALESCE(last_surveillance_on, issued_on)\n"
    "    ELSE NULL::date\n"
    "END)"
)
SURVEILLANCE_SCHEMES = ("ems", "fsms", "ohsms", "qms")


def surveillance_reference_sql(schemes=SURVEILLANCE_SCHEMES) -> str:
    return SURVEILLANCE_REFERENCE_SQL.format(schemes=", ".join(f"'{s}'::text" for s in sorted(schemes)))


class CertificateStatus(StrEnum):
    VALID = "valid"  # 有效
    SUSPENDED = "suspended"  # 暂停
    REVOKED = "revoked"  # 撤销
    CANCELLED = "cancelled"  # 注销


class ActivityKind(StrEnum):
    APPLICATION = "application"  # 认证申请
    AUDIT = "audit"  # 审核 / 检测
    DECISION = "decision"  # 认证决定
    SURVEILLANCE = "surveillance"  # 监督审核
    RECERTIFICATION = "recertification"  # 再认证


class ActivityResult(StrEnum):
    PENDING = "pending"
    CONFORMING = "conforming"
    NONCONFORMING = "nonconforming"
    GRANTED = "granted"
    REFUSED = "refused"


class CertificationBody(RegistryModel, table=True):
    """A certification body (认证机构) approved by the regulator."""

    __tablename__ = "certification_body"

    id: int | None = id_column()
    approval_number: str = Field(max_length=16, unique=True)  # CNCA-R-YYYY-NNN
    name: str = Field(max_length=128)
    credit_code: str | None = Field(default=None, max_length=18, unique=True)
    # Two-digit body code printed in CCC numbers (01 = China Quality Certification Centre).
    ccc_body_code: str | None = Field(default=None, max_length=2, unique=True)
    approved_on: date = Field(sa_type=Date)
    approval_expires_on: date = Field(sa_type=Date)
    approved_schemes: list[str] = Field(default_factory=list, sa_type=JSONB)
    ccc_designations: list[str] = Field(default_factory=list, sa_type=JSONB)  # CCC product categories
    status: BodyStatus = Field(default=BodyStatus.APPROVED, sa_type=String(16))
    bureau_id: int = fk_column("bureau.id")
    bureau_path: str = Field(max_length=512)
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class Auditor(RegistryModel, table=True):
    """Certification personnel (认证人员), registered with the national registration body."""

    __table_args__ = (
        Index(
            "ix_auditor_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        ),
    )

    id: int | None = id_column()
    registration_number: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=64)
    qualifications: list[str] = Field(default_factory=list, sa_type=JSONB)
    status: AuditorStatus = Field(default=AuditorStatus.REGISTERED, sa_type=String(16))
    status_changed_on: date | None = Field(default=None, sa_type=Date)
    bureau_id: int = fk_column("bureau.id")
    bureau_path: str = Field(max_length=512)
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class AuditorAffiliation(RegistryModel, table=True):
    """An auditor practising in a body; one open affiliation at a time (art. 62)."""

    __tablename__ = "auditor_affiliation"
    __table_args__ = (
        Index(
            "uq_auditor_affiliation_current",
            "auditor_id",
            unique=True,
            postgresql_where=text("ended_on IS NULL"),
        ),
    )

    id: int | None = id_column()
    auditor_id: int = fk_column("auditor.id")
    body_id: int = fk_column("certification_body.id")
    started_on: date = Field(sa_type=Date)
    ended_on: date | None = Field(default=None, sa_type=Date)
    created_at: datetime = instant_column()


class Certificate(RegistryModel, table=True):
    """A certificate (认证证书) issued by a body to a holder, for products or a management system."""

    __table_args__ = (
        Index("uq_certificate_scheme_number", "scheme", "number", unique=True),
        Index("ix_certificate_number", "number"),
        Index("ix_certificate_status_id", "status", "id"),
        Index("ix_certificate_body_id_id", "body_id", "id"),
        Index("ix_certificate_holder_id_id", "holder_id", "id"),
        Index("ix_certificate_division_code_id", "division_code", "id"),
        # Keyset lists by one filter: (filter, id) so a page is an index range read backwards.
        Index("ix_certificate_scheme_id", "scheme", "id"),
        Index("ix_certificate_bureau_id_id", "bureau_id", "id"),
        # Division prefixes: the province (2 digits) and city (4) of the holder's county code.
        Index("ix_certificate_province_id", text("substr(division_code, 1, 2)"), "id"),
        Index("ix_certificate_city_id", text("substr(division_code, 1, 4)"), "id"),
        # Surveillance overdue: the date the period runs from, only where a surveillance rule
        # applies (certificates/rules.py builds the same expression; a test compares them).
        Index(
            "ix_certificate_surveillance_due",
            text(surveillance_reference_sql()),
            "scheme",
        ),
        Index("ix_certificate_expires_on", "expires_on"),
        Index(
            "ix_certificate_holder_name_trgm",
            "holder_name",
            postgresql_using="gin",
            postgresql_ops={"holder_name": "gin_trgm_ops"},
        ),
        Index(
            "ix_certificate_bureau_path", "bureau_path", postgresql_ops={"bureau_path": "text_pattern_ops"}
        ),
    )

    id: int | None = id_column()
    number: str = Field(max_length=40)
    scheme: CertificateScheme = Field(sa_type=String(16))
    body_id: int = fk_column("certification_body.id", index=False)
    holder_id: int = fk_column("enterprise.id", index=False)
    # As printed on the certificate: the holder's name and division when it was issued.
    holder_name: str = Field(max_length=128)
    division_code: str | None = Field(default=None, max_length=6)
    scope: str = Field(default="", max_length=2000)  # the certified scope (认证范围)
    issued_on: date = Field(sa_type=Date)
    expires_on: date = Field(sa_type=Date)
    status: CertificateStatus = Field(default=CertificateStatus.VALID, sa_type=String(16))
    status_changed_at: datetime = instant_column()
    last_surveillance_on: date | None = Field(default=None, sa_type=Date)
    suspended_until: date | None = Field(default=None, sa_type=Date)  # while suspended, if set
    bureau_id: int = fk_column("bureau.id", index=False)
    bureau_path: str = Field(max_length=512)
    import_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class CertificateProduct(RegistryModel, table=True):
    __tablename__ = "certificate_product"

    certificate_id: int = link_column("certificate.id", cascade=True)
    product_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("product.id"), primary_key=True, index=True)
    )


class CertificateAuditor(RegistryModel, table=True):
    """The auditors who audited for a certificate."""

    __tablename__ = "certificate_auditor"

    certificate_id: int = link_column("certificate.id", cascade=True)
    auditor_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("auditor.id"), primary_key=True, index=True)
    )


class CertificateStatusChange(RegistryModel, table=True):
    """One step of a certificate's status history: who, when, why, and the case if one caused it."""

    __tablename__ = "certificate_status_change"

    id: int | None = id_column()
    certificate_id: int = fk_column("certificate.id")
    from_status: CertificateStatus | None = Field(default=None, sa_type=String(16))
    to_status: CertificateStatus = Field(sa_type=String(16))
    reason: str = Field(max_length=2000)
    case_ref: str | None = Field(default=None, max_length=64)
    suspended_until: date | None = Field(default=None, sa_type=Date)
    decision_event_id: str | None = Field(default=None, max_length=36)
    actor_kind: str = Field(max_length=16)
    actor_id: str = Field(max_length=64)
    actor_bureau_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    request_id: str | None = Field(default=None, max_length=128)
    changed_at: datetime = instant_column()


class CertificationActivity(RegistryModel, table=True):
    """A step of certification (认证活动): application, audit, decision, surveillance, recertification."""

    __tablename__ = "certification_activity"
    # Keyset pages (by id) of one certificate's, body's or holder's activities.
    __table_args__ = (
        Index("ix_certification_activity_certificate_id_id", "certificate_id", "id"),
        Index("ix_certification_activity_body_id_id", "body_id", "id"),
        Index("ix_certification_activity_holder_id_id", "holder_id", "id"),
    )

    id: int | None = id_column()
    kind: ActivityKind = Field(sa_type=String(16))
    body_id: int = fk_column("certification_body.id", index=False)
    holder_id: int = fk_column("enterprise.id", index=False)
    certificate_id: int | None = fk_column("certificate.id", nullable=True, index=False)
    auditor_ids: list[int] = Field(default_factory=list, sa_type=JSONB)
    performed_on: date = Field(sa_type=Date)
    result: ActivityResult = Field(sa_type=String(16))
    notes: str = Field(default="", max_length=2000)
    bureau_id: int = fk_column("bureau.id", index=False)
    bureau_path: str = Field(max_length=512)
    recorded_by: str = Field(max_length=64)
    created_at: datetime = instant_column()
