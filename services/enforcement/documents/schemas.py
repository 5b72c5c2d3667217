"""Request and response models of the case documents (inputs forbid unknown fields)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, field_validator

from services.common.types import InputModel
from services.enforcement.documents.models import DocumentKind
from services.enforcement.documents.rendering import template_errors

# A document prefix (文号前缀): CJK ideographs, ASCII letters and digits; never the brackets or the
# 号 that the number itself adds (浙质监罚字 → 浙质监罚字〔2008〕12号).
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9\u3400-\u4dbf\u4e00-\u9fff]{1,16}")
PREFIX_FORBIDDEN = "〔〕号"


class DocumentPrefixUpdate(InputModel):
    prefix: str = Field(
        description="1–16 Chinese characters, ASCII letters or digits; not 〔, 〕 or 号",
        examples=["浙质监罚字"],
        pattern=r"^[A-Za-z0-9\u3400-\u4dbf\u4e00-\u9fff]{1,16}$",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if any(c in PREFIX_FORBIDDEN for c in value):
            raise ValueError("the prefix may not hold 〔, 〕 or 号: the case number adds them")
        if not PREFIX_PATTERN.fullmatch(value):
            raise ValueError("write 1–16 Chinese characters, ASCII letters or digits, nothing else")
        return value


class DocumentPrefixRead(BaseModel):
    bureau_id: int
    prefix: str
    is_default: bool = Field(description="True while the bureau has set no prefix of its own")
    example: str = Field(
        description="How a case number of the bureau reads", examples=["浙质监罚字〔2026〕1号"]
    )


TemplateTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class DocumentTemplateUpdate(InputModel):
    """A new version of a document's template: plain text with ``{placeholder}`` fields."""

    title: TemplateTitle = Field(examples=["行政处罚决定书"])
    body: str = Field(
        min_length=1,
        max_length=20000,
        description="Plain text, one paragraph a line, with `{placeholder}` fields of `placeholders`; "
        "`{{` and `}}` for braces",
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = Field(
        default="", description="Why the text changed (e.g. the regulation it follows)"
    )

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        errors = template_errors(value)
        if errors:
            raise ValueError("; ".join(errors))
        return value


class DocumentTemplateRead(BaseModel):
    kind: DocumentKind
    version: int
    current: bool = Field(description="The newest version: the one documents are rendered from")
    title: str
    body: str
    note: str
    created_by: str
    created_at: datetime


class DocumentTemplates(BaseModel):
    templates: list[DocumentTemplateRead]
    placeholders: dict[str, str] = Field(description="Every field a template may name, with what it holds")


class CaseDocument(BaseModel):
    """One numbered document of a case, and whether the case's state allows it yet."""

    kind: DocumentKind
    title: str
    available: bool
    condition: str = Field(description="When the document becomes available")
    template_version: int | None = Field(description="The template version it is rendered from now")
    file_name: str
    href: str | None = Field(description="Where to fetch the DOCX, when available")
