"""Account rules: who may log in, what their tokens say, who may manage whom.

An administrator manages accounts of its bureau's subtree only; the officer
or bureau an account is bound to is read from the registry with the
administrator's own token, so the registry's scope rules apply unchanged.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway import passwords
from gateway.models import Account, AccountKind
from gateway.schemas import (
    BODY_ROLES,
    OFFICER_ROLES,
    SYSTEM_ROLES,
    AccountUpdate,
    OfficerAccountCreate,
    SystemAccountCreate,
)
from services.common.audit import AuditLog
from services.common.auth import Principal, PrincipalKind, Role
from services.common.concurrency import check_if_match
from services.common.context import REQUEST_ID_HEADER, current_request_id
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    NotFound,
    ProblemError,
    ServiceUnavailable,
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


def principal_of(account: Account) -> Principal:
    return Principal(
        account_id=str(account.id),
        kind=PrincipalKind(account.kind),
        bureau_id=account.bureau_id,
        bureau_path=account.bureau_path,
        roles=frozenset(account.roles),
        body=account.body,
        officer_id=account.officer_id,
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


def require_admin(principal: Principal) -> None:
    if not principal.has_role(Role.ADMIN):
        raise Forbidden("Only an administrator may manage accounts.", slug="role-required")


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


async def registry_get(registry: httpx.AsyncClient, path: str, authorization: str) -> dict[str, Any]:
    """Read from the registry as the caller, so its scope rules decide what is visible."""
    headers = {"authorization": authorization}
    request_id = current_request_id()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    try:
        response = await registry.get(f"/api/v1/registry{path}", headers=headers)
    except httpx.ReadTimeout as exc:
        raise GatewayTimeout("The registry did not answer in time.") from exc
    except httpx.TransportError as exc:
        raise ServiceUnavailable("The registry is unavailable.") from exc
    if response.status_code == 404:
        raise NotFound(f"{path} was not found in the registry within your scope.")
    if response.status_code != 200:
        raise ServiceUnavailable(f"The registry answered {response.status_code} for {path}.")
    return response.json()


def _check_roles(roles: list[Role], allowed: frozenset[Role], kind: str, body: str | None = None) -> None:
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
    require_admin(principal)
    _check_roles(data.roles, OFFICER_ROLES, AccountKind.OFFICER, officer.get("body"))
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
    require_admin(principal)
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
    require_admin(principal)
    account = await account_in_scope(session, principal, account_id)
    check_if_match(if_match, account.version)
    changes = data.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if not changes:
        raise BadRequest("Name at least one field to change.", slug="empty-update")
    if account.kind == AccountKind.SERVICE:
        raise Conflict("Service accounts are managed by deployment, not here.", slug="service-account")
    if str(account.id) == principal.account_id and changes.get("active") is False:
        raise Conflict("An administrator cannot disable their own account.", slug="self-disable")
    if "roles" in changes:
        allowed = OFFICER_ROLES if account.kind == AccountKind.OFFICER else SYSTEM_ROLES
        _check_roles(data.roles or [], allowed, account.kind, account.body)
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


async def disabled_account_ids(session: AsyncSession) -> set[str]:
    rows = await session.exec(select(Account.id).where(Account.active == False))  # noqa: E712
    return {str(r) for r in rows.all()}
