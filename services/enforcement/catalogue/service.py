"""The violation catalogue (违法行为目录) and the checks a proposed penalty goes through.

* the fine range of the violation's article (a fine outside it is refused, with the range);
* hearing (听证): a penalty that allows the party to ask for one;
* the two meanings of "major" (DOMAIN.md): legal review (法制审核) with a collective
  decision (集体讨论决定), and filing (备案) with the legal-affairs body one level up;
* the simple (on-the-spot, 简易程序) procedure's limits, and the late-payment surcharge
  (加处罚款).

Every number comes from the tables (seeded from ``services/enforcement/data``): thresholds per
province (the province's own row before the default), bureau level and party kind, compared
with ``>=``. Functions here never commit. Other packages call the functions below by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, NotFound, UnprocessableEntity
from services.enforcement.catalogue import repository as repo
from services.enforcement.catalogue.models import BureauLevel, PenaltyThreshold, ThresholdKind, Violation

FEN = Decimal("0.01")
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

# Keys of ``penalty_rule`` (the values are data).
SIMPLE_PROCEDURE_MAX_FINE = "simple_procedure.max_fine.{party_kind}"
LATE_PAYMENT_DAILY_RATE = "late_payment.daily_rate"
LATE_PAYMENT_CAP_MULTIPLE = "late_payment.cap_multiple"


class PartyKind(StrEnum):
    NATURAL_PERSON = "natural_person"  # 公民
    ORGANISATION = "organisation"  # 法人或者其他组织


class PenaltyKind(StrEnum):
    WARNING = "warning"  # 警告
    FINE = "fine"  # 罚款
    CONFISCATION = "confiscation"  # 没收违法所得、非法财物 (an amount)
    ORDER_TO_STOP = "order_to_stop"  # 责令停产停业
    SUSPEND_CERTIFICATE = "suspend_certificate"  # 暂停证书
    REVOKE_CERTIFICATE = "revoke_certificate"  # 撤销 / 吊销证书
    REVOKE_APPROVAL = "revoke_approval"  # 撤销批准
    ORDER_TO_CORRECT = "order_to_correct"  # 责令改正


# Kinds that carry an amount in yuan.
AMOUNT_KINDS = frozenset({PenaltyKind.FINE, PenaltyKind.CONFISCATION})
# The simple procedure decides a warning or a fine only (the fine within the limit, which is data).
SIMPLE_PROCEDURE_KINDS = frozenset({PenaltyKind.WARNING, PenaltyKind.FINE})


class FilingCircumstance(StrEnum):
    """Circumstances that make a case to be filed (备案) whatever the penalty."""

    ASSIGNED_OR_SUPERVISED_FROM_ABOVE = "assigned_or_supervised_from_above"  # 上级交办、督办
    FOREIGN_RELATED = "foreign_related"  # 涉外
    RECONSIDERATION_OR_LITIGATION = "reconsideration_or_litigation"  # 行政复议、行政诉讼
    TRANSFERRED_TO_JUDICIAL_ORGAN = "transferred_to_judicial_organ"  # 移送司法机关


class LegalReviewCategory(StrEnum):
    """The categories of a major case an officer sets (重大执法决定法制审核)."""

    MAJOR_PUBLIC_INTEREST = "major_public_interest"  # 涉及重大公共利益
    MAJOR_RIGHTS_AFTER_HEARING = "major_rights_after_hearing"  # 经听证、直接关系当事人重大权益
    COMPLEX_FACTS = "complex_facts"  # 案件情况疑难复杂、涉及多个法律关系
    OTHER_BY_LAW = "other_by_law"  # 法律、法规规定的其他情形


# What a threshold row's `circumstances` may name, per kind.
CIRCUMSTANCES_OF: dict[ThresholdKind, frozenset[str]] = {
    ThresholdKind.HEARING: frozenset(),
    ThresholdKind.LEGAL_REVIEW: frozenset(LegalReviewCategory),
    ThresholdKind.FILING: frozenset(FilingCircumstance),
}


@dataclass(frozen=True)
class PenaltyItem:
    kind: PenaltyKind
    amount: Decimal | None = None


@dataclass(frozen=True)
class FlagCheck:
    """``required`` (for the simple procedure: allowed), why, and the thresholds applied (JSON-ready)."""

    required: bool
    reasons: list[str] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)


def _field_error(loc: str, message: str, kind: str, *, slug: str | None = None) -> UnprocessableEntity:
    return UnprocessableEntity(message, slug=slug, errors=[{"loc": loc, "message": message, "type": kind}])


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(FEN))


def today() -> date:
    """Today in Asia/Shanghai: the day a legal date of a bureau means."""
    return datetime.now(UTC).astimezone(CHINA).date()


# --- the bureau tree -----------------------------------------------------------------------


def _path_ids(bureau_path: str) -> list[int]:
    return [int(part) for part in bureau_path.split(".") if part]


def bureau_level_of(bureau_path: str) -> str:
    """``county`` for a bureau four levels deep or deeper ("1.7.23.301."), else ``city_or_above``."""
    return BureauLevel.COUNTY if len(_path_ids(bureau_path)) >= 4 else BureauLevel.CITY_OR_ABOVE


def province_of(bureau_path: str) -> int | None:
    """The provincial bureau of a path (its second element), None for the national regulator."""
    ids = _path_ids(bureau_path)
    return ids[1] if len(ids) >= 2 else None


# --- the catalogue -------------------------------------------------------------------------


async def get_violation(
    session: AsyncSession, code: str, regulation: str | None = None, *, loc: str = "body.violation"
) -> Violation:
    """The violation ``code`` of ``regulation`` (the text in force last when None); an unknown
    one is a 422 ``unknown-violation`` naming ``loc``."""
    violation = await repo.newest_violation(session, code, regulation)
    if violation is None:
        where = f" in {regulation}" if regulation else ""
        raise _field_error(
            loc,
            f"The catalogue has no violation {code!r}{where}.",
            "unknown_violation",
            slug="unknown-violation",
        )
    return violation


def _range_text(low: Decimal, high: Decimal | None) -> str:
    if high is None:
        return f"at least {_money(low)} yuan"
    return f"between {_money(low)} and {_money(high)} yuan"


def _goods_rule_applies(violation: Violation, goods_value: Decimal | None) -> bool:
    return (
        goods_value is not None
        and violation.goods_value_below is not None
        and violation.goods_value_multiple is not None
        and goods_value < violation.goods_value_below
    )


def fine_range(
    violation: Violation, goods_value: Decimal | None = None
) -> tuple[Decimal, Decimal | None] | None:
    """The (min, max) of a fine for ``violation`` (max None: no upper bound), or None when its
    article sets no fine. Goods worth under the article's `goods_value_below` → from 0 to
    `goods_value_multiple` × their value (article 66)."""
    if _goods_rule_applies(violation, goods_value):
        multiple = Decimal(violation.goods_value_multiple)  # type: ignore[arg-type]
        return Decimal("0.00"), (multiple * goods_value).quantize(FEN, ROUND_HALF_UP)  # type: ignore[operator]
    if violation.fine_min is None and violation.fine_max is None:
        return None
    return Decimal(violation.fine_min or 0), violation.fine_max


def check_fine(
    violation: Violation,
    amount: Decimal,
    *,
    goods_value: Decimal | None = None,
    loc: str = "body.amount",
) -> None:
    """Refuse a fine outside the range of the violation's article: 409 ``fine-outside-range``
    with `fine_min`, `fine_max` (decimal strings), `regulation`, `article` and `violation`."""
    amount = Decimal(amount)
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(FEN):
        raise _field_error(loc, "A fine is a non-negative amount of yuan with at most 2 decimals.", "amount")
    if goods_value is not None and (not Decimal(goods_value).is_finite() or goods_value < 0):
        raise _field_error("body.goods_value", "The goods value is a non-negative amount of yuan.", "amount")
    where = f"{violation.regulation}" + (f" article {violation.article}" if violation.article else "")
    members = {"regulation": violation.regulation, "article": violation.article, "violation": violation.code}
    bounds = fine_range(violation, goods_value)
    if bounds is None:
        raise Conflict(
            f"Violation {violation.code!r} ({where}) sets no fine; a fine of {_money(amount)} yuan "
            "cannot be imposed for it.",
            slug="fine-outside-range",
            **members,
        )
    low, high = bounds
    if amount < low or (high is not None and amount > high):
        goods = ""
        if _goods_rule_applies(violation, goods_value):
            multiple = Decimal(violation.goods_value_multiple).normalize()  # type: ignore[arg-type]
            goods = f" (goods worth {_money(goods_value)} yuan: at most {multiple} times their value)"
        raise Conflict(
            f"A fine for {violation.code!r} ({where}) is {_range_text(low, high)}{goods}; "
            f"{_money(amount)} yuan is outside it.",
            slug="fine-outside-range",
            fine_min=_money(low),
            fine_max=_money(high),
            goods_value=_money(goods_value),
            **members,
        )


async def list_violations(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[Violation], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_violations(
        session, **filters, after_id=after[0] if after else None, limit=limit + 1
    )
    return make_page(rows, limit, lambda v: [v.id])


async def read_violation(session: AsyncSession, violation_id: int) -> Violation:
    violation = await repo.get_violation(session, violation_id)
    if violation is None:
        raise NotFound(f"Violation {violation_id} not found.")
    return violation


async def add_violation(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: dict[str, Any]
) -> Violation:
    """A violation of a regulation text (a new text is new rows): (regulation, code) is unique."""
    if await repo.violation_exists(session, data["regulation"], data["code"]):
        raise Conflict(
            f"Violation {data['code']!r} of {data['regulation']} is in the catalogue already.",
            slug="violation-exists",
        )
    violation = await repo.add(session, Violation(**data, created_by=principal.account_id))
    await session.refresh(violation)  # the amounts as stored (numeric scale)
    await audit.record(
        session,
        principal,
        "violation.created",
        "violation",
        violation.id,
        {k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in data.items()},
    )
    return violation


# --- thresholds: hearing, legal review, filing ----------------------------------------------


def _totals(items: Iterable[PenaltyItem]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for item in items:
        if item.amount is not None and item.kind in AMOUNT_KINDS:
            totals[item.kind] = totals.get(item.kind, Decimal(0)) + Decimal(item.amount)
    return totals


def threshold_json(row: PenaltyThreshold) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "source": "default" if row.province_bureau_id is None else "province",
        "province_bureau_id": row.province_bureau_id,
        "bureau_level": row.bureau_level,
        "party_kind": row.party_kind,
        "amount_at_least": _money(row.amount_at_least),
        "amount_kinds": list(row.amount_kinds),
        "penalty_kinds": list(row.penalty_kinds),
        "circumstances": list(row.circumstances),
    }


async def _flag(
    session: AsyncSession,
    kind: ThresholdKind,
    *,
    province_bureau_id: int | None,
    bureau_level: str | None,
    party_kind: str,
    items: Sequence[PenaltyItem],
    circumstances: Iterable[str],
) -> FlagCheck:
    row = await repo.threshold_in_force(
        session,
        kind,
        province_bureau_id=province_bureau_id,
        bureau_level=bureau_level,
        party_kind=PartyKind(party_kind),
    )
    if row is None:  # a kind without any default row: nothing triggers, and say so
        return FlagCheck(False, [f"no {kind} threshold is set for a {party_kind}"], {})
    reasons: list[str] = []
    kinds = {item.kind for item in items}
    for penalty_kind in row.penalty_kinds:
        if penalty_kind in kinds:
            reasons.append(f"the penalty includes {penalty_kind}")
    for amount_kind, total in _totals(items).items():
        if amount_kind in row.amount_kinds and total >= row.amount_at_least:
            reasons.append(
                f"{amount_kind} of {_money(total)} yuan is at least {_money(row.amount_at_least)} yuan "
                f"({party_kind})"
            )
    for circumstance in sorted(set(circumstances)):
        if circumstance in row.circumstances:
            reasons.append(f"circumstance: {circumstance}")
    return FlagCheck(bool(reasons), reasons, threshold_json(row))


def _check_circumstances(kind: ThresholdKind, given: Iterable[str], loc: str) -> set[str]:
    given = set(given)
    unknown = sorted(given - CIRCUMSTANCES_OF[kind])
    if unknown:
        raise _field_error(loc, f"Not a {kind} circumstance: {', '.join(unknown)}.", "enum")
    return given


async def hearing_check(
    session: AsyncSession,
    *,
    province_bureau_id: int | None,
    party_kind: str,
    items: Sequence[PenaltyItem],
) -> FlagCheck:
    """Whether the party may ask for a hearing (听证): stop of business, revocation, or a fine or
    confiscation at least the threshold of the party's kind."""
    return await _flag(
        session,
        ThresholdKind.HEARING,
        province_bureau_id=province_bureau_id,
        bureau_level=None,
        party_kind=party_kind,
        items=items,
        circumstances=(),
    )


