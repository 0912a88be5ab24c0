"""The command line runs on the clock it is given, and ``--as-of`` moves that whole clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from command_line import umacct
from days import PARIS, TODAY, clock_on, days
from hypothesis import given
from hypothesis import strategies as st
from people import add_person, compte, read

from umacct.clock import FixedClock, clock_on_day, local_today
from umacct.services.runtime import Runtime


@pytest.mark.usefixtures("directory_clean")
def test_the_cli_reads_the_injected_clock_not_the_machines(on: Callable[[date], Runtime]) -> None:
    person = add_person(on(TODAY), "clo.ck", profile="vacataire", end_of_activity=days(-10))
    later = days(40)
    code, out, err = umacct("--json", "explain", person.identifier, day=later)
    assert code == 0, err
    assert json.loads(out)["as_of"] == later.isoformat()

    code, out, err = umacct("--json", "suspend", person.identifier, "--reason", "left", day=later)
    assert code == 0, err
    [record] = [
        r for r in on(TODAY).audit.read(account=person.identifier) if r.command == "suspend"
    ]
    assert record.time.astimezone(PARIS).date() == later


@pytest.mark.usefixtures("directory_clean")
def test_as_of_moves_every_instant_the_run_stamps(on: Callable[[date], Runtime]) -> None:
    person = add_person(on(TODAY), "as.of", profile="vacataire", end_of_activity=days(-3))
    planned = days(5)
    code, out, err = umacct("--json", "explain", person.identifier, "--as-of", planned.isoformat())
    assert code == 0, err
    assert json.loads(out)["as_of"] == planned.isoformat()
    code, out, err = umacct("--json", "sweep", "--as-of", planned.isoformat(), "--force-date")
    assert code == 0, err
    assert compte(read(on(TODAY), person)).startswith("{COMPTE}A:SupannSursis:")
    records = on(TODAY).audit.read(account=person.identifier)
    assert {r.time.astimezone(PARIS).date() for r in records} == {planned}
    assert {r.details.get("forced_date") for r in records} == {planned.isoformat()}


@pytest.mark.usefixtures("directory_clean")
def test_a_real_run_on_another_day_needs_force_date_and_changes_nothing(
    on: Callable[[date], Runtime],
) -> None:
    person = add_person(on(TODAY), "typo.year", profile="vacataire", end_of_activity=days(-3))
    before = read(on(TODAY), person)
    for day in (days(365), days(-365), days(1)):
        for command in (["sweep"], ["sweep", "--purge"], ["suspend", "--due"]):
            code, _, err = umacct(*command, "--as-of", day.isoformat())
            assert code == 2, err
            assert "--force-date" in err and "is not today" in err
    assert read(on(TODAY), person) == before
    assert on(TODAY).audit.read(account=person.identifier) == []
    code, _, err = umacct("sweep", "--as-of", days(365).isoformat(), "--dry-run")
    assert code == 0, err
    code, _, err = umacct("sweep", "--as-of", TODAY.isoformat())
    assert code == 0, err


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-3000, max_value=3000),
)
def test_a_clock_moved_to_a_day_says_that_day_and_keeps_running(
    start: datetime, offset: int
) -> None:
    base = FixedClock(start.replace(tzinfo=UTC))
    target = local_today(base, "Europe/Paris") + timedelta(days=offset)
    moved = clock_on_day(base, target, "Europe/Paris")
    assert local_today(moved, "Europe/Paris") == target
    assert moved.now().tzinfo is not None


def test_the_test_clock_is_the_real_today() -> None:
    now = datetime.now(ZoneInfo("Europe/Paris"))
    assert abs((clock_on(TODAY).now() - now).days) <= 1
