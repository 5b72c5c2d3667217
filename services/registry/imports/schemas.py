"""Rows of a bulk sync file (批量同步) and the summaries the API answers.

A row names what it refers to by natural keys (credit or organisation code,
approval number, product model), never by the registry's ids, so a provincial
system can send what it keeps without reading ours first. Identifier errors
carry the rule's name as their ``type`` (``credit_code``, ``certificate_number``…).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationInfo, field_validator
from pydantic import model_validator as model_check
from pydantic_core import PydanticCustomError

from services.common.types import InputModel, has_nul
from services.registry.certification import identifiers
from services.registry.certification.identifiers import IdentifierError
from services.registry.certification.models import CertificateScheme
from services.registry.imports.models import ImportFormat, ImportKind, ImportStatus


def _rule(check: Callable[[str], str], kind: str, cache: int = 0) -> AfterValidator:
    """A field checked by an identifier rule; a break is a field error whose type names the rule.

    ``cache``: how many valid values to remember — a file names the same holders and bodies
    on row after row."""
    if cache:
        check = functools.lru_cache(maxsize=cache)(check)

    def validate(value: str) -> str:
        try:
            return check(value)
        except IdentifierError as exc:
            raise PydanticCustomError(kind, str(exc)) from None

    return AfterValidator(validate)


CreditCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32),
    _rule(identifiers.credit_code, "credit_code", cache=8192),
]
OrgCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=16),
    _rule(identifiers.org_code, "org_code", cache=8192),
]
ApprovalNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32),
    _rule(identifiers.approval_number, "approval_number", cache=1024),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=128)]
DivisionCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]
CategoryCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Za-z.-]{1,8}$")]
Model = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Trademark = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Scope = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]

PRODUCT_MODELS_MAX = 200


class RowModel(InputModel):
    """A row of an upload. The reader has already refused rows holding the NUL character (it
    looks at the raw bytes once, ``context={"nul_checked": True}``); any other use checks here."""

    @model_check(mode="before")
    @classmethod
    def _no_nul(cls, data: Any, info: ValidationInfo) -> Any:
        if not (info.context and info.context.get("nul_checked")) and has_nul(data):
            raise ValueError("text may not contain the NUL character")
        return data


def _one_holder_code(credit: str | None, org: str | None, prefix: str = "") -> None:
    """At least one code; both only when they name the same enterprise."""
    if credit is None and org is None:
        raise PydanticCustomError(
            "enterprise_code_missing", f"Give {prefix}credit_code or {prefix}org_code (or both)."
        )
    if credit is not None and org is not None and identifiers.org_code_of(credit) != org:
        raise PydanticCustomError(
            "enterprise_codes_disagree",
            f"{prefix}org_code {org} is not the organisation code inside {prefix}credit_code {credit}.",
        )


class EnterpriseRow(RowModel):
    """A certified enterprise (获证企业), keyed by its unified social credit code (or, for an
    older record, its organisation code): a row for a code already registered updates it."""

    credit_code: CreditCode | None = Field(default=None, examples=["91330100MA2B3C4D5N"])
    org_code: OrgCode | None = Field(default=None, description="9 characters, older records")
    name: Name
    division_code: DivisionCode = Field(description="GB/T 2260 code of the enterprise's division")
    address: Address = ""

    @model_check(mode="after")
    def _codes(self) -> EnterpriseRow:
        _one_holder_code(self.credit_code, self.org_code)
        return self

    def identity(self) -> str:
        """The organisation code: the one identity an enterprise keeps under both codes."""
        return identifiers.org_code_of(self.credit_code) if self.credit_code else str(self.org_code)


class _HolderRef(RowModel):
    holder_credit_code: CreditCode | None = None
    holder_org_code: OrgCode | None = None

    @model_check(mode="after")
    def _holder(self) -> Any:
        _one_holder_code(self.holder_credit_code, self.holder_org_code, "holder_")
        return self


class ProductRow(_HolderRef):
    """A product (产品) of a holder, keyed by the holder and its model: a row for a model the
    holder already has updates that product."""

    name: Name
    category_code: CategoryCode = Field(description="CCC product category (4 digits) or a voluntary code")
    model: Model = Field(description="Model and specification (型号规格)")
    trademark: Trademark = ""


class CertificateRow(_HolderRef):
    """A certificate (认证证书), keyed by scheme and number: a row for a number already
    registered updates it (its status is changed only through its transitions)."""

    scheme: CertificateScheme
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    body_approval_number: ApprovalNumber = Field(description="The issuing body's CNCA-R-YYYY-NNN")
    issued_on: date
    expires_on: date
    product_models: list[Model] | None = Field(
        default=None,
        max_length=PRODUCT_MODELS_MAX,
        description="Models of the holder's products the certificate covers; when given, the "
        "certificate covers exactly these (when absent, its products are left as they are)",
    )
    scope: Scope = Field(description="The certified scope (认证范围)")

    @field_validator("number", mode="after")
    @classmethod
    def _number_by_scheme(cls, value: str, info: ValidationInfo) -> str:
        scheme = info.data.get("scheme")
        if scheme is None:  # the scheme's own error is reported
            return value
        try:
            return identifiers.certificate_number(scheme, value)
        except IdentifierError as exc:
            raise PydanticCustomError("certificate_number", str(exc)) from None

    @field_validator("expires_on", mode="after")
    @classmethod
    def _after_issue(cls, value: date, info: ValidationInfo) -> date:
        issued = info.data.get("issued_on")
        if issued is not None and value <= issued:
            raise PydanticCustomError(
                "expiry_before_issue",
                "expires_on must be after issued_on ({issued})",
                {"issued": str(issued)},
            )
        return value

    def ccc_body_code(self) -> str | None:
        """The body code printed in a 16-digit CCC number (digits 5–6)."""
        # The number has passed its scheme's rule: 16 characters of a CCC number are digits.
        return self.number[4:6] if self.scheme is CertificateScheme.CCC and len(self.number) == 16 else None


ROW_MODELS: dict[ImportKind, type[RowModel]] = {
    ImportKind.ENTERPRISES: EnterpriseRow,
    ImportKind.PRODUCTS: ProductRow,
    ImportKind.CERTIFICATES: CertificateRow,
}
# CSV cells that hold a list, and what separates its items.
LIST_FIELDS = frozenset({"product_models"})
LIST_SEPARATOR = "|"


def csv_columns(kind: ImportKind) -> tuple[set[str], set[str]]:
    """(required, optional) CSV header names of a kind's rows."""
    fields = ROW_MODELS[kind].model_fields
    required = {name for name, f in fields.items() if f.is_required()}
    return required, set(fields) - required