async def legal_review_check(
    session: AsyncSession,
    *,
    province_bureau_id: int | None,
    bureau_level: str,
    party_kind: str,
    items: Sequence[PenaltyItem],
    categories: Iterable[str] = frozenset(),
) -> FlagCheck:
    """Major, meaning 1: legal review (法制审核) and a collective decision (集体讨论决定) — a penalty
    that allows a hearing, or one of the categories an officer set."""
    chosen = _check_circumstances(ThresholdKind.LEGAL_REVIEW, categories, "body.categories")
    return await _flag(
        session,
        ThresholdKind.LEGAL_REVIEW,
        province_bureau_id=province_bureau_id,
        bureau_level=bureau_level,
        party_kind=party_kind,
        items=items,
        circumstances=chosen,
    )


async def filing_check(
    session: AsyncSession,
    *,
    province_bureau_id: int | None,
    bureau_level: str,
    party_kind: str,
    items: Sequence[PenaltyItem],
    circumstances: Iterable[str] = frozenset(),
) -> FlagCheck:
    """Major, meaning 2: filed (备案) with the legal-affairs body one level up, per province and
    bureau level."""
    chosen = _check_circumstances(ThresholdKind.FILING, circumstances, "body.circumstances")
    return await _flag(
        session,
        ThresholdKind.FILING,
        province_bureau_id=province_bureau_id,
        bureau_level=bureau_level,
        party_kind=party_kind,
        items=items,
        circumstances=chosen,
    )


