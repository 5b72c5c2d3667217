"""Gateway tables: the accounts that may obtain tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, DateTime, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from services.common.audit import audit_table
from services.common.auth import PrincipalKind
from services.common.db import new_model_registry, utcnow
from services.common.idempotency import idempotency_table


class GatewayModel(SQLModel, registry=new_model_registry()):
    pass


class AccountKind(StrEnum):
    OFFICER = PrincipalKind.OFFICER.value  # logs in with a password
    SYSTEM = PrincipalKind.SYSTEM.value  # provincial information system, client credentials
    SERVICE = PrincipalKind.SERVICE.value  # one of the platform's services, client credentials


class Account(GatewayModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Login name of an officer, or the client_id of a system or service.
    username: str = Field(max_length=64, unique=True)
    kind: AccountKind = Field(sa_type=String(16))
    secret_hash: str = Field(max_length=256)  # argon2 hash of the password or client secret
    display_name: str = Field(default="", max_length=128)
    officer_id: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True))
    bureau_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    bureau_path: str = Field(max_length=512, index=True)
    body: str | None = Field(default=None, max_length=16)
    roles: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(32)), nullable=False))
    active: bool = True
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    last_login_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


AuditEntry = audit_table(GatewayModel.metadata)
IdempotencyKey = idempotency_table(GatewayModel.metadata)
