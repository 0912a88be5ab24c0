"""Departure, end to end against slapd: suspend, extend, expire, purge, restore."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from days import PARIS, TODAY, days, month_end, ymd
from people import STATE_REGEX, add_person, compte, day_after, generalized, read

from umacct.directory import Change
from umacct.errors import InvalidInputError, NotFoundError, RefusedError
from umacct.services.lifecycle import extend, suspend
from umacct.services.purge import purge, restore
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")

# Most departures here end on the last day of last month and are handled the next morning.
ENDED = month_end(-1)
MORNING_AFTER = day_after(ENDED)


def logins_stop(grace_end: date) -> str:
    """``pwdEndTime`` for a grace ending on ``grace_end``: the next local midnight, in UTC."""
    midnight = datetime.combine(day_after(grace_end), time(), tzinfo=PARIS)
    return midnight.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def test_suspend_writes_grace_state_to_the_day(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    person = add_person(runtime, "ana.lopez", profile="vacataire")
    result = suspend(runtime, person.identifier, end_of_activity=ENDED, reason="end of contract")
    assert result.changed
    grace_end = month_end(5)  # vacataire: the 6 months after the end of activity
    assert result.grace_end == grace_end
    entry = read(runtime, person)
    assert compte(entry) == f"{{COMPTE}}A:SupannSursis:{ymd(MORNING_AFTER)}:{ymd(grace_end)}"
    assert f"{{MAIL}}A:SupannSursis:{ymd(MORNING_AFTER)}:{ymd(grace_end)}" in entry.get(
        "supannRessourceEtatDate"
    )
    assert "{COMPTE}A:SupannSursis" in entry.get("supannRessourceEtat")
    for value in entry.get("supannRessourceEtatDate"):
        assert re.match(STATE_REGEX, value)
    # Logins stop at midnight in Paris after the grace end, written in UTC.
    assert entry.first("pwdEndTime") == logins_stop(grace_end)
    assert entry.get("eduPersonAffiliation") == ["affiliate"]
    assert entry.first("supannEmpDateFin") == generalized(ENDED)
    records = runtime.audit.read(account=person.identifier)
    assert records[-1].command == "suspend"
    assert records[-1].details["reason"] == "end of contract"
    assert "supannRessourceEtatDate" in records[-1].changes


def test_suspend_twice_changes_nothing(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    person = add_person(runtime, "bo.chen", profile="vacataire", end_of_activity=ENDED)
    suspend(runtime, person.identifier)
    before = read(runtime, person)
    again = suspend(runtime, person.identifier)
    assert not again.changed
    assert read(runtime, person) == before
    assert len(runtime.audit.read(account=person.identifier)) == 1


def test_suspend_cancels_pending_links(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    person = add_person(runtime, "cy.dupont", awaiting_activation=True, end_of_activity=ENDED)
    issued = runtime.tokens.issue(person.identifier, TokenPurpose.ACTIVATION, timedelta(hours=24))
    suspend(runtime, person.identifier)
    with pytest.raises(InvalidInputError):
        runtime.tokens.check(issued.token, TokenPurpose.ACTIVATION)


def test_bind_works_during_grace_and_fails_after_expiry(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    # vacataire, 6 months: one in grace until month_end(5), one whose grace ended
    # month_end(-2) and who expired on the first of last month.
    in_grace = add_person(runtime, "dee.martin", profile="vacataire", end_of_activity=month_end(-1))
    gone = add_person(runtime, "eli.bernard", profile="vacataire", end_of_activity=month_end(-8))
    assert runtime.directory.check_password(gone.dn, gone.password)
    assert suspend(runtime, in_grace.identifier).action == "suspend"
    # The grace is long over: with the notice the person gets 30 days; an administrator's
    # cut without notice expires the account at once.
    noticed = add_person(runtime, "eli.notice", profile="vacataire", end_of_activity=month_end(-8))
    assert suspend(runtime, noticed.identifier).grace_end == TODAY + timedelta(days=30)
    assert runtime.directory.check_password(noticed.dn, noticed.password)
    expired = suspend(runtime, gone.identifier, notice=False, reason="cut")
    assert expired.action == "expire"
    assert (
        compte(read(runtime, gone)) == f"{{COMPTE}}I:SupannExpire:{ymd(day_after(month_end(-2)))}:"
    )
    assert runtime.directory.check_password(in_grace.dn, in_grace.password)
    assert not runtime.directory.check_password(gone.dn, gone.password)


def test_future_end_of_activity_is_only_recorded(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "fay.morel", profile="titulaire")
    ends = month_end(2)
    result = suspend(runtime, person.identifier, end_of_activity=ends)
    assert result.action == "schedule"
    entry = read(runtime, person)
    assert compte(entry).startswith("{COMPTE}A:SupannActif:")
    assert entry.first("supannEmpDateFin") == generalized(ends)


def test_extend_titulaire_adds_twelve_months(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    person = add_person(runtime, "gil.roux", profile="titulaire", end_of_activity=ENDED)
    first = suspend(runtime, person.identifier)
    assert first.grace_end == month_end(11)  # titulaire: 12 months
    extended = extend(runtime, person.identifier, reason="request 4521")
    assert extended.grace_end == month_end(23)  # and 12 more
    assert extended.extensions == 1
    assert (
        compte(read(runtime, person))
        == f"{{COMPTE}}A:SupannSursis:{ymd(MORNING_AFTER)}:{ymd(month_end(23))}"
    )
    assert read(runtime, person).first("pwdEndTime") == logins_stop(month_end(23))
    with pytest.raises(RefusedError, match="already extended to"):
        extend(runtime, person.identifier)  # renews, does not stack
    window = on(day_after(month_end(11)))  # the first extension's time is used up
    assert extend(window, person.identifier).extensions == 2


def test_extend_refusals_say_why(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    vacataire = add_person(runtime, "hal.petit", profile="vacataire", end_of_activity=ENDED)
    suspend(runtime, vacataire.identifier)
    with pytest.raises(RefusedError, match="profile vacataire is not extendable"):
        extend(runtime, vacataire.identifier)
    active = add_person(runtime, "ida.faure", profile="titulaire")
    with pytest.raises(RefusedError, match="not in its grace period"):
        extend(runtime, active.identifier)


def test_extend_expired_needs_force(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    # contractuel, 12 months: the grace ended month_end(-3), two months before the end of
    # last month; one extension of 12 months reaches month_end(9), after today.
    person = add_person(runtime, "jo.blanc", profile="contractuel", end_of_activity=month_end(-15))
    assert suspend(runtime, person.identifier, notice=False, reason="cut").action == "expire"
    expired_on = day_after(month_end(-3))
    with pytest.raises(RefusedError, match=f"account expired on {expired_on.isoformat()}"):
        extend(runtime, person.identifier)
    forced = extend(runtime, person.identifier, force=True, reason="rehired")
    assert forced.substate == "SupannSursis"
    assert forced.grace_end == month_end(9)
    assert runtime.audit.read(account=person.identifier)[-1].details["forced"] is True


def test_purge_archives_then_deletes_and_restore_brings_back(on: Callable[[date], Runtime]) -> None:
    runtime = on(MORNING_AFTER)
    person = add_person(
        runtime,
        "kim.leroy",
        profile="autre_personnel",
        end_of_activity=month_end(-6),
        extra={"supannEmpId": ["P4711"]},
    )
    # autre_personnel, 3 months: the grace ended month_end(-3), purgeable 30 days after.
    assert suspend(runtime, person.identifier, notice=False, reason="cut").action == "expire"
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
    assert compte(entry) == f"{{COMPTE}}I:SupannExpire:{ymd(MORNING_AFTER)}:"
    assert not runtime.directory.check_password(person.dn, person.password)


def test_purge_too_early_is_refused(on: Callable[[date], Runtime]) -> None:
    # autre_personnel, 3 months: expired on the first of this month, purgeable 30 days
    # later; nine days after the expiry is too early.
    expired_on = MORNING_AFTER
    runtime = on(expired_on + timedelta(days=9))
    person = add_person(
        runtime, "max.garnier", profile="autre_personnel", end_of_activity=month_end(-4)
    )
    suspend(runtime, person.identifier, notice=False, reason="cut")
    purgeable = expired_on + timedelta(days=30)
    with pytest.raises(RefusedError, match=f"can be purged from {purgeable.isoformat()}"):
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
        end_of_activity=month_end(-5),
        state_values=[f"{{COMPTE}}S:SupannVerrouAdministratif:{ymd(days(-330))}:"],
    )
    with pytest.raises(RefusedError, match="set by another tool"):
        suspend(runtime, person.identifier)
    assert suspend(runtime, person.identifier, force=True).substate in (
        "SupannSursis",
        "SupannExpire",
    )
