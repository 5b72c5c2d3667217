"""The running platform keeps the contract of its merged OpenAPI document.

Schemathesis (its CLI, configured by ``schemathesis.toml`` beside this file, with the hooks of
``schemathesis_hooks.py``) reads ``/openapi.json`` from the gateway and runs against the real
processes. The national administrator's run has all four phases: the documented examples,
boundary values of every constraint (coverage), random valid and invalid requests (fuzzing), and
chains of calls (stateful). The provincial administrator and a county officer of each body
(certification supervision, enforcement, legal affairs) run the stateful phase, each as that
user sees the platform. The chains follow the links the document declares
(``services.common.openapi.add_links``) with the identifiers and ETags the answers gave: a page
of cases to a case, a case to its transitions and its officers, a created lead to its steps, a
lead to the case it opened, a report to its submission. Every check is on: no 5xx; status
codes, content types, headers and bodies as declared; invalid data refused and valid data
accepted; undeclared methods answered 405 with ``Allow``; a missing token refused.

A little of the domain is registered first (a certification body, an enterprise kept by the
county with its product and CCC certificate, a lead on it), so that the pages the chains start
from are not empty. Each run's figures (operations tested, scenarios, links covered, test
cases) are printed and recorded as test properties; each run must reach its floor.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.openapi import operation_ids
from tests.conftest import RUN_DIR, auth
from tests.e2e.conftest import COUNTY_PASSWORD, County, login
from tests.factories import ccc_number, create_certification_body, create_enterprise, create_product

CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
ALL_PHASES = "examples,coverage,fuzzing,stateful"
STATEFUL_SECONDS = 20


@dataclass(frozen=True)
class Run:
    """One schemathesis run: who, which phases, and the least it must have covered."""

    phases: str
    min_tested: int  # operations
    min_links: int  # links followed at least once in the stateful phase


# The chains of the stateful-only runs read pages without filters (schemathesis_hooks.py); the
# administrator's run sends them, and its chains start from pages a filter has often emptied.
RUNS = {
    "national-admin": Run(ALL_PHASES, min_tested=150, min_links=1),
    "provincial-admin": Run("stateful", min_tested=20, min_links=3),
    "county-supervision": Run("stateful", min_tested=20, min_links=3),
    "county-enforcement": Run("stateful", min_tested=20, min_links=3),
    "county-legal": Run("stateful", min_tested=20, min_links=3),
}


@dataclass(frozen=True)
class Figures:
    tested: int
    scenarios: int
    links_covered: int
    links_selected: int
    test_cases: int

    @classmethod
    def read(cls, report: str) -> Figures:
        def number(pattern: str) -> int:
            found = re.search(pattern, report)
            assert found, f"{pattern!r} is not in the report:\n{report[-3000:]}"
            return int(found.group(1))

        return cls(
            tested=number(r"Tested: (\d+)"),
            scenarios=number(r"Scenarios:\s+(\d+)"),
            links_covered=number(r"API Links:\s+(\d+) covered"),
            links_selected=number(r"API Links:\s+\d+ covered / (\d+) selected"),
            test_cases=number(r"Test cases:\s+(\d+) generated"),
        )


def run_schemathesis(gateway_url: str, token: str, phases: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{gateway_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--phases",
        phases,
    ]
    if phases == "stateful":
        # A chain-only run repeats its scenarios for this long (a few runs stop early otherwise).
        command += ["--max-time", str(STATEFUL_SECONDS)]
    plain_pages = "1" if phases == "stateful" else "0"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "SCHEMATHESIS_PLAIN_PAGES": plain_pages}
    # Run from the test run's directory so nothing is written into the repository.
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, cwd=RUN_DIR, env=env
    )


@pytest.fixture(scope="module")
async def domain(through_gateway, county: County) -> dict[str, dict]:
    """A certification chain kept by the county and a lead on its enterprise, registered by
    Zhejiang's administrator and the county's enforcement officer through the gateway."""
    client = through_gateway
    token = await login(client, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])
    kept = {"bureau_id": county.bureau["id"]}
    body = await create_certification_body(client, token)
    enterprise = await create_enterprise(client, token, **kept)
    product = await create_product(client, token, enterprise, category_code="0901", **kept)
    certificate = await client.post(
        "/api/v1/registry/certificates",
        headers=auth(token),
        json={
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
    assert certificate.status_code == 201, certificate.text
    officer = await login(client, county.usernames["enforcement"], COUNTY_PASSWORD)
    lead = await client.post(
        "/api/v1/enforcement/leads",
        headers=auth(officer),
        json={
            "source": "complaint",
            "subject_type": "enterprise",
            "subject_id": enterprise["id"],
            "summary": "举报：未经认证出厂销售",
            "received_on": "2026-06-01",
        },
    )
    assert lead.status_code == 201, lead.text
    return {"enterprise": enterprise, "certificate": certificate.json(), "lead": lead.json()}


async def token_of(client, county: County, who: str) -> str:
    if who == "national-admin":
        return await login(client, "admin", os.environ["DEMO_ADMIN_PASSWORD"])
    if who == "provincial-admin":
        return await login(client, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])
    return await login(client, county.usernames[who.removeprefix("county-")], COUNTY_PASSWORD)


async def test_the_merged_document_names_every_operation_once(through_gateway):
    doc = (await through_gateway.get("/openapi.json")).json()
    assert "x-unavailable-services" not in doc
    ids = operation_ids(doc)
    assert len(ids) == len(set(ids)) > 20
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids


async def test_the_merged_document_links_the_domain(through_gateway):
    """A created object links to its read and its steps; a page links to its first object."""
    doc = (await through_gateway.get("/openapi.json")).json()
    links = {
        (operation["operationId"], target)
        for item in doc["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        for target in response.get("links", {})
    }
    for link in [
        ("create_lead", "get_lead"),
        ("create_lead", "transition_lead"),
        ("get_case", "transition_case"),
        ("get_case", "assign_officers"),
        ("list_cases", "get_case"),
        ("get_lead", "get_case"),
        ("create_enterprise", "update_enterprise"),
        ("create_certificate", "change_certificate_status"),
        ("generate_report", "submit_report"),
        ("send_supervision_notice", "answer_supervision_notice"),
        ("create_officer_account", "get_account"),
    ]:
        assert link in links, link
    assert len(links) > 200
    # An update names the version it read: its link passes on the ETag of the answer.
    get_case = doc["paths"]["/api/v1/enforcement/cases/{case_id}"]["get"]
    assert get_case["responses"]["200"]["links"]["transition_case"]["parameters"] == {
        "path.case_id": "$request.path.case_id",
        "header.If-Match": "$response.header.ETag",
    }


@pytest.mark.parametrize("who", list(RUNS))
async def test_the_platform_answers_as_its_document_says(
    through_gateway, county, domain, who, record_property
):
    run = RUNS[who]
    token = await token_of(through_gateway, county, who)
    result = await asyncio.to_thread(
        run_schemathesis, str(through_gateway.base_url).rstrip("/"), token, run.phases
    )
    # The report ends with the failures, each with a curl line to reproduce it, and the seed.
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-5000:]
    figures = Figures.read(result.stdout)
    for name, value in vars(figures).items():
        record_property(name, value)
    print(f"\n{who}: {figures}")
    assert figures.tested >= run.min_tested, result.stdout[-3000:]
    assert figures.scenarios > 0, result.stdout[-3000:]
    assert figures.links_covered >= run.min_links, result.stdout[-3000:]
