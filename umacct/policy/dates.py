"""Calendar arithmetic of the policy, and the two date formats of the directory.

Months are calendar months clamped to the end of the month (31 August + 6 months is the last
day of February). A period of N months "after" a day starts the next morning and ends the day
before the same date N months later, so periods chain without gaps or overlaps.

Expiry happens at midnight in the policy's time zone; the directory stores instants as
GeneralizedTime in UTC (``20270101000000Z``), and state dates as ``YYYYMMDD``.
"""

from __future__ import annotations

import re
from calendar import isleap
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from umacct.errors import InvalidInputError

ONE_DAY = timedelta(days=1)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_FEBRUARY = 2
_STATE_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# RFC 4517 GeneralizedTime: hour mandatory, minutes and seconds optional, an optional fraction
# of the last unit given, then Z or an offset.
_GENERALIZED_TIME = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(?:(\d{2})(\d{2})?)?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)$"
)


def add_months(day: date, months: int) -> date:
    """Move ``day`` by ``months`` calendar months, clamped to the target month's last day.

    ``add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)``; negative ``months`` go back.
    Raises InvalidInputError when the result falls outside the years 1 to 9999.
    """
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    if not MINYEAR <= year <= MAXYEAR:
        raise InvalidInputError(f"{day.isoformat()} {months:+d} months is outside the calendar")
    month = month_index + 1
    if day.day <= 28:
        return date(year, month, day.day)
    last_day = _DAYS_IN_MONTH[month_index] + (month == _FEBRUARY and isleap(year))
    return date(year, month, min(day.day, last_day))


@lru_cache(maxsize=16_384)
def end_of_months_after(last_day: date, months: int) -> date:
    """The last day of the ``months`` whole calendar months that begin the day after ``last_day``.

    With ``last_day`` the end of activity this is the end of the grace period; with
    ``last_day`` the current end of grace it is the end after one extension.
    """
    return add_months(last_day + ONE_DAY, months) - ONE_DAY


def _zone(timezone: str | tzinfo) -> tzinfo:
    if not isinstance(timezone, str):
        return timezone
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"unknown time zone {timezone!r}") from None


def expiry_instant(grace_end: date, timezone: str | tzinfo) -> datetime:
    """The instant an account whose grace ends on ``grace_end`` stops working, in UTC.

    The account stays usable through ``grace_end`` in the policy's time zone and expires at the
    first instant of the next local day. When that midnight does not exist (a clock change at
    midnight) the offset in force before the change is used, which still lands on the first
    instant of the new day.
    """
    local_midnight = datetime.combine(grace_end + ONE_DAY, time(), tzinfo=_zone(timezone))
    return local_midnight.astimezone(UTC)


def to_generalized_time(instant: datetime) -> str:
    """Format an aware datetime as GeneralizedTime in UTC, ``YYYYMMDDHHMMSSZ``.

    Fractions of a second are dropped (ppolicy times have one-second precision). A naive
    datetime is refused: its meaning would depend on the machine's zone.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInputError(f"{instant.isoformat()} has no time zone")
    utc = instant.astimezone(UTC)
    return (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"
    )


def parse_generalized_time(text: str) -> datetime:
    """Read a GeneralizedTime value (RFC 4517) into an aware datetime in UTC.

    Accepts what directories return: ``20270101000000Z``, ``202701010000Z``,
    ``20270101000000.5Z``, ``20270101010000+0100``. Raises InvalidInputError otherwise.
    """
    match = _GENERALIZED_TIME.match(text)
    if not match:
        raise InvalidInputError(f"not a GeneralizedTime value: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        start = datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)
    except ValueError:
        raise InvalidInputError(f"not a valid date and time: {text!r}") from None
    if (minute is not None and int(minute) > 59) or (second is not None and int(second) > 60):
        raise InvalidInputError(f"not a valid date and time: {text!r}")
    # A leap second is read as the last second of its minute.
    elapsed = timedelta(minutes=int(minute or 0), seconds=min(int(second or 0), 59))
    if fraction is not None:
        fraction_unit = timedelta(hours=1) if minute is None else timedelta(minutes=1)
        if second is not None:
            fraction_unit = timedelta(seconds=1)
        elapsed += fraction_unit * float(f"0.{fraction}")
    offset = timedelta()
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
    return start + elapsed - offset


def format_state_date(day: date | None) -> str:
    """A state date as written in ``supannRessourceEtatDate``: ``YYYYMMDD``, or empty."""
    if day is None:
        return ""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def parse_state_date(text: str) -> date | None:
    """Read a ``YYYYMMDD`` state date; empty means no date. Raises InvalidInputError."""
    if not text:
        return None
    match = _STATE_DATE.match(text)
    if not match:
        raise InvalidInputError(f"not a YYYYMMDD date: {text!r}")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise InvalidInputError(f"not a valid date: {text!r}") from None


def to_supann_date(day: date) -> str:
    """A day as SUPANN date attributes hold it: the date at ``000000Z`` (``20270831000000Z``).

    Other SUPANN consumers read the date part; ``pwdEndTime`` is a real instant instead.
    """
    return f"{day.year:04d}{day.month:02d}{day.day:02d}000000Z"


def supann_date_of(text: str, timezone: str | tzinfo) -> date:
    """The day a SUPANN date attribute names, in either form found in directories.

    ``YYYYMMDD000000Z`` is that date (the SUPANN convention); any other instant is a local
    midnight written in UTC (``20270830220000Z`` in Paris is 31 August): its local date.
    """
    instant = parse_generalized_time(text)
    if (instant.hour, instant.minute, instant.second) == (0, 0, 0):
        return instant.date()
    return instant.astimezone(_zone(timezone)).date()


def supann_date_bound(day: date, *, upper: bool) -> str:
    """A filter bound that orders both forms of a SUPANN date against ``day``.

    ``(attr<=bound)`` with ``upper`` holds for dates up to ``day``; ``(attr>=bound)`` without
    it holds for dates from ``day`` on. Noon UTC lies between the two forms of one day and
    before both forms of the next, for every zone within 12 hours of UTC.
    """
    if upper:
        return f"{day.year:04d}{day.month:02d}{day.day:02d}115959Z"
    before = day - ONE_DAY
    return f"{before.year:04d}{before.month:02d}{before.day:02d}120000Z"
