"""Calendar arithmetic, expiry instants and the directory's date formats."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from umacct.errors import InvalidInputError
from umacct.policy import (
    add_months,
    end_of_months_after,
    expiry_instant,
    format_state_date,
    parse_generalized_time,
    parse_state_date,
    to_generalized_time,
)

ZONES = ["Europe/Paris", "UTC", "America/Havana", "America/Santiago", "Pacific/Apia", "Asia/Tokyo"]
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2026, 5, 10), 0, date(2026, 5, 10)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


@given(days, st.integers(min_value=-1200, max_value=1200))
def test_add_months_agrees_with_relativedelta(start: date, months: int) -> None:
    assert add_months(start, months) == start + relativedelta(months=months)


def test_add_months_outside_the_calendar_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="outside the calendar"):
        add_months(date(9999, 12, 1), 1)
    with pytest.raises(InvalidInputError):
        add_months(date(1, 1, 31), -1)


@pytest.mark.parametrize(
    ("end_of_activity", "months", "grace_end"),
    [
        (date(2026, 6, 30), 6, date(2026, 12, 31)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2027, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 12, 31), 12, date(2027, 12, 31)),
        (date(2026, 3, 15), 3, date(2026, 6, 15)),
    ],
)
def test_months_after_a_day_are_whole_months_from_the_next_day(
    end_of_activity: date, months: int, grace_end: date
) -> None:
    assert end_of_months_after(end_of_activity, months) == grace_end


@given(days, st.integers(min_value=1, max_value=120))
def test_months_after_a_day_start_next_day_and_end_the_day_before_the_anniversary(
    last_day: date, months: int
) -> None:
    end = end_of_months_after(last_day, months)
    assert end > last_day
    assert end + timedelta(days=1) == (last_day + timedelta(days=1)) + relativedelta(months=months)


@pytest.mark.parametrize(
    ("grace_end", "expected"),
    [
        (date(2026, 12, 31), datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),  # winter, UTC+1
        (date(2026, 6, 30), datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),  # summer, UTC+2
        (date(2027, 3, 27), datetime(2027, 3, 27, 23, 0, tzinfo=UTC)),  # night before DST
    ],
)
def test_expiry_instant_is_local_midnight_after_the_grace_end(
    grace_end: date, expected: datetime
) -> None:
    instant = expiry_instant(grace_end, "Europe/Paris")
    assert instant == expected
    assert instant.tzinfo is UTC


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)), st.sampled_from(ZONES))
def test_account_is_usable_through_grace_end_and_expired_right_after(
    grace_end: date, zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    instant = expiry_instant(grace_end, zone_name)
    assert instant.utcoffset() == timedelta(0)
    assert (instant - timedelta(microseconds=1)).astimezone(zone).date() <= grace_end
    assert instant.astimezone(zone).date() > grace_end


def test_expiry_instant_accepts_a_tzinfo_and_refuses_an_unknown_zone() -> None:
    assert expiry_instant(date(2026, 12, 31), UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match="Mars/Olympus"):
        expiry_instant(date(2026, 12, 31), "Mars/Olympus")


def test_generalized_time_is_utc_with_seconds() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert to_generalized_time(datetime(2027, 1, 1, 0, 0, tzinfo=paris)) == "20261231230000Z"
    assert to_generalized_time(datetime(5, 1, 2, 3, 4, 5, 999, tzinfo=UTC)) == "00050102030405Z"


def test_generalized_time_refuses_a_naive_datetime() -> None:
    with pytest.raises(InvalidInputError, match="no time zone"):
        to_generalized_time(datetime(2027, 1, 1))


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_generalized_time_round_trips_to_the_second(instant: datetime) -> None:
    text = to_generalized_time(instant)
    assert len(text) == 15
    assert parse_generalized_time(text) == instant.replace(microsecond=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20270101000000Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("202701010000Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027010112Z", datetime(2027, 1, 1, 12, tzinfo=UTC)),
        ("2027010112.5Z", datetime(2027, 1, 1, 12, 30, tzinfo=UTC)),
        ("202701011230,5Z", datetime(2027, 1, 1, 12, 30, 30, tzinfo=UTC)),
        ("20270101123000.25Z", datetime(2027, 1, 1, 12, 30, 0, 250000, tzinfo=UTC)),
        ("20270101010000+0100", datetime(2027, 1, 1, tzinfo=UTC)),
        ("20261231220000-02", datetime(2027, 1, 1, tzinfo=UTC)),
        ("20261231235960Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_generalized_time_forms_a_directory_may_return(text: str, expected: datetime) -> None:
    assert parse_generalized_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2027", "20270101", "20270101000000", "20271301000000Z", "20270101250000Z",
     "20270101006000Z", "2027-01-01T00:00:00Z", "20270101000000z", " 20270101000000Z"],
)  # fmt: skip
def test_malformed_generalized_time_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_generalized_time(text)


@given(st.dates())
def test_state_dates_round_trip(day: date) -> None:
    text = format_state_date(day)
    assert len(text) == 8
    assert parse_state_date(text) == day


def test_empty_state_date_means_none() -> None:
    assert format_state_date(None) == ""
    assert parse_state_date("") is None


@pytest.mark.parametrize(
    "text", ["2026123", "20261301", "20260230", "2026-12-31", "abcdefgh", "202612311"]
)
def test_malformed_state_date_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInputError, match=text):
        parse_state_date(text)


def test_fixed_offset_zones_are_accepted() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert expiry_instant(date(2026, 6, 30), plus_two) == datetime(2026, 6, 30, 22, tzinfo=UTC)
