"""Departure, end to end against slapd: suspend, extend, expire, purge, restore."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from days import TODAY
from people import STATE_REGEX, add_person, compte, read

from umacct.directory import Change
from umacct.errors import InvalidInputError, NotFoundError, RefusedError
from umacct.services.lifecycle import extend, suspend
from umacct.services.purge import purge, restore
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")


def test_suspend_writes_grace_state_to_the_day(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 7, 1))
    person = add_person(runtime, "ana.lopez", profile="vacataire")
    result = suspend(
        runtime, person.identifier, end_of_activity=date(2026, 6, 30), reason="end of contract"
    )
    assert result.changed
    assert result.grace_end == date(2026, 12, 31)
    entry = read(runtime, person)
    assert compte(entry) == "{COMPTE}A:SupannSursis:20260701:20261231"
    assert "{MAIL}A:SupannSursis:20260701:20261231" in entry.get("supannRessourceEtatDate")
    assert "{COMPTE}A:SupannSursis" in entry.get("supannRessourceEtat")
    for value in entry.get("supannRessourceEtatDate"):
        assert re.match(STATE_REGEX, value)
    # 2027-01-01 00:00 in Paris is 2026-12-31 23:00 UTC
    assert entry.first("pwdEndTime") == "20261231230000Z"
    assert entry.get("eduPersonAffiliation") == ["affiliate"]
    assert entry.first("supannEmpDateFin") == "20260629220000Z"
    records = runtime.audit.read(account=person.identifier)
    assert records[-1].command == "suspend"
    assert records[-1].details["reason"] == "end of contract"
    assert "supannRessourceEtatDate" in records[-1].changes


def test_suspend_twice_changes_nothing(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 7, 1))
    person = add_person(runtime, "bo.chen", profile="vacataire", end_of_activity=date(2026, 6, 30))
    suspend(runtime, person.identifier)
    before = read(runtime, person)
    again = suspend(runtime, person.identifier)
    assert not again.changed
    assert read(runtime, person) == before
    assert len(runtime.audit.read(account=person.identifier)) == 1


def test_suspend_cancels_pending_links(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 7, 1))
    person = add_person(
        runtime, "cy.dupont", awaiting_activation=True, end_of_activity=date(2026, 6, 30)
    )
    issued = runtime.tokens.issue(person.identifier, TokenPurpose.ACTIVATION, timedelta(hours=24))
    suspend(runtime, person.identifier)
    with pytest.raises(InvalidInputError):
        runtime.tokens.check(issued.token, TokenPurpose.ACTIVATION)


def test_bind_works_during_grace_and_fails_after_expiry(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    in_grace = add_person(
        runtime, "dee.martin", profile="vacataire", end_of_activity=date(2026, 10, 31)
    )
    gone = add_person(
        runtime, "eli.bernard", profile="vacataire", end_of_activity=date(2026, 3, 31)
    )
    assert runtime.directory.check_password(gone.dn, gone.password)
    assert suspend(runtime, in_grace.identifier).action == "suspend"
    expired = suspend(runtime, gone.identifier)
    assert expired.action == "expire"
    assert compte(read(runtime, gone)) == "{COMPTE}I:SupannExpire:20261001:"
    assert runtime.directory.check_password(in_grace.dn, in_grace.password)
    assert not runtime.directory.check_password(gone.dn, gone.password)


def test_future_end_of_activity_is_only_recorded(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "fay.morel", profile="titulaire")
    result = suspend(runtime, person.identifier, end_of_activity=date(2027, 1, 31))
    assert result.action == "schedule"
    entry = read(runtime, person)
    assert compte(entry).startswith("{COMPTE}A:SupannActif:")
    assert entry.first("supannEmpDateFin") == "20270130230000Z"


def test_extend_titulaire_adds_twelve_months(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 9, 1))
    person = add_person(runtime, "gil.roux", profile="titulaire", end_of_activity=date(2026, 8, 31))
    first = suspend(runtime, person.identifier)
    assert first.grace_end == date(2027, 8, 31)
    extended = extend(runtime, person.identifier, reason="request 4521")
    assert extended.grace_end == date(2028, 8, 31)
    assert extended.extensions == 1
    assert compte(read(runtime, person)) == "{COMPTE}A:SupannSursis:20260901:20280831"
    assert read(runtime, person).first("pwdEndTime") == "20280831220000Z"
    assert extend(runtime, person.identifier).extensions == 2


def test_extend_refusals_say_why(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 7, 1))
    vacataire = add_person(
        runtime, "hal.petit", profile="vacataire", end_of_activity=date(2026, 6, 30)
    )
    suspend(runtime, vacataire.identifier)
    with pytest.raises(RefusedError, match="profile vacataire is not extendable"):
        extend(runtime, vacataire.identifier)
    active = add_person(runtime, "ida.faure", profile="titulaire")
    with pytest.raises(RefusedError, match="not in its grace period"):
        extend(runtime, active.identifier)


def test_extend_expired_needs_force(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 9, 1))
    person = add_person(
        runtime, "jo.blanc", profile="contractuel", end_of_activity=date(2025, 6, 30)
    )
    assert suspend(runtime, person.identifier).action == "expire"
    with pytest.raises(RefusedError, match="account expired on 2026-07-01"):
        extend(runtime, person.identifier)
    forced = extend(runtime, person.identifier, force=True, reason="rehired")
    assert forced.substate == "SupannSursis"
    assert forced.grace_end == date(2027, 6, 30)
    assert runtime.audit.read(account=person.identifier)[-1].details["forced"] is True


def test_purge_archives_then_deletes_and_restore_brings_back(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 9, 1))
    person = add_person(
        runtime,
        "kim.leroy",
        profile="autre_personnel",
        end_of_activity=date(2026, 3, 31),
        extra={"supannEmpId": ["P4711"]},
    )
    assert suspend(runtime, person.identifier).action == "expire"  # grace ended 2026-06-30
    with pytest.raises(RefusedError, match="not expired"):
        purge(runtime, add_person(runtime, "lea.noel").identifier)
    result = purge(runtime, person.identifier)
    assert result.action == "purge"
    assert runtime.directory.read(person.dn, ["uid"]) is None
    archives = list((runtime.data_dir / "archive").glob("kim.leroy@*.ldif"))
    assert len(archives) == 1
    assert stat.S_IMODE(archives[0].stat().st_mode) == 0o600
    assert "dn: uid=kim.leroy," in archives[0].read_text()
    assert runtime.store.find_purge(person.identifier) is not None
    recorded = runtime.store.find_purge("P4711")  # a person who comes back is recognised
    assert recorded is not None and recorded.account == person.identifier
    with pytest.raises(NotFoundError):
        purge(runtime, person.identifier)
    restored = restore(runtime, person.identifier)
    assert restored.substate == "SupannExpire"
    entry = read(runtime, person)
    assert entry.get("userPassword") == []
    assert compte(entry) == "{COMPTE}I:SupannExpire:20260901:"
    assert not runtime.directory.check_password(person.dn, person.password)


def test_purge_too_early_is_refused(on: Callable[[date], Runtime]) -> None:
    runtime = on(date(2026, 7, 10))
    person = add_person(
        runtime, "max.garnier", profile="autre_personnel", end_of_activity=date(2026, 3, 31)
    )
    suspend(runtime, person.identifier)
    with pytest.raises(RefusedError, match="can be purged from 2026-07-31"):
        purge(runtime, person.identifier)


def test_unknown_account_and_unknown_profile(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    with pytest.raises(NotFoundError):
        suspend(runtime, "nobody@umontpellier.fr")
    person = add_person(runtime, "ned.rey")
    runtime.directory.modify(person.dn, [Change("replace", "supannCodePopulation", ("alien",))])
    before = read(runtime, person)
    with pytest.raises(InvalidInputError, match="unknown profile 'alien'"):
        suspend(runtime, person.identifier)
    assert read(runtime, person) == before


def test_foreign_state_is_left_alone(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime,
        "oda.vidal",
        end_of_activity=date(2026, 6, 30),
        state_values=["{COMPTE}S:SupannVerrouAdministratif:20260101:"],
    )
    with pytest.raises(RefusedError, match="set by another tool"):
        suspend(runtime, person.identifier)
    assert suspend(runtime, person.identifier, force=True).substate in (
        "SupannSursis",
        "SupannExpire",
    )
