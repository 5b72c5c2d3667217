"""Demo cases for `make run`: a pilot unit's cases at several stages of the administrative
penalty procedure (行政处罚程序), taken there through the service's own HTTP API by the demo
officers the registry and the gateway seed (services/registry/demo.py, gateway/seed.py).

Stages, in the order they are made (case numbers follow it):

* ``closed``        a fine decided, served, paid in full and the case closed (结案);
* ``decided``       a major case (重大案件): legal review (法制审核), a collective decision
                    (集体讨论决定) with a fine and the revocation of a certificate of the
                    registry's demo chain, sent to the registry through the outbox;
* ``investigating`` a case under investigation (调查取证);
* ``under_review``  a case handed to review (案件审核), awaiting the legal-affairs reviewer;
* ``verifying``     a lead still verified (线索核查), not yet opened.

A review is answered where the platform answers it: by the demo legal-affairs reviewer in the
statistics service's queue (``/api/v1/statistics/reviews``), whose answer event takes the case's
review step; ``answer_review`` does that (services/enforcement/seed.py through the gateway and
the workers; the tests in process).

All dates lie in 2026 with every running deadline ending in 2026, the last year the
holiday calendar covers until an administrator loads the next. Idempotent: each stage's
lead carries its own ``source_ref``; a stage whose lead exists is left as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

API = "/api/v1/enforcement"
REGISTRY = "/api/v1/registry"
STATISTICS = "/api/v1/statistics"
# The registry's demo officers of each pilot unit (services/registry/demo.py DEMO_OFFICERS),
# by the key the gateway's logins are named with (``officer1-330000-qs``…).
DEMO_OFFICER_NAMES = {
    "officer1": "演示执法员甲",
    "officer2": "演示执法员乙",
    "head": "演示执法负责人",
    "legal": "演示法制审核员",
}
REF_PREFIX = "DEMO-CASE"
VIOLATION = "uncertified-ccc-product"  # 《认证认可条例》第六十六条: 50,000–200,000 yuan
LEGAL_BASIS = "《中华人民共和国认证认可条例》第六十六条"
FACTS = "当事人生产、销售列入强制性产品认证目录但未获认证的产品，货值金额逾一万元"


class DemoSeedError(RuntimeError):
    """A request of the demo seed was refused: the step and the answer."""


@dataclass(frozen=True)
class DemoPerson:
    """A demo officer: the registry's officer id, and the headers that act as the officer."""

    officer_id: int
    headers: Mapping[str, str]


# Answers the case's pending review in the legal-affairs queue as the demo reviewer and returns
# the case once enforcement took the answer: (case, opinion, answered_on, reason) → case.
ReviewAnswerer = Callable[[dict[str, Any], str, str, str], Awaitable[dict[str, Any]]]


async def _ok(response: httpx.Response, what: str, expected: int = 200) -> dict[str, Any]:
    if response.status_code != expected:
        raise DemoSeedError(f"{what}: {response.status_code} {response.text[:500]}")
    return response.json()


