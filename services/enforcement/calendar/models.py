"""Tables of the working-day calendar and of the deadline rules (versioned data)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field

from services.enforcement.base import EnforcementModel, id_column, instant_column


class CalendarDayKind:
    HOLIDAY = "holiday"  # a day off (法定节假日 and the days joined to it)
    WORKING = "working"  # an adjusted working day on a weekend (调休上班)


class CalendarYear(EnforcementModel, table=True):
    """A year of the national holiday calendar loaded by an administrator: one the installed
    chinese-calendar does not cover (the State Council publishes each year in December)."""

    __tablename__ = "calendar_year"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    source: str = Field(max_length=500, description="The notice the days come from")
    loaded_by: str = Field(max_length=64)
    loaded_at: datetime = instant_column()


class CalendarDay(EnforcementModel, table=True):
    """A holiday or an adjusted working day of a loaded year."""

    __tablename__ = "calendar_day"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'working')", name="kind"),)

    day: date = Field(sa_column=Column(Date, primary_key=True))
    year: int = Field(
        sa_column=Column(
            Integer, ForeignKey("calendar_year.year", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str = Field(sa_type=String(16))
    name: str = Field(max_length=100)


class DeadlineRuleSet(EnforcementModel, table=True):
    """A version of the deadline rules; a case keeps the set it was opened under."""

    __tablename__ = "deadline_rule_set"

    id: int | None = id_column()
    code: str = Field(max_length=40, unique=True)
    title: str = Field(max_length=200)
    # In force from this day (Asia/Shanghai); null: in force before any set with a date.
    effective_from: date | None = Field(default=None, sa_type=Date)
    created_by: str = Field(max_length=64)
    created_at: datetime = instant_column()


class DeadlineRule(EnforcementModel, table=True):
    """One procedural deadline of a rule set (DOMAIN.md, the case lifecycle's deadlines)."""

    __tablename__ = "deadline_rule"
    __table_args__ = (
        UniqueConstraint("rule_set", "code", name="uq_deadline_rule_rule_set_code"),
        CheckConstraint("day_kind IN ('working', 'calendar', 'working_before')", name="day_kind"),
        CheckConstraint("days >= 1", name="days_positive"),
        CheckConstraint("extension_days IS NULL OR extension_days >= 1", name="extension_days_positive"),
    )

    id: int | None = id_column()
    rule_set: str = Field(
        sa_column=Column(String(40), ForeignKey("deadline_rule_set.code", ondelete="CASCADE"), nullable=False)
    )
    code: str = Field(max_length=64)
    starts_at: str = Field(max_length=200, description="What starts the deadline")
    days: int
    day_kind: str = Field(sa_type=String(16))
    extension_days: int | None = Field(default=None, description="Days an extension may add")
    extension_needs: str = Field(default="", max_length=200, description="Who approves an extension")
    excluded_periods: str = Field(default="", max_length=500, description="Periods not counted")
    note: str = Field(default="", max_length=1000)
