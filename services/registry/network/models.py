"""Tables of the bureau network: divisions, bureaus, bodies, posts and officers."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from services.common.db import utcnow
from services.registry.base import RegistryModel


class DivisionLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


class BureauLevel(StrEnum):
    NATIONAL = "national"
    PROVINCIAL = "provincial"  # incl. directly-under entry-exit bureaus (Ningbo)
    CITY = "city"
    BRANCH = "branch"  # entry-exit branch bureau (分支局)
    COUNTY = "county"


class BureauSystem(StrEnum):
    NATIONAL = "national"  # the national regulator itself
    ENTRY_EXIT = "entry_exit"  # entry-exit inspection and quarantine (出入境检验检疫)
    QUALITY_SUPERVISION = "quality_supervision"  # quality and technical supervision (质量技术监督)


class PilotRole(StrEnum):
    NONE = "none"
    PROVINCIAL = "provincial"  # one of the 16 provincial pilot units
    GRASSROOTS = "grassroots"  # the grassroots pilot unit a provincial unit named


class BodyKind(StrEnum):
    SUPERVISION = "supervision"  # certification supervision body (认证监管机构)
    ENFORCEMENT = "enforcement"  # dedicated enforcement body (专职执法机构)
    LEGAL = "legal"  # legal-affairs body (法制工作机构)


NATIONAL_BUREAU_ID = 1  # the root of the tree; its path is "1."


def _created() -> datetime:
    return utcnow()


class Division(RegistryModel, table=True):
    """An administrative division of GB/T 2260 (行政区划代码)."""

    code: str = Field(primary_key=True, max_length=6)
    name: str = Field(max_length=64)
    level: DivisionLevel = Field(sa_type=String(16))
    parent_code: str | None = Field(default=None, max_length=6, index=True)
    revision: int


class Bureau(RegistryModel, table=True):
    """A bureau of the three-level network (national → provincial → city / branch → county)."""

    __table_args__ = (
        UniqueConstraint("parent_id", "name", name="uq_bureau_parent_id_name"),
        Index("ix_bureau_path_prefix", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    parent_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("bureau.id"), index=True)
    )
    path: str = Field(max_length=512, unique=True)
    name: str = Field(max_length=128)
    level: BureauLevel = Field(sa_type=String(16))
    system: BureauSystem = Field(sa_type=String(24))
    division_code: str | None = Field(default=None, foreign_key="division.code", max_length=6)
    pilot: PilotRole = Field(default=PilotRole.NONE, sa_type=String(16))
    version: int = 1
    created_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))


class BureauBody(RegistryModel, table=True):
    """One of the three bodies of a bureau."""

    __tablename__ = "bureau_body"
    __table_args__ = (UniqueConstraint("bureau_id", "kind", name="uq_bureau_body_bureau_id_kind"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    bureau_id: int = Field(sa_column=Column(BigInteger, ForeignKey("bureau.id"), nullable=False))
    kind: BodyKind = Field(sa_type=String(16))
    name: str = Field(max_length=128)


class Post(RegistryModel, table=True):
    """A post (岗位) of a body, to which duties and authority are bound.

    Under the enforcement responsibility system (执法责任制) the post also carries the steps
    of the administrative penalty procedure its holders may take (``steps``). The codes are
    the enforcement service's; the registry keeps them as data and checks only their shape.
    """

    __table_args__ = (UniqueConstraint("bureau_id", "name", name="uq_post_bureau_id_name"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    bureau_id: int = Field(sa_column=Column(BigInteger, ForeignKey("bureau.id"), nullable=False, index=True))
    body: BodyKind = Field(sa_type=String(16))
    name: str = Field(max_length=128)
    duties: str = Field(default="", max_length=2000)
    steps: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(String(48)), nullable=False, server_default=text("'{}'")),
    )
    version: int = 1
    created_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))


class Officer(RegistryModel, table=True):
    """An officer of a bureau; enforcement officers hold an enforcement credential (执法证)."""

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    bureau_id: int = Field(sa_column=Column(BigInteger, ForeignKey("bureau.id"), nullable=False, index=True))
    body: BodyKind = Field(sa_type=String(16))
    post_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("post.id")))
    name: str = Field(max_length=64)
    credential_number: str | None = Field(default=None, max_length=32, unique=True)
    active: bool = True
    version: int = 1
    created_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))


class PilotDesignation(RegistryModel, table=True):
    """A provincial pilot unit's naming of its one grassroots pilot unit (基层试点单位)."""

    __tablename__ = "pilot_designation"
    __table_args__ = (
        Index(
            "uq_pilot_designation_current",
            "provincial_bureau_id",
            unique=True,
            postgresql_where=text("withdrawn_on IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    provincial_bureau_id: int = Field(sa_column=Column(BigInteger, ForeignKey("bureau.id"), nullable=False))
    grassroots_bureau_id: int = Field(sa_column=Column(BigInteger, ForeignKey("bureau.id"), nullable=False))
    reported_on: date = Field(sa_type=Date)
    withdrawn_on: date | None = Field(default=None, sa_type=Date)
    withdrawal_reason: str | None = Field(default=None, max_length=2000)
    version: int = 1
    created_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=_created, sa_type=DateTime(timezone=True))
