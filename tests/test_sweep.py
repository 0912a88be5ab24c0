"""The daily sweep, run day after day through a year: each profile moves on the page's dates."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from people import add_person, compte, read

from umacct.errors import TemporaryError
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")

END = date(2026, 6, 30)
PROFILES = ["titulaire", "contractuel", "autre_personnel", "vacataire", "heberge_en", "etudiant"]


def expected_events(profile: str) -> list[tuple[date, str]]:
    """The page's dates for an end of activity on 2026-06-30, warnings 30 and 7 days ahead, purge 30 days after."""
    expires = {
        "titulaire": date(2027, 7, 1),
        "contractuel": date(2027, 7, 1),
        "autre_personnel": date(2026, 10, 1),
        "vacataire": date(2027, 1, 1),
        "heberge_en": date(2027, 1, 1),
        "etudiant": date(2027, 1, 1),
    }[profile]
    return [
        (date(2026, 7, 1), "suspend"),
        (expires - timedelta(days=30), "warn"),
        (expires - timedelta(days=7), "warn"),
        (expires, "expire"),
        (expires + timedelta(days=30), "purge"),
    ]


def run(runtime: Runtime, *, purge: bool = True, dry_run: bool = False) -> list[tuple[str, str]]:
    summary = SweepSummary(runtime.today(), dry_run)
    results = [(r.account, r.action) for r in sweep(runtime, summary, purge=purge)]
    assert summary.errors == []
    return results


def test_a_year_of_daily_sweeps_follows_the_page(on: Callable[[date], Runtime]) -> None:
    setup = on(date(2026, 6, 1))
    people = {
        profile: add_person(
            setup, f"{profile.replace('_', '-')}.person", profile=profile, end_of_activity=END
        )
        for profile in PROFILES
    }
    owner = {person.identifier: profile for profile, person in people.items()}
    events: dict[str, list[tuple[date, str]]] = {profile: [] for profile in PROFILES}
    day = date(2026, 6, 28)
    while day <= date(2027, 8, 5):
        for account, action in run(on(day)):
            events[owner[account]].append((day, action))
        day += timedelta(days=1)
    for profile in PROFILES:
        assert events[profile] == expected_events(profile), profile
    assert all(setup.directory.read(p.dn, ["uid"]) is None for p in people.values())


def test_second_sweep_the_same_day_changes_nothing(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 12, 2))
    person = add_person(runtime, "va.cataire", profile="vacataire", end_of_activity=END)
    first = run(runtime)
    assert [action for _, action in first] == ["suspend"]
    assert compte(read(runtime, person)) == "{COMPTE}A:SupannSursis:20260701:20261231"
    second = run(on(date(2026, 12, 2)))
    assert [action for _, action in second] == ["warn"]  # held back by the late suspension
    assert run(on(date(2026, 12, 2))) == []
    assert len(runtime.audit.read(account=person.identifier)) == 2


def test_warning_mail_says_when_and_how_to_extend(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2027, 6, 1))
    person = add_person(runtime, "ti.tulaire", profile="titulaire", end_of_activity=END)
    run(runtime)
    run(on(date(2027, 6, 1)))
    outbox = sorted(runtime.config.outbox_dir.glob("*.eml"))
    warning = email.message_from_bytes(outbox[-1].read_bytes())
    body = warning.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert warning["To"] == person.identifier
    assert "1 juillet 2027" in body or "1er juillet 2027" in body
    assert "prolongation" in body


def test_dry_run_changes_nothing(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2027, 2, 1))
    person = add_person(runtime, "dry.run", profile="vacataire", end_of_activity=END)
    before = read(runtime, person)
    results = run(runtime, dry_run=True)
    assert results == [(person.identifier, "expire")]
    assert read(runtime, person) == before
    assert runtime.audit.read() == []


def test_account_whose_end_of_activity_moved_comes_back(on: Callable[[date], Runtime]) -> None:
    from people import generalized

    from umacct.directory import Change

    runtime = on(date(2026, 8, 1))
    person = add_person(runtime, "back.again", profile="etudiant", end_of_activity=END)
    run(runtime)
    assert compte(read(runtime, person)).startswith("{COMPTE}A:SupannSursis")
    runtime.directory.modify(
        person.dn, [Change("replace", "supannEtuDateFin", (generalized(date(2027, 6, 30)),))]
    )
    assert run(on(date(2026, 9, 15))) == [(person.identifier, "reactivate")]
    entry = read(runtime, person)
    assert compte(entry) == "{COMPTE}A:SupannActif:20260915:"
    assert entry.get("eduPersonAffiliation") == ["member", "student"]
    assert entry.get("pwdEndTime") == []


def test_foreign_state_is_reported_and_left_alone(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 8, 1))
    person = add_person(
        runtime,
        "locked.out",
        end_of_activity=END,
        state_values=["{COMPTE}S:SupannVerrouille:20260101:"],
    )
    assert run(runtime) == [(person.identifier, "skipped")]
    assert compte(read(runtime, person)) == "{COMPTE}S:SupannVerrouille:20260101:"


def test_two_sweeps_at_once_the_second_exits_75(on: Callable[[date], Runtime]) -> None:
    first = on(date(2026, 8, 1))
    add_person(first, "lock.test", end_of_activity=END)
    with (
        first.store.job_lock("sweep"),
        pytest.raises(TemporaryError, match="another sweep is running"),
    ):
        run(on(date(2026, 8, 1)))


def test_sweep_sends_the_activation_link_on_the_arrival_day(on: Callable[[date], Runtime]) -> None:
    from umacct.services.create import create_person
    from umacct.services.create_input import new_person

    runtime = on(date(2026, 8, 20))
    row = new_person(
        runtime.config,
        given_name="Léna",
        surname="Arrivée",
        profile="etudiant",
        personal_email="lena@example.net",
        arrival=date(2026, 9, 1),
    )
    created = create_person(runtime, row)
    assert created.state == "I:SupannPrecree"
    outbox = runtime.config.outbox_dir
    assert not list(outbox.glob("*.eml")) if outbox.exists() else True
    assert run(on(date(2026, 8, 31))) == []
    assert run(on(date(2026, 9, 1))) == [(created.account, "arrive")]
    mails = [email.message_from_bytes(p.read_bytes()) for p in outbox.glob("*.eml")]
    assert [m["To"] for m in mails] == ["lena@example.net"]
    assert run(on(date(2026, 9, 1))) == []
