"""The measures the aggregates keep: one list, each with what it counts and by which day.

A *flow* counts what happened in the period (by the named day); a *stock* is a state at the
period's end (for the period that is still running: today, Asia/Shanghai). Counts are whole
numbers; money is yuan. Every measure is kept per bureau subtree × period × dimension.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["flow", "stock"]
Unit = Literal["count", "yuan"]


class Measure(NamedTuple):
    name: str
    kind: Kind
    unit: Unit
    source: str  # the fact table
    description: str


MEASURES: list[Measure] = [
    Measure("leads_received", "flow", "count", "lead_fact", "Leads (案件线索) received, by received_on."),
    Measure("cases_opened", "flow", "count", "case_fact", "Cases opened (立案), by opened_on."),
    Measure(
        "cases_closed",
        "flow",
        "count",
        "case_fact",
        "Cases closed (结案; a terminated or transferred case is closed too), by closed_on.",
    ),
    Measure(
        "cases_pending",
        "stock",
        "count",
        "case_fact",
        "Cases open at the period's end: opened_on <= end and (closed_on null or > end); for the "
        "running period, open today.",
    ),
    Measure(
        "cases_overdue",
        "stock",
        "count",
        "case_fact",
        "Pending cases whose earliest running deadline (next_due) is before the period's end "
        "(for the running period: before today).",
    ),
    Measure(
        "fines_decided",
        "flow",
        "yuan",
        "case_fact",
        "Fines (罚款) as currently decided (fine_current: after any reconsideration or appeal), "
        "by decided_on.",
    ),
    Measure(
        "fines_collected",
        "flow",
        "yuan",
        "case_fact",
        "Money collected (paid_total: fine and surcharge) on the cases decided in the period, by "
        "decided_on — a decision's collection is credited to its decision's period, not to the "
        "day of each payment (the facts carry the total, not the payments).",
    ),
    Measure(
        "confiscations",
        "flow",
        "yuan",
        "case_fact",
        "Yuan confiscated (没收违法所得) as decided, by decided_on.",
    ),
    Measure(
        "certificates_suspended",
        "flow",
        "count",
        "certificate_status_fact",
        "Certificate status changes to suspended (暂停), by the day of the change.",
    ),
    Measure(
        "certificates_revoked",
        "flow",
        "count",
        "certificate_status_fact",
        "Certificate status changes to revoked (撤销), by the day of the change.",
    ),
    Measure(
        "transfers_judicial",
        "flow",
        "count",
        "case_fact",
        "Cases transferred to a judicial organ (移送司法机关), by closed_on (the transfer closes the case).",
    ),
    Measure(
        "major_cases",
        "flow",
        "count",
        "case_fact",
        "Major cases that must be filed (重大案件备案), by decided_on (or closed_on when closed undecided).",
    ),
    Measure(
        "major_filed_on_time",
        "flow",
        "count",
        "case_fact",
        "Major-case filings made on or before their deadline, by filed_on.",
    ),
    Measure(
        "major_filed_late",
        "flow",
        "count",
        "case_fact",
        "Major-case filings made after their deadline, by filed_on.",
    ),
    Measure(
        "major_filing_missing",
        "flow",
        "count",
        "case_fact",
        "Major-case filings due in the period (by filing_due) and not filed: for a past period, the "
        "missing filings; for the running one, also those still within their deadline.",
    ),
]

# Supervision coverage (监督覆盖): kept by the coverage snapshot (services/statistics/coverage.py)
# from the registry, not from the facts — a rebuild of the facts' figures never touches them.
_COVERED = {
    "body": "certification bodies",
    "auditor": "auditors",
    "enterprise": "certified enterprises",
    "certificate": "certificates",
}
MEASURES += [
    Measure(
        f"coverage_{kind}_{figure}",
        "stock",
        "count",
        "registry",
        (
            f"The subtree's {label} under supervision in the period"
            if figure == "total"
            else f"The subtree's {label} inspected at least once in the period"
        )
        + " (the supervision coverage snapshot; the share is inspected / total).",
    )
    for kind, label in _COVERED.items()
    for figure in ("total", "inspected")
]

MEASURE_NAMES = frozenset(m.name for m in MEASURES)
BY_NAME = {m.name: m for m in MEASURES}

Dimension = Literal["all", "system", "subject_type", "violation", "penalty_type"]
DIMENSIONS: dict[str, str] = {
    "all": 'Everything (value "")',
    "system": "The bureau's system: quality_supervision / entry_exit (unknown until the registry tells)",
    "subject_type": "The subject's kind: body, auditor, enterprise, product, certificate…",
    "violation": "The violation's code (cases only)",
    "penalty_type": "Each kind of the decided sanctions (a case with two kinds counts under both)",
}
PERIOD_KINDS = ("month", "quarter", "year")
