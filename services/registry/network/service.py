"""Registry rules: the bureau network, its bodies, posts and officers.

Scope follows the bureau tree (a principal acts in its bureau's subtree);
anything outside it answers 404 so its existence does not leak. Functions
here never commit: the route commits once, after the audit entry is written.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, PrincipalKind, Role
from services.common.concurrency import check_if_match
from services.common.db import Database, utcnow
from services.common.event_schemas import OfficerChanged
from services.common.outbox import Outbox
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.registry.network import repository as repo
from services.registry.network.models import (
    BodyKind,
    Bureau,
    BureauBody,
    BureauLevel,
    BureauSystem,
    Division,
    DivisionLevel,
    Officer,
    PilotRole,
    Post,
)
from services.registry.network.schemas import (
    BureauCreate,
    BureauRead,
    BureauUpdate,
    DivisionRead,
    OfficerCreate,
    OfficerRead,
    OfficerStanding,
    OfficerUpdate,
    PostCreate,
    PostSteps,
    PostUpdate,
)

# Which levels a bureau may have under it, by its level and system.
CHILD_LEVELS: dict[tuple[BureauLevel, BureauSystem], frozenset[BureauLevel]] = {
    (BureauLevel.NATIONAL, BureauSystem.NATIONAL): frozenset({BureauLevel.PROVINCIAL}),
    (BureauLevel.PROVINCIAL, BureauSystem.ENTRY_EXIT): frozenset({BureauLevel.BRANCH}),
    (BureauLevel.PROVINCIAL, BureauSystem.QUALITY_SUPERVISION): frozenset(
        {BureauLevel.CITY, BureauLevel.COUNTY}
    ),
    (BureauLevel.CITY, BureauSystem.QUALITY_SUPERVISION): frozenset({BureauLevel.COUNTY}),
}

# Which division levels a bureau's jurisdiction may be, by bureau level.
JURISDICTION_LEVELS: dict[BureauLevel, frozenset[DivisionLevel]] = {
    # A directly-under entry-exit bureau (Ningbo) is provincial with a city's jurisdiction.
    BureauLevel.PROVINCIAL: frozenset({DivisionLevel.PROVINCE, DivisionLevel.CITY}),
    BureauLevel.CITY: frozenset({DivisionLevel.CITY}),
    BureauLevel.BRANCH: frozenset({DivisionLevel.CITY, DivisionLevel.COUNTY}),
    BureauLevel.COUNTY: frozenset({DivisionLevel.COUNTY}),
}

# Which levels may carry which pilot designation (the notice's provincial units and
# the one grassroots unit each names).
PILOT_LEVELS: dict[PilotRole, frozenset[BureauLevel]] = {
    PilotRole.NONE: frozenset(BureauLevel),
    PilotRole.PROVINCIAL: frozenset({BureauLevel.PROVINCIAL}),
    PilotRole.GRASSROOTS: frozenset({BureauLevel.CITY, BureauLevel.BRANCH, BureauLevel.COUNTY}),
}

BODY_NAMES = {
    BodyKind.SUPERVISION: "认证监管机构",
    BodyKind.ENFORCEMENT: "专职执法机构",
    BodyKind.LEGAL: "法制工作机构",
}


def division_level(code: str) -> DivisionLevel:
    if code.endswith("0000"):
        return DivisionLevel.PROVINCE
    if code.endswith("00"):
        return DivisionLevel.CITY
    return DivisionLevel.COUNTY


def division_parent(code: str) -> str | None:
    level = division_level(code)
    if level is DivisionLevel.PROVINCE:
        return None
    if level is DivisionLevel.CITY:
        return code[:2] + "0000"
    return code[:4] + "00"


def within_jurisdiction(parent_code: str, child_code: str) -> bool:
    """True when ``child_code`` is the parent's division or lies inside it."""
    prefix = {DivisionLevel.PROVINCE: 2, DivisionLevel.CITY: 4, DivisionLevel.COUNTY: 6}
    n = prefix[division_level(parent_code)]
    return child_code[:n] == parent_code[:n]


def _field_error(loc: str, message: str, kind: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, errors=[{"loc": loc, "message": message, "type": kind}])


