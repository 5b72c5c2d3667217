"""Seed the registry: GB/T 2260 divisions, the national regulator, the 16 pilot units
and a demo administrator officer for each; in development also the demo certification
chain and, per pilot unit, the demo enforcement posts and officers, and a drawn "double
random" inspection plan of its certificates with the supervision officers it draws from.
Idempotent: run it as often as you like.

    python -m services.registry.seed
"""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import gb2260.data
from sqlalchemy import func, select

from services.common.db import make_engine, make_sessionmaker
from services.common.settings import Environment
from services.registry.config import RegistrySettings, get_settings
from services.registry.demo import seed_demo_chain, seed_demo_officers
from services.registry.demo_plans import seed_demo_plans
from services.registry.models import AUDIT
from services.registry.network import repository as repo
from services.registry.network.models import (
    NATIONAL_BUREAU_ID,
    BodyKind,
    BureauLevel,
    BureauSystem,
    Division,
    Officer,
    PilotRole,
)
from services.registry.network.service import division_level, division_parent, insert_bureau

DATA_DIR = Path(__file__).parent / "data"
NATIONAL_NAME = "国家认证认可监督管理委员会"
DEMO_ADMIN_NAME = "演示管理员"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def division_records(revision: int) -> list[tuple[str, str, str, str | None, int]]:
    try:
        names = gb2260.data.data[revision]
    except KeyError:
        years = sorted(y for y in gb2260.data.data if y)
        raise SystemExit(f"GB/T 2260 revision {revision} is not known; choose one of {years}") from None
    codes = {f"{number:06d}": name for number, name in names.items()}
    records = []
    for code, name in sorted(codes.items()):
        parent = division_parent(code)
        # Some counties hang directly under a province (no city code): keep the link only if it exists.
        records.append(
            (code, name, division_level(code).value, parent if parent in codes else None, revision)
        )
    return records


def pilot_units() -> list[dict[str, str]]:
    with (DATA_DIR / "pilot-units.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def seed(settings: RegistrySettings, demo: bool | None = None) -> dict[str, object]:
    """``demo``: whether to make the demo data too; left out, in development only."""
    if demo is None:
        demo = settings.environment == Environment.DEVELOPMENT
    engine = make_engine(settings.database_url, pool_size=2, max_overflow=0)
    maker = make_sessionmaker(engine)
    summary: dict[str, object] = {}
    try:
        async with engine.begin() as conn:
            table = Division.__table__  # type: ignore[attr-defined]
            count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            held = (await conn.execute(select(func.min(table.c.revision)))).scalar()
            if held is not None and held != settings.division_revision:
                raise SystemExit(
                    f"The registry holds GB/T 2260 revision {held}, not the configured "
                    f"{settings.division_revision}; bureaus refer to its codes, so it is not replaced."
                )
            if count == 0:
                records = division_records(settings.division_revision)
                raw = await conn.get_raw_connection()
                await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                    "division", records=records, columns=["code", "name", "level", "parent_code", "revision"]
                )
                count = len(records)
        summary["divisions"] = count

        async with maker() as session:
            national = await repo.get_bureau(session, NATIONAL_BUREAU_ID)
            if national is None:
                national = await insert_bureau(
                    session,
                    None,
                    name=NATIONAL_NAME,
                    level=BureauLevel.NATIONAL,
                    system=BureauSystem.NATIONAL,
                    division_code=None,
                    pilot=PilotRole.NONE,
                )
                if national.id != NATIONAL_BUREAU_ID:
                    raise SystemExit(
                        "The national regulator must be the first bureau; seed an empty database."
                    )
                await AUDIT.record(
                    session, None, "bureau.seeded", "bureau", national.id, {"name": NATIONAL_NAME}
                )
            bureaus = [national]
            for unit in pilot_units():
                bureau = await repo.find_bureau(session, national.id, unit["name"])
                if bureau is None:
                    bureau = await insert_bureau(
                        session,
                        national,
                        name=unit["name"],
                        level=BureauLevel.PROVINCIAL,
                        system=BureauSystem(unit["system"]),
                        division_code=unit["division_code"],
                        pilot=PilotRole.PROVINCIAL,
                    )
                    await AUDIT.record(session, None, "bureau.seeded", "bureau", bureau.id, unit)
                bureaus.append(bureau)
            admins = 0
            for bureau in bureaus:
                rows = await repo.list_officer_rows(
                    session,
                    within_path=bureau.path,
                    filters={"bureau_id": bureau.id, "name": DEMO_ADMIN_NAME},
                    after_id=None,
                    limit=1,
                )
                if not rows:
                    officer = await repo.add(
                        session, Officer(bureau_id=bureau.id, body=BodyKind.LEGAL, name=DEMO_ADMIN_NAME)
                    )
                    await AUDIT.record(
                        session,
                        None,
                        "officer.seeded",
                        "officer",
                        officer.id,
                        {"bureau_id": bureau.id, "name": DEMO_ADMIN_NAME},
                    )
                admins += 1
            if demo:
                today = datetime.now(SHANGHAI).date()
                summary.update(await seed_demo_chain(session, AUDIT, national, bureaus[1:], today))
                summary.update(await seed_demo_officers(session, AUDIT, bureaus[1:]))
                summary.update(await seed_demo_plans(session, AUDIT, bureaus[1:], today))
            await session.commit()
        summary["bureaus"] = len(bureaus)
        summary["demo_admin_officers"] = admins
    finally:
        await engine.dispose()
    return summary


def main(demo: bool | None = None) -> None:
    print(json.dumps({"registry_seed": asyncio.run(seed(get_settings(), demo))}, ensure_ascii=False))


if __name__ == "__main__":
    main()
