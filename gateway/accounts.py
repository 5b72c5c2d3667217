"""Account rules: who may log in, what their tokens say, who may manage whom.

An administrator manages accounts of its bureau's subtree only; the officer
or bureau an account is bound to is read from the registry with the
administrator's own token, so the registry's scope rules apply unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway import passwords
from gateway.models import Account, AccountKind
from gateway.schemas import (
    BODY_ROLES,
    BUREAU_BOUND_ROLES,
    INCOMPATIBLE_ROLES,
    OFFICER_ROLES,
    ROLE_DUTIES,
    SYSTEM_ROLES,
    AccountUpdate,
    OfficerAccountCreate,
    SystemAccountCreate,
)
from services.common.audit import AuditLog
from services.common.auth import Principal, PrincipalKind, Role
from services.common.client import ServiceClient
from services.common.concurrency import check_if_match
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
)


class OAuthError(ProblemError):
    """An OAuth 2.0 token error (RFC 6749 §5.2), also carried as a problem document."""

    status, slug, title = 400, "oauth-invalid-grant", "The token request was refused"

    def __init__(self, error: str, detail: str, status: int = 400) -> None:
        headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
        super().__init__(
            detail,
            slug=f"oauth-{error.replace('_', '-')}",
            headers=headers,
            error=error,
            error_description=detail,
        )
        self.status = status


NATIONAL_BUREAU_ID = 1
REGISTRY_PREFIX = "/api/v1/registry"
NATIONAL_PATH = "1."
# The gateway itself, when it reads the registry on its own account (an officer's
# standing at login, or after the registry reports a change).
GATEWAY_PRINCIPAL = Principal(
    account_id="gateway",
    kind=PrincipalKind.SERVICE,
    bureau_id=NATIONAL_BUREAU_ID,
    bureau_path=NATIONAL_PATH,
    roles=frozenset({Role.SERVICE}),
)


def principal_of(account: Account) -> Principal:
    return Principal(
        account_id=str(account.id),
        kind=PrincipalKind(account.kind),
        bureau_id=account.bureau_id,
        bureau_path=account.bureau_path,
        roles=frozenset(account.roles),
        body=account.body,
        officer_id=account.officer_id,
        account_version=account.version,
    )


async def find_by_username(session: AsyncSession, username: str) -> Account | None:
    return (await session.exec(select(Account).where(Account.username == username))).first()


async def authenticate(session: AsyncSession, username: str, secret: str, kinds: set[AccountKind]) -> Account:
    """The account if the secret matches and it may log in; a refusal otherwise."""
    account = await find_by_username(session, username)
    usable = account is not None and account.kind in kinds
    matches = await passwords.verify_secret(account.secret_hash if usable else None, secret)
    client_flow = AccountKind.OFFICER not in kinds
    if not (usable and matches):
        if client_flow:
            raise OAuthError("invalid_client", "Unknown client or wrong client secret.", status=401)
        raise OAuthError("invalid_grant", "Wrong username or password.")
    if not account.active:
        raise OAuthError(
            "invalid_client" if client_flow else "invalid_grant",
            "The account is disabled.",
            status=401 if client_flow else 400,
        )
    account.last_login_at = utcnow()
    return account


# --- administration --------------------------------------------------------


async def account_in_scope(session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> Account:
    account = await session.get(Account, account_id, with_for_update=True)
    if account is None or not principal.in_scope(account.bureau_path):
        raise NotFound(f"Account {account_id} not found.")
    return account


async def list_accounts(
    session: AsyncSession, principal: Principal, kind: AccountKind | None, cursor: str | None, limit: int
) -> tuple[list[Account], str | None]:
    after = decode_cursor(cursor, str)
    query = (
        select(Account)
        .where(Account.bureau_path.startswith(principal.bureau_path, autoescape=True))  # type: ignore[attr-defined]
        .order_by(Account.username)
        .limit(limit + 1)
    )
    if kind is not None:
        query = query.where(Account.kind == kind)
    if after is not None:
        query = query.where(Account.username > after[0])
    rows = list((await session.exec(query)).all())
    return make_page(rows, limit, lambda a: [a.username])


class RegistryOfficers:
    """The registry's word on an officer, read as the gateway itself.

    An officer's login stands only while the registry keeps the officer active,
    and its bureau and body are the registry's.
    """

    def __init__(self, registry: ServiceClient) -> None:
        self._registry = registry  # authenticates with the gateway's own signed token

    async def get(self, officer_id: int) -> dict[str, Any] | None:
        """The officer as the registry has it, or None if it has no such officer."""
        try:
            return await self._registry.get(f"{REGISTRY_PREFIX}/officers/{officer_id}")
        except NotFound:
            return None


def follow_officer(account: Account, officer: dict[str, Any] | None) -> dict[str, Any]:
    """Bring an officer's login in line with the registry; what changed (empty: nothing).

    A move takes the login with it: it keeps only the roles that still fit
    (its new body's role; administrator and head were granted for the old
    bureau). Any change, a deactivation included, bumps the account's version,
    which ends the tokens issued before it.
    """
    if officer is None or not officer.get("active", False):
        changes: dict[str, Any] = {"officer_active": False}
    else:
        changes = {}
        moved = officer["bureau_id"] != account.bureau_id or officer["bureau_path"] != account.bureau_path
        if moved:
            changes |= {"bureau_id": officer["bureau_id"], "bureau_path": officer["bureau_path"]}
        if officer["body"] != account.body:
            changes["body"] = officer["body"]
        if changes:
            dropped = (BUREAU_BOUND_ROLES if moved else frozenset()) | (BODY_ROLES - {officer["body"]})
            roles = sorted(r for r in account.roles if r not in dropped)
            if roles != sorted(account.roles):
                changes["roles"] = roles
            for key, value in changes.items():
                setattr(account, key, value)
    if changes:
        account.version += 1
        account.updated_at = utcnow()
    return changes


async def _record_follow(session: AsyncSession, audit: AuditLog, account: Account, changes: dict) -> None:
    await session.flush()
    await audit.record(session, GATEWAY_PRINCIPAL, "account.followed_officer", "account", account.id, changes)


async def confirm_officer(
    session: AsyncSession, audit: AuditLog, officers: RegistryOfficers, account: Account
) -> None:
    """At login: the officer must be active in the registry, and the login follows its moves."""
    officer = await officers.get(account.officer_id) if account.officer_id is not None else None
    if officer is None or not officer.get("active", False):
        raise OAuthError("invalid_grant", "The officer is not active in the registry.")
    changes = follow_officer(account, officer)
    if changes:
        await _record_follow(session, audit, account, changes)


async def follow_registry(
    session: AsyncSession, audit: AuditLog, officers: RegistryOfficers, officer_id: int
) -> Account | None:
    """On a resync notice: the officer's login, brought in line with what the registry says now."""
    return await apply_officer_standing(session, audit, officer_id, await officers.get(officer_id))


