"""QA (issue 17): an account marked for deletion shows the same dates as before its marking."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from command_line import umacct
from days import TODAY, days, month_end
from people import add_person, compte, read

from umacct.services.explain import explain
from umacct.services.helpdesk import show_account
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")


def _sweep(runtime: Runtime) -> list[tuple[str, str]]:
    summary = SweepSummary(runtime.today(), False)
    done = [(r.account, r.action) for r in sweep(runtime, summary)]
    assert summary.errors == []
    return done


def _late_then_marked(on: Callable[[date], Runtime]) -> tuple[str, date, date]:
    """A titulaire found long past its grace: late notice, expired, marked a day late."""
    first = on(TODAY)
    person = add_person(first, "lea.tardif", profile="titulaire", end_of_activity=month_end(-24))
    assert _sweep(first) == [(person.identifier, "suspend")]
    grace_end = TODAY + timedelta(days=30)  # late: notice period
    expired_on = grace_end + timedelta(days=1)
    assert (person.identifier, "expire") in _sweep(on(expired_on))
    marked_on = expired_on + timedelta(days=31)  # the purge day passed unswept: a day late
    assert (person.identifier, "awaiting-deletion") in _sweep(on(marked_on))
    assert "SupannSupprCompte" in compte(read(on(marked_on), person))
    return person.identifier, grace_end, expired_on


def test_a_marked_account_keeps_its_dates_in_explain_and_show(
    on: Callable[[date], Runtime],
) -> None:
    account, grace_end, expired_on = _late_then_marked(on)
    later = expired_on + timedelta(days=35)
    runtime = on(later)
    result = explain(runtime, account)
    assert f"mail and login stop after {grace_end.isoformat()}" in result.rule
    assert "late: notice period" in result.rule
    assert f"account expired on {expired_on.isoformat()}" in result.rule
    expired_events = [e for e in result.happened if e.text.startswith("account expired")]
    assert [e.day for e in expired_events] == [expired_on]
    assert show_account(runtime, account).grace_end == grace_end
    due = [e.text for e in result.upcoming if "due now" in e.text]
    assert due and "umacct sweep --purge" in due[0] and "umacct purge" in due[0]
    code, out, _ = umacct("purge", account, "--dry-run", "--json", "--reason", "x", day=later)
    assert code == 0, out
    assert json.loads(out)["grace_end"] == grace_end.isoformat()


def test_an_expired_unmarked_account_gives_the_same_words(on: Callable[[date], Runtime]) -> None:
    first = on(TODAY)
    person = add_person(first, "max.tardif", profile="vacataire", end_of_activity=month_end(-12))
    _sweep(first)
    grace_end = TODAY + timedelta(days=30)
    _sweep(on(grace_end + timedelta(days=1)))
    result = explain(on(grace_end + timedelta(days=5)), person.identifier)
    assert f"mail and login stop after {grace_end.isoformat()}" in result.rule
    assert "late: notice period" in result.rule
    assert days(0) <= grace_end


def test_explain_lists_each_fact_once_and_every_warning_to_come(
    on: Callable[[date], Runtime],
) -> None:
    first = on(TODAY)
    person = add_person(first, "noe.tardif", profile="vacataire", end_of_activity=month_end(-1))
    _sweep(first)
    runtime = on(TODAY)
    result = explain(runtime, person.identifier)
    result_expiry = show_account(runtime, person.identifier).grace_end
    assert result_expiry is not None
    expires_on = result_expiry + timedelta(days=1)
    warnings = [(e.day, e.text) for e in result.upcoming if "warning mail" in e.text]
    assert warnings == [
        (expires_on - timedelta(days=30), "warning mail: the account expires in 30 days"),
        (expires_on - timedelta(days=7), "warning mail: the account expires in 7 days"),
    ]
    happened = [e.text for e in result.happened]
    assert "sweep: grace period started" in happened, happened
    assert not any(text == "sweep by root: ok" or text.endswith(": ok") for text in happened)
    warned_on = expires_on - timedelta(days=30)
    _sweep(on(warned_on))
    _sweep(on(expires_on))
    later = on(expires_on + timedelta(days=3))
    result = explain(later, person.identifier)
    purges = [e for e in result.upcoming if "purged" in e.text]
    assert len(purges) == 1, result.upcoming
    happened = [e.text for e in result.happened]
    assert "sweep: warning sent (30 days)" in happened, happened
    assert "sweep: account expired" in happened, happened
