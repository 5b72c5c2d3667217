"""Dossiers (档案): a registry record with its certification chain and its enforcement chain,
the latter asked of the real enforcement app over a socket with the caller's own token."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from services.common.auth import Role
from services.common.client import ServiceClient
from tests.conftest import _app_client, assert_problem, auth
from tests.enforcement.flow import new_lead, open_case, subjects
from tests.factories import ccc_number, create_provincial_unit
from tests.registry.certificate_helpers import register
from tests.servers import serve, silent_server
from tools.platform import free_port

REGISTRY = "/api/v1/registry"


async def no_token_of_its_own(*, renew: bool = False) -> str:
    raise AssertionError("A dossier asks enforcement with the caller's token, never the registry's own.")


@pytest.fixture(scope="module")
async def enforcement_url(enforcement) -> AsyncIterator[str]:
    """The in-process enforcement app (itself calling the in-process registry) on a socket."""
    async with serve(enforcement.app) as url:  # type: ignore[attr-defined]
        yield url


@pytest.fixture(scope="module")
async def dossiers(enforcement_url) -> AsyncIterator[httpx.AsyncClient]:
    """A registry app whose service client calls the enforcement app on its socket."""
    from services.registry.app import create_app

    async for client in _app_client(create_app(), "http://registry-dossiers"):
        api = client.app  # type: ignore[attr-defined]
        await api.state.services.aclose()
        api.state.services = ServiceClient(base_url=enforcement_url, tokens=no_token_of_its_own)
        yield client
        await api.state.services.aclose()


@contextlib.asynccontextmanager
async def enforcement_at(dossiers: httpx.AsyncClient, url: str, timeout_seconds: float | None = None):
    """The dossier registry calling enforcement at ``url`` (down, say) for the block."""
    api = dossiers.app  # type: ignore[attr-defined]
    services, settings = api.state.services, api.state.settings
    api.state.services = ServiceClient(base_url=url, tokens=no_token_of_its_own, backoff_seconds=0.01)
    if timeout_seconds is not None:
        api.state.settings = settings.model_copy(
            update={"dossier_enforcement_timeout_seconds": timeout_seconds}
        )
    try:
        yield
    finally:
        await api.state.services.aclose()
        api.state.services, api.state.settings = services, settings


@pytest.fixture(scope="module")
async def case_on_certificate(registry, enforcement, world, token_for) -> dict:
    """A certification chain kept by the world's county (its auditor practising in its body, a
    certificate registered for its product), a complaint about the certificate taken in by a
    county officer and a case opened on it (立案)."""
    chain = await subjects(registry, world)
    national = token_for()
    affiliated = await registry.post(
        f"{REGISTRY}/auditors/{chain['auditor']['id']}/affiliations",
        json={"body_id": chain["body"]["id"], "started_on": "2015-01-05"},
        headers=auth(national),
    )
    assert affiliated.status_code == 201, affiliated.text
    certificate = await register(
        registry,
        national,
        {
            "scheme": "ccc",
            "number": ccc_number(),
            "body_id": chain["body"]["id"],
            "holder_id": chain["enterprise"]["id"],
            "product_ids": [chain["product"]["id"]],
            "auditor_ids": [chain["auditor"]["id"]],
            "issued_on": "2016-03-01",
            "scope": "电饭煲",
            "bureau_id": world.county["id"],
        },
    )
    lead = await new_lead(enforcement, world.officers[0], "certificate", certificate["id"])
    case = await open_case(enforcement, world, lead)
    return {
        **chain,
        "earlier_certificate": chain["certificate"],
        "certificate": certificate,
        "affiliation": affiliated.json(),
        "lead": lead,
        "case": case,
    }


@pytest.fixture(scope="module")
def provincial_officer(world, token_for) -> str:
    return token_for(world.province, roles=(Role.ENFORCEMENT,), body="enforcement")


@pytest.fixture(scope="module")
async def foreign_officer(registry, token_for) -> str:
    """An enforcement officer of another province."""
    other = await create_provincial_unit(registry, token_for(), "quality_supervision", "140000", pilot="none")
    return token_for(other, roles=(Role.ENFORCEMENT,), body="enforcement")


async def dossier(client: httpx.AsyncClient, path: str, token: str) -> dict:
    response = await client.get(f"{REGISTRY}/{path}/dossier", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def ids(items: list[dict]) -> list[int]:
    return [item["id"] for item in items]


class TestCertificateDossier:
    async def test_shows_the_certificate_its_links_and_the_case_of_the_province(
        self, dossiers, case_on_certificate, provincial_officer
    ):
        chain = case_on_certificate
        certificate_id = chain["certificate"]["id"]
        got = await dossier(dossiers, f"certificates/{certificate_id}", provincial_officer)

        item = await dossiers.get(
            f"{REGISTRY}/certificates/{certificate_id}", headers=auth(provincial_officer)
        )
        assert got["certificate"] == item.json()
        assert got["body"]["id"] == chain["body"]["id"]
        assert got["holder"]["id"] == chain["enterprise"]["id"]
        assert ids(got["products"]) == [chain["product"]["id"]]
        assert [c["certificate_id"] for c in got["status_history"]["items"]] == [certificate_id]
        assert got["status_history"]["items"][0]["step"] == "issue"
        assert got["inspections"] == {"items": [], "next_cursor": None}

        assert got["enforcement_unavailable"] is False
        enforcement = got["enforcement"]
        assert enforcement["subjects"] == [{"subject_type": "certificate", "subject_id": certificate_id}]
        assert ids(enforcement["leads"]) == [chain["lead"]["id"]]
        assert enforcement["leads"][0]["case_id"] == chain["case"]["id"]
        (case,) = enforcement["cases"]
        assert (case["id"], case["number"], case["state"]) == (
            chain["case"]["id"],
            chain["case"]["number"],
            chain["case"]["state"],
        )
        # Passed on as enforcement answers it, fields the registry does not name included.
        assert case["fine_decided"] == chain["case"]["fine_decided"]

    async def test_another_province_reads_the_dossier_without_the_case(
        self, dossiers, case_on_certificate, foreign_officer
    ):
        certificate_id = case_on_certificate["certificate"]["id"]
        got = await dossier(dossiers, f"certificates/{certificate_id}", foreign_officer)
        assert got["certificate"]["id"] == certificate_id
        assert got["holder"]["id"] == case_on_certificate["enterprise"]["id"]
        assert got["enforcement_unavailable"] is False
        assert (got["enforcement"]["leads"], got["enforcement"]["cases"]) == ([], [])

    async def test_unknown_certificate_is_404(self, dossiers, provincial_officer):
        response = await dossiers.get(
            f"{REGISTRY}/certificates/999999999/dossier", headers=auth(provincial_officer)
        )
        assert_problem(response, 404, "/problems/not-found")

    async def test_needs_a_token(self, dossiers, case_on_certificate):
        certificate_id = case_on_certificate["certificate"]["id"]
        response = await dossiers.get(f"{REGISTRY}/certificates/{certificate_id}/dossier")
        assert_problem(response, 401, "/problems/unauthorized")


class TestEnterpriseDossier:
    async def test_lists_the_case_of_its_certificate_for_the_province(
        self, dossiers, case_on_certificate, provincial_officer
    ):
        chain = case_on_certificate
        enterprise_id = chain["enterprise"]["id"]
        got = await dossier(dossiers, f"enterprises/{enterprise_id}", provincial_officer)

        item = await dossiers.get(f"{REGISTRY}/enterprises/{enterprise_id}", headers=auth(provincial_officer))
        assert got["enterprise"] == item.json()
        assert ids(got["products"]["items"]) == [chain["product"]["id"]]
        held = [chain["certificate"]["id"], chain["earlier_certificate"]["id"]]
        assert ids(got["certificates"]["items"]) == held
        assert got["inspections"]["items"] == []
        assert got["enforcement_unavailable"] is False
        assert got["enforcement"]["subjects"] == [
            {"subject_type": "enterprise", "subject_id": enterprise_id},
            *({"subject_type": "certificate", "subject_id": i} for i in held),
            {"subject_type": "product", "subject_id": chain["product"]["id"]},
        ]
        assert ids(got["enforcement"]["leads"]) == [chain["lead"]["id"]]
        assert ids(got["enforcement"]["cases"]) == [chain["case"]["id"]]

    async def test_a_case_of_the_enterprise_and_its_certificate_is_listed_once(
        self, dossiers, registry, enforcement, world, provincial_officer
    ):
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        case = await open_case(enforcement, world, lead, certificate_ids=[chain["certificate"]["id"]])

        got = await dossier(dossiers, f"enterprises/{chain['enterprise']['id']}", provincial_officer)
        assert ids(got["enforcement"]["cases"]) == [case["id"]]
        assert ids(got["enforcement"]["leads"]) == [lead["id"]]
        of_certificate = await dossier(
            dossiers, f"certificates/{chain['certificate']['id']}", provincial_officer
        )
        assert ids(of_certificate["enforcement"]["cases"]) == [case["id"]]
        assert of_certificate["enforcement"]["leads"] == []  # the lead concerns the enterprise

    async def test_another_province_reads_the_dossier_without_the_case(
        self, dossiers, case_on_certificate, foreign_officer
    ):
        enterprise_id = case_on_certificate["enterprise"]["id"]
        got = await dossier(dossiers, f"enterprises/{enterprise_id}", foreign_officer)
        assert got["enterprise"]["id"] == enterprise_id
        assert case_on_certificate["certificate"]["id"] in ids(got["certificates"]["items"])
        assert got["enforcement_unavailable"] is False
        assert (got["enforcement"]["leads"], got["enforcement"]["cases"]) == ([], [])


class TestBodyAndAuditorDossiers:
    async def test_body_dossier_shows_its_certificates(
        self, dossiers, case_on_certificate, provincial_officer
    ):
        chain = case_on_certificate
        got = await dossier(dossiers, f"certification-bodies/{chain['body']['id']}", provincial_officer)
        assert got["body"]["id"] == chain["body"]["id"]
        assert ids(got["certificates"]["items"]) == [
            chain["certificate"]["id"],
            chain["earlier_certificate"]["id"],
        ]
        assert ids(got["auditors"]["items"]) == [chain["auditor"]["id"]]
        assert got["enforcement"] == {
            "subjects": [{"subject_type": "certification_body", "subject_id": chain["body"]["id"]}],
            "leads": [],
            "cases": [],
        }

    async def test_auditor_dossier_shows_the_lead_concerning_the_auditor(
        self, dossiers, enforcement, world, case_on_certificate, provincial_officer
    ):
        auditor_id = case_on_certificate["auditor"]["id"]
        lead = await new_lead(enforcement, world.officers[0], "auditor", auditor_id)
        got = await dossier(dossiers, f"auditors/{auditor_id}", provincial_officer)
        assert got["auditor"]["id"] == auditor_id
        assert got["affiliations"] == {"items": [case_on_certificate["affiliation"]], "next_cursor": None}
        assert ids(got["enforcement"]["leads"]) == [lead["id"]]
        assert got["enforcement"]["cases"] == []

    async def test_unknown_records_are_404(self, dossiers, provincial_officer):
        for path in ("enterprises", "certification-bodies", "auditors"):
            response = await dossiers.get(
                f"{REGISTRY}/{path}/999999999/dossier", headers=auth(provincial_officer)
            )
            assert_problem(response, 404, "/problems/not-found")


class TestEnforcementUnavailable:
    async def test_closed_port_answers_the_dossier_without_the_chain(
        self, dossiers, case_on_certificate, provincial_officer, caplog
    ):
        chain = case_on_certificate
        with caplog.at_level(logging.WARNING, logger="registry.dossiers"):
            async with enforcement_at(dossiers, f"http://127.0.0.1:{free_port()}"):
                of_certificate = await dossier(
                    dossiers, f"certificates/{chain['certificate']['id']}", provincial_officer
                )
                of_enterprise = await dossier(
                    dossiers, f"enterprises/{chain['enterprise']['id']}", provincial_officer
                )
        for got in (of_certificate, of_enterprise):
            assert (got["enforcement"], got["enforcement_unavailable"]) == (None, True)
        assert of_certificate["certificate"]["id"] == chain["certificate"]["id"]
        assert chain["certificate"]["id"] in ids(of_enterprise["certificates"]["items"])
        logged = [r for r in caplog.records if r.name == "registry.dossiers"]
        assert [r.getMessage() for r in logged] == ["enforcement chain unavailable"] * 2
        assert logged[0].error == "ServiceUnavailable"

    async def test_silent_enforcement_is_given_up_after_the_timeout(
        self, dossiers, case_on_certificate, provincial_officer
    ):
        async with silent_server() as url, enforcement_at(dossiers, url, timeout_seconds=0.3):
            got = await dossier(
                dossiers, f"auditors/{case_on_certificate['auditor']['id']}", provincial_officer
            )
        assert (got["enforcement"], got["enforcement_unavailable"]) == (None, True)
        assert got["auditor"]["id"] == case_on_certificate["auditor"]["id"]

    async def test_enforcement_back_again(self, dossiers, case_on_certificate, provincial_officer):
        got = await dossier(
            dossiers, f"certificates/{case_on_certificate['certificate']['id']}", provincial_officer
        )
        assert got["enforcement_unavailable"] is False
        assert ids(got["enforcement"]["cases"]) == [case_on_certificate["case"]["id"]]