# --- procedure rules ------------------------------------------------------------------------


async def _rules(session: AsyncSession, on: date, *keys: str) -> list[Decimal]:
    rules = await repo.rules_in_force(session, on)
    missing = [k for k in keys if k not in rules]
    if missing:
        raise Conflict(
            f"No penalty rule {', '.join(missing)} is in force on {on}.", slug="penalty-rule-missing"
        )
    return [rules[k] for k in keys]


async def simple_procedure_check(
    session: AsyncSession, *, party_kind: str, items: Sequence[PenaltyItem], on: date | None = None
) -> FlagCheck:
    """Whether the simple (on-the-spot) procedure (简易程序) may decide ``items``: a warning, or a
    fine within the limit of the party's kind. ``required`` here means allowed."""
    key = SIMPLE_PROCEDURE_MAX_FINE.format(party_kind=PartyKind(party_kind))
    (limit,) = await _rules(session, on or today(), key)
    limit = limit.quantize(FEN)
    thresholds = {
        "party_kind": party_kind,
        "max_fine": _money(limit),
        "kinds": sorted(SIMPLE_PROCEDURE_KINDS),
    }
    if not items:
        return FlagCheck(False, ["no penalty is proposed"], thresholds)
    reasons = [
        f"{item.kind} is not decided by the simple procedure"
        for item in items
        if item.kind not in SIMPLE_PROCEDURE_KINDS
    ]
    fine = _totals(items).get(PenaltyKind.FINE, Decimal(0))
    if fine > limit:
        reasons.append(
            f"a fine of {_money(fine)} yuan exceeds the limit of {_money(limit)} yuan ({party_kind})"
        )
    if reasons:
        return FlagCheck(False, reasons, thresholds)
    if fine:
        return FlagCheck(
            True, [f"a fine of {_money(fine)} yuan within {_money(limit)} yuan ({party_kind})"], thresholds
        )
    return FlagCheck(True, ["a warning"], thresholds)