def check_pilot(pilot: PilotRole, level: BureauLevel) -> None:
    if level not in PILOT_LEVELS[pilot]:
        raise Conflict(f"A {level} bureau cannot be a {pilot} pilot unit.", slug="pilot-level-mismatch")


def designation_required(bureau_id: int | None = None) -> Conflict:
    """``pilot: grassroots`` follows a provincial unit's designation; it is never set by hand."""
    which = f"Bureau {bureau_id}'s" if bureau_id else "A bureau's"
    return Conflict(
        f"{which} grassroots pilot role follows its provincial unit's designation: name it with "
        "POST /api/v1/registry/bureaus/{unit}/pilot-designations and end it with that "
        "designation's withdrawal.",
        slug="pilot-designation-required",
    )


# --- divisions -------------------------------------------------------------


async def get_division(session: AsyncSession, code: str) -> Division:
    division = await repo.get_division(session, code)
    if division is None:
        raise NotFound(f"No division {code} in the registry's GB/T 2260 revision.")
    return division


async def list_divisions(
    session: AsyncSession, parent_code: str | None, level: str | None, cursor: str | None, limit: int
) -> tuple[list[DivisionRead], str | None]:
    after = decode_cursor(cursor, str)
    rows = await repo.list_divisions(
        session, parent_code=parent_code, level=level, after=after[0] if after else None, limit=limit + 1
    )
    page, next_cursor = make_page(rows, limit, lambda d: [d.code])
    return [DivisionRead.model_validate(d, from_attributes=True) for d in page], next_cursor


# --- bureaus ---------------------------------------------------------------


async def read_bureau(session: AsyncSession, principal: Principal, bureau_id: int) -> BureauRead:
    row = await repo.bureau_row(session, bureau_id)
    if row is None or not principal.in_scope(row["path"]):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return BureauRead.model_validate(row)


async def read_bureau_record(db: Database, principal: Principal, bureau_id: int):
    """The hot read: one bureau in scope as a row (BureauRead's columns), else 404."""
    row = await repo.bureau_record(db, bureau_id)
    if row is None or not principal.in_scope(row["path"]):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return row


