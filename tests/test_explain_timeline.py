"""``explain``: what comes next (future only, sorted, each once), and the words agree with ``show``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY, days, month_end, ymd
from people import add_person

from umacct.services.explain import explain
from umacct.services.helpdesk import show_account
from umacct.services.lifecycle import suspend
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


def _precreated(arrival: date) -> list[str]:
    last_day = ymd(date.fromordinal(arrival.toordinal() - 1))
    return [
        f"{{COMPTE}}I:SupannPrecree:{ymd(days(-5))}:{last_day}",
        f"{{MAIL}}I:SupannPrecree:{ymd(days(-5))}:{last_day}",
    ]


def test_upcoming_events_are_future_sorted_and_unique(on: Callable[[date], Runtime]) -> None:
    """Accounts in every stage: nothing of the past is listed as coming, nothing twice."""
    runtime = on(TODAY)
    people = [
        add_person(runtime, "ana.roux", profile="titulaire"),
        add_person(runtime, "bea.roux", profile="vacataire", end_of_activity=days(20)),
        add_person(runtime, "cy.roux", profile="vacataire", end_of_activity=month_end(-2)),
        add_person(runtime, "dan.roux", profile="vacataire", end_of_activity=month_end(-9)),
        add_person(runtime, "eve.roux", profile="titulaire", end_of_activity=month_end(-3)),
        add_person(runtime, "fay.roux", state_values=_precreated(days(10))),
        add_person(runtime, "gil.roux", state_values=_precreated(days(-2))),
    ]
    suspend(runtime, people[4].identifier, reason="left")
    for person in people:
        upcoming = explain(runtime, person.identifier).upcoming
        keys = [(event.day, event.text) for event in upcoming]
        assert all(day is not None and day >= TODAY for day, _ in keys), (person.uid, keys)
        assert keys == sorted(keys, key=lambda key: (key[0] or date.min, key[1])), person.uid
        assert len(set(keys)) == len(keys), person.uid


def test_a_precreated_account_shows_its_arrival_day_mail(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "hal.morel", state_values=_precreated(days(10)))
    result = explain(runtime, person.identifier)
    assert [event.day for event in result.upcoming if "arrival" in event.text] == [days(10)]
    assert "mails the activation link" in result.upcoming[0].text
    assert f"until {days(10).isoformat()}" in result.login_blockers[0]
    assert f"`umacct activate {person.identifier}`" in result.login_blockers[0]
    code, out, _ = umacct("explain", person.identifier)
    assert code == 0 and "arrival" in out and "umacct activate" in out


@pytest.mark.parametrize(
    ("profile", "ended", "suspended", "allowed"),
    [
        ("titulaire", month_end(-3), True, True),  # grace end 9 months away: < 12, renewable
        ("titulaire", month_end(-3), False, True),  # its grace is due: the policy's view of today
        ("titulaire", days(40), False, False),  # not in its grace period yet
        ("titulaire", None, False, False),  # active
        ("vacataire", month_end(-1), True, False),  # profile not extendable
    ],
)
def test_show_and_explain_agree_on_extendable(
    on: Callable[[date], Runtime],
    profile: str,
    ended: date | None,
    suspended: bool,
    allowed: bool,
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "ida.blanc", profile=profile, end_of_activity=ended)
    if suspended:
        suspend(runtime, person.identifier, reason="left")
    shown, explained = show_account(runtime, person.identifier), explain(runtime, person.identifier)
    assert shown.extendable is explained.extendable is allowed
    assert shown.extension_refusal == explained.extension_refusal
    if runtime.config.profiles[profile].extendable:
        expected = (
            "an extension can be asked now" if allowed else f"not now: {shown.extension_refusal}"
        )
        assert explained.rule.endswith(expected)
    code, out, _ = umacct("explain", person.identifier, "--json")
    document = json.loads(out)
    assert (code, document["extendable"], document["extension_refusal"]) == (
        0,
        allowed,
        shown.extension_refusal,
    )
    code, out, _ = umacct("show", person.identifier, "--json")
    assert (code, json.loads(out)["extendable"]) == (0, allowed)
