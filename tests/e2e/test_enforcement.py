"""The administrative penalty procedure end to end, through the real gateway and the real
processes: officers of a provincial pilot log in, take a lead to a published decision, take a
major case to a revocation that reaches the registry (while the registry is down at the
decision), and are refused where the procedure says so."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import httpx
import pytest

from services.enforcement.registry import STANDING_TTL_SECONDS
from tests.conftest import assert_problem, auth
from tests.e2e.test_events import eventually
from tests.e2e.test_platform import login
from tests.factories import (
    ccc_number,
    create_certification_body,
    create_enterprise,
    create_product,
    unique,
)
from tests.world import HEAD_STEPS, LEGAL_STEPS, OFFICER_STEPS

pytestmark = pytest.mark.e2e

API = "/api/v1/enforcement"
# A hearing requested on 2026-06-29, held on 14 July and reported on the 15th.
HEARING = {
    "host": "听证主持人（法制机构）",
    "host_named_on": "2026-06-30",
    "files_handed_on": "2026-07-01",
    "date_fixed_on": "2026-07-02",
    "hearing_date": "2026-07-14",
    "notice_served_on": "2026-07-02",
    "held_on": "2026-07-14",
    "report_on": "2026-07-15",
}
REGISTRY = "/api/v1/registry"
PASSWORD = "a long enough password"
VIOLATION = "uncertified-ccc-product"  # art. 66: a fine of 50,000–200,000 yuan
LEGAL_BASIS = "《认证认可条例》第六十六条"


@dataclass
class Person:
    """An officer of the registry with a login: its record, its account's username, a live token."""

    officer: dict
    username: str
    token: str

    @property
    def id(self) -> int:
        return self.officer["id"]

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


@dataclass
class Pilot:
    """Zhejiang's quality-supervision unit with a city and a county bureau under it, the posts of
    the enforcement responsibility system, officers holding them, and an officer of Shandong."""

    admin: dict[str, str]
    province: dict
    city: dict
    county: dict
    officers: list[Person]  # enforcement officers of the county
    head: Person  # the county bureau's head
    legal: Person  # the city's legal-affairs reviewer
    stranger: Person  # an enforcement officer of Shandong's unit


