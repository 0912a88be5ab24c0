"""The one source of "today" for the tests: the real date, so that faketime moves it.

slapd judges ``pwdEndTime`` with its own clock, which faketime shifts together with the
tests; every date a test gives the real directory or the command line is therefore the real
today plus an offset. Pure policy tests, which take no clock, may keep explicit dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from umacct.clock import FixedClock
from umacct.policy import format_state_date

PARIS = ZoneInfo("Europe/Paris")


def real_today() -> date:
    """Today in the policy's time zone, by the machine's (possibly faked) clock."""
    return datetime.now(PARIS).date()


TODAY = real_today()


def days(offset: int) -> date:
    """``offset`` days from today (negative: before)."""
    return TODAY + timedelta(days=offset)


def months(offset: int, *, day: date = TODAY) -> date:
    """``offset`` months from ``day``, clamped to the month's end."""
    return day + relativedelta(months=offset)


def month_end(offset: int = 0) -> date:
    """The last day of the month ``offset`` months from today."""
    return TODAY + relativedelta(months=offset, day=31)


def clock_on(day: date, hour: int = 9) -> FixedClock:
    """A clock that says ``day`` at ``hour`` (Paris time)."""
    return FixedClock(datetime.combine(day, time(hour), tzinfo=PARIS).astimezone(UTC))


def ymd(day: date) -> str:
    """The day as SUPANN state dates write it (YYYYMMDD)."""
    return format_state_date(day)
