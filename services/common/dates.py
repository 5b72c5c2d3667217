"""Legal dates of every service: Asia/Shanghai dates (DOMAIN.md, "Counting days")."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Annotated

import chinese_calendar
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from services.common.problems import Conflict

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# China has kept UTC+8 all year since 1991: a fixed offset needs no tz database in the image.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def today() -> date:
    """Today's date in Asia/Shanghai, which is what a legal date of a bureau means."""
    return datetime.now(CHINA).date()


def _date_text(value: object) -> object:
    # JSON has no date type: a legal date is `YYYY-MM-DD` text, never a number read as a timestamp.
    if isinstance(value, date):
        return value
    if not (isinstance(value, str) and _DATE.fullmatch(value)):
        raise PydanticCustomError("date_type", "must be a date written YYYY-MM-DD")
    return value


def _not_in_future(value: date) -> date:
    if value > today():
        raise PydanticCustomError(
            "date_in_future", "must not be after today ({today}, Asia/Shanghai)", {"today": str(today())}
        )
    return value


# A legal date as `YYYY-MM-DD` text.
LegalDate = Annotated[date, BeforeValidator(_date_text)]
# A legal date of something that already happened (reported, inspected, withdrawn).
PastDate = Annotated[date, BeforeValidator(_date_text), AfterValidator(_not_in_future)]


class CalendarNotCovered(Conflict):
    """A working-day count reaching a year the holiday calendar does not cover: never guessed."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"The holiday calendar does not cover {year}, so its working days are unknown.",
            slug="calendar-not-covered",
            year=year,
        )


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` by the national holiday calendar (adjusted
    working weekends included), as the installed chinese-calendar knows it. The enforcement
    service's calendar adds the years an administrator loads; this one refuses them."""
    day, counted = start, 0
    while counted < days:
        day += timedelta(days=1)
        try:
            working = chinese_calendar.is_workday(day)
        except NotImplementedError:
            raise CalendarNotCovered(day.year) from None
        counted += working
    return day