async def list_bureau_records(
    db: Database,
    principal: Principal,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
    *,
    under: int | None = None,
) -> tuple[list, str | None]:
    """One keyset page (by id) of the bureaus of the principal's subtree (or of the subtree of
    ``under``, a bureau in it: 404 otherwise, as if missing), as rows."""
    after = decode_cursor(cursor, int)
    within_path = principal.bureau_path
    if under is not None:
        root = await repo.bureau_record(db, under)
        if root is None or not principal.in_scope(root["path"]):
            raise NotFound(f"Bureau {under} not found.")
        within_path = root["path"]
    rows = await repo.list_bureau_records(
        db,
        within_path=within_path,
        filters=filters,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    return make_page(rows, limit, lambda r: [r["id"]])


async def _page_in_subtree(session, principal, list_rows, read_model, filters, cursor, limit):
    """One keyset page (by id) of the rows of the principal's subtree."""
    after = decode_cursor(cursor, int)
    rows = await list_rows(
        session,
        within_path=principal.bureau_path,
        filters=filters,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [read_model.model_validate(r) for r in page], next_cursor


async def _bureau_in_scope(
    session: AsyncSession, principal: Principal, bureau_id: int, *, lock: bool = False
) -> Bureau:
    bureau = await repo.get_bureau(session, bureau_id, for_update=lock)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return bureau


async def insert_bureau(
    session: AsyncSession,
    parent: Bureau | None,
    *,
    name: str,
    level: BureauLevel,
    system: BureauSystem,
    division_code: str | None,
    pilot: str,
    bureau_id: int | None = None,
) -> Bureau:
    """Insert a bureau with its three bodies; the caller has checked the rules."""
    new_id = bureau_id or await repo.next_bureau_id(session)
    path = f"{parent.path if parent else ''}{new_id}."
    bureau = Bureau(
        id=new_id,
        parent_id=parent.id if parent else None,
        path=path,
        name=name,
        level=level,
        system=system,
        division_code=division_code,
        pilot=pilot,
    )
    await repo.add(session, bureau)
    for kind, body_name in BODY_NAMES.items():
        session.add(BureauBody(bureau_id=new_id, kind=kind, name=body_name))
    await session.flush()
    return bureau


async def create_bureau(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: BureauCreate
) -> BureauRead:
    parent = await _bureau_in_scope(session, principal, data.parent_id)
    allowed = CHILD_LEVELS.get((BureauLevel(parent.level), BureauSystem(parent.system)), frozenset())
    if data.level not in allowed:
        raise Conflict(
            f"A {parent.level} bureau of the {parent.system} system may have "
            f"{', '.join(sorted(allowed)) or 'no'} bureaus under it, not {data.level}.",
            slug="bureau-level-not-allowed",
        )
    system = BureauSystem(parent.system)
    if parent.level == BureauLevel.NATIONAL:
        if data.system in (None, BureauSystem.NATIONAL):
            raise _field_error("body.system", "A provincial unit must name its system.", "missing")
        system = data.system
    elif data.system is not None and data.system != system:
        raise Conflict(f"A bureau belongs to its parent's system ({system}).", slug="bureau-system-mismatch")
    division = await repo.get_division(session, data.division_code)
    if division is None:
        raise _field_error(
            "body.division_code",
            f"{data.division_code} is not a division of the registry's GB/T 2260 revision.",
            "division_code",
        )
    if division.level not in JURISDICTION_LEVELS[data.level]:
        raise Conflict(
            f"A {data.level} bureau's jurisdiction cannot be a {division.level} division.",
            slug="jurisdiction-level-mismatch",
        )
    if parent.division_code and not within_jurisdiction(parent.division_code, data.division_code):
        raise Conflict(
            f"{data.division_code} lies outside the parent's jurisdiction ({parent.division_code}).",
            slug="jurisdiction-outside-parent",
        )
    check_pilot(data.pilot, data.level)
    if data.pilot == PilotRole.GRASSROOTS:
        raise designation_required()
    if await repo.find_bureau(session, parent.id, data.name):
        raise Conflict(f"The parent already has a bureau named {data.name}.", slug="bureau-name-taken")
    bureau = await insert_bureau(
        session,
        parent,
        name=data.name,
        level=data.level,
        system=system,
        division_code=data.division_code,
        pilot=data.pilot,
    )
    await audit.record(
        session, principal, "bureau.created", "bureau", bureau.id, data.model_dump(mode="json")
    )
    return await read_bureau(session, principal, bureau.id)  # type: ignore[arg-type]


async def update_bureau(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    bureau_id: int,
    data: BureauUpdate,
    if_match: str | None,
) -> BureauRead:
    bureau = await _bureau_in_scope(session, principal, bureau_id, lock=True)
    if bureau.path == principal.bureau_path and not principal.is_national:
        raise Forbidden(
            "A bureau's own record (its name, its pilot designation) is changed by a bureau above it.",
            slug="own-bureau",
        )
    check_if_match(if_match, bureau.version)
    changes = data.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    if not changes:
        raise _field_error("body", "Name at least one field to change.", "empty_update")
    if "pilot" in changes and changes["pilot"] != bureau.pilot:
        await _check_pilot_change(session, bureau, PilotRole(changes["pilot"]))
    renamed = "name" in changes and changes["name"] != bureau.name
    if renamed and await repo.find_bureau(session, bureau.parent_id, changes["name"]):
        raise Conflict(f"A sibling is already named {changes['name']}.", slug="bureau-name-taken")
    await repo.bump_bureau(session, bureau_id, changes)
    await audit.record(session, principal, "bureau.updated", "bureau", bureau_id, changes)
    session.expire_all()
    return await read_bureau(session, principal, bureau_id)


async def _check_pilot_change(session: AsyncSession, bureau: Bureau, pilot: PilotRole) -> None:
    """A pilot role set through the bureau record must not contradict the designations."""
    check_pilot(pilot, BureauLevel(bureau.level))
    if PilotRole.GRASSROOTS in (pilot, bureau.pilot):
        raise designation_required(bureau.id)
    if bureau.pilot == PilotRole.PROVINCIAL and await repo.has_current_pilot_designation(session, bureau.id):
        raise Conflict(
            f"Bureau {bureau.id} still names a grassroots pilot unit; withdraw that designation "
            "before it stops being a provincial pilot unit.",
            slug="pilot-designation-current",
        )


async def list_bodies(session: AsyncSession, principal: Principal, bureau_id: int) -> list[BureauBody]:
    await _bureau_in_scope(session, principal, bureau_id)
    return await repo.list_bodies(session, bureau_id)


# --- posts -----------------------------------------------------------------


async def list_posts(
    session: AsyncSession, principal: Principal, bureau_id: int, cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    await _bureau_in_scope(session, principal, bureau_id)
    after = decode_cursor(cursor, int)
    rows = await repo.list_posts(session, bureau_id, after_id=after[0] if after else None, limit=limit + 1)
    return make_page(rows, limit, lambda p: [p.id])


async def create_post(
    session: AsyncSession, audit: AuditLog, principal: Principal, bureau_id: int, data: PostCreate
) -> Post:
    await _bureau_in_scope(session, principal, bureau_id)
    if await repo.find_post(session, bureau_id, data.name):
        raise Conflict(f"The bureau already has a post named {data.name}.", slug="post-name-taken")
    post = await repo.add(session, Post(bureau_id=bureau_id, **data.model_dump()))
    await audit.record(
        session,
        principal,
        "post.created",
        "post",
        post.id,
        {"bureau_id": bureau_id, **data.model_dump(mode="json")},
    )
    return post


async def _post_in_scope(
    session: AsyncSession, principal: Principal, post_id: int, *, lock: bool = False
) -> Post:
    # Scope first, from the post's bureau: another province's post is "not found" exactly as a
    # missing one is, and is never locked.
    path = await repo.post_bureau_path(session, post_id)
    post = await repo.get_post(session, post_id, for_update=lock) if path is not None else None
    if post is None or path is None or not principal.in_scope(path):
        raise NotFound(f"Post {post_id} not found.")
    return post


async def read_post(session: AsyncSession, principal: Principal, post_id: int) -> Post:
    return await _post_in_scope(session, principal, post_id)


async def update_post(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    post_id: int,
    data: PostUpdate,
    if_match: str | None,
) -> Post:
    """Change a post's duties and / or the procedure steps its holders may take (执法责任制).

    The steps are the enforcement service's codes, kept here as data: the schema has checked
    their shape; what they mean is the enforcement service's business."""
    post = await _post_in_scope(session, principal, post_id, lock=True)
    check_if_match(if_match, post.version)
    changes = data.model_dump(exclude_unset=True, mode="json")
    if not changes:
        raise _field_error("body", "Name at least one field to change: duties or steps.", "empty_update")
    previous = {key: getattr(post, key) for key in changes}
    for key, value in changes.items():
        setattr(post, key, value)
    post.version += 1
    post.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "post.updated",
        "post",
        post_id,
        {**changes, "previous": previous, "version": post.version},
    )
    return post


# --- officers --------------------------------------------------------------


def reads_every_officer(principal: Principal) -> bool:
    """A platform service (the enforcement service checking who takes a step) reads any
    officer's standing; everyone else only within its subtree."""
    return principal.kind == PrincipalKind.SERVICE and principal.has_role(Role.SERVICE)


async def read_officer_standing(
    session: AsyncSession, principal: Principal, officer_id: int
) -> OfficerStanding:
    """Whether the officer may take a step: active, holding an enforcement credential (执法证),
    and the steps the officer's post (岗位) allows."""
    row = await repo.officer_standing_row(session, officer_id)
    if row is None or not (reads_every_officer(principal) or principal.in_scope(row["bureau_path"])):
        raise NotFound(f"Officer {officer_id} not found.")
    post = (
        PostSteps(id=row["post_id"], name=row["post_name"], steps=row["post_steps"])
        if row["post_id"] is not None
        else None
    )
    return OfficerStanding(
        officer_id=row["officer_id"],
        name=row["name"],
        bureau_id=row["bureau_id"],
        bureau_path=row["bureau_path"],
        body=row["body"],
        active=row["active"],
        credential_number=row["credential_number"],
        holds_credential=row["credential_number"] is not None,
        post=post,
    )


async def read_officer(session: AsyncSession, principal: Principal, officer_id: int) -> OfficerRead:
    row = await repo.officer_row(session, officer_id)
    if row is None or not principal.in_scope(row["bureau_path"]):
        raise NotFound(f"Officer {officer_id} not found.")
    return OfficerRead.model_validate(row)


async def list_officers(
    session: AsyncSession, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[OfficerRead], str | None]:
    return await _page_in_subtree(
        session, principal, repo.list_officer_rows, OfficerRead, filters, cursor, limit
    )


async def _check_post(session: AsyncSession, post_id: int | None, bureau_id: int, body: str) -> None:
    if post_id is None:
        return
    post = await repo.get_post(session, post_id)
    if post is None or post.bureau_id != bureau_id:
        raise _field_error("body.post_id", f"Post {post_id} is not a post of bureau {bureau_id}.", "post_id")
    if post.body != body:
        raise Conflict(
            f"Post {post_id} belongs to the {post.body} body, not {body}.", slug="post-body-mismatch"
        )


async def _check_credential(session: AsyncSession, credential: str | None, officer_id: int | None) -> None:
    if credential is None:
        return
    holder = await repo.find_officer_by_credential(session, credential)
    if holder is not None and holder.id != officer_id:
        raise Conflict(
            f"Enforcement credential {credential} is already held by another officer.",
            slug="credential-taken",
        )


async def create_officer(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: OfficerCreate
) -> OfficerRead:
    await _bureau_in_scope(session, principal, data.bureau_id)
    await _check_post(session, data.post_id, data.bureau_id, data.body)
    await _check_credential(session, data.credential_number, None)
    officer = await repo.add(session, Officer(**data.model_dump()))
    await audit.record(
        session, principal, "officer.created", "officer", officer.id, data.model_dump(mode="json")
    )
    return await read_officer(session, principal, officer.id)


async def update_officer(
    session: AsyncSession,
    audit: AuditLog,
    outbox: Outbox,
    principal: Principal,
    officer_id: int,
    data: OfficerUpdate,
    if_match: str | None,
) -> OfficerRead:
    officer = await repo.get_officer(session, officer_id, for_update=True)
    # Scope before anything else is read or said: another province's officer is "not found"
    # exactly as a missing one is.
    home = await repo.get_bureau(session, officer.bureau_id) if officer is not None else None
    if officer is None or home is None or not principal.in_scope(home.path):
        raise NotFound(f"Officer {officer_id} not found.")
    check_if_match(if_match, officer.version)
    changes = data.model_dump(exclude_unset=True, mode="json")
    if not changes:
        raise _field_error("body", "Name at least one field to change.", "empty_update")
    bureau_id = changes.get("bureau_id", officer.bureau_id)
    body = changes.get("body", officer.body)
    if bureau_id != officer.bureau_id:
        await _bureau_in_scope(session, principal, bureau_id)
    moved = bureau_id != officer.bureau_id or body != officer.body
    if moved and "post_id" not in changes:
        changes["post_id"] = None  # the old post belongs to the old bureau or body
    if changes.get("post_id") is not None:
        await _check_post(session, changes["post_id"], bureau_id, body)
    if "credential_number" in changes:
        await _check_credential(session, changes["credential_number"], officer.id)
    for key, value in changes.items():
        setattr(officer, key, value)
    officer.version += 1
    officer.updated_at = utcnow()
    await session.flush()
    await audit.record(session, principal, "officer.updated", "officer", officer_id, changes)
    updated = await read_officer(session, principal, officer_id)
    if STANDING.intersection(changes):
        await tell_officer_changed(outbox, session, updated)
    return updated


# What an officer's login stands on: the gateway hears of every change to it.
STANDING = frozenset({"active", "bureau_id", "body"})


async def tell_officer_changed(outbox: Outbox, session: AsyncSession, officer: OfficerRead) -> None:
    """In the change's transaction: the gateway brings the officer's login in line
    (a deactivated officer's tokens stop, a moved officer's login follows)."""
    await outbox.emit(
        session,
        "registry.officer.changed",
        aggregate_type="officer",
        aggregate_id=officer.id,
        aggregate_version=officer.version,
        bureau_id=officer.bureau_id,
        bureau_path=officer.bureau_path,
        payload=OfficerChanged(
            officer_id=officer.id,
            bureau_id=officer.bureau_id,
            bureau_path=officer.bureau_path,
            active=officer.active,
            body=officer.body,
        ),
    )
