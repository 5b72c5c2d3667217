"""Request and response models of the calendar and the deadline rules (inputs forbid unknown fields)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from services.common.types import InputModel
from services.enforcement.calendar.counting import DayKind

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A year holds at most 366 days: a longer list cannot be a year's holidays.
MAX_DAYS_IN_YEAR = 366
MAX_RULES = 200
# Bounds of what a rule may say, to refuse nonsense, not deadline rules themselves.
MAX_RULE_DAYS = 3660


def _date_text(value: object) -> object:
    # JSON has no date type: a legal date is `YYYY-MM-DD` text, never a number read as a timestamp.
    if isinstance(value, date):
        return value
    if not (isinstance(value, str) and _DATE.fullmatch(value)):
        raise PydanticCustomError("date_type", "must be a date written YYYY-MM-DD")
    return value


# A legal date (Asia/Shanghai) as `YYYY-MM-DD` text.
LegalDate = Annotated[date, BeforeValidator(_date_text)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", min_length=2)]


class CalendarDayIn(InputModel):
    date: LegalDate = Field(examples=["2027-02-06"])
    name: Annotated[Text, Field(max_length=100)] = Field(
        description="The holiday (for an adjusted working day: the holiday it makes up for)",
        examples=["Spring Festival"],
    )


class CalendarYearLoad(InputModel):
    """A year of the national holiday calendar, as the State Council's notice sets it
    (国务院办公厅关于部分节假日安排的通知)."""

    source: Annotated[Text, Field(max_length=500)] = Field(
        description="The notice the days come from", examples=["国办发明电〔2026〕7号"]
    )
    holidays: list[CalendarDayIn] = Field(
        min_length=1,
        max_length=MAX_DAYS_IN_YEAR,
        description=(
            "Every day off of the holidays (放假), weekend days inside a holiday included; "
            "other Saturdays and Sundays are days off anyway"
        ),
    )
    working_days: list[CalendarDayIn] = Field(
        default_factory=list,
        max_length=MAX_DAYS_IN_YEAR,
        description="The adjusted working days (调休上班): Saturdays or Sundays that are worked",
    )


class CalendarDayRead(BaseModel):
    date: date
    name: str


class CalendarYearRead(BaseModel):
    year: int
    source: Literal["chinese-calendar", "loaded"] = Field(
        description="`chinese-calendar`: the installed package; `loaded`: loaded by an administrator"
    )
    notice: str | None = Field(description="For a loaded year: the notice its days come from")
    loaded_by: str | None = None
    loaded_at: datetime | None = None
    holidays: list[CalendarDayRead]
    working_days: list[CalendarDayRead] = Field(description="Adjusted working days (调休上班)")


class CoveredYear(BaseModel):
    year: int
    source: Literal["chinese-calendar", "loaded"]
    notice: str | None = None
    loaded_by: str | None = None
    loaded_at: datetime | None = None


class CalendarCoverage(BaseModel):
    years: list[CoveredYear] = Field(description="Every covered year, in order")
    chinese_calendar_version: str


class DeadlineRuleIn(InputModel):
    code: Code = Field(max_length=64, examples=["decision"])
    starts_at: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = Field(
        default="", description="What starts the deadline", examples=["case opened"]
    )
    days: int = Field(ge=1, le=MAX_RULE_DAYS, examples=[90])
    day_kind: DayKind = Field(examples=["calendar"])
    extension_days: int | None = Field(default=None, ge=1, le=MAX_RULE_DAYS, examples=[30])
    extension_needs: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = Field(
        default="", examples=["head approval"]
    )
    excluded_periods: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = Field(
        default="", examples=["investigation suspended, hearing, public notice, testing / identification"]
    )
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class DeadlineRuleSetCreate(InputModel):
    """A new version of the deadline rules, the whole set at once."""

    code: Code = Field(max_length=40, examples=["samr-2027"])
    title: Annotated[Text, Field(max_length=200)] = Field(examples=["Procedure rules, 2027 text"])
    effective_from: LegalDate | None = Field(
        default=None,
        description="The day the set comes into force (today if left out); cases opened from then use it",
        examples=["2027-01-01"],
    )
    rules: list[DeadlineRuleIn] = Field(min_length=1, max_length=MAX_RULES)


class DeadlineRuleRead(BaseModel):
    code: str
    starts_at: str
    days: int
    day_kind: DayKind
    extension_days: int | None
    extension_needs: str
    excluded_periods: str
    note: str


class DeadlineRuleSetRead(BaseModel):
    code: str
    title: str
    effective_from: date | None = Field(
        description="In force from (null: the first set, in force before any other)"
    )
    current: bool = Field(
        description="Whether cases opened today are opened under this set (the newest in force)"
    )
    created_by: str
    created_at: datetime
    rule_sets: list[str] = Field(description="Every rule set, the latest in force first")
    rules: list[DeadlineRuleRead]


class ExcludedPeriodRead(BaseModel):
    kind: str
    start: date
    end: date | None = Field(description="Null while the period still runs")


class DeadlineRead(BaseModel):
    """A computed deadline with its explanation."""

    rule: str
    rule_set: str
    start: date = Field(description="The starting day (not counted); for `working_before` the event")
    day_kind: DayKind
    days: int
    extension_days: int
    excluded: list[ExcludedPeriodRead]
    excluded_days: int = Field(description="Days the excluded periods added")
    skipped: list[date] = Field(
        description=(
            "Working-day rules: the non-working days passed over; calendar-day rules: the last day "
            "and the days rolled over to reach a working day"
        )
    )
    rolled_over_from: date | None = Field(description="The last day, when it was not a working day")
    paused: bool = Field(description="An excluded period still runs: `due` holds if it ended on `as_of`")
    as_of: date | None
    due: date
    extension_allowed: int | None = Field(description="The extension the rule provides for, in its day kind")
    extension_needs: str = Field(description="Who approves an extension")
