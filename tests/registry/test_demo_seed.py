"""The demo certification chain `make run` seeds: valid identifiers, a history per certificate, idempotent."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from services.registry.certification.identifiers import (
    approval_number,
    certificate_number,
    credit_code,
    org_code,
    org_code_of,
)
from services.registry.demo import seed_demo_chain
from services.registry.models import (
    AUDIT,
    Certificate,
    CertificateStatusChange,
    CertificationBody,
    Enterprise,
)
from services.registry.network.models import Bureau
from tests.factories import pilot_unit

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _seed(registry, province_ids: list[int]) -> dict[str, int]:
    async with registry.app.state.sessionmaker() as session:
        national = await session.get(Bureau, 1)
        provinces = [await session.get(Bureau, i) for i in province_ids]
        summary = await seed_demo_chain(session, AUDIT, national, provinces, date(2026, 11, 29))
        await session.commit()
    return summary


async def test_the_demo_chain_is_valid_and_seeded_once(registry, token_for):
    province = await pilot_unit(registry, token_for(), "quality_supervision", "330000")
    first = await _seed(registry, [province["id"]])
    again = await _seed(registry, [province["id"]])
    assert again["demo_certificates_created"] == 0
    assert again["certification_bodies"] == first["certification_bodies"] == 3

    async with registry.app.state.sessionmaker() as session:
        enterprises = (
            (await session.exec(select(Enterprise).where(Enterprise.bureau_id == province["id"])))
            .scalars()
            .all()
        )
        assert len(enterprises) == 2
        for enterprise in enterprises:
            assert credit_code(enterprise.credit_code) == enterprise.credit_code
            assert org_code(org_code_of(enterprise.credit_code))
            assert enterprise.credit_code[2:8] == "330000"
        certificates = (
            (await session.exec(select(Certificate).where(Certificate.bureau_id == province["id"])))
            .scalars()
            .all()
        )
        assert sorted(c.scheme for c in certificates) == ["ccc", "ccc", "qms"]
        for certificate in certificates:
            assert certificate_number(certificate.scheme, certificate.number) == certificate.number
            history = (
                (
                    await session.exec(
                        select(CertificateStatusChange).where(
                            CertificateStatusChange.certificate_id == certificate.id
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert [(h.from_status, h.to_status) for h in history] == [(None, "valid")]
        bodies = (await session.exec(select(CertificationBody))).scalars().all()
        assert all(approval_number(b.approval_number) == b.approval_number for b in bodies)
