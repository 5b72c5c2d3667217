from __future__ import annotations

import uuid

import pytest

from gateway import passwords
from gateway.models import Account, AccountKind


@pytest.fixture(scope="session")
def make_account(gateway):
    """Insert an account straight into the gateway's database; returns (account, secret)."""

    async def make(
        kind: AccountKind = AccountKind.OFFICER,
        *,
        secret: str = "correct horse battery",
        active: bool = True,
        roles=("enforcement",),
        bureau: dict | None = None,
    ) -> Account:
        bureau = bureau or {"id": 1, "path": "1."}
        account = Account(
            username=f"u{uuid.uuid4().hex[:12]}",
            kind=kind,
            secret_hash=await passwords.hash_secret(secret),
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            roles=list(roles),
            active=active,
            body="enforcement" if kind == AccountKind.OFFICER else None,
        )
        async with gateway.app.state.sessionmaker() as session:
            session.add(account)
            await session.commit()
        return account

    return make
