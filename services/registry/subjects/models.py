"""Tables of the certified subjects: enterprises (holders) and their products."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, text
from sqlmodel import Field

from services.registry.base import (
    RegistryModel,
    fk_column,
    id_column,
    instant_column,
    path_prefix_index,
)


class EnterpriseStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"  # a duplicate record folded into another; references moved there


class Enterprise(RegistryModel, table=True):
    """A certified enterprise (获证企业), by unified social credit code or an older organisation code."""

    __table_args__ = (
        # The organisation code is characters 9–17 of the credit code: one enterprise under both codes.
        Index("ix_enterprise_embedded_org_code", text("substr(credit_code, 9, 9)")),
        Index(
            "ix_enterprise_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        ),
        path_prefix_index("enterprise"),
    )

    id: int | None = id_column()
    credit_code: str | None = Field(default=None, max_length=18, unique=True)
    org_code: str | None = Field(default=None, max_length=9, unique=True)
    name: str = Field(max_length=128)
    division_code: str | None = Field(default=None, max_length=6, index=True)
    address: str = Field(default="", max_length=256)
    status: EnterpriseStatus = Field(default=EnterpriseStatus.ACTIVE, sa_type=String(16))
    merged_into_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("enterprise.id"), nullable=True)
    )
    bureau_id: int = fk_column("bureau.id", index=False)
    bureau_path: str = Field(max_length=512)
    import_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()


class Product(RegistryModel, table=True):
    """A product of a holder (产品): category and model as certified."""

    __table_args__ = (
        Index("ix_product_holder_id_id", "holder_id", "id"),
        Index(
            "ix_product_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        ),
    )

    id: int | None = id_column()
    holder_id: int = fk_column("enterprise.id", index=False)
    name: str = Field(max_length=128)
    category_code: str = Field(
        max_length=8, index=True
    )  # CCC product category (4 digits) or a voluntary code
    model: str = Field(max_length=256)  # 型号规格
    trademark: str = Field(default="", max_length=64)
    bureau_id: int = fk_column("bureau.id", index=False)
    bureau_path: str = Field(max_length=512)
    import_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    version: int = 1
    created_at: datetime = instant_column()
    updated_at: datetime = instant_column()