def queue_answerer(
    client: httpx.AsyncClient,
    legal: Mapping[str, str],
    reader: Mapping[str, str],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
) -> ReviewAnswerer:
    """Answers through the running platform: waits for the case's request to reach the
    legal-affairs queue (the relay and the statistics worker carry it), gives the opinion there
    as the reviewer ``legal``, and waits for enforcement to take the answer (its worker)."""

    async def wait_for(what: str, read: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = await read()
            if found is not None:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise DemoSeedError(f"{what}: nothing after {timeout:.0f} s (are the workers running?)")
            await asyncio.sleep(interval)

    async def answer(case: dict[str, Any], opinion: str, on: str, reason: str) -> dict[str, Any]:
        async def pending() -> dict[str, Any] | None:
            page = await _ok(
                await client.get(
                    f"{STATISTICS}/reviews", params={"case_id": case["id"], "state": "pending"}, headers=legal
                ),
                "read the review queue",
            )
            return page["items"][0] if page["items"] else None

        review = await wait_for(f"the review of case {case['number']} in the queue", pending)
        await _ok(
            await client.post(
                f"{STATISTICS}/reviews/{review['id']}/opinion",
                json={"opinion": opinion, "reason": reason, "answered_on": on},
                headers={**legal, "If-Match": f'"{review["version"]}"'},
            ),
            f"answer the review of case {case['number']}",
        )

        async def taken() -> dict[str, Any] | None:
            read = await _ok(await client.get(f"{API}/cases/{case['id']}", headers=reader), "read the case")
            return read if read["state"] != "under_review" else None

        return await wait_for(f"the answer to the review of case {case['number']}", taken)

    return answer


async def find_demo_officers(registry: httpx.AsyncClient, headers: Mapping[str, str]) -> dict[str, dict]:
    """The demo officers within the scope of ``headers`` (a pilot unit's), by key."""
    found = {}
    for key, name in DEMO_OFFICER_NAMES.items():
        page = await _ok(
            await registry.get(f"{REGISTRY}/officers", params={"name": name, "limit": 1}, headers=headers),
            f"look up the demo officer {name}",
        )
        if not page["items"]:
            raise DemoSeedError(
                f"The registry holds no demo officer {name} in scope: seed the registry first."
            )
        found[key] = page["items"][0]
    return found


class _Procedure:
    """The steps the demo takes, each through the HTTP API as the officer named."""

    def __init__(
        self, client: httpx.AsyncClient, people: Mapping[str, DemoPerson], answer_review: ReviewAnswerer
    ) -> None:
        self.client = client
        self.people = people
        self.answer_review = answer_review

    def _headers(self, who: str, version: int | None = None) -> dict[str, str]:
        headers = dict(self.people[who].headers)
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        return headers

    async def lead(self, ref: str, subject_id: int, received_on: str, summary: str) -> dict:
        response = await self.client.post(
            f"{API}/leads",
            json={
                "source": "complaint",
                "source_ref": ref,
                "subject_type": "enterprise",
                "subject_id": subject_id,
                "summary": summary,
                "received_on": received_on,
            },
            headers=self._headers("officer1"),
        )
        return await _ok(response, f"register the lead {ref}", 201)

    async def open_case(self, lead: dict, on: str, title: str, certificate_ids=()) -> dict:
        response = await self.client.post(
            f"{API}/leads/{lead['id']}/transitions",
            json={
                "step": "open_case",
                "occurred_on": on,
                "reason": "经核查，有违法事实，符合立案条件",
                "case": {
                    "title": title,
                    "party_name": lead["subject_name"],
                    "party_kind": "organisation",
                    "officer_ids": [self.people["officer1"].officer_id, self.people["officer2"].officer_id],
                    "certificate_ids": list(certificate_ids),
                },
            },
            headers=self._headers("head", lead["version"]),
        )
        await _ok(response, f"open a case from lead {lead['id']}")
        case = await self.client.get(response.headers["Location"], headers=self._headers("head"))
        return await _ok(case, "read the opened case")

    async def step(self, who: str, case: dict, step: str, on: str, **fields: Any) -> dict:
        response = await self.client.post(
            f"{API}/cases/{case['id']}/transitions",
            json={"step": step, "occurred_on": on, **fields},
            headers=self._headers(who, case["version"]),
        )
        return await _ok(response, f"{step} on case {case['number']}")

    async def investigate(self, case: dict, started: str, closed: str, penalties: list[dict]) -> dict:
        case = await self.step("officer1", case, "start_investigation", started)
        return await self.step(
            "officer1",
            case,
            "close_investigation",
            closed,
            facts=FACTS,
            legal_basis=LEGAL_BASIS,
            violation_code=VIOLATION,
            penalties=penalties,
        )

    async def pay(self, case: dict, amount: str, on: str) -> dict:
        response = await self.client.post(
            f"{API}/cases/{case['id']}/payments",
            json={"amount": amount, "paid_on": on},
            headers=self._headers("officer1"),
        )
        await _ok(response, f"record a payment on case {case['number']}", 201)
        return await _ok(
            await self.client.get(f"{API}/cases/{case['id']}", headers=self._headers("officer1")),
            "read the case",
        )


def _fine(amount: str) -> dict[str, str]:
    return {"kind": "fine", "amount": amount}


async def _closed(p: _Procedure, ref: str, enterprise: dict) -> str:
    lead = await p.lead(ref, enterprise["id"], "2026-06-01", "投诉：销售未获强制性产品认证的电器")
    case = await p.open_case(lead, "2026-06-03", "销售未经认证的强制性认证产品案")
    case = await p.investigate(case, "2026-06-05", "2026-06-19", [_fine("60000.00")])
    case = await p.step("officer1", case, "request_review", "2026-06-22")
    case = await p.answer_review(case, "agree", "2026-06-24", "事实清楚，证据确凿，适用依据正确")
    case = await p.step("officer1", case, "serve_prior_notice", "2026-06-26")
    case = await p.step(
        "head", case, "decide", "2026-07-10", legal_basis=LEGAL_BASIS, penalties=[_fine("60000.00")]
    )
    case = await p.step("officer1", case, "serve_decision", "2026-07-13", service_method="in_person")
    case = await p.pay(case, "60000.00", "2026-07-20")
    case = await p.step("head", case, "close_case", "2026-07-21")
    return case["state"]


async def _decided(p: _Procedure, ref: str, enterprise: dict, certificate: dict) -> str:
    penalties = [_fine("150000.00"), {"kind": "revoke_certificate", "certificate_id": certificate["id"]}]
    lead = await p.lead(ref, enterprise["id"], "2026-08-28", "举报：认证证书覆盖产品与实际生产不符")
    case = await p.open_case(
        lead, "2026-09-01", "未经认证出厂销售并撤销认证证书案", certificate_ids=[certificate["id"]]
    )
    case = await p.investigate(case, "2026-09-03", "2026-10-20", penalties)
    case = await p.step("officer1", case, "request_review", "2026-10-21")  # a legal review: major
    case = await p.answer_review(case, "agree", "2026-10-26", "同意，提请集体讨论决定")
    case = await p.step("officer1", case, "serve_prior_notice", "2026-10-28")
    case = await p.step(
        "head",
        case,
        "decide",
        "2026-11-24",
        legal_basis=LEGAL_BASIS,
        penalties=penalties,
        collective_decision=True,
        reason="机构负责人集体讨论决定",
    )
    return case["state"]


async def _investigating(p: _Procedure, ref: str, enterprise: dict) -> str:
    lead = await p.lead(ref, enterprise["id"], "2026-09-21", "交办：市场抽查发现无认证标志产品")
    case = await p.open_case(lead, "2026-09-24", "涉嫌销售未经认证产品案")
    case = await p.step("officer1", case, "start_investigation", "2026-09-28")
    return case["state"]


async def _under_review(p: _Procedure, ref: str, enterprise: dict) -> str:
    lead = await p.lead(ref, enterprise["id"], "2026-09-22", "投诉：网店销售无认证电饭煲")
    case = await p.open_case(lead, "2026-09-25", "网络销售未经认证产品案")
    case = await p.investigate(case, "2026-09-29", "2026-11-16", [_fine("80000.00")])
    case = await p.step("officer1", case, "request_review", "2026-11-18")
    return case["state"]


async def _verifying(p: _Procedure, ref: str, enterprise: dict) -> str:
    lead = await p.lead(ref, enterprise["id"], "2026-11-20", "举报：出厂产品未加施强制性认证标志")
    return lead["state"]


async def seed_demo_cases(
    enforcement: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    people: Mapping[str, DemoPerson],
    bureau_id: int,
    answer_review: ReviewAnswerer,
) -> dict[str, Any]:
    """Make the stages missing for the pilot unit ``bureau_id`` (whose demo officers are
    ``people``), on the enterprises and CCC certificates of the registry's demo chain kept
    there. Returns the stage of each demo lead made now and the names of those left."""
    head = people["head"].headers
    ccc, cursor = [], None
    while True:  # the bureau may keep other certificates besides the demo chain's
        page = await _ok(
            await registry.get(
                f"{REGISTRY}/certificates",
                params={
                    "bureau_id": bureau_id,
                    "scheme": "ccc",
                    "limit": 100,
                    **({"cursor": cursor} if cursor else {}),
                },
                headers=head,
            ),
            "list the demo certificates",
        )
        ccc += [c for c in page["items"] if "演示" in c["holder_name"]]
        cursor = page["next_cursor"]
        if cursor is None or len(ccc) >= 2:
            break
    # Oldest first: the demo chain's first enterprise (household appliances), then the second.
    ccc.sort(key=lambda c: c["id"])
    if len(ccc) < 2:
        raise DemoSeedError(f"Bureau {bureau_id} keeps no demo certification chain: seed the registry first.")
    appliances, cables = ccc[0], ccc[1]
    enterprises = {}
    for certificate in (appliances, cables):
        enterprises[certificate["holder_id"]] = await _ok(
            await registry.get(f"{REGISTRY}/enterprises/{certificate['holder_id']}", headers=head),
            "read a demo enterprise",
        )
    a, b = enterprises[appliances["holder_id"]], enterprises[cables["holder_id"]]

    existing = set()
    for enterprise in (a, b):
        leads = await _ok(
            await enforcement.get(
                f"{API}/leads",
                params={"subject_type": "enterprise", "subject_id": enterprise["id"], "limit": 100},
                headers=head,
            ),
            "list the leads of a demo enterprise",
        )
        existing |= {lead["source_ref"] for lead in leads["items"] if lead["source_ref"]}

    p = _Procedure(enforcement, people, answer_review)
    stages = (
        ("closed", lambda ref: _closed(p, ref, a)),
        ("decided", lambda ref: _decided(p, ref, b, cables)),
        ("investigating", lambda ref: _investigating(p, ref, b)),
        ("under_review", lambda ref: _under_review(p, ref, a)),
        ("verifying", lambda ref: _verifying(p, ref, a)),
    )
    made: dict[str, str] = {}
    kept: list[str] = []
    for name, make in stages:
        ref = f"{REF_PREFIX}-{bureau_id}-{name}"
        if ref in existing:
            kept.append(name)
            continue
        made[name] = await make(ref)
    return {"demo_cases_made": made, "demo_cases_kept": kept}
