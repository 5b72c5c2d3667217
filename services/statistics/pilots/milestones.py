"""The milestones of the pilot work as data (data/pilot-milestones.csv, the one copy in the
repository: the registry keeps the units and their designations, the statistics service the
milestones and everything submitted against them).

``applies_to`` names who owes the milestone: each provincial pilot unit, each grassroots pilot
unit (the provincial unit reports it for the grassroots unit it named), or the national
regulator. Deadlines are fixed calendar dates; ``formal_acceptance`` has none.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

MILESTONES_FILE = Path(__file__).parent.parent / "data" / "pilot-milestones.csv"

PROVINCIAL = "each provincial pilot unit"
GRASSROOTS = "each grassroots pilot unit"
NATIONAL = "national regulator"

# Milestones answered elsewhere than by a submission to this service.
NAMED_IN_REGISTRY = "grassroots_unit_named"  # the registry's pilot designation
ROLLOUT = "rollout"  # the per-bureau roll-out tracking
FORMAL_ACCEPTANCE = "formal_acceptance"  # the national regulator's spot check result
# Milestones a pilot unit submits here (POST .../submissions).
SUBMITTED = ("implementation_plan", "summary_2008", "grassroots_pilot_done", "self_check")
SELF_CHECK = "self_check"

# The roll-out of the pilot's model: the second half of 2009.
ROLLOUT_FROM = date(2009, 7, 1)
ROLLOUT_TO = date(2009, 12, 31)


@dataclass(frozen=True)
class Milestone:
    key: str
    due: date | None
    applies_to: str
    what: str


@cache
def milestones() -> dict[str, Milestone]:
    """Every milestone by key, in the file's order."""
    with MILESTONES_FILE.open(encoding="utf-8") as f:
        return {
            row["key"]: Milestone(
                row["key"],
                date.fromisoformat(row["due"]) if row["due"] else None,
                row["applies_to"],
                row["what"],
            )
            for row in csv.DictReader(f)
        }


def is_late(key: str, submitted_on: date) -> bool:
    due = milestones()[key].due
    return due is not None and submitted_on > due
