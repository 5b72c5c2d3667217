from __future__ import annotations

import uuid

import pytest

from gateway import passwords
from gateway.models import Account, AccountKind
from tests.conftest import auth
from tests.factories import create_officer


async def _bureau_exists(registry, token: str, bureau: dict) -> bool:
    response = await registry.get(f"/api/v1/registry/bureaus/{bureau['id']}", headers=auth(token))
    return response.status_code == 200 and response.json()["path"] == bureau["path"]


@pytest.fixture(scope="session")
def make_account(gateway, registry, token_for):
    """Insert an account straight into the gateway's database. An officer's login
    belongs to a new active officer of the enforcement body in the registry when
    the bureau is a real one; on a made-up bureau (scope tests) it has no officer,
    and cannot log in."""

    async def make(
        kind: AccountKind = AccountKind.OFFICER,
        *,
        secret: str = "correct horse battery",
        active: bool = True,
        roles=("enforcement",),
        bureau: dict | None = None,
        body: str = "enforcement",
    ) -> Account:
        bureau = bureau or {"id": 1, "path": "1."}
        officer_id = None
        if kind == AccountKind.OFFICER and await _bureau_exists(registry, token_for(), bureau):
            officer_id = (await create_officer(registry, token_for(), bureau, body=body))["id"]
        account = Account(
            officer_id=officer_id,
            username=f"u{uuid.uuid4().hex[:12]}",
            kind=kind,
            secret_hash=await passwords.hash_secret(secret),
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            roles=list(roles),
            active=active,
            body=body if kind == AccountKind.OFFICER else None,
        )
        async with gateway.app.state.sessionmaker() as session:
            session.add(account)
            await session.commit()
        return account

    return make
