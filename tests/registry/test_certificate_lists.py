"""Certificate lists (证书清单): filters, keyset pages, surveillance overdue by the rules kept as
data, the plans behind the filters, and the streamed CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, text

from services.registry.certification.certificates import rules
from services.registry.certification.certificates.repository import CertificateFilters, list_query
from services.registry.certification.models import Certificate
from tests.conftest import auth
from tests.factories import ccc_number, make_body, make_enterprise, management_system_number
from tests.registry.certificate_helpers import CERTIFICATES, build_chain, iso, payload, register, set_columns

EXPORT = f"{CERTIFICATES}.csv"


@pytest.fixture(scope="module")
async def chain(registry, token_for):
    return await build_chain(registry, token_for)


@pytest.fixture(scope="module")
async def world(registry, token_for, chain):
    """A body of this module's own and certificates of it, each with what sets it apart:
    holders in Hangzhou (330106), Ningbo (330203) and Jinan (370102), every scheme, every
    state, a record kept by the county bureau, expiry dates spread over years."""
    writer = token_for(chain["zj"], roles=("supervision",))
    token = uuid.uuid4().hex[:8]
    body = await make_body(registry, chain["zj"])
    hangzhou = await make_enterprise(registry, chain["zj"], "330106", name=f"杭州{token}电器有限公司")
    ningbo = await make_enterprise(registry, chain["zj"], "330203", name=f"宁波{token}线缆有限公司")
    jinan = await make_enterprise(registry, chain["sd"], "370102", name="济南%_线缆有限公司")
    made: dict[str, dict] = {}

    async def make(key: str, holder: dict, **extra) -> None:
        body_json = payload(chain, body_id=body["id"], holder_id=holder["id"], product_ids=[], **extra)
        made[key] = await register(registry, writer, body_json)

    await make("hz_ccc", hangzhou, issued_on="2016-03-01")  # expires 2021-02-28
    await make("hz_ccc_county", hangzhou, issued_on="2017-05-01", bureau_id=chain["county"]["id"])
    await make(
        "hz_qms",
        hangzhou,
        scheme="qms",
        number=management_system_number(),
        issued_on="2019-01-10",
        expires_on="2022-01-09",
    )
    await make("nb_ccc", ningbo, issued_on="2020-07-01")  # expires 2025-06-30
    await make(
        "nb_ems",
        ningbo,
        scheme="ems",
        number=management_system_number("E"),
        issued_on="2021-01-01",
        expires_on="2023-12-31",
    )
    await make("jn_ccc", jinan, issued_on="2018-01-01")  # expires 2022-12-31
    for key, name in (("hz_ccc_county", "suspend"), ("nb_ems", "cancel")):
        response = await registry.post(
            f"{CERTIFICATES}/{made[key]['id']}/status-changes",
            json={"step": name, "reason": "监督抽查不合格"},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 201
    return {"body": body, "token": token, "holders": (hangzhou, ningbo, jinan), "made": made}


async def ids(registry, token: str, **params) -> list[int]:
    response = await registry.get(CERTIFICATES, params={"limit": 200, **params}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [c["id"] for c in response.json()["items"]]


def of(world: dict, *keys: str) -> list[int]:
    """The world's certificates named, newest first (the list's order)."""
    return sorted((world["made"][k]["id"] for k in keys), reverse=True)


class TestFilters:
    @pytest.fixture
    def reader(self, token_for, chain):
        """A principal of another province: lists are readable by everyone."""
        return token_for(chain["sd"], roles=("enforcement",))

    async def test_by_body(self, registry, reader, world):
        assert await ids(registry, reader, body_id=world["body"]["id"]) == of(world, *world["made"])

    @pytest.mark.parametrize(
        ("status", "keys"),
        [
            ("valid", ["hz_ccc", "hz_qms", "nb_ccc", "jn_ccc"]),
            ("suspended", ["hz_ccc_county"]),
            ("cancelled", ["nb_ems"]),
            ("revoked", []),
        ],
    )
    async def test_by_status(self, registry, reader, world, status, keys):
        found = await ids(registry, reader, body_id=world["body"]["id"], status=status)
        assert found == of(world, *keys)

    @pytest.mark.parametrize(
        ("scheme", "keys"),
        [("ccc", ["hz_ccc", "hz_ccc_county", "nb_ccc", "jn_ccc"]), ("qms", ["hz_qms"]), ("ems", ["nb_ems"])],
    )
    async def test_by_scheme(self, registry, reader, world, scheme, keys):
        assert await ids(registry, reader, body_id=world["body"]["id"], scheme=scheme) == of(world, *keys)

    async def test_by_holder(self, registry, reader, world):
        ningbo = world["holders"][1]
        assert await ids(registry, reader, holder_id=ningbo["id"]) == of(world, "nb_ccc", "nb_ems")

    async def test_by_keeping_bureau(self, registry, reader, world, chain):
        found = await ids(registry, reader, body_id=world["body"]["id"], bureau_id=chain["county"]["id"])
        assert found == of(world, "hz_ccc_county")

    @pytest.mark.parametrize(
        ("division", "keys"),
        [
            ("33", ["hz_ccc", "hz_ccc_county", "hz_qms", "nb_ccc", "nb_ems"]),
            ("330000", ["hz_ccc", "hz_ccc_county", "hz_qms", "nb_ccc", "nb_ems"]),
            ("3301", ["hz_ccc", "hz_ccc_county", "hz_qms"]),
            ("330100", ["hz_ccc", "hz_ccc_county", "hz_qms"]),
            ("330106", ["hz_ccc", "hz_ccc_county", "hz_qms"]),
            ("330203", ["nb_ccc", "nb_ems"]),
            ("3302", ["nb_ccc", "nb_ems"]),
            ("37", ["jn_ccc"]),
            ("330102", []),
            ("44", []),
        ],
    )
    async def test_by_division_prefix(self, registry, reader, world, division, keys):
        found = await ids(registry, reader, body_id=world["body"]["id"], division_code=division)
        assert found == of(world, *keys)

    @pytest.mark.parametrize(
        ("window", "keys"),
        [
            ({"expires_from": "2021-02-28", "expires_to": "2021-02-28"}, ["hz_ccc"]),
            (
                {"expires_from": "2022-01-01", "expires_to": "2022-12-31"},
                ["hz_qms", "hz_ccc_county", "jn_ccc"],
            ),
            ({"expires_from": "2022-04-30", "expires_to": "2022-04-30"}, ["hz_ccc_county"]),
            ({"expires_to": "2021-12-31"}, ["hz_ccc"]),
            ({"expires_from": "2023-01-01"}, ["nb_ccc", "nb_ems"]),
            ({"expires_from": "2030-01-01"}, []),
        ],
    )
    async def test_by_expiry_window(self, registry, reader, world, window, keys):
        assert await ids(registry, reader, body_id=world["body"]["id"], **window) == of(world, *keys)

    async def test_by_part_of_the_holders_name(self, registry, reader, world):
        found = await ids(registry, reader, q=f"{world['token']}电器")
        assert found == of(world, "hz_ccc", "hz_ccc_county", "hz_qms")
        assert await ids(registry, reader, q=world["token"].upper()) == of(
            world, "hz_ccc", "hz_ccc_county", "hz_qms", "nb_ccc", "nb_ems"
        )

    async def test_wildcards_in_the_name_are_plain_characters(self, registry, reader, world):
        found = await ids(registry, reader, body_id=world["body"]["id"], q="%_线缆")
        assert found == of(world, "jn_ccc")
        assert await ids(registry, reader, body_id=world["body"]["id"], q="%%%") == []

    async def test_filters_combine(self, registry, reader, world):
        found = await ids(
            registry,
            reader,
            body_id=world["body"]["id"],
            division_code="33",
            scheme="ccc",
            status="valid",
            expires_to="2025-12-31",
        )
        assert found == of(world, "hz_ccc", "nb_ccc")

    async def test_by_number(self, registry, reader, world):
        number = world["made"]["hz_qms"]["number"]
        assert await ids(registry, reader, number=number) == of(world, "hz_qms")

    async def test_computed_conditions_in_the_items(self, registry, reader, world):
        response = await registry.get(
            CERTIFICATES, params={"holder_id": world["holders"][1]["id"]}, headers=auth(reader)
        )
        items = {c["id"]: c for c in response.json()["items"]}
        cancelled = items[world["made"]["nb_ems"]["id"]]
        assert cancelled["exchange_status"] == "cancelled" and cancelled["expired"] is False
        past = items[world["made"]["nb_ccc"]["id"]]  # expired 2025-06-30
        assert past["exchange_status"] == ("expired" if rules.today() > date(2025, 6, 30) else "active")

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 201},
            {"limit": 0},
            {"cursor": "not a cursor"},
            {"cursor": "WyJ4Il0"},  # a cursor of another list's shape
            {"status": "expired"},  # a condition, not a stored state
            {"scheme": "iso9001"},
            {"division_code": "3"},
            {"division_code": "33010"},
            {"division_code": "33a"},
            {"q": "电器"},  # too short for the name index
            {"q": " 电器有限 "},  # spaces at the ends are not part of a name
            {"number": " "},
            {"expires_from": "2020-13-01"},
            {"expires_to": "0"},  # not a timestamp
            {"expires_to": "2020-01-01T00:00:00"},
            {"body_id": 0},
            {"surveillance_overdue": "maybe"},
        ],
    )
    async def test_bad_parameters(self, registry, reader, params):
        response = await registry.get(CERTIFICATES, params=params, headers=auth(reader))
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "/problems/validation-error"

    async def test_without_a_token(self, registry):
        assert (await registry.get(CERTIFICATES)).status_code == 401


class TestPages:
    async def test_walks_newest_first_without_gaps_or_repeats(self, registry, token_for, world):
        reader = token_for()
        seen, cursor, pages = [], None, 0
        while True:
            params = {"body_id": world["body"]["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await registry.get(CERTIFICATES, params=params, headers=auth(reader))
            assert response.status_code == 200
            page = response.json()
            assert len(page["items"]) <= 2
            seen += [c["id"] for c in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == of(world, *world["made"])
        assert pages == 3

    async def test_largest_page(self, registry, token_for, world):
        response = await registry.get(
            CERTIFICATES, params={"body_id": world["body"]["id"], "limit": 200}, headers=auth(token_for())
        )
        assert response.status_code == 200
        assert len(response.json()["items"]) == len(world["made"])


class TestSurveillanceOverdue:
    """Surveillance of management-system certificates: first within 12 months of issue, then at
    most 12 months apart (services/registry/data/surveillance-rules.csv); none for CCC."""

    @pytest.fixture(scope="class")
    @classmethod
    async def cases(cls, registry, token_for, chain):
        writer = token_for(chain["zj"], roles=("supervision",))
        body = await make_body(registry, chain["zj"])
        today = rules.today()
        far = iso(today + timedelta(days=700))

        async def make(scheme="qms", issued=400, last=None, step=None) -> dict:
            certificate = await register(
                registry,
                writer,
                payload(
                    chain,
                    body_id=body["id"],
                    scheme=scheme,
                    number=ccc_number() if scheme == "ccc" else management_system_number(),
                    product_ids=[],
                    issued_on=iso(today - timedelta(days=issued)),
                    expires_on=far,
                ),
            )
            if last is not None:
                await set_columns(
                    registry, certificate["id"], last_surveillance_on=today - timedelta(days=last)
                )
            if step:
                response = await registry.post(
                    f"{CERTIFICATES}/{certificate['id']}/status-changes",
                    json={"step": step, "reason": "监督审核未按期进行"},
                    headers={**auth(writer), "If-Match": '"1"'},
                )
                assert response.status_code == 201
            return certificate

        return {
            "body": body,
            "never_surveilled_old": await make(issued=400),
            "never_surveilled_new": await make(issued=200),
            "surveilled_long_ago": await make(scheme="ems", issued=900, last=400),
            "surveilled_lately": await make(scheme="ohsms", issued=900, last=300),
            "suspended_old": await make(issued=400, step="suspend"),
            "ccc_old": await make(scheme="ccc", issued=2000),
        }

    def names(self, cases: dict, found: list[int]) -> set[str]:
        by_id = {c["id"]: name for name, c in cases.items() if name != "body"}
        return {by_id[i] for i in found}

    async def test_overdue_filter(self, registry, token_for, cases):
        found = await ids(registry, token_for(), body_id=cases["body"]["id"], surveillance_overdue="true")
        assert self.names(cases, found) == {"never_surveilled_old", "surveilled_long_ago"}

    async def test_not_overdue_filter(self, registry, token_for, cases):
        found = await ids(registry, token_for(), body_id=cases["body"]["id"], surveillance_overdue="false")
        assert self.names(cases, found) == {
            "never_surveilled_new",
            "surveilled_lately",
            "suspended_old",
            "ccc_old",
        }

    async def test_flag_in_the_read_model_agrees(self, registry, token_for, cases):
        for name, made in cases.items():
            if name == "body":
                continue
            response = await registry.get(f"{CERTIFICATES}/{made['id']}", headers=auth(token_for()))
            flagged = response.json()["surveillance_overdue"]
            assert flagged is (name in {"never_surveilled_old", "surveilled_long_ago"}), name

    async def test_due_date(self, registry, token_for, cases):
        today = rules.today()
        response = await registry.get(
            f"{CERTIFICATES}/{cases['surveilled_lately']['id']}", headers=auth(token_for())
        )
        assert response.json()["surveillance_due_on"] == iso(
            rules.add_months(today - timedelta(days=300), 12)
        )
        ccc = await registry.get(f"{CERTIFICATES}/{cases['ccc_old']['id']}", headers=auth(token_for()))
        assert ccc.json()["surveillance_due_on"] is None

    @pytest.mark.parametrize(
        ("issued", "last", "overdue"),
        [
            (date(2025, 1, 1), None, True),  # first surveillance due by 2026-01-01
            (date(2025, 1, 2), None, False),  # due on the day: not yet overdue
            (date(2024, 6, 1), date(2025, 1, 1), True),
            (date(2024, 6, 1), date(2025, 1, 2), False),
        ],
    )
    def test_rule_at_its_edge(self, issued, last, overdue):
        on = date(2026, 1, 2)
        assert rules.is_surveillance_overdue("qms", "valid", issued, last, on) is overdue

    def test_rules_are_data(self):
        loaded = rules.surveillance_rules()
        assert set(loaded) == {"qms", "ems", "ohsms", "fsms"}
        assert {(r.first_within_months, r.interval_months) for r in loaded.values()} == {(12, 12)}
        assert "ccc" not in loaded


async def plan_of(registry, filters: CertificateFilters) -> str:
    """The plan of a list's ``WHERE`` with sequential scans priced out: on the small test table
    it shows which index the filter's expression matches (at a million rows, EXPLAIN ANALYZE
    showed each filter's page read from such an index)."""
    query = list_query(filters, rules.today(), before_id=None, limit=None).order_by(None)
    async with registry.app.state.sessionmaker() as session:
        await session.exec(text("SET LOCAL enable_seqscan = off"))
        compiled = query.compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
        rows = (await session.exec(text(f"EXPLAIN {compiled}"))).scalars().all()
        await session.rollback()
    return "\n".join(rows)


