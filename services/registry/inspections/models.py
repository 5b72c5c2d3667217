"""Tables of the supervision body's inspections (监督检查)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Index, String
from sqlmodel import Field

from services.registry.base import (
    RegistryModel,
    fk_column,
    id_column,
    instant_column,
    link_column,
    path_prefix_index,
)


class InspectionTarget(StrEnum):
    BODY = "body"
    AUDITOR = "auditor"
    ENTERPRISE = "enterprise"
    CERTIFICATE = "certificate"
    PRODUCT = "product"


class InspectionResult(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"  # becomes a lead for the enforcement body


class Inspection(RegistryModel, table=True):
    __table_args__ = (
        path_prefix_index("inspection"),
        Index("ix_inspection_target", "target_type", "target_id"),
    )

    id: int | None = id_column()
    bureau_id: int = fk_column("bureau.id", index=False)
    bureau_path: str = Field(max_length=512)
    target_type: InspectionTarget = Field(sa_type=String(16))
    target_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    inspected_on: date = Field(sa_type=Date)
    findings: str = Field(max_length=4000)
    result: InspectionResult = Field(sa_type=String(16))
    referral_event_id: str | None = Field(default=None, max_length=36)
    recorded_by: str = Field(max_length=64)
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class InspectionOfficer(RegistryModel, table=True):
    """An officer who carried out an inspection (at least two per inspection)."""

    __tablename__ = "inspection_officer"

    inspection_id: int = link_column("inspection.id", cascade=True)
    officer_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("officer.id"), primary_key=True, index=True)
    )
