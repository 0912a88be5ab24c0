"""The daily sweep, run day after day through a year: each profile moves on the page's dates."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from days import TODAY, days, month_end, ymd
from people import add_person, compte, day_after, read

from umacct.errors import TemporaryError
from umacct.mail.dates import french_date
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")

END = month_end(-1)  # an end of activity on the last day of a month: last month's
PROFILES = ["titulaire", "contractuel", "autre_personnel", "vacataire", "heberge_en", "etudiant"]
GRACE_MONTHS = {
    "titulaire": 12,
    "contractuel": 12,
    "autre_personnel": 3,
    "vacataire": 6,
    "heberge_en": 6,
    "etudiant": 6,
}


def expires(profile: str) -> date:
    """The expiry day after END: the morning after the profile's whole months of grace."""
    return day_after(month_end(-1 + GRACE_MONTHS[profile]))


def expected_events(profile: str) -> list[tuple[date, str]]:
    """The page's dates for an end of activity on END, warnings 30 and 7 days ahead, purge 30 days after."""
    expires_on = expires(profile)
    return [
        (day_after(END), "suspend"),
        (expires_on - timedelta(days=30), "warn"),
        (expires_on - timedelta(days=7), "warn"),
        (expires_on, "expire"),
        (expires_on + timedelta(days=30), "purge"),
    ]


def run(runtime: Runtime, *, purge: bool = True, dry_run: bool = False) -> list[tuple[str, str]]:
    summary = SweepSummary(runtime.today(), dry_run)
    results = [(r.account, r.action) for r in sweep(runtime, summary, purge=purge)]
    assert summary.errors == []
    return results


def test_a_year_of_daily_sweeps_follows_the_page(on: Callable[[date], Runtime]) -> None:
    setup = on(END.replace(day=1))
    people = {
        profile: add_person(
            setup, f"{profile.replace('_', '-')}.person", profile=profile, end_of_activity=END
        )
        for profile in PROFILES
    }
    owner = {person.identifier: profile for profile, person in people.items()}
    events: dict[str, list[tuple[date, str]]] = {profile: [] for profile in PROFILES}
    day = END - timedelta(days=2)
    last = max(expected_events(profile)[-1][0] for profile in PROFILES) + timedelta(days=5)
    while day <= last:
        for account, action in run(on(day)):
            events[owner[account]].append((day, action))
        day += timedelta(days=1)
    for profile in PROFILES:
        assert events[profile] == expected_events(profile), profile
    assert all(setup.directory.read(p.dn, ["uid"]) is None for p in people.values())


def test_second_sweep_the_same_day_changes_nothing(on: Callable[[date], Runtime]) -> None:
    # First seen 40 days before the expiry: suspended late, still with more than the notice.
    day = expires("vacataire") - timedelta(days=40)
    runtime = on(day)
    person = add_person(runtime, "va.cataire", profile="vacataire", end_of_activity=END)
    first = run(runtime)
    assert [action for _, action in first] == ["suspend"]
    assert (
        compte(read(runtime, person))
        == f"{{COMPTE}}A:SupannSursis:{ymd(day_after(END))}:{ymd(month_end(5))}"
    )
    assert run(on(day)) == []
    assert len(runtime.audit.read(account=person.identifier)) == 1


def test_first_seen_on_the_warning_day_gets_the_full_notice(
    on: Callable[[date], Runtime],
) -> None:
    day = expires("vacataire") - timedelta(days=30)
    runtime = on(day)
    person = add_person(runtime, "late.seen", profile="vacataire", end_of_activity=END)
    assert [action for _, action in run(runtime)] == ["suspend"]
    noticed = day + timedelta(days=30)  # one day later than the profile's month_end(5)
    assert compte(read(runtime, person)).endswith(f":{ymd(noticed)}")
    assert run(on(day)) == []
    assert [action for _, action in run(on(day + timedelta(days=1)))] == ["warn"]