class TestPlans:
    @pytest.mark.parametrize(
        ("filters", "index"),
        [
            (CertificateFilters(division_code="33"), "ix_certificate_province_id"),
            (CertificateFilters(division_code="3301"), "ix_certificate_city_id"),
            (CertificateFilters(division_code="330106"), "ix_certificate_division_code_id"),
            (CertificateFilters(scheme="fsms"), "ix_certificate_scheme_id"),
            (CertificateFilters(bureau_id=7), "ix_certificate_bureau_id_id"),
            (CertificateFilters(body_id=7), "ix_certificate_body_id_id"),
            (CertificateFilters(holder_id=7), "ix_certificate_holder_id_id"),
            (CertificateFilters(status="revoked"), "ix_certificate_status_id"),
            (CertificateFilters(q="华兴电器"), "ix_certificate_holder_name_trgm"),
            (CertificateFilters(number="2016010901123456"), "ix_certificate_number"),
        ],
    )
    async def test_filter_matches_its_index(self, registry, filters, index):
        plan = await plan_of(registry, filters)
        assert index in plan, plan

    async def test_surveillance_reference_matches_its_index(self, registry):
        """The overdue filter's range is on the very expression of the index (built from the
        rules' schemes in code, and written out in the migration)."""
        query = select(Certificate.__table__.c.id).where(rules.surveillance_reference() < date(2025, 1, 1))
        async with registry.app.state.sessionmaker() as session:
            await session.exec(text("SET LOCAL enable_seqscan = off"))
            compiled = query.compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await session.exec(text(f"EXPLAIN {compiled}"))).scalars().all())
            await session.rollback()
        assert "ix_certificate_surveillance_due" in plan, plan


