"""Account administration stays inside the administrator's subtree, for every change.

Accounts of another province, including one whose bureau id shares a decimal
prefix with the administrator's (bureau 8 and bureau 87), are not found: they
cannot be listed, read or changed, and a refused change leaves the row as it was.
"""

from __future__ import annotations

import uuid

import pytest

from gateway.models import Account, AccountKind
from tests.conftest import auth

ACCOUNTS = "/api/v1/auth/accounts"
PROVINCE = {"id": 8, "path": "1.8."}
CITY = {"id": 801, "path": "1.8.801."}
# Bureau ids that begin with the administrator's own: outside its subtree all the same.
PREFIX_SIBLING = {"id": 87, "path": "1.87."}
PREFIX_SIBLING_CITY = {"id": 8701, "path": "1.87.8701."}
OTHER_PROVINCE = {"id": 9, "path": "1.9."}
OUTSIDE = {"prefix-sibling": PREFIX_SIBLING, "its-city": PREFIX_SIBLING_CITY, "other": OTHER_PROVINCE}
CHANGES = {
    "disable": {"active": False},
    "roles": {"roles": ["enforcement", "head"]},
    "password": {"password": "a brand new password"},
    "display-name": {"display_name": "改过的名字"},
}


def assert_not_found(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/not-found"


async def stored(gateway, account: Account) -> tuple:
    """What a change would touch, read fresh from the database."""
    async with gateway.app.state.sessionmaker() as session:
        row = await session.get(Account, account.id)
        return (row.active, row.roles, row.secret_hash, row.display_name, row.version, row.updated_at)


async def usernames(gateway, token: str) -> set[str]:
    names, cursor = set(), None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await gateway.get(ACCOUNTS, params=params, headers=auth(token))
        assert response.status_code == 200, response.text
        names |= {a["username"] for a in response.json()["items"]}
        cursor = response.json()["next_cursor"]
        if not cursor:
            return names


class TestList:
    async def test_holds_the_subtree_and_nothing_of_a_prefix_sibling(self, gateway, make_account, token_for):
        own = [await make_account(bureau=b) for b in (PROVINCE, CITY)]
        foreign = [await make_account(bureau=b) for b in OUTSIDE.values()]
        names = await usernames(gateway, token_for(PROVINCE))
        assert {a.username for a in own} <= names
        assert not {a.username for a in foreign} & names


class TestRead:
    @pytest.mark.parametrize("where", list(OUTSIDE))
    async def test_account_outside_the_subtree_is_not_found(self, gateway, make_account, token_for, where):
        account = await make_account(bureau=OUTSIDE[where])
        assert_not_found(await gateway.get(f"{ACCOUNTS}/{account.id}", headers=auth(token_for(PROVINCE))))

    async def test_account_of_a_city_of_the_province_is_found(self, gateway, make_account, token_for):
        account = await make_account(bureau=CITY)
        response = await gateway.get(f"{ACCOUNTS}/{account.id}", headers=auth(token_for(PROVINCE)))
        assert response.status_code == 200
        assert response.json()["username"] == account.username


class TestChange:
    @pytest.mark.parametrize("change", list(CHANGES))
    @pytest.mark.parametrize("where", list(OUTSIDE))
    async def test_account_outside_the_subtree_is_not_found_and_unchanged(
        self, gateway, make_account, token_for, where, change
    ):
        account = await make_account(bureau=OUTSIDE[where])
        before = await stored(gateway, account)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json=CHANGES[change],
            headers={**auth(token_for(PROVINCE)), "If-Match": f'"{account.version}"'},
        )
        assert_not_found(response)
        assert await stored(gateway, account) == before

    @pytest.mark.parametrize("change", list(CHANGES))
    async def test_the_same_change_inside_the_subtree_is_made(self, gateway, make_account, token_for, change):
        account = await make_account(bureau=CITY)
        before = await stored(gateway, account)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json=CHANGES[change],
            headers={**auth(token_for(PROVINCE)), "If-Match": f'"{account.version}"'},
        )
        assert response.status_code == 200, response.text
        after = await stored(gateway, account)
        assert after[4] == before[4] + 1
        assert after != before

    async def test_a_refused_disable_leaves_the_tokens_working(self, gateway, make_account, token_for):
        account = await make_account(bureau=PREFIX_SIBLING)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"active": False},
            headers={**auth(token_for(PROVINCE)), "If-Match": f'"{account.version}"'},
        )
        assert_not_found(response)
        assert str(account.id) not in gateway.app.state.revocations.disabled
        # The disabled set is also rebuilt from the database: the account is not in it.
        await gateway.app.state.revocations.refresh(gateway.app.state.sessionmaker, 900)
        assert str(account.id) not in gateway.app.state.revocations.disabled


class TestListPages:
    """A subtree of its own (a fresh bureau id each time), so the whole list is known."""

    async def test_pages_walk_the_subtree_once_in_username_order(self, gateway, make_account, token_for):
        bureau = {"id": 10**12 + uuid.uuid4().int % 10**12, "path": ""}
        bureau["path"] = f"1.8.{bureau['id']}."
        made = [await make_account(bureau=bureau) for _ in range(5)]
        names, pages = [], 0
        cursor = None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await gateway.get(ACCOUNTS, params=params, headers=auth(token_for(bureau)))
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            names += [a["username"] for a in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert names == sorted(a.username for a in made)
        assert pages == 3

    async def test_kind_filter(self, gateway, make_account, token_for):
        bureau = {"id": 10**12 + uuid.uuid4().int % 10**12, "path": ""}
        bureau["path"] = f"1.8.{bureau['id']}."
        officer = await make_account(bureau=bureau)
        system = await make_account(AccountKind.SYSTEM, roles=("system",), bureau=bureau)
        token = token_for(bureau)
        for kind, expected in (("system", [system]), ("officer", [officer])):
            response = await gateway.get(ACCOUNTS, params={"kind": kind}, headers=auth(token))
            assert [a["username"] for a in response.json()["items"]] == [a.username for a in expected]
        everything = await gateway.get(ACCOUNTS, headers=auth(token))
        assert sorted(a["username"] for a in everything.json()["items"]) == sorted(
            [officer.username, system.username]
        )