async def late_payment_surcharge(
    session: AsyncSession, *, fine: Decimal, due: date, paid_on: date
) -> Decimal:
    """The late-payment surcharge (加处罚款): the daily rate of the fine for each day after ``due``,
    capped at the cap multiple of the fine, rounded to the fen (ROUND_HALF_UP); the rules are
    those in force on ``due``. Paid on or before ``due``: nothing."""
    fine = Decimal(fine)
    if not fine.is_finite() or fine < 0:
        raise ValueError("a fine is a non-negative amount")
    days = max((paid_on - due).days, 0)
    if days == 0:
        return Decimal("0.00")
    rate, cap = await _rules(session, due, LATE_PAYMENT_DAILY_RATE, LATE_PAYMENT_CAP_MULTIPLE)
    return min(fine * rate * days, fine * cap).quantize(FEN, ROUND_HALF_UP)


async def rules_json(session: AsyncSession, on: date) -> dict[str, str]:
    return {key: str(value.normalize()) for key, value in (await repo.rules_in_force(session, on)).items()}


# --- the province's own thresholds ---------------------------------------------------------


async def thresholds_in_force(session: AsyncSession, province_bureau_id: int | None) -> list[dict[str, Any]]:
    """The rows in force for a province: its own, and the defaults where it has none of its own."""
    merged: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for row in await repo.thresholds_of(session, province_bureau_id):
        key = (row.kind, row.bureau_level, row.party_kind)
        merged.setdefault(key, threshold_json(row))  # the province's own row comes first
    return list(merged.values())


