"""Tables of the case documents (执法文书): the templates, kept as data in versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from services.enforcement.base import EnforcementModel, id_column, instant_column


class DocumentKind(StrEnum):
    """The numbered documents of a case, each from its own template."""

    OPENING_APPROVAL = "opening_approval"  # 立案审批表
    PRIOR_NOTICE = "prior_notice"  # 行政处罚告知书
    DECISION = "decision"  # 行政处罚决定书


class DocumentTemplate(EnforcementModel, table=True):
    """One version of a document's template (文书式样): a new text is a new row, old ones are kept,
    and a document is rendered from the newest version of its kind."""

    __tablename__ = "document_template"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_document_template_kind_version"),)

    id: int | None = id_column()
    kind: DocumentKind = Field(sa_type=String(24))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    title: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_by: str = Field(max_length=64)
    created_at: datetime = instant_column()