# Built once: the gateway's worker runs it for every officer change the registry sends.
_OFFICER_LOGIN = select(Account).where(Account.officer_id == bindparam("officer_id")).with_for_update()


async def apply_officer_standing(
    session: AsyncSession, audit: AuditLog, officer_id: int, officer: dict[str, Any] | None
) -> Account | None:
    """The officer's login, if it has one, brought in line with ``officer`` (None: gone)."""
    account = (await session.exec(_OFFICER_LOGIN, params={"officer_id": officer_id})).first()
    if account is None:
        return None
    changes = follow_officer(account, officer)
    if changes:
        await _record_follow(session, audit, account, changes)
    return account


async def registry_get(registry: ServiceClient, path: str, authorization: str) -> dict[str, Any]:
    """Read from the registry as the caller, so its scope rules decide what is visible."""
    try:
        return await registry.get(f"{REGISTRY_PREFIX}{path}", authorization=authorization)
    except NotFound as exc:
        raise NotFound(f"{path} was not found in the registry within your scope.") from exc


def _check_grant(
    principal: Principal, roles: list[Role], kind: str, body: str | None, bureau_path: str
) -> None:
    """The roles an administrator may give an account (separation of duties)."""
    allowed = OFFICER_ROLES if kind == AccountKind.OFFICER else SYSTEM_ROLES
    refused = sorted(set(roles) - allowed)
    if refused:
        raise Conflict(
            f"A {kind} account cannot hold the roles {', '.join(refused)}.", slug="role-not-grantable"
        )
    foreign = sorted(r.value for r in set(roles) & BODY_ROLES if r.value != body)
    if kind == AccountKind.OFFICER and foreign:
        raise Conflict(
            f"An officer of the {body} body cannot hold the roles {', '.join(foreign)}.",
            slug="role-body-mismatch",
        )
    for first, second in INCOMPATIBLE_ROLES:
        if first in roles and second in roles:
            raise Conflict(
                f"One account cannot hold both {first} and {second}: "
                f"who may {ROLE_DUTIES[first]} must not also {ROLE_DUTIES[second]}.",
                slug="roles-incompatible",
            )
    # The head who approves a bureau's cases is appointed from above, as the
    # bureau's own record is changed from above (the national regulator excepted).
    if Role.HEAD in roles and bureau_path == principal.bureau_path and not principal.is_national:
        raise Forbidden(
            "A bureau head is appointed by an administrator of a bureau above it.",
            slug="head-granted-from-above",
        )


