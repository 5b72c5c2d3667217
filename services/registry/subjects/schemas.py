"""Request and response models of certified enterprises and their products."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.common.types import EntityId, InputModel
from services.registry.certification.identifiers import CreditCode, OrgCode
from services.registry.network.schemas import DivisionCode, Name
from services.registry.subjects.models import EnterpriseStatus


def _without_default(schema: dict) -> None:
    # The None default only marks "left out"; the document must not offer null as a value.
    schema.pop("default", None)


Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]
# A CCC product category (4 digits) or a voluntary scheme's code.
CategoryCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9A-Z]{2,8}$")]
ProductModel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Trademark = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]

ENTERPRISE_EXAMPLE = {
    "credit_code": "91330100MA27XK1C69",
    "name": "杭州示例电器有限公司",
    "division_code": "330100",
    "address": "浙江省杭州市西湖区文三路 1 号",
}


# --- enterprises ----------------------------------------------------------------


class EnterpriseCreate(InputModel):
    """A certified enterprise (获证企业), by its unified social credit code or, for older
    records, its 9-character organisation code. Both may be given when they agree (the
    organisation code is characters 9–17 of the credit code)."""

    model_config = ConfigDict(json_schema_extra={"examples": [ENTERPRISE_EXAMPLE]})

    credit_code: CreditCode | None = Field(
        default=None, description="Unified social credit code (统一社会信用代码, GB 32100)"
    )
    org_code: OrgCode | None = Field(
        default=None,
        description="Organisation code (组织机构代码, GB 11714), for records without a credit code",
    )
    name: Name
    division_code: DivisionCode | None = Field(default=None, description="GB/T 2260 code of its seat")
    address: Address = ""
    bureau_id: EntityId | None = Field(
        default=None, description="Bureau keeping the record (in scope); the principal's own if left out"
    )


class EnterpriseUpdate(InputModel):
    """Fields to change. ``credit_code`` upgrades a record kept under its organisation
    code (the code must embed it); a credit code once recorded does not change.
    ``org_code`` corrects a record that has no credit code. ``division_code`` may be
    set to null."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"credit_code": "91330100MA27XK1C69"}, {"address": "新地址 8 号"}]}
    )

    credit_code: CreditCode = Field(default=None, json_schema_extra=_without_default)
    org_code: OrgCode = Field(default=None, json_schema_extra=_without_default)
    name: Name = Field(default=None, json_schema_extra=_without_default)
    division_code: DivisionCode | None = None
    address: Address = Field(default=None, json_schema_extra=_without_default)


class EnterpriseMerge(InputModel):
    """Fold a duplicate record of the same enterprise into this one (the survivor)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"duplicate_id": 41}]})

    duplicate_id: EntityId = Field(description="The record to fold in; it ends merged into this one")


class EnterpriseRead(BaseModel):
    id: int
    credit_code: str | None
    org_code: str | None = Field(description="The organisation code, given or embedded in the credit code")
    name: str
    division_code: str | None
    address: str
    status: EnterpriseStatus
    merged_into_id: int | None = Field(
        description="Merged: the record that carries this enterprise now (follow it)"
    )
    bureau_id: int
    bureau_path: str
    version: int
    created_at: datetime
    updated_at: datetime
    certificate_count: int | None = Field(
        default=None, description="Certificates held (on the single-record read only)"
    )
    product_count: int | None = Field(
        default=None, description="Products recorded (on the single-record read only)"
    )


# --- products ---------------------------------------------------------------------


class ProductCreate(InputModel):
    """A product (产品) of a holder, as certified: category and model."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "holder_id": 42,
                    "name": "家用电冰箱",
                    "category_code": "0701",
                    "model": "BCD-520W",
                    "trademark": "示例",
                }
            ]
        }
    )

    holder_id: EntityId = Field(description="The enterprise making the product (active, not merged)")
    name: Name
    category_code: CategoryCode = Field(description="CCC product category (4 digits) or a voluntary code")
    model: ProductModel = Field(description="Model and specification (型号规格)")
    trademark: Trademark = ""
    bureau_id: EntityId | None = Field(
        default=None, description="Bureau keeping the record (in scope); the principal's own if left out"
    )


class ProductUpdate(InputModel):
    """Fields to change; the holder changes only when enterprises are merged."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"model": "BCD-520WP"}]})

    name: Name = Field(default=None, json_schema_extra=_without_default)
    category_code: CategoryCode = Field(default=None, json_schema_extra=_without_default)
    model: ProductModel = Field(default=None, json_schema_extra=_without_default)
    trademark: Trademark = Field(default=None, json_schema_extra=_without_default)


class ProductRead(BaseModel):
    id: int
    holder_id: int
    name: str
    category_code: str
    model: str
    trademark: str
    bureau_id: int
    bureau_path: str
    version: int
    created_at: datetime
    updated_at: datetime
