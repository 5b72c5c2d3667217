"""Case documents (执法文书): amounts in capitals, templates kept as versioned data, the bureaus'
document prefixes, and each document rendered as DOCX once the case's state allows it."""

from __future__ import annotations

import io
from decimal import Decimal
from urllib.parse import quote

import pytest
from docx import Document

from services.common.auth import Role
from services.enforcement.documents.rendering import DOCX_MEDIA_TYPE, fill, template_errors, yuan_in_capitals
from services.enforcement.models import AuditEntry
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, fine, new_lead, ok, open_case, review_answer, subjects
from tests.factories import create_bureau, create_officer, rows_where
from tests.world import HEAD_STEPS, OFFICER_STEPS, Person, World, _post

VIOLATION = "uncertified-ccc-product"  # art. 66: fine 50,000–200,000 yuan
LEGAL_BASIS = "《认证认可条例》第六十六条"
FACTS = "当事人生产销售未获强制性产品认证的电器"


def docx_text(response) -> str:
    """Every paragraph of the DOCX body, its footer last, one a line."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DOCX_MEDIA_TYPE
    document = Document(io.BytesIO(response.content))
    body = [p.text for p in document.paragraphs]
    footer = [p.text for p in document.sections[0].footer.paragraphs]
    return "\n".join(body + footer)


async def opened(enforcement, registry, world: World) -> dict:
    chain = await subjects(registry, world)
    lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
    return await open_case(enforcement, world, lead, certificate_ids=[chain["certificate"]["id"]])


async def notified(enforcement, registry, world: World, amount: str = "60000.00") -> dict:
    o1 = world.officers[0]
    case = await opened(enforcement, registry, world)
    case = await ok(enforcement, o1, case, "start_investigation", occurred_on="2026-06-05")
    case = await ok(
        enforcement,
        o1,
        case,
        "close_investigation",
        occurred_on="2026-06-20",
        facts=FACTS,
        legal_basis=LEGAL_BASIS,
        violation_code=VIOLATION,
        penalties=[fine(amount)],
    )
    case = await ok(enforcement, o1, case, "request_review", occurred_on="2026-06-21")
    case = await review_answer(
        enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="事实清楚"
    )
    return await ok(enforcement, o1, case, "serve_prior_notice", occurred_on="2026-06-26")


async def decided(enforcement, registry, world: World, amount: str = "60000.00") -> dict:
    case = await notified(enforcement, registry, world, amount)
    return await ok(
        enforcement,
        world.head,
        case,
        "decide",
        occurred_on="2026-07-10",
        legal_basis=LEGAL_BASIS,
        penalties=[fine(amount)],
    )


async def document(enforcement, person: Person, case: dict, kind: str):
    return await enforcement.get(f"{API}/cases/{case['id']}/documents/{kind}", headers=auth(person.token))


class TestCapitals:
    @pytest.mark.parametrize(
        ("amount", "capitals"),
        [
            ("60000.00", "陆万元整"),
            ("0", "零元整"),
            ("10", "壹拾元整"),
            ("15", "壹拾伍元整"),
            ("110", "壹佰壹拾元整"),
            ("1010", "壹仟零壹拾元整"),
            ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
            ("107000.53", "壹拾万柒仟元伍角叁分"),
            ("100005", "壹拾万零伍元整"),
            ("100500", "壹拾万零伍佰元整"),
            ("200000", "贰拾万元整"),
            ("1.05", "壹元零伍分"),
            ("0.05", "伍分"),
            ("0.50", "伍角"),
            ("325000.70", "叁拾贰万伍仟元柒角"),
            ("100000000", "壹亿元整"),
            ("100005000", "壹亿零伍仟元整"),
            ("100010000", "壹亿零壹万元整"),
            ("105000000", "壹亿零伍佰万元整"),
            ("1000000000", "壹拾亿元整"),
            ("999999999999.99", "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
        ],
    )
    def test_amount_in_capitals(self, amount, capitals):
        assert yuan_in_capitals(Decimal(amount)) == capitals

    @pytest.mark.parametrize("amount", ["-1", "0.001", "NaN", "Infinity", "10000000000000000"])
    def test_refuses_what_is_not_an_amount(self, amount):
        with pytest.raises(ValueError):
            yuan_in_capitals(Decimal(amount))


class TestTemplateText:
    @pytest.mark.parametrize(
        "body",
        [
            "{unknown}",
            "{party_name.__class__}",
            "{party_name[0]}",
            "{party_name!r}",
            "{party_name:>40}",
            "当事人 { party_name",
            "当事人 }",
        ],
    )
    def test_only_named_fields(self, body):
        assert template_errors(body)

    def test_fill_puts_words_in_places_and_evaluates_nothing(self):
        text = "{party_name}：{{罚款}} {facts}"
        assert template_errors(text) == []
        assert fill(text, {"party_name": "{facts}", "facts": "事实"}) == "{facts}：{罚款} 事实"


class TestCaseDocuments:
    async def test_an_opened_case_has_its_opening_approval_only(self, enforcement, registry, world):
        case = await opened(enforcement, registry, world)
        listed = await enforcement.get(f"{API}/cases/{case['id']}/documents", headers=auth(world.head.token))
        assert listed.status_code == 200, listed.text
        available = {d["kind"]: d["available"] for d in listed.json()}
        assert available == {"opening_approval": True, "prior_notice": False, "decision": False}
        first = listed.json()[0]
        assert first["href"] == f"{API}/cases/{case['id']}/documents/opening_approval"
        assert first["template_version"] >= 1

        text = docx_text(await document(enforcement, world.officers[0], case, "opening_approval"))
        assert "立案审批表" in text
        assert case["number"] in text
        assert case["party_name"] in text
        for person in world.officers[:2]:
            assert person.officer["name"] in text
            assert person.officer["credential_number"] in text
        assert world.head.officer["name"] in text  # the head who approved the opening
        assert "2026年6月3日" in text

        for kind in ("prior_notice", "decision"):
            problem = assert_problem(
                await document(enforcement, world.head, case, kind), 409, "/problems/document-not-available"
            )
            assert (problem["kind"], problem["state"]) == (kind, "opened")

    async def test_prior_notice_states_the_proposal_and_the_rights(self, enforcement, registry, world):
        case = await notified(enforcement, registry, world, amount="75000.50")
        text = docx_text(await document(enforcement, world.officers[0], case, "prior_notice"))
        assert "行政处罚告知书" in text
        assert case["number"] in text
        assert FACTS in text
        assert LEGAL_BASIS in text
        assert "罚款人民币75000.50元（大写：人民币柒万伍仟元伍角）" in text
        assert "5个工作日" in text
        assert ("要求举行听证" in text) is case["flag_reasons"]["hearing_allowed"]
        assert_problem(
            await document(enforcement, world.head, case, "decision"), 409, "/problems/document-not-available"
        )

    async def test_decision_with_amounts_deadline_and_rights(self, enforcement, registry, world):
        case = await decided(enforcement, registry, world)
        assert case["state"] == "decided"
        listed = await enforcement.get(f"{API}/cases/{case['id']}/documents", headers=auth(world.head.token))
        assert all(d["available"] for d in listed.json())

        response = await document(enforcement, world.head, case, "decision")
        text = docx_text(response)
        print(text)
        print(docx_text(await document(enforcement, world.head, case, "prior_notice")))
        print(docx_text(await document(enforcement, world.head, case, "opening_approval")))
        assert "行政处罚决定书" in text
        assert case["number"] in text
        assert case["party_name"] in text
        assert FACTS in text
        assert LEGAL_BASIS in text
        assert "罚款人民币60000.00元（大写：人民币陆万元整）" in text
        assert "违法行为（违法行为目录）：" in text and "（第66条）" in text  # the catalogue's article
        assert "合计人民币60000.00元（大写：人民币陆万元整）" in text
        assert "收到本决定书之日起15日内" in text  # the payment deadline
        assert "行政复议" in text and "行政诉讼" in text
        assert "2026年7月10日" in text and "2026年6月26日" in text
        for person in world.officers[:2]:
            assert person.officer["credential_number"] in text
        version = response.headers["Document-Template-Version"]
        assert f"文书式样 decision 第{version}版" in text
        disposition = response.headers["content-disposition"]
        assert disposition.startswith(f'attachment; filename="case-{case["id"]}-decision.docx"')
        assert f"filename*=UTF-8''{quote(case['number'] + '-行政处罚决定书.docx')}" in disposition

    async def test_out_of_scope_is_not_found(self, enforcement, registry, world):
        case = await opened(enforcement, registry, world)
        for path in ("documents", "documents/opening_approval"):
            response = await enforcement.get(
                f"{API}/cases/{case['id']}/{path}", headers=auth(world.stranger.token)
            )
            assert_problem(response, 404, "/problems/not-found")

    async def test_unknown_kind_is_malformed(self, enforcement, registry, world):
        case = await opened(enforcement, registry, world)
        response = await document(enforcement, world.head, case, "summons")
        assert_problem(response, 422, "/problems/validation-error")


class TestTemplateVersions:
    async def test_listed_with_their_placeholders(self, enforcement, token_for):
        response = await enforcement.get(
            f"{API}/document-templates", params={"current_only": "true"}, headers=auth(token_for())
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert sorted(t["kind"] for t in body["templates"]) == [
            "decision",
            "opening_approval",
            "prior_notice",
        ]
        assert all(t["current"] for t in body["templates"])
        assert {"case_number", "penalties", "amount_total_capital"} <= set(body["placeholders"])

    async def test_a_new_version_is_used_and_the_old_one_kept(self, enforcement, registry, world, token_for):
        admin = auth(token_for())
        current = await enforcement.get(f"{API}/document-templates/decision", headers=admin)
        assert current.status_code == 200, current.text
        old = current.json()
        marker = "本文本为试行修订版。"
        put = await enforcement.put(
            f"{API}/document-templates/decision",
            json={"title": old["title"], "body": old["body"] + "\n" + marker, "note": "试行"},
            headers={**admin, "If-Match": current.headers["ETag"]},
        )
        assert put.status_code == 201, put.text
        new = put.json()
        try:
            assert (new["version"], new["current"]) == (old["version"] + 1, True)
            kept = await enforcement.get(
                f"{API}/document-templates/decision", params={"version": old["version"]}, headers=admin
            )
            assert (kept.json()["body"], kept.json()["current"]) == (old["body"], False)
            audited = await rows_where(
                enforcement,
                AuditEntry,
                action="document_template.versioned",
                entity_id=f"decision/{new['version']}",
            )
            assert audited == 1
            case = await decided(enforcement, registry, world)
            response = await document(enforcement, world.head, case, "decision")
            text = docx_text(response)
            assert marker in text
            assert response.headers["Document-Template-Version"] == str(new["version"])
            assert f"第{new['version']}版" in text

            stale = await enforcement.put(
                f"{API}/document-templates/decision",
                json={"title": old["title"], "body": old["body"]},
                headers={**admin, "If-Match": current.headers["ETag"]},
            )
            assert_problem(stale, 412, "/problems/precondition-failed")
        finally:
            # The next version restores the text, so every other test reads the seeded wording.
            newest = await enforcement.get(f"{API}/document-templates/decision", headers=admin)
            restored = await enforcement.put(
                f"{API}/document-templates/decision",
                json={"title": old["title"], "body": old["body"], "note": "恢复"},
                headers={**admin, "If-Match": newest.headers["ETag"]},
            )
            assert restored.status_code == 201, restored.text

    @pytest.mark.parametrize(
        "body", ["{party_name.__class__.__init__}", "{unknown_field}", "{amount_total:,}", "罚款 {"]
    )
    async def test_a_body_naming_anything_else_is_refused(self, enforcement, token_for, body):
        response = await enforcement.put(
            f"{API}/document-templates/prior_notice",
            json={"title": "行政处罚告知书", "body": body},
            headers=auth(token_for()),
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.body"

    async def test_only_national_administrators(self, enforcement, world, token_for):
        payload = {"title": "行政处罚告知书", "body": "{party_name}"}
        for token in (token_for(world.province), token_for(roles=(Role.HEAD,)), world.head.token):
            response = await enforcement.put(
                f"{API}/document-templates/prior_notice", json=payload, headers=auth(token)
            )
            assert_problem(response, 403, "/problems/role-required")


async def bureau_world(registry, token_for, world: World) -> World:
    """A county of its own, with a head and two officers, whose prefix a test may change."""
    national = token_for()
    county = await create_bureau(registry, national, world.city, "county", "130108")
    officer_post = await _post(registry, national, county, "enforcement", OFFICER_STEPS)
    head_post = await _post(registry, national, county, "enforcement", HEAD_STEPS)

    async def person(post, roles) -> Person:
        officer = await create_officer(registry, national, county, post_id=post["id"])
        return Person(
            officer, lambda: token_for(county, roles=roles, officer_id=officer["id"], body="enforcement")
        )

    own = World(world.province, world.city, county, world.other_county)
    own.officers = [await person(officer_post, (Role.ENFORCEMENT,)) for _ in range(2)]
    own.head = await person(head_post, (Role.HEAD,))
    own.legal = world.legal
    return own


class TestDocumentPrefix:
    async def test_set_by_an_administrator_above_and_used_for_new_numbers(
        self, enforcement, registry, world, token_for
    ):
        own = await bureau_world(registry, token_for, world)
        path = f"{API}/bureaus/{own.county['id']}/document-prefix"
        before = await enforcement.get(path, headers=auth(own.head.token))
        assert before.status_code == 200, before.text
        assert (before.json()["prefix"], before.json()["is_default"]) == ("执法罚字", True)

        city_admin = auth(token_for(world.city))
        response = await enforcement.put(path, json={"prefix": "浙质监罚字"}, headers=city_admin)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "bureau_id": own.county["id"],
            "prefix": "浙质监罚字",
            "is_default": False,
            "example": response.json()["example"],
        }
        assert response.json()["example"].startswith("浙质监罚字〔")
        after = await enforcement.get(path, headers=auth(own.head.token))
        assert (after.json()["prefix"], after.json()["is_default"]) == ("浙质监罚字", False)
        assert (
            await rows_where(
                enforcement,
                AuditEntry,
                action="bureau_document_prefix.changed",
                entity_id=str(own.county["id"]),
            )
            == 1
        )

        case = await opened(enforcement, registry, own)
        assert case["number"] == "浙质监罚字〔2026〕1号"
        text = docx_text(await document(enforcement, own.head, case, "opening_approval"))
        assert "浙质监罚字〔2026〕1号" in text

    async def test_roles_and_scope(self, enforcement, registry, world, token_for):
        own = await bureau_world(registry, token_for, world)
        path = f"{API}/bureaus/{own.county['id']}/document-prefix"
        payload = {"prefix": "冀质监罚字"}
        for token in (own.head.token, own.officers[0].token, token_for(own.county, roles=(Role.LEGAL,))):
            refused = await enforcement.put(path, json=payload, headers=auth(token))
            assert_problem(refused, 403, "/problems/role-required")
        sibling_admin = auth(token_for(world.other_county))
        assert_problem(
            await enforcement.put(path, json=payload, headers=sibling_admin), 404, "/problems/not-found"
        )
        assert_problem(await enforcement.get(path, headers=sibling_admin), 404, "/problems/not-found")
        missing = f"{API}/bureaus/999999999/document-prefix"
        assert_problem(
            await enforcement.put(missing, json=payload, headers=auth(token_for())),
            404,
            "/problems/not-found",
        )
        after = await enforcement.get(path, headers=auth(token_for()))
        assert after.json()["is_default"] is True  # nothing was written

    @pytest.mark.parametrize(
        "prefix",
        [
            "",
            "浙质监罚字〔",
            "浙质监〕罚字",
            "浙质监罚号",
            "浙质监 罚字",
            "罚-字",
            "罚字😀",
            "一" * 17,
            " 罚字",
            12,
        ],
    )
    async def test_bad_prefixes(self, enforcement, world, token_for, prefix):
        response = await enforcement.put(
            f"{API}/bureaus/{world.county['id']}/document-prefix",
            json={"prefix": prefix},
            headers=auth(token_for()),
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.prefix"

    async def test_ascii_and_sixteen_characters_are_fine(self, enforcement, registry, world, token_for):
        own = await bureau_world(registry, token_for, world)
        response = await enforcement.put(
            f"{API}/bureaus/{own.county['id']}/document-prefix",
            json={"prefix": "ZJ" + "罚" * 14},
            headers=auth(token_for()),
        )
        assert response.status_code == 200, response.text