# --- CSV export ----------------------------------------------------------------


async def asgi_get(app, path: str, params: dict, headers: dict) -> tuple[int, dict, list[bytes]]:
    """Drive the app as a server would and keep each body message as sent (httpx's ASGI
    transport joins them), so a streamed answer shows its chunks."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode(params).encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("registry", 80),
        "client": ("127.0.0.1", 40000),
    }
    done = asyncio.Event()
    sent = False
    messages: list[dict] = []

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    start = messages[0]
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    chunks = [m["body"] for m in messages[1:] if m["type"] == "http.response.body" and m.get("body")]
    return start["status"], head, chunks


def parse_csv(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


class TestExport:
    async def test_filtered_export_with_header_and_bom(self, registry, token_for, world):
        response = await registry.get(
            EXPORT, params={"body_id": world["body"]["id"], "scheme": "ccc"}, headers=auth(token_for())
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"].startswith('attachment; filename="certificates-')
        assert response.content.startswith("\ufeff".encode())
        assert response.content.split(b"\r\n")[0].decode("utf-8-sig").startswith("id,number,scheme,status")
        rows = parse_csv(response.content)
        assert [int(r["id"]) for r in rows] == of(world, "hz_ccc", "hz_ccc_county", "nb_ccc", "jn_ccc")
        county = next(r for r in rows if int(r["id"]) == world["made"]["hz_ccc_county"]["id"])
        assert county["status"] == "suspended"
        assert county["exchange_status"] == "suspended"
        assert county["holder_name"] == world["holders"][0]["name"]
        assert county["expires_on"] == "2022-04-30"
        assert county["suspended_until"] == ""
        assert county["expired"] == "false"

    async def test_without_bom(self, registry, token_for, world):
        response = await registry.get(
            EXPORT, params={"holder_id": world["holders"][1]["id"], "bom": "false"}, headers=auth(token_for())
        )
        assert response.content.startswith(b"id,number,")
        assert [int(r["id"]) for r in parse_csv(response.content)] == of(world, "nb_ccc", "nb_ems")

    async def test_empty_export_is_the_header(self, registry, token_for, world):
        response = await registry.get(
            EXPORT, params={"body_id": world["body"]["id"], "status": "revoked"}, headers=auth(token_for())
        )
        assert response.status_code == 200
        assert parse_csv(response.content) == []
        assert response.content.decode("utf-8-sig").startswith("id,number,")

    async def test_formula_in_a_name_is_written_as_text(self, registry, token_for, chain):
        writer = token_for(chain["zj"], roles=("supervision",))
        holder = await make_enterprise(registry, chain["zj"], name='=HYPERLINK("x")有限公司')
        made = await register(
            registry, writer, payload(chain, holder_id=holder["id"], product_ids=[], scope="+1 电器")
        )
        response = await registry.get(EXPORT, params={"holder_id": holder["id"]}, headers=auth(token_for()))
        (row,) = parse_csv(response.content)
        assert int(row["id"]) == made["id"]
        assert row["holder_name"] == '\'=HYPERLINK("x")有限公司'
        assert row["scope"] == "'+1 电器"

    @pytest.mark.parametrize("params", [{"division_code": "3"}, {"status": "expired"}, {"q": "ab"}])
    async def test_bad_parameters_are_refused_before_streaming(self, registry, token_for, params):
        response = await registry.get(EXPORT, params=params, headers=auth(token_for()))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"

    async def test_without_a_token(self, registry):
        assert (await registry.get(EXPORT)).status_code == 401

    async def test_large_export_streams_in_chunks(self, registry, token_for, chain):
        """20,000 certificates of one body, written by COPY, come out in order, in chunks."""
        body = await make_body(registry, chain["zj"])
        holder = await make_enterprise(registry, chain["zj"])
        prefix = uuid.uuid4().hex[:8].upper()
        now = datetime.now(UTC)
        records = [
            (
                f"V{prefix}{i:06d}",
                "voluntary",
                body["id"],
                holder["id"],
                holder["name"],
                "330106",
                "",
                date(2020, 1, 1),
                date(2026 + i % 5, 1, 1),
                "valid" if i % 10 else "suspended",
                now,
                chain["zj"]["id"],
                chain["zj"]["path"],
                1,
                now,
                now,
            )
            for i in range(20_000)
        ]
        async with registry.app.state.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(
                "certificate",
                records=records,
                columns=[
                    "number",
                    "scheme",
                    "body_id",
                    "holder_id",
                    "holder_name",
                    "division_code",
                    "scope",
                    "issued_on",
                    "expires_on",
                    "status",
                    "status_changed_at",
                    "bureau_id",
                    "bureau_path",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.commit()

        status, head, chunks = await asgi_get(
            registry.asgi, EXPORT, {"body_id": body["id"]}, auth(token_for())
        )
        assert status == 200
        assert head["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in head
        # The header, then one chunk per 2,000 rows read from the cursor.
        assert len(chunks) == 11
        rows = parse_csv(b"".join(chunks))
        assert len(rows) == 20_000
        numbers = [r["number"] for r in rows]
        assert numbers[0] == f"V{prefix}019999" and numbers[-1] == f"V{prefix}000000"
        assert len(set(numbers)) == 20_000
        ids_ = [int(r["id"]) for r in rows]
        assert ids_ == sorted(ids_, reverse=True)

        # Filters apply to the export as to the list.
        status, _, chunks = await asgi_get(
            registry.asgi, EXPORT, {"body_id": body["id"], "status": "suspended"}, auth(token_for())
        )
        suspended = parse_csv(b"".join(chunks))
        assert len(suspended) == 2_000
        assert {r["status"] for r in suspended} == {"suspended"}
