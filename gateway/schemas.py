"""Request and response models of the gateway's own API (tokens and accounts)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from gateway.models import AccountKind
from services.common.auth import Role
from services.common.types import EntityId, Flag, InputModel

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]
Password = Annotated[str, StringConstraints(min_length=12, max_length=128)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)]

# Roles an administrator may grant, by account kind; "service" is only seeded.
OFFICER_ROLES = frozenset({Role.ADMIN, Role.HEAD, Role.SUPERVISION, Role.ENFORCEMENT, Role.LEGAL})
# A body's role goes only to an officer of that body (separation of duties);
# administrator and bureau head are not bound to a body.
BODY_ROLES = frozenset({Role.SUPERVISION, Role.ENFORCEMENT, Role.LEGAL})
SYSTEM_ROLES = frozenset({Role.SYSTEM})
# Granted for one bureau: an officer moved to another loses them.
BUREAU_BOUND_ROLES = frozenset({Role.ADMIN, Role.HEAD})
# Separation of duties: pairs one account may not hold together.
ROLE_DUTIES = {
    Role.HEAD: "approve opening cases and penalty decisions",
    Role.ADMIN: "grant roles and manage accounts",
    Role.LEGAL: "review cases in the legal review",
}
INCOMPATIBLE_ROLES = ((Role.HEAD, Role.ADMIN), (Role.HEAD, Role.LEGAL))


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires")


class OfficerAccountCreate(InputModel):
    username: Username
    password: Password
    officer_id: EntityId = Field(description="The registry officer this login belongs to")
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    display_name: DisplayName = ""


class SystemAccountCreate(InputModel):
    client_id: Username
    bureau_id: EntityId = Field(description="The bureau whose subtree the system acts in")
    display_name: DisplayName = ""


class AccountUpdate(InputModel):
    active: Flag | None = None
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=len(Role))
    password: Password | None = None
    display_name: DisplayName | None = None


class OfficerChange(InputModel):
    officer_id: EntityId = Field(description="The registry officer that changed")


class AccountRead(BaseModel):
    id: uuid.UUID
    username: str
    kind: AccountKind
    display_name: str
    officer_id: int | None
    bureau_id: int
    bureau_path: str
    body: str | None
    roles: list[str]
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class SystemAccountCreated(AccountRead):
    client_secret: str = Field(description="Shown once; store it in the provincial system's vault")