async def admin_of(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await login(client, username, os.environ["DEMO_ADMIN_PASSWORD"])
    assert response.status_code == 200, response.text
    return auth(response.json()["access_token"])


async def created(client: httpx.AsyncClient, admin: dict, url: str, payload: dict) -> dict:
    response = await client.post(url, headers=admin, json=payload)
    assert response.status_code == 201, response.text
    return response.json()


async def bureau(client: httpx.AsyncClient, admin: dict, parent: dict, level: str, division: str) -> dict:
    payload = {"parent_id": parent["id"], "name": unique(f"{level}局"), "level": level}
    return await created(client, admin, f"{REGISTRY}/bureaus", {**payload, "division_code": division})


async def post_with_steps(
    client: httpx.AsyncClient, admin: dict, bureau_id: int, body: str, steps: list[str]
) -> dict:
    payload = {"body": body, "name": unique("岗位")[:30], "duties": "执法责任制", "steps": steps}
    return await created(client, admin, f"{REGISTRY}/bureaus/{bureau_id}/posts", payload)


async def person(
    client: httpx.AsyncClient, admin: dict, bureau_id: int, body: str, post: dict, roles: list[str]
) -> Person:
    """An officer with an enforcement credential holding ``post``, its account with ``roles``, logged in."""
    officer = await created(
        client,
        admin,
        f"{REGISTRY}/officers",
        {
            "bureau_id": bureau_id,
            "body": body,
            "name": unique("执法员")[:20],
            "credential_number": unique("ZJ").upper(),
            "post_id": post["id"],
        },
    )
    username = unique("officer").lower()
    await created(
        client,
        admin,
        "/api/v1/auth/accounts/officers",
        {"username": username, "password": PASSWORD, "officer_id": officer["id"], "roles": roles},
    )
    response = await login(client, username, PASSWORD)
    assert response.status_code == 200, response.text
    return Person(officer, username, response.json()["access_token"])


@pytest.fixture(scope="module")
async def pilot(through_gateway) -> Pilot:
    client = through_gateway
    admin = await admin_of(client, "admin-330000-qs")
    me = (await client.get(f"{REGISTRY}/me", headers=admin)).json()
    province = (await client.get(f"{REGISTRY}/bureaus/{me['bureau_id']}", headers=admin)).json()
    city = await bureau(client, admin, province, "city", "330100")
    county = await bureau(client, admin, city, "county", "330106")
    officer_post = await post_with_steps(client, admin, county["id"], "enforcement", OFFICER_STEPS)
    head_post = await post_with_steps(client, admin, county["id"], "enforcement", HEAD_STEPS)
    legal_post = await post_with_steps(client, admin, city["id"], "legal", LEGAL_STEPS)
    officers = [
        await person(client, admin, county["id"], "enforcement", officer_post, ["enforcement"])
        for _ in range(3)
    ]
    head = await person(client, admin, county["id"], "enforcement", head_post, ["head"])
    legal = await person(client, admin, city["id"], "legal", legal_post, ["legal"])

    shandong = await admin_of(client, "admin-370000-qs")
    sd = (await client.get(f"{REGISTRY}/me", headers=shandong)).json()
    sd_post = await post_with_steps(client, shandong, sd["bureau_id"], "enforcement", OFFICER_STEPS)
    stranger = await person(client, shandong, sd["bureau_id"], "enforcement", sd_post, ["enforcement"])
    return Pilot(admin, province, city, county, officers, head, legal, stranger)


async def certification_chain(client: httpx.AsyncClient, pilot: Pilot) -> dict[str, dict]:
    """A certification body, an enterprise kept by the county, its product and a CCC certificate
    of that product, all registered through the registry's API."""
    token = pilot.admin["Authorization"].removeprefix("Bearer ")
    kept = {"bureau_id": pilot.county["id"]}
    body = await create_certification_body(client, token)
    enterprise = await create_enterprise(client, token, **kept)
    product = await create_product(client, token, enterprise, category_code="0901", **kept)
    certificate = await created(
        client,
        pilot.admin,
        f"{REGISTRY}/certificates",
        {
            "scheme": "ccc",
            "number": ccc_number(2026, "01", "0901"),
            "body_id": body["id"],
            "holder_id": enterprise["id"],
            "product_ids": [product["id"]],
            "issued_on": "2026-03-02",
            "scope": "电饭煲",
            **kept,
        },
    )
    assert certificate["status"] == "valid"
    return {"body": body, "enterprise": enterprise, "product": product, "certificate": certificate}


# --- the procedure's steps through the gateway ---------------------------------------


async def new_lead(client: httpx.AsyncClient, who: Person, subject_type: str, subject_id: int) -> dict:
    response = await client.post(
        f"{API}/leads",
        headers=who.headers,
        json={
            "source": "complaint",
            "subject_type": subject_type,
            "subject_id": subject_id,
            "summary": "举报：未经认证出厂销售",
            "received_on": "2026-06-01",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


async def open_case(
    client: httpx.AsyncClient, pilot: Pilot, lead: dict, certificate_ids: list[int] = ()
) -> dict:
    response = await client.post(
        f"{API}/leads/{lead['id']}/transitions",
        headers={**pilot.head.headers, "If-Match": f'"{lead["version"]}"'},
        json={
            "step": "open_case",
            "occurred_on": "2026-06-03",
            "reason": "初步查实，符合立案条件",
            "case": {
                "title": "未经认证销售强制性认证产品案",
                "party_name": lead["subject_name"],
                "party_kind": "organisation",
                "officer_ids": [p.id for p in pilot.officers[:2]],
                "certificate_ids": list(certificate_ids),
            },
        },
    )
    assert response.status_code == 200, response.text
    case = await client.get(response.headers["Location"], headers=pilot.head.headers)
    assert case.status_code == 200, case.text
    return case.json()


async def step(client: httpx.AsyncClient, who: Person, case: dict, name: str, **fields) -> httpx.Response:
    """The step's raw answer; ``case['version']`` is the version it is based on."""
    return await client.post(
        f"{API}/cases/{case['id']}/transitions",
        headers={**who.headers, "If-Match": f'"{case["version"]}"'},
        json={"step": name, **fields},
    )


async def ok(client: httpx.AsyncClient, who: Person, case: dict, name: str, **fields) -> dict:
    response = await step(client, who, case, name, **fields)
    assert response.status_code == 200, f"{name}: {response.text}"
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    return response.json()


async def reviewed(
    client: httpx.AsyncClient, pilot: Pilot, case: dict, opinion: str = "agree", **fields
) -> dict:
    """The review answered where it is answered: the request reaches the legal-affairs queue
    (relay, statistics worker), the city's reviewer gives the opinion there through the gateway,
    and its event takes the case's review step (enforcement worker). The case afterwards."""

    async def pending() -> dict | None:
        response = await client.get(
            "/api/v1/statistics/reviews",
            params={"case_id": case["id"], "state": "pending"},
            headers=pilot.legal.headers,
        )
        assert response.status_code == 200, response.text
        return (response.json()["items"] or [None])[0]

    review = await eventually(pending)
    answered = await client.post(
        f"/api/v1/statistics/reviews/{review['id']}/opinion",
        json={"opinion": opinion, **fields},
        headers={**pilot.legal.headers, "If-Match": f'"{review["version"]}"'},
    )
    assert answered.status_code == 200, answered.text

    async def taken() -> dict | None:
        read = await read_case(client, pilot.officers[0], case)
        return read if read["state"] != "under_review" else None

    return await eventually(taken)


async def read_case(client: httpx.AsyncClient, who: Person, case: dict) -> dict:
    response = await client.get(f"{API}/cases/{case['id']}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def listed_ids(client: httpx.AsyncClient, who: Person, **params) -> set[int]:
    response = await client.get(f"{API}/cases", headers=who.headers, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["items"]}


def fine(amount: str) -> dict:
    return {"kind": "fine", "amount": amount}


async def investigated(
    client: httpx.AsyncClient, pilot: Pilot, lead: dict, penalties: list[dict], certificate_ids=()
) -> dict:
    """The lead opened into a case, investigated by two officers and closed with a proposal."""
    o1 = pilot.officers[0]
    case = await open_case(client, pilot, lead, certificate_ids)
    case = await ok(client, o1, case, "start_investigation", occurred_on="2026-06-05")
    return await ok(
        client,
        o1,
        case,
        "close_investigation",
        occurred_on="2026-06-20",
        facts="当事人生产销售未获强制性产品认证的电器",
        legal_basis=LEGAL_BASIS,
        violation_code=VIOLATION,
        penalties=penalties,
    )


class TestOrdinaryCase:
    async def test_from_lead_to_publication_through_the_gateway(self, through_gateway, pilot):
        client, o1 = through_gateway, pilot.officers[0]
        chain = await certification_chain(client, pilot)
        enterprise = chain["enterprise"]
        lead = await new_lead(client, o1, "enterprise", enterprise["id"])
        assert (lead["state"], lead["subject_name"]) == ("verifying", enterprise["name"])

        case = await open_case(client, pilot, lead)
        assert (case["state"], case["bureau_id"]) == ("opened", pilot.county["id"])
        assert sorted(o["officer_id"] for o in case["officers"]) == sorted(p.id for p in pilot.officers[:2])
        by_subject = {"subject_type": "enterprise", "subject_id": enterprise["id"]}
        # The decision deadline (from 2026-06-03) has passed by now: the running case is overdue.
        assert case["id"] in await listed_ids(client, o1, mine="true", overdue="true", **by_subject)
        assert case["id"] not in await listed_ids(client, pilot.officers[2], mine="true", **by_subject)
        assert case["id"] in await listed_ids(client, pilot.officers[2], **by_subject)

        case = await ok(client, o1, case, "start_investigation", occurred_on="2026-06-05")
        case = await ok(
            client,
            o1,
            case,
            "close_investigation",
            occurred_on="2026-06-20",
            facts="当事人生产销售未获强制性产品认证的电器",
            legal_basis=LEGAL_BASIS,
            violation_code=VIOLATION,
            penalties=[fine("60000.00")],
        )
        assert (case["needs_legal_review"], case["needs_filing"]) == (False, True)
        case = await ok(client, o1, case, "request_review", occurred_on="2026-06-21")
        stand_in = await step(client, pilot.legal, case, "review_agree", reason="事实清楚")
        assert_problem(stand_in, 409, "/problems/review-in-legal-affairs")
        case = await reviewed(client, pilot, case, answered_on="2026-06-24", reason="事实清楚")
        assert (case["state"], case["review_state"]) == ("reviewed", "agreed")
        case = await ok(client, o1, case, "serve_prior_notice", occurred_on="2026-06-26")
        early = await step(
            client,
            pilot.head,
            case,
            "decide",
            occurred_on="2026-06-29",
            legal_basis=LEGAL_BASIS,
            penalties=[fine("60000.00")],
        )
        assert_problem(early, 409, "/problems/answer-window-open")
        case = await ok(
            client,
            pilot.head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis=LEGAL_BASIS,
            penalties=[fine("60000.00")],
        )
        assert (case["state"], case["fine_decided"], case["decision_kind"]) == (
            "decided",
            "60000.00",
            "penalty",
        )
        case = await ok(
            client, o1, case, "serve_decision", occurred_on="2026-07-11", service_method="in_person"
        )
        paid = await client.post(
            f"{API}/cases/{case['id']}/payments",
            headers=o1.headers,
            json={"amount": "60000.00", "paid_on": "2026-07-20"},
        )
        assert paid.status_code == 201, paid.text
        case = await read_case(client, o1, case)
        assert (case["state"], case["paid_total"]) == ("executing", "60000.00")
        case = await ok(client, pilot.head, case, "close_case", occurred_on="2026-07-21")
        case = await ok(client, o1, case, "publish", occurred_on="2026-07-22")
        assert (case["state"], case["published_on"]) == ("published", "2026-07-22")
        assert case["id"] in await listed_ids(client, o1, mine="true", state="published", **by_subject)
        assert case["id"] not in await listed_ids(client, o1, overdue="true", **by_subject)

        response = await client.get(f"{API}/cases/{case['id']}/timeline", headers=o1.headers)
        assert response.status_code == 200, response.text
        timeline = response.json()
        who = {
            "register_lead": o1,
            "open_case": pilot.head,
            "start_investigation": o1,
            "close_investigation": o1,
            "request_review": o1,
            "review_agree": pilot.legal,  # answered in the legal-affairs queue; its event takes the step
            "serve_prior_notice": o1,
            "decide": pilot.head,
            "serve_decision": o1,
            "record_payment": o1,
            "close_case": pilot.head,
            "publish": o1,
        }
        assert [e["step"] for e in timeline] == list(who)
        assert [e["id"] for e in timeline] == sorted(e["id"] for e in timeline)
        for entry in timeline:
            officer = who[entry["step"]].officer
            assert entry["officer_id"] == officer["id"], entry
            if entry["step"] != "register_lead":  # registering a lead is no post's duty
                assert (entry["post_id"], entry["officer_name"]) == (officer["post_id"], officer["name"]), (
                    entry
                )
                assert entry["post_name"]
        decide = timeline[list(who).index("decide")]
        assert (decide["from_state"], decide["to_state"], decide["occurred_on"]) == (
            "notified",
            "decided",
            "2026-07-10",
        )
        assert decide["legal_basis"] == LEGAL_BASIS


class TestMajorCase:
    """A fine of 150,000 yuan to an organisation and the revocation of its certificate: legal
    review (法制审核), a hearing (听证), a collective decision (集体讨论) — taken while the registry
    is down — and the closed loop: the registry revokes the certificate once it is back."""

    async def test_revocation_decided_while_the_registry_is_down_reaches_it(
        self, platform, through_gateway, pilot
    ):
        client, o1 = through_gateway, pilot.officers[0]
        chain = await certification_chain(client, pilot)
        certificate = chain["certificate"]
        penalties = [fine("150000.00"), {"kind": "revoke_certificate", "certificate_id": certificate["id"]}]
        lead = await new_lead(client, o1, "certificate", certificate["id"])
        case = await investigated(client, pilot, lead, penalties, certificate_ids=[certificate["id"]])
        assert (case["needs_legal_review"], case["needs_filing"]) == (True, True)
        assert case["flag_reasons"]["hearing_allowed"] is True
        case = await ok(client, o1, case, "request_review", occurred_on="2026-06-21")
        assert case["review_state"] == "requested"
        case = await reviewed(client, pilot, case, answered_on="2026-06-24", reason="同意")
        case = await ok(client, o1, case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(client, o1, case, "request_hearing", occurred_on="2026-06-29")
        heard = await client.put(
            f"{API}/cases/{case['id']}/hearing",
            headers={**o1.headers, "If-Match": f'"{case["version"]}"'},
            json=HEARING,
        )
        assert heard.status_code == 200, heard.text
        case = await read_case(client, o1, case)
        case = await ok(client, o1, case, "conclude_hearing", occurred_on="2026-07-15", reason="听证报告")
        assert case["state"] == "heard"
        alone = await step(
            client,
            pilot.head,
            case,
            "decide",
            occurred_on="2026-07-20",
            legal_basis=LEGAL_BASIS,
            penalties=penalties,
        )
        assert_problem(alone, 409, "/problems/collective-decision-required")

        await asyncio.to_thread(platform.stop, "registry-worker")
        await asyncio.to_thread(platform.stop, "registry")
        try:
            down = await client.get(f"{REGISTRY}/certificates/{certificate['id']}", headers=pilot.admin)
            assert_problem(down, 503, "/problems/service-unavailable")
            # Past the time the head's standing is kept fresh: the enforcement service can only
            # fall back on the standing it last confirmed, as it would days after the hearing.
            await asyncio.sleep(STANDING_TTL_SECONDS + 1)
            case = await ok(
                client,
                pilot.head,
                case,
                "decide",
                occurred_on="2026-07-20",
                legal_basis=LEGAL_BASIS,
                penalties=penalties,
                collective_decision=True,
            )
        finally:
            platform.start_service("registry")
            platform.start_worker("registry")
            await asyncio.to_thread(platform.wait_ready, [platform.service_url("registry")])
        assert (case["state"], case["collective_decision"], case["fine_decided"]) == (
            "decided",
            True,
            "150000.00",
        )
        [revocation] = [
            p for p in case["penalties"] if p["stage"] == "decided" and p["kind"] == "revoke_certificate"
        ]
        assert (revocation["certificate_number"], revocation["registry_state"]) == (
            certificate["number"],
            "pending",
        )

        async def revoked():
            read = await client.get(f"{REGISTRY}/certificates/{certificate['id']}", headers=pilot.admin)
            return read.json() if read.status_code == 200 and read.json()["status"] == "revoked" else None

        await eventually(revoked, timeout=120)
        history = await client.get(
            f"{REGISTRY}/certificates/{certificate['id']}/history", headers=pilot.admin
        )
        assert history.status_code == 200, history.text
        last = history.json()["items"][-1]
        assert (last["step"], last["from_status"], last["to_status"], last["case_ref"]) == (
            "revoke",
            "valid",
            "revoked",
            case["number"],
        )
        assert (last["actor_kind"], last["actor_id"]) == ("service", "enforcement")

        async def applied():
            read = await read_case(client, pilot.head, case)
            [item] = [p for p in read["penalties"] if p["id"] == revocation["id"]]
            return read if item["registry_state"] == "applied" else None

        after = await eventually(applied, timeout=120)
        timeline = (await client.get(f"{API}/cases/{case['id']}/timeline", headers=o1.headers)).json()
        steps = [e["step"] for e in timeline]
        assert steps[-2:] == ["decide", "registry_answered"]
        assert (timeline[-2]["officer_id"], timeline[-2]["post_id"]) == (
            pilot.head.id,
            pilot.head.officer["post_id"],
        )
        answer = timeline[-1]
        assert (answer["details"]["applied"], answer["details"]["event_id"]) == (
            True,
            last["decision_event_id"],
        )
        assert answer["details"]["certificate_number"] == certificate["number"]
        [item] = [p for p in after["penalties"] if p["id"] == revocation["id"]]
        assert case["number"] in item["registry_reason"]
        assert after["state"] == "decided"


class TestRefusals:
    @pytest.fixture
    async def case(self, through_gateway, pilot) -> dict:
        chain = await certification_chain(through_gateway, pilot)
        lead = await new_lead(through_gateway, pilot.officers[0], "enterprise", chain["enterprise"]["id"])
        return await open_case(through_gateway, pilot, lead)

    async def test_another_provinces_officer_finds_no_case(self, through_gateway, pilot, case):
        response = await step(through_gateway, pilot.stranger, case, "start_investigation")
        assert_problem(response, 404, "/problems/not-found")
        read = await through_gateway.get(f"{API}/cases/{case['id']}", headers=pilot.stranger.headers)
        assert_problem(read, 404, "/problems/not-found")
        assert case["id"] not in await listed_ids(through_gateway, pilot.stranger)
        assert (await read_case(through_gateway, pilot.head, case))["version"] == case["version"]

    async def test_a_step_of_another_role(self, through_gateway, pilot, case):
        response = await step(
            through_gateway, pilot.officers[0], case, "terminate", reason="r", legal_basis="b"
        )
        problem = assert_problem(response, 403, "/problems/role-required")
        assert "head" in problem["detail"]
        assert (await read_case(through_gateway, pilot.head, case))["state"] == "opened"

    async def test_no_token(self, through_gateway, case):
        response = await through_gateway.post(
            f"{API}/cases/{case['id']}/transitions",
            headers={"If-Match": f'"{case["version"]}"'},
            json={"step": "start_investigation"},
        )
        assert_problem(response, 401, "/problems/unauthorized")
        assert_problem(await through_gateway.get(f"{API}/cases/{case['id']}"), 401, "/problems/unauthorized")

    async def test_a_stale_if_match(self, through_gateway, pilot, case):
        o1 = pilot.officers[0]
        case = await ok(through_gateway, o1, case, "start_investigation", occurred_on="2026-06-05")
        stale = await step(
            through_gateway,
            pilot.head,
            {**case, "version": case["version"] - 1},
            "suspend_investigation",
            reason="检验检测",
        )
        problem = assert_problem(stale, 412, "/problems/precondition-failed")
        assert problem["current_etag"] == f'"{case["version"]}"'
        assert (await read_case(through_gateway, o1, case))["state"] == "investigating"