async def _ensure_username_free(session: AsyncSession, username: str) -> None:
    if await find_by_username(session, username):
        raise Conflict(f"The username {username} is taken.", slug="username-taken")


async def create_officer_account(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    data: OfficerAccountCreate,
    officer: dict[str, Any],
) -> Account:
    _check_grant(principal, data.roles, AccountKind.OFFICER, officer.get("body"), officer["bureau_path"])
    if not officer.get("active", False):
        raise Conflict(f"Officer {data.officer_id} is not active.", slug="officer-inactive")
    await _ensure_username_free(session, data.username)
    taken = (await session.exec(select(Account).where(Account.officer_id == data.officer_id))).first()
    if taken is not None:
        raise Conflict(f"Officer {data.officer_id} already has an account.", slug="officer-has-account")
    account = Account(
        username=data.username,
        kind=AccountKind.OFFICER,
        secret_hash=await passwords.hash_secret(data.password),
        display_name=data.display_name or officer["name"],
        officer_id=data.officer_id,
        bureau_id=officer["bureau_id"],
        bureau_path=officer["bureau_path"],
        body=officer["body"],
        roles=sorted(set(data.roles)),
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        principal,
        "account.created",
        "account",
        account.id,
        data.model_dump(mode="json", exclude={"password"}),
    )
    return account


async def create_system_account(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    data: SystemAccountCreate,
    bureau: dict[str, Any],
) -> tuple[Account, str]:
    await _ensure_username_free(session, data.client_id)
    secret = passwords.new_client_secret()
    account = Account(
        username=data.client_id,
        kind=AccountKind.SYSTEM,
        secret_hash=await passwords.hash_secret(secret),
        display_name=data.display_name or bureau["name"],
        bureau_id=bureau["id"],
        bureau_path=bureau["path"],
        roles=sorted(SYSTEM_ROLES),
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session, principal, "account.created", "account", account.id, data.model_dump(mode="json")
    )
    return account, secret


async def update_account(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    account_id: uuid.UUID,
    data: AccountUpdate,
    if_match: str | None,
) -> Account:
    account = await account_in_scope(session, principal, account_id)
    check_if_match(if_match, account.version)
    changes = data.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if not changes:
        raise BadRequest("Name at least one field to change.", slug="empty-update")
    if account.kind == AccountKind.SERVICE:
        raise Conflict("Service accounts are managed by deployment, not here.", slug="service-account")
    if str(account.id) == principal.account_id and changes.get("active") is False:
        raise Conflict("An administrator cannot disable their own account.", slug="self-disable")
    if str(account.id) == principal.account_id and "roles" in changes:
        raise Forbidden("No account changes its own roles; another administrator does.", slug="self-grant")
    if "roles" in changes:
        _check_grant(principal, data.roles or [], account.kind, account.body, account.bureau_path)
        account.roles = sorted(set(changes["roles"]))
    if "password" in changes:
        if account.kind != AccountKind.OFFICER:
            raise Conflict("Only officer accounts have passwords.", slug="no-password")
        account.secret_hash = await passwords.hash_secret(changes["password"])
    if "active" in changes:
        account.active = changes["active"]
    if "display_name" in changes:
        account.display_name = changes["display_name"]
    account.version += 1
    account.updated_at = utcnow()
    await session.flush()
    logged = {k: v for k, v in changes.items() if k != "password"} | (
        {"password": "changed"} if "password" in changes else {}
    )
    await audit.record(session, principal, "account.updated", "account", account.id, logged)
    return account


async def revoked_accounts(session: AsyncSession, changed_since: datetime) -> tuple[set[str], dict[str, int]]:
    """Disabled accounts, and the version of every account changed since ``changed_since``
    (tokens older than that have expired anyway)."""
    rows = await session.exec(
        select(Account.id, Account.active, Account.version).where(
            or_(Account.active == False, Account.updated_at >= changed_since)  # noqa: E712
        )
    )
    disabled: set[str] = set()
    versions: dict[str, int] = {}
    for account_id, active, version in rows.all():
        if not active:
            disabled.add(str(account_id))
        versions[str(account_id)] = version
    return disabled, versions