# --- responses ---------------------------------------------------------------


class RowError(BaseModel):
    loc: str = Field(description="The field (CSV column) at fault; empty for the whole row")
    message: str
    type: str = Field(description="The rule broken, e.g. credit_code, unknown_body, duplicate_in_file")


class ImportRowErrorRead(BaseModel):
    row_number: int = Field(description="NDJSON: the line number; CSV: the record number after the header")
    errors: list[RowError]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "row_number": 2,
                    "errors": [
                        {
                            "loc": "holder_credit_code",
                            "message": "'91330100MA2B3C4D5E' is not a valid unified social credit code: "
                            "The number's checksum or check digit is invalid.",
                            "type": "credit_code",
                        }
                    ],
                }
            ]
        }
    }


class ImportBatchRead(BaseModel):
    id: int
    kind: ImportKind
    format: ImportFormat
    status: ImportStatus = Field(description="running while the file is read; completed or failed after")
    rows_total: int = Field(description="Rows read (blank lines not counted)")
    rows_written: int = Field(
        description="Rows that are in the registry as sent: inserted + updated + unchanged"
    )
    rows_failed: int = Field(description="Rows refused, each listed under /errors with its reasons")
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int = Field(description="Rows already registered exactly as sent: not rewritten")
    digest: str | None = Field(
        description="sha256 of the written rows in their normalised form, in file order"
    )
    bureau_id: int
    account: str
    started_at: datetime
    finished_at: datetime | None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 17,
                    "kind": "certificates",
                    "format": "ndjson",
                    "status": "completed",
                    "rows_total": 3,
                    "rows_written": 2,
                    "rows_failed": 1,
                    "rows_inserted": 1,
                    "rows_updated": 0,
                    "rows_unchanged": 1,
                    "digest": "9f2c…",
                    "bureau_id": 8,
                    "account": "zj-provincial-system",
                    "started_at": "2026-11-29T08:00:00Z",
                    "finished_at": "2026-11-29T08:00:01Z",
                }
            ]
        }
    }