async def set_province_thresholds(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    kind: ThresholdKind,
    province_bureau_id: int,
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Replace the province's own rows of ``kind`` (an empty list: back to the defaults)."""
    seen: set[tuple[str | None, str]] = set()
    for index, row in enumerate(rows):
        key = (row["bureau_level"], row["party_kind"])
        if key in seen:
            raise _field_error(
                f"body.rows.{index}", "Each bureau level and party kind appears once.", "duplicate"
            )
        seen.add(key)
        _check_circumstances(kind, row["circumstances"], f"body.rows.{index}.circumstances")
    await repo.lock_province_thresholds(session, kind, province_bureau_id)
    await repo.replace_province_thresholds(
        session,
        kind,
        province_bureau_id,
        [
            {
                **row,
                "kind": kind,
                "province_bureau_id": province_bureau_id,
                "updated_by": principal.account_id,
                "updated_at": datetime.now(UTC),
            }
            for row in rows
        ],
    )
    await audit.record(
        session,
        principal,
        "penalty_threshold.changed",
        "penalty_threshold",
        f"{kind}:{province_bureau_id}",
        {
            "kind": kind,
            "province_bureau_id": province_bureau_id,
            "rows": [{**r, "amount_at_least": _money(r["amount_at_least"])} for r in rows],
        },
    )
    return [r for r in await thresholds_in_force(session, province_bureau_id) if r["kind"] == kind]


# --- scope and the dry run -------------------------------------------------------------------


def province_for(principal: Principal, province_bureau_id: int | None) -> int | None:
    """The province a principal reads thresholds of: its own by default; another one only for
    the national regulator (404 otherwise, like anything outside the principal's scope)."""
    own = province_of(principal.bureau_path)
    if province_bureau_id is None or province_bureau_id == own:
        return own
    if principal.is_national:
        return province_bureau_id
    raise NotFound(f"Province {province_bureau_id} not found.")


def check_province_admin(principal: Principal, province_bureau_id: int) -> None:
    """Only the national regulator or the provincial bureau itself sets a province's rows."""
    if principal.is_national:
        return
    ids = _path_ids(principal.bureau_path)
    if len(ids) != 2 or ids[1] != province_bureau_id:
        raise NotFound(f"Province {province_bureau_id} not found.")


async def check_penalty(session: AsyncSession, principal: Principal, data: Any) -> dict[str, Any]:
    """The dry run of a proposed penalty: its fine against the range, and the four flags."""
    province = province_for(principal, data.province_bureau_id)
    level = data.bureau_level or bureau_level_of(principal.bureau_path)
    violation = await get_violation(session, data.violation, data.regulation, loc="body.violation")
    items = [item.item() for item in data.items]
    fine = _totals(items).get(PenaltyKind.FINE)
    fine_read = None
    if fine is not None:
        check_fine(violation, fine, goods_value=data.goods_value, loc="body.items")
        low, high = fine_range(violation, data.goods_value) or (Decimal(0), None)
        fine_read = {"amount": fine, "fine_min": low, "fine_max": high}
    common = {"province_bureau_id": province, "party_kind": data.party_kind, "items": items}
    return {
        "violation": violation,
        "fine": fine_read,
        "hearing": await hearing_check(session, **common),
        "legal_review": await legal_review_check(
            session, **common, bureau_level=level, categories=set(data.categories)
        ),
        "filing": await filing_check(
            session, **common, bureau_level=level, circumstances=set(data.circumstances)
        ),
        "simple_procedure": await simple_procedure_check(session, party_kind=data.party_kind, items=items),
    }
