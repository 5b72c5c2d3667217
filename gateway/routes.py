"""The gateway's own API: the OAuth2 token endpoint, the key set, account administration."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Path, Request, Response, status
from fastapi.responses import JSONResponse

from gateway import accounts
from gateway.accounts import OAuthError
from gateway.models import AccountKind
from gateway.schemas import (
    AccountRead,
    AccountUpdate,
    OfficerAccountCreate,
    OfficerChange,
    SystemAccountCreate,
    SystemAccountCreated,
    TokenResponse,
)
from gateway.throttle import LoginThrottle
from services.common.auth import Role, TokenSigner
from services.common.concurrency import etag
from services.common.deps import AuditDep, Authorize, IfMatchDep, SessionDep, require_roles
from services.common.openapi import NO_IDEMPOTENCY_KEY
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_doc, problem_responses

# Manages accounts (officers' logins, provincial systems) within the principal's subtree.
AccountAdmin = Authorize(Role.ADMIN)
router = APIRouter()
PageDep = Annotated[PageParams, Depends(page_params)]


_TOKEN_ERRORS = {
    400: problem_doc("invalid_request, invalid_grant or unsupported_grant_type"),
    401: problem_doc("invalid_client"),
    422: problem_doc("A form field is not text (a file part, for instance)"),
    429: {
        **problem_doc(
            "Too many failed logins for this account or from this address "
            "(`/problems/too-many-login-attempts`); the secret is not checked until `Retry-After`"
        ),
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}


_FORM_LIMITS = {
    "grant_type": 64,
    "username": 64,
    "password": 128,
    "client_id": 64,
    "client_secret": 128,
    "scope": 256,
}


def _form_field(name: str) -> Any:
    # Checked in the endpoint (an OAuth error, not a 422), and documented here.
    return Form(json_schema_extra={"maxLength": _FORM_LIMITS[name]})


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "The Basic credentials are malformed.", status=401) from None
    client_id, sep, secret = decoded.partition(":")
    too_long = len(client_id) > _FORM_LIMITS["client_id"] or len(secret) > _FORM_LIMITS["client_secret"]
    if not sep or too_long or "\x00" in decoded:
        raise OAuthError("invalid_client", "The Basic credentials are malformed.", status=401)
    return client_id, secret


@router.post(
    "/api/v1/auth/token",
    response_model=TokenResponse,
    tags=["auth"],
    summary="Obtain an access token (OAuth2 password or client_credentials grant)",
    description=(
        "Issues an access token (访问令牌), a JWT signed by the gateway. "
        "Form-encoded (RFC 6749). Officers use `grant_type=password` with `username` and "
        "`password`; provincial systems and services use `grant_type=client_credentials` with "
        "`client_id` and `client_secret` (or HTTP Basic). Errors carry the OAuth `error` code "
        "inside an RFC 9457 problem document. Repeated failed logins for one account or from "
        "one address slow down, then are refused for a while (429 with `Retry-After`)."
    ),
    responses=_TOKEN_ERRORS,
    openapi_extra={NO_IDEMPOTENCY_KEY: True},  # no bearer token, no key: a token is never replayed
)
async def issue_token(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    grant_type: Annotated[str | None, _form_field("grant_type")] = None,
    username: Annotated[str | None, _form_field("username")] = None,
    password: Annotated[str | None, _form_field("password")] = None,
    client_id: Annotated[str | None, _form_field("client_id")] = None,
    client_secret: Annotated[str | None, _form_field("client_secret")] = None,
    scope: Annotated[str | None, _form_field("scope")] = None,  # accepted, not used
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    # Checked here rather than by FastAPI so that a bad field is an OAuth invalid_request.
    fields = {
        "grant_type": grant_type,
        "username": username,
        "password": password,
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": scope,
    }
    for name, value in fields.items():
        if value is not None and (len(value) > _FORM_LIMITS[name] or "\x00" in value):
            raise OAuthError("invalid_request", f"{name} is too long or holds a character it may not.")
    if grant_type == "password":
        if not username or not password:
            raise OAuthError("invalid_request", "username and password are required.")
        identifier, secret, kinds = username, password, {AccountKind.OFFICER}
    elif grant_type == "client_credentials":
        basic = _basic_credentials(authorization)
        if basic and (client_id or client_secret):
            raise OAuthError("invalid_request", "Authenticate the client one way: HTTP Basic or the form.")
        if basic:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise OAuthError("invalid_request", "client_id and client_secret are required.")
        identifier, secret, kinds = client_id, client_secret, {AccountKind.SYSTEM, AccountKind.SERVICE}
    elif grant_type is None:
        raise OAuthError("invalid_request", "grant_type is required.")
    else:
        raise OAuthError("unsupported_grant_type", "Use grant_type password or client_credentials.")
    # The gateway is the edge: the connection's address, never a client-sent X-Forwarded-For.
    host = request.client.host if request.client else None
    throttle: LoginThrottle = request.app.state.login_throttle
    async with throttle.attempt(identifier, host):
        account = await accounts.authenticate(session, identifier, secret, kinds)
    if account.kind == AccountKind.OFFICER:
        await accounts.confirm_officer(session, audit, request.app.state.registry_officers, account)
    signer: TokenSigner = request.app.state.signer
    principal = accounts.principal_of(account)
    token = signer.issue(principal)
    await audit.record(
        session,
        principal,
        "token.issued",
        "account",
        account.id,
        {"grant_type": grant_type, "username": account.username},
    )
    await session.commit()
    # RFC 6749 §5.1: token responses must not be cached.
    return JSONResponse(
        TokenResponse(access_token=token, expires_in=signer.lifetime_seconds).model_dump(),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(
    "/.well-known/jwks.json",
    tags=["auth"],
    summary="The public keys tokens are signed with",
    description=(
        "The JSON Web Key Set (公钥集, RFC 7517) of the gateway's signing keys, each by its `kid`: "
        "the services verify tokens with it, and so may a provincial system. During a key rotation "
        "it lists the new key beside the old one. Cacheable for five minutes; no token needed."
    ),
    responses={
        200: {
            "description": "The key set",
            "content": {
                "application/json": {
                    "example": {
                        "keys": [
                            {
                                "kty": "RSA",
                                "kid": "2026-03",
                                "use": "sig",
                                "alg": "RS256",
                                "n": "…",
                                "e": "AQAB",
                            }
                        ]
                    }
                }
            },
        }
    },
)
async def jwks(request: Request) -> Response:
    return Response(
        request.app.state.jwks_bytes,
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


# --- accounts --------------------------------------------------------------

ACCOUNTS = "/api/v1/auth/accounts"
# Only a UUID is an account id: `/accounts/officers` must not match the item routes.
ACCOUNT = f"{ACCOUNTS}/{{account_id:uuid}}"
AccountId = Annotated[uuid.UUID, Path()]


def _read(account) -> AccountRead:
    return AccountRead.model_validate(account, from_attributes=True)


@router.get(
    ACCOUNTS,
    response_model=Page[AccountRead],
    tags=["accounts"],
    summary="List the accounts of the administrator's subtree",
    description=(
        "The accounts (账号) of the administrator's bureau subtree: officers' logins and provincial "
        "systems' client credentials, by id; filter `kind`. Secrets are never shown."
    ),
    responses=problem_responses(403),
)
async def list_accounts(
    session: SessionDep, principal: AccountAdmin, page: PageDep, kind: AccountKind | None = None
) -> Page[AccountRead]:
    items, next_cursor = await accounts.list_accounts(session, principal, kind, page.cursor, page.limit)
    return Page(items=[_read(a) for a in items], next_cursor=next_cursor)


@router.get(
    ACCOUNT,
    response_model=AccountRead,
    tags=["accounts"],
    summary="Read one account",
    description="One account (账号) of the administrator's subtree, with its ETag for an update.",
    responses=problem_responses(403, 404),
)
async def get_account(
    session: SessionDep, principal: AccountAdmin, account_id: AccountId, response: Response
) -> AccountRead:
    account = await accounts.account_in_scope(session, principal, account_id)
    response.headers["ETag"] = etag(account.version)
    return _read(account)


@router.post(
    f"{ACCOUNTS}/officers",
    response_model=AccountRead,
    status_code=status.HTTP_201_CREATED,
    tags=["accounts"],
    summary="Create the login of a registry officer in scope",
    description=(
        "Creates the login (登录账号) of an officer (执法人员) the registry holds in the "
        "administrator's subtree; the account follows the officer's bureau, body and standing."
    ),
    responses=problem_responses(403, 404, 409, 503, 504),
)
async def create_officer_account(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: AccountAdmin,
    data: OfficerAccountCreate,
    response: Response,
) -> AccountRead:
    officer = await accounts.registry_get(
        request.app.state.registry,
        f"/officers/{data.officer_id}",
        request.headers["authorization"],
    )
    account = await accounts.create_officer_account(session, audit, principal, data, officer)
    await session.commit()
    response.headers["Location"] = f"{ACCOUNTS}/{account.id}"
    response.headers["ETag"] = etag(account.version)
    return _read(account)


@router.post(
    f"{ACCOUNTS}/systems",
    response_model=SystemAccountCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["accounts"],
    summary="Create client credentials for a provincial information system",
    description=(
        "Creates the client credentials (客户端凭据) of a provincial information system (省级信息系统) "
        "acting in a bureau's subtree: the answer shows `client_secret` once (not kept, not "
        "replayed); the system then obtains tokens with `grant_type=client_credentials`."
    ),
    responses=problem_responses(403, 404, 409, 503, 504),
)
async def create_system_account(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: AccountAdmin,
    data: SystemAccountCreate,
    response: Response,
) -> SystemAccountCreated:
    bureau = await accounts.registry_get(
        request.app.state.registry,
        f"/bureaus/{data.bureau_id}",
        request.headers["authorization"],
    )
    account, secret = await accounts.create_system_account(session, audit, principal, data, bureau)
    await session.commit()
    response.headers["Location"] = f"{ACCOUNTS}/{account.id}"
    response.headers["Cache-Control"] = "no-store"
    return SystemAccountCreated(**_read(account).model_dump(), client_secret=secret)


@router.patch(
    ACCOUNT,
    response_model=AccountRead,
    tags=["accounts"],
    summary="Disable or enable an account, change its roles or password (If-Match required)",
    description=(
        "Changes an account (账号): `active` false disables it (停用), and the gateway refuses its "
        "tokens at once; `roles`, `password` (officers) or `display_name`. Send the ETag read in `If-Match`."
    ),
    responses=problem_responses(400, 403, 404, 409, 412, 428),
)
async def update_account(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: AccountAdmin,
    account_id: AccountId,
    data: AccountUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> AccountRead:
    account = await accounts.update_account(session, audit, principal, account_id, data, if_match)
    await session.commit()
    request.app.state.revocations.note(str(account.id), account.active, account.version)
    response.headers["ETag"] = etag(account.version)
    return _read(account)


@router.post(
    "/api/v1/auth/officer-changes",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["accounts"],
    summary="Bring an officer's login in line with the registry now (services only)",
    description=(
        "A resync on demand of an officer's login (执法人员账号同步). "
        "The registry itself tells the gateway of every deactivation or move "
        "through its `registry.officer.changed` event, which the gateway's worker applies; this "
        "endpoint does the same for one officer at once, for a service or an operator's script. "
        "The gateway reads the officer from the registry itself and brings the officer's login in "
        "line: a deactivated officer's tokens stop here at once, a moved officer's login follows "
        "the move. The notice carries no state of its own, so a forged one changes nothing."
    ),
    dependencies=[require_roles(Role.SERVICE)],
    responses=problem_responses(403, 503, 504),
)
async def officer_changed(
    request: Request, session: SessionDep, audit: AuditDep, data: OfficerChange
) -> Response:
    account = await accounts.follow_registry(
        session, audit, request.app.state.registry_officers, data.officer_id
    )
    await session.commit()
    if account is not None:
        request.app.state.revocations.note(str(account.id), account.active, account.version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
