"""Certificate status (证书状态): its steps as a table, the history of who, when, why and which
case, If-Match, scope and roles — and the service function a decision-event consumer calls."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from services.common.auth import Principal, PrincipalKind, Role
from services.common.problems import Forbidden, InvalidTransition, UnprocessableEntity
from services.registry.certification.certificates import service
from services.registry.certification.models import CertificateStatusChange
from services.registry.models import AUDIT, OutboxEvent
from tests.conftest import auth
from tests.factories import audit_entries
from tests.registry.certificate_helpers import CERTIFICATES, build_chain, links_of, payload, register

MISSING_ID = 987_654_321

# From each state, the steps that lead somewhere (DOMAIN.md) and where.
MOVES = {
    "valid": {"suspend": "suspended", "revoke": "revoked", "cancel": "cancelled"},
    "suspended": {"restore": "valid", "revoke": "revoked", "cancel": "cancelled"},
    "revoked": {},
    "cancelled": {},
}
# How to bring a fresh certificate into a state.
PATH_TO = {"valid": [], "suspended": ["suspend"], "revoked": ["revoke"], "cancelled": ["cancel"]}


@pytest.fixture(scope="module")
async def chain(registry, token_for):
    return await build_chain(registry, token_for)


@pytest.fixture
def writer(token_for, chain):
    return token_for(chain["zj"], roles=("supervision",), account_id=f"officer-{uuid.uuid4().hex[:8]}")


async def step(registry, token, certificate_id: int, version: int, **body):
    return await registry.post(
        f"{CERTIFICATES}/{certificate_id}/status-changes",
        json={"reason": "监督抽查发现不合格", **body},
        headers={**auth(token), "If-Match": f'"{version}"'},
    )


async def certificate_in(registry, token, chain, state: str) -> dict:
    certificate = await register(registry, token, payload(chain))
    version = certificate["version"]
    for name in PATH_TO[state]:
        response = await step(registry, token, certificate["id"], version, step=name)
        assert response.status_code == 201, response.text
        version += 1
    return await read(registry, token, certificate["id"])


async def read(registry, token, certificate_id: int) -> dict:
    response = await registry.get(f"{CERTIFICATES}/{certificate_id}", headers=auth(token))
    assert response.status_code == 200
    return response.json()


async def history(registry, token, certificate_id: int, **params) -> list[dict]:
    response = await registry.get(
        f"{CERTIFICATES}/{certificate_id}/history", params=params, headers=auth(token)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


class TestStatusSteps:
    @pytest.mark.parametrize(
        ("state", "name", "target"),
        [(state, name, target) for state, moves in MOVES.items() for name, target in moves.items()],
    )
    async def test_allowed_step(self, registry, writer, chain, state, name, target):
        certificate = await certificate_in(registry, writer, chain, state)
        before_audit = len(await audit_entries(registry, "certificate", certificate["id"]))
        response = await step(registry, writer, certificate["id"], certificate["version"], step=name)
        assert response.status_code == 201, response.text
        change = response.json()
        assert change["step"] == name
        assert change["from_status"] == state
        assert change["to_status"] == target
        assert response.headers["etag"] == f'"{certificate["version"] + 1}"'
        assert response.headers["location"] == f"{CERTIFICATES}/{certificate['id']}/history"
        after = await read(registry, writer, certificate["id"])
        assert after["status"] == target
        assert after["version"] == certificate["version"] + 1
        changed_at = datetime.fromisoformat(after["status_changed_at"])
        assert changed_at > datetime.fromisoformat(certificate["status_changed_at"])
        entries = await audit_entries(registry, "certificate", certificate["id"])
        assert [e["action"] for e in entries[before_audit:]] == ["certificate.status_changed"]

    @pytest.mark.parametrize(
        ("state", "name"),
        [
            (state, name)
            for state, moves in MOVES.items()
            for name in ("suspend", "restore", "revoke", "cancel")
            if name not in moves
        ],
    )
    async def test_forbidden_step_names_the_allowed_ones(self, registry, writer, chain, state, name):
        certificate = await certificate_in(registry, writer, chain, state)
        records = await links_of(registry, certificate["id"])
        response = await step(registry, writer, certificate["id"], certificate["version"], step=name)
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/invalid-transition"
        assert problem["state"] == state
        assert {a["step"]: a["target"] for a in problem["allowed"]} == MOVES[state]
        assert await read(registry, writer, certificate["id"]) == certificate
        assert await links_of(registry, certificate["id"]) == records

    async def test_exchange_status_follows_the_state(self, registry, writer, chain):
        seen = {}
        for state in ("valid", "suspended", "revoked", "cancelled"):
            certificate = await certificate_in(
                registry, writer, chain, state
            )  # issued 2016-03-01, so a valid one is past its expiry
            seen[state] = certificate["exchange_status"]
        assert seen == {
            "valid": "expired",
            "suspended": "suspended",
            "revoked": "withdrawn",
            "cancelled": "cancelled",
        }

    async def test_suspension_until_a_date_and_its_restoration(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        response = await step(
            registry, writer, certificate["id"], 1, step="suspend", suspended_until="2030-06-30"
        )
        assert response.status_code == 201
        assert response.json()["suspended_until"] == "2030-06-30"
        assert (await read(registry, writer, certificate["id"]))["suspended_until"] == "2030-06-30"
        restored = await step(registry, writer, certificate["id"], 2, step="restore")
        assert restored.status_code == 201
        assert (await read(registry, writer, certificate["id"]))["suspended_until"] is None


async def certificate_events(registry, certificate_id: int) -> list[dict]:
    """The outbox events of one certificate, oldest first."""
    table = OutboxEvent
    async with registry.app.state.sessionmaker() as session:
        query = (
            select(table)
            .where(table.c.aggregate_type == "certificate", table.c.aggregate_id == str(certificate_id))
            .order_by(table.c.aggregate_version)
        )
        return [dict(r) for r in (await session.exec(query)).mappings().all()]


class TestStatusEvents:
    async def test_each_step_is_an_event_in_the_outbox(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        assert await certificate_events(registry, certificate["id"]) == []
        request_id = f"req-{uuid.uuid4().hex}"
        response = await registry.post(
            f"{CERTIFICATES}/{certificate['id']}/status-changes",
            json={"step": "suspend", "reason": "监督抽查不合格", "case_ref": "浙质监案〔2008〕9号"},
            headers={**auth(writer), "If-Match": '"1"', "X-Request-ID": request_id},
        )
        assert response.status_code == 201
        assert (await step(registry, writer, certificate["id"], 2, step="revoke")).status_code == 201
        events = await certificate_events(registry, certificate["id"])
        assert [e["type"] for e in events] == ["registry.certificate.status_changed"] * 2
        suspended = events[0]
        assert suspended["aggregate_version"] == 2
        assert suspended["bureau_id"] == chain["zj"]["id"]
        assert suspended["bureau_path"] == chain["zj"]["path"]
        assert suspended["request_id"] == request_id
        payload = suspended["payload"]
        assert payload["certificate_id"] == certificate["id"]
        assert payload["number"] == certificate["number"] and payload["scheme"] == "ccc"
        assert (payload["from_status"], payload["to_status"]) == ("valid", "suspended")
        assert payload["case_ref"] == "浙质监案〔2008〕9号"
        assert payload["reason"] == "监督抽查不合格"
        assert (events[1]["aggregate_version"], events[1]["payload"]["to_status"]) == (3, "revoked")

    async def test_a_refused_step_emits_nothing(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "cancelled")
        before = await certificate_events(registry, certificate["id"])
        response = await step(registry, writer, certificate["id"], certificate["version"], step="restore")
        assert response.status_code == 409
        assert await certificate_events(registry, certificate["id"]) == before


class TestStatusStepRefused:
    async def test_missing_if_match(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        response = await registry.post(
            f"{CERTIFICATES}/{certificate['id']}/status-changes",
            json={"step": "suspend", "reason": "监督抽查发现不合格"},
            headers=auth(writer),
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert await read(registry, writer, certificate["id"]) == certificate

    async def test_stale_if_match(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "suspended")
        response = await step(registry, writer, certificate["id"], certificate["version"] - 1, step="revoke")
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        assert await read(registry, writer, certificate["id"]) == certificate

    async def test_out_of_scope_looks_missing(self, registry, writer, token_for, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        outsider = token_for(chain["sd"], roles=("supervision",))
        answers = []
        for certificate_id in (certificate["id"], MISSING_ID):
            response = await step(registry, outsider, certificate_id, 1, step="revoke")
            assert response.status_code == 404
            assert response.json()["type"] == "/problems/not-found"
            problem = {k: v for k, v in response.json().items() if k != "request_id"}
            problem["detail"] = problem["detail"].replace(str(certificate_id), "<asked>")
            answers.append(problem)
        assert answers[0] == answers[1]
        assert await read(registry, writer, certificate["id"]) == certificate

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_roles_refused(self, registry, writer, token_for, chain, role):
        certificate = await certificate_in(registry, writer, chain, "valid")
        response = await step(
            registry, token_for(chain["zj"], roles=(role,)), certificate["id"], 1, step="suspend"
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await read(registry, writer, certificate["id"]) == certificate

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"step": "suspend", "reason": None}, "body.reason"),
            ({"step": "suspend", "reason": " "}, "body.reason"),
            ({"step": "expire"}, "body.step"),  # "expired" is a condition, not a step
            ({"step": "revoke", "suspended_until": "2030-01-01"}, "body.suspended_until"),
            ({"step": "suspend", "suspended_until": "soon"}, "body.suspended_until"),
            ({"step": "suspend", "case_ref": "a b"}, "body.case_ref"),
            ({"step": "suspend", "to_status": "revoked"}, "body.to_status"),
        ],
    )
    async def test_malformed(self, registry, writer, chain, body, loc):
        certificate = await certificate_in(registry, writer, chain, "valid")
        response = await registry.post(
            f"{CERTIFICATES}/{certificate['id']}/status-changes",
            json={"reason": "监督抽查发现不合格", **body},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "/problems/validation-error"
        assert loc in [e["loc"] for e in response.json()["errors"]]
        assert await read(registry, writer, certificate["id"]) == certificate


class TestHistory:
    async def test_full_history_oldest_first_with_who_why_and_case(self, registry, token_for, chain):
        account = f"officer-{uuid.uuid4().hex[:8]}"
        writer = token_for(chain["zj"], roles=("supervision",), account_id=account)
        certificate = await register(registry, writer, payload(chain))
        request_id = f"req-{uuid.uuid4().hex}"
        response = await registry.post(
            f"{CERTIFICATES}/{certificate['id']}/status-changes",
            json={"step": "suspend", "reason": "产品与型式试验样品不一致", "case_ref": "浙质监案〔2008〕7号"},
            headers={**auth(writer), "If-Match": '"1"', "X-Request-ID": request_id},
        )
        assert response.status_code == 201
        assert (
            await step(registry, writer, certificate["id"], 2, step="revoke", reason="整改期满未改正")
        ).status_code == 201

        reader = token_for(chain["sd"], roles=("enforcement",))  # another province reads it
        records = await history(registry, reader, certificate["id"])
        assert [(r["step"], r["from_status"], r["to_status"]) for r in records] == [
            ("issue", None, "valid"),
            ("suspend", "valid", "suspended"),
            ("revoke", "suspended", "revoked"),
        ]
        suspension = records[1]
        assert suspension["reason"] == "产品与型式试验样品不一致"
        assert suspension["case_ref"] == "浙质监案〔2008〕7号"
        assert suspension["actor_kind"] == "officer"
        assert suspension["actor_id"] == account
        assert suspension["actor_bureau_id"] == chain["zj"]["id"]
        assert suspension["request_id"] == request_id
        assert suspension["decision_event_id"] is None
        assert records[0]["changed_at"] <= records[1]["changed_at"] <= records[2]["changed_at"]
        assert records[2]["case_ref"] is None and records[2]["reason"] == "整改期满未改正"

    async def test_history_in_pages(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        version = 1
        for name in ("suspend", "restore", "suspend", "restore"):
            assert (await step(registry, writer, certificate["id"], version, step=name)).status_code == 201
            version += 1
        pages, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await registry.get(
                f"{CERTIFICATES}/{certificate['id']}/history", params=params, headers=auth(writer)
            )
            pages.append([r["step"] for r in response.json()["items"]])
            cursor = response.json()["next_cursor"]
            if not cursor:
                break
        assert pages == [["issue", "suspend"], ["restore", "suspend"], ["restore"]]

    async def test_history_of_a_missing_certificate(self, registry, writer):
        response = await registry.get(f"{CERTIFICATES}/{MISSING_ID}/history", headers=auth(writer))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"


class TestChangeCertificateStatusFunction:
    """The function a decision-event consumer calls inside its own transaction."""

    def consumer(self, bureau: dict) -> Principal:
        return Principal(
            account_id="enforcement",
            kind=PrincipalKind.SERVICE,
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            roles=frozenset({Role.SERVICE}),
        )

    async def test_applies_a_decision_with_its_event_and_case(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        event_id = str(uuid.uuid4())
        async with registry.app.state.sessionmaker() as session:
            loaded = await service.load_certificate_for_change(session, certificate["id"])
            change = await service.change_certificate_status(
                session,
                AUDIT,
                loaded,
                "revoke",
                reason="行政处罚决定：撤销认证证书",
                case_ref="浙质监罚〔2008〕3号",
                actor=self.consumer(chain["zj"]),
                decision_event_id=event_id,
            )
            await session.commit()
        assert isinstance(change, CertificateStatusChange)
        assert change.to_status == "revoked"
        records = await history(registry, writer, certificate["id"])
        assert records[-1]["decision_event_id"] == event_id
        assert records[-1]["actor_kind"] == "service"
        assert records[-1]["case_ref"] == "浙质监罚〔2008〕3号"
        after = await read(registry, writer, certificate["id"])
        assert after["status"] == "revoked" and after["version"] == 2

    async def test_refuses_a_step_the_state_does_not_allow(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "cancelled")
        async with registry.app.state.sessionmaker() as session:
            loaded = await service.load_certificate_for_change(session, certificate["id"])
            with pytest.raises(InvalidTransition) as refused:
                await service.change_certificate_status(
                    session,
                    AUDIT,
                    loaded,
                    "restore",
                    reason="撤销处罚决定",
                    case_ref=None,
                    actor=self.consumer(chain["zj"]),
                )
            await session.rollback()
        assert refused.value.extra["allowed"] == []
        assert await read(registry, writer, certificate["id"]) == certificate

    async def test_refuses_an_actor_without_a_writing_role(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        actor = Principal(
            account_id="legal-officer",
            kind=PrincipalKind.OFFICER,
            bureau_id=chain["zj"]["id"],
            bureau_path=chain["zj"]["path"],
            roles=frozenset({Role.LEGAL}),
        )
        async with registry.app.state.sessionmaker() as session:
            loaded = await service.load_certificate_for_change(session, certificate["id"])
            with pytest.raises(Forbidden):
                await service.change_certificate_status(
                    session, AUDIT, loaded, "suspend", reason="未经授权", case_ref=None, actor=actor
                )
            await session.rollback()
        assert await read(registry, writer, certificate["id"]) == certificate

    async def test_refuses_a_step_without_a_reason(self, registry, writer, chain):
        certificate = await certificate_in(registry, writer, chain, "valid")
        async with registry.app.state.sessionmaker() as session:
            loaded = await service.load_certificate_for_change(session, certificate["id"])
            with pytest.raises(UnprocessableEntity):
                await service.change_certificate_status(
                    session,
                    AUDIT,
                    loaded,
                    "suspend",
                    reason="  ",
                    case_ref=None,
                    actor=self.consumer(chain["zj"]),
                )
            await session.rollback()
        assert await read(registry, writer, certificate["id"]) == certificate

    async def test_load_of_a_missing_certificate(self, registry):
        async with registry.app.state.sessionmaker() as session:
            assert await service.load_certificate_for_change(session, MISSING_ID) is None
