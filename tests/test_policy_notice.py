"""The notice rule: nobody loses access with less than minimum_notice_days of notice."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from umacct.errors import RefusedError
from umacct.policy import (
    AccountFacts,
    ActionKind,
    ProfileRules,
    Stage,
    evaluate,
    extend,
    grace_end_for,
    grace_states,
)
from umacct.policy.dates import supann_date_bound, supann_date_of, to_supann_date

DAY = timedelta(days=1)
NOTICE = 30
TITULAIRE = ProfileRules("titulaire", 12, extendable=True, extension_months=12, max_extensions=2)
VACATAIRE = ProfileRules("vacataire", 6)
AUTRE = ProfileRules("autre", 3)
PROFILES = st.sampled_from([TITULAIRE, VACATAIRE, AUTRE])
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2080, 12, 31))


def run(rules: ProfileRules, facts: AccountFacts, today: date):  # type: ignore[no-untyped-def]
    return evaluate(
        rules, facts, today, purge_after_days=30, warn_days=(30, 7), minimum_notice_days=NOTICE
    )


def in_grace(end: date, grace_end: date, notified_on: date | None = None) -> AccountFacts:
    state = grace_states(end, grace_end)[0]
    return AccountFacts.from_state(state, end, notified_on)


@given(PROFILES, DAYS, st.integers(min_value=1, max_value=4000))
def test_an_account_found_active_after_its_end_always_gets_the_notice(
    rules: ProfileRules, end: date, late_by: int
) -> None:
    today = end + DAY * late_by
    evaluation = run(rules, AccountFacts(Stage.ACTIVE, end), today)
    assert evaluation.action_due is not None
    assert evaluation.action_due.kind is ActionKind.SUSPEND
    assert evaluation.grace_end is not None
    assert evaluation.grace_end >= today + DAY * NOTICE
    assert evaluation.grace_end == max(grace_end_for(rules, end), today + DAY * NOTICE)
    assert evaluation.notice_late == (evaluation.grace_end > grace_end_for(rules, end))
    assert evaluation.stage_today is Stage.GRACE


def test_the_demo_case_an_old_directory_is_not_expired_on_the_first_night() -> None:
    # Activity ended two years ago; the account still works: it gets 30 days, not a cut-off.
    evaluation = run(AUTRE, AccountFacts(Stage.ACTIVE, date(2024, 3, 31)), date(2026, 6, 1))
    assert evaluation.stage_today is Stage.GRACE
    assert evaluation.grace_end == date(2026, 7, 1)
    assert evaluation.purgeable_on == date(2026, 8, 1)
    assert evaluation.notice_late


def test_in_grace_never_told_with_few_days_left_is_told_and_lengthened() -> None:
    end, grace_end = date(2026, 3, 31), date(2026, 6, 30)
    evaluation = run(AUTRE, in_grace(end, grace_end), date(2026, 6, 20))
    assert evaluation.action_due is not None
    assert evaluation.action_due.kind is ActionKind.NOTICE
    assert evaluation.grace_end == date(2026, 7, 20)


def test_in_grace_told_keeps_its_date_and_gets_warnings() -> None:
    end, grace_end = date(2026, 3, 31), date(2026, 6, 30)
    facts = in_grace(end, grace_end, notified_on=date(2026, 4, 1))
    evaluation = run(AUTRE, facts, date(2026, 6, 25))
    assert evaluation.grace_end == grace_end
    assert evaluation.action_due is not None
    assert evaluation.action_due.kind is ActionKind.WARN


def test_a_grace_the_directory_already_enforced_expires_on_its_real_date() -> None:
    end, grace_end = date(2026, 3, 31), date(2026, 6, 30)
    evaluation = run(AUTRE, in_grace(end, grace_end), date(2026, 7, 10))
    assert evaluation.action_due is not None
    assert evaluation.action_due.kind is ActionKind.EXPIRE
    assert evaluation.expires_on == date(2026, 7, 1)


def test_a_lengthened_grace_still_counts_its_extensions() -> None:
    end = date(2024, 8, 31)
    told = date(2026, 6, 1)
    lengthened = told + DAY * NOTICE
    facts = in_grace(end, lengthened, notified_on=told)
    evaluation = run(TITULAIRE, facts, told)
    assert evaluation.extensions_granted == 0
    assert evaluation.notice_late
    grant = extend(TITULAIRE, facts, told, minimum_notice_days=NOTICE)
    assert grant.grace_end == date(2027, 7, 1)
    assert grant.extensions_granted == 1


def test_an_extension_renews_it_does_not_stack() -> None:
    end = date(2026, 8, 31)
    first = grace_end_for(TITULAIRE, end)  # 2027-08-31
    extended = date(2028, 8, 31)
    facts = in_grace(end, extended, notified_on=date(2026, 9, 1))
    with pytest.raises(RefusedError, match="already extended to 2028-08-31"):
        extend(TITULAIRE, facts, date(2026, 10, 1), minimum_notice_days=NOTICE)
    assert extend(TITULAIRE, facts, first + DAY).grace_end == date(2029, 8, 31)
    assert extend(TITULAIRE, facts, date(2026, 10, 1), force=True).grace_end == date(2029, 8, 31)


@given(st.dates(min_value=date(1970, 1, 2), max_value=date(2999, 12, 30)))
def test_supann_dates_are_written_at_midnight_utc_and_read_in_both_forms(day: date) -> None:
    written = to_supann_date(day)
    assert written == day.strftime("%Y%m%d") + "000000Z"
    for zone in ("Europe/Paris", "Pacific/Tahiti", "Indian/Reunion", "America/Cayenne", "UTC"):
        assert supann_date_of(written, zone) == day
        legacy = _local_midnight(day, zone)
        assert supann_date_of(legacy, zone) == day
        # the filter bounds order both forms of the day and of its neighbours
        for value, value_day in ((written, day), (legacy, day)):
            assert (value <= supann_date_bound(day, upper=True)) is True
            assert (value <= supann_date_bound(day - DAY, upper=True)) is (value_day <= day - DAY)
            assert (value >= supann_date_bound(day, upper=False)) is True
            assert (value >= supann_date_bound(day + DAY, upper=False)) is (value_day >= day + DAY)


def _local_midnight(day: date, zone: str) -> str:
    from datetime import UTC, datetime, time
    from zoneinfo import ZoneInfo

    instant = datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return instant.strftime("%Y%m%d%H%M%SZ")