def test_warning_mail_says_when_and_how_to_extend(on: Callable[[date], Runtime]) -> None:
    expires_on = expires("titulaire")
    day = expires_on - timedelta(days=30)
    runtime = on(day - timedelta(days=10))
    person = add_person(runtime, "ti.tulaire", profile="titulaire", end_of_activity=END)
    run(runtime)
    outbox = runtime.config.outbox_dir
    grace_mail = set(outbox.glob("*.eml"))
    run(on(day))
    [new] = set(outbox.glob("*.eml")) - grace_mail  # not by name: names carry a time stamp
    warning = email.message_from_bytes(new.read_bytes())
    body = warning.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert warning["To"] == person.identifier
    assert french_date(expires_on) in body
    assert "prolongation" in body


def test_dry_run_changes_nothing(on: Callable[[date], Runtime]) -> None:
    # A month after the grace ended, never suspended: suspended, with the minimum notice.
    runtime = on(expires("vacataire") + timedelta(days=31))
    person = add_person(runtime, "dry.run", profile="vacataire", end_of_activity=END)
    before = read(runtime, person)
    results = run(runtime, dry_run=True)
    assert results == [(person.identifier, "suspend")]
    assert read(runtime, person) == before
    assert runtime.audit.read() == []


def test_account_whose_end_of_activity_moved_comes_back(on: Callable[[date], Runtime]) -> None:
    from people import generalized

    from umacct.directory import Change

    runtime = on(END + timedelta(days=32))
    person = add_person(runtime, "back.again", profile="etudiant", end_of_activity=END)
    run(runtime)
    assert compte(read(runtime, person)).startswith("{COMPTE}A:SupannSursis")
    runtime.directory.modify(
        person.dn, [Change("replace", "supannEtuDateFin", (generalized(month_end(11)),))]
    )
    back = END + timedelta(days=77)
    assert run(on(back)) == [(person.identifier, "reactivate")]
    entry = read(runtime, person)
    assert compte(entry) == f"{{COMPTE}}A:SupannActif:{ymd(back)}:"
    assert entry.get("eduPersonAffiliation") == ["member", "student"]
    assert entry.get("pwdEndTime") == []


def test_foreign_state_is_reported_and_left_alone(on: Callable[[date], Runtime]) -> None:
    runtime = on(END + timedelta(days=32))
    locked = f"{{COMPTE}}S:SupannVerrouille:{ymd(END - timedelta(days=180))}:"
    person = add_person(runtime, "locked.out", end_of_activity=END, state_values=[locked])
    assert run(runtime) == [(person.identifier, "skipped")]
    assert compte(read(runtime, person)) == locked


def test_two_sweeps_at_once_the_second_exits_75(on: Callable[[date], Runtime]) -> None:
    first = on(END + timedelta(days=32))
    add_person(first, "lock.test", end_of_activity=END)
    with (
        first.store.job_lock("sweep"),
        pytest.raises(TemporaryError, match="another sweep is running"),
    ):
        run(on(END + timedelta(days=32)))


def test_sweep_sends_the_activation_link_on_the_arrival_day(on: Callable[[date], Runtime]) -> None:
    from umacct.services.create import create_person
    from umacct.services.create_input import new_person

    arrival = days(12)
    runtime = on(TODAY)
    row = new_person(
        runtime.config,
        given_name="Léna",
        surname="Arrivée",
        profile="etudiant",
        personal_email="lena@example.net",
        arrival=arrival,
    )
    created = create_person(runtime, row)
    assert created.state == "I:SupannPrecree"
    outbox = runtime.config.outbox_dir
    assert not list(outbox.glob("*.eml")) if outbox.exists() else True
    assert run(on(arrival - timedelta(days=1))) == []
    assert run(on(arrival)) == [(created.account, "arrive")]
    mails = [email.message_from_bytes(p.read_bytes()) for p in outbox.glob("*.eml")]
    assert [m["To"] for m in mails] == ["lena@example.net"]
    assert run(on(arrival)) == []
