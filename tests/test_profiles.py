"""People with several profiles: the account stays while any activity goes on.

A doctoral student who teaches as a vacataire, a contractuel who is also enrolled: each
profile has its own end; the account's grace is the latest one over the profiles; the
affiliations an ended activity alone gave go at its grace end; an intake row for someone
who already has an account adds the profile to it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY, month_end, months
from people import Person, add_person, compte, generalized, outbox_mails, read, rewrite_config

from umacct.config import load_config
from umacct.directory import Change
from umacct.policy import grace_end_for
from umacct.services.accounts import activities_of, composite_fields, find_account, rules_for
from umacct.services.create import create_person
from umacct.services.create_input import new_person
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


def student_who_teaches(runtime: Runtime, uid: str, study_end: date, contract_end: date) -> Person:
    person = add_person(runtime, uid, profile="etudiant", end_of_activity=study_end)
    runtime.directory.modify(
        person.dn,
        [
            Change("replace", "supannCodePopulation", ("etudiant", "vacataire")),
            Change("replace", "supannEmpDateFin", (generalized(contract_end),)),
            Change("replace", "eduPersonAffiliation", ("member", "student", "employee", "teacher")),
        ],
    )
    return person


def grace(runtime: Runtime, key: str, end: date) -> date:
    return grace_end_for(rules_for(key, runtime.config.profiles[key]), end)


def test_a_doctoral_student_whose_teaching_contract_ended_stays_active(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    contract_end = month_end(-7)  # vacataire, 6 months: its grace ended last month
    person = student_who_teaches(runtime, "doc.vac", month_end(8), contract_end)
    code, out, err = umacct("--json", "sweep")
    assert code == 0, err
    [result] = json.loads(out)
    assert (result["account"], result["action"]) == (person.identifier, "profile-ended")
    entry = read(runtime, person)
    assert compte(entry).startswith("{COMPTE}A:SupannActif")
    assert sorted(entry.get("eduPersonAffiliation")) == ["member", "student"]
    assert runtime.directory.check_password(person.dn, person.password)
    [told] = [m for m in outbox_mails(runtime) if m["To"] == person.identifier]
    assert "activités" in str(told["Subject"])
    assert json.loads(umacct("--json", "sweep")[1]) == []  # once


def test_while_the_ended_activity_is_in_its_grace_nothing_changes_yet(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    student_who_teaches(runtime, "doc.early", month_end(8), month_end(-1))
    code, out, _ = umacct("--json", "sweep")
    assert code == 0 and json.loads(out) == []


def test_when_both_activities_end_the_grace_is_the_later_one(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    study_end, contract_end = month_end(-1), month_end(-2)
    person = student_who_teaches(runtime, "doc.both", study_end, contract_end)
    expected = max(grace(runtime, "etudiant", study_end), grace(runtime, "vacataire", contract_end))
    code, out, err = umacct("--json", "sweep")
    assert code == 0, err
    [result] = json.loads(out)
    assert result["action"] == "suspend"
    assert result["grace_end"] == expected.isoformat()
    assert result["profile"] == "etudiant"
    assert compte(read(runtime, person)).endswith(f":{expected:%Y%m%d}")


def test_explain_names_every_profile_and_the_one_that_decides(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    study_end, contract_end = month_end(8), month_end(-1)
    person = student_who_teaches(runtime, "doc.explain", study_end, contract_end)
    code, out, err = umacct("--json", "explain", person.identifier)
    assert code == 0, err
    document = json.loads(out)
    assert f"etudiant until {study_end.isoformat()} keeps the account open" in document["rule"]
    assert f"the vacataire activity ended on {contract_end.isoformat()}" in document["rule"]
    by_profile = {p["profile"]: p for p in document["profiles"]}
    assert by_profile["etudiant"]["decides"] is True
    assert by_profile["vacataire"]["decides"] is False
    assert (
        by_profile["vacataire"]["grace_end"]
        == grace(runtime, "vacataire", contract_end).isoformat()
    )
    code, out, _ = umacct("--json", "show", person.identifier)
    assert sorted(json.loads(out)["profiles"]) == ["etudiant", "vacataire"]
    code, out, _ = umacct("--json", "list", "--profile", "vacataire")
    assert [
        row["account"] if "account" in row else row["identifier"] for row in json.loads(out)
    ] == [person.identifier]


def test_composite_supann_emp_profil_values_give_each_profile_its_end(
    config_path: object,
) -> None:
    import tomllib
    from pathlib import Path

    import tomli_w

    path = Path(str(config_path))
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    document["profiles"]["titulaire"].update(
        end_date_attribute="supannEmpProfil", end_date_match="population={SUPANN}TIT"
    )
    document["profiles"]["vacataire"].update(
        end_date_attribute="supannEmpProfil", end_date_match="population={SUPANN}VAC"
    )
    path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    config = load_config(path)
    from umacct.directory import Entry

    entry = Entry(
        "uid=x,ou=people,dc=example,dc=org",
        {
            "supanncodepopulation": ["titulaire", "vacataire"],
            "supannempprofil": [
                "[etab={UAI}0341087X][affil=staff][population={SUPANN}TIT][datefin=20300831]",
                "[etab={UAI}0341087X][affil=faculty][population={SUPANN}VAC][datefin=20270630]",
            ],
        },
    )
    ends = {a.profile_key: a.end_of_activity for a in activities_of(entry, config)}
    assert ends == {"titulaire": date(2030, 8, 31), "vacataire": date(2027, 6, 30)}
    assert composite_fields("[a=1][datefin=20270630]") == {"a": "1", "datefin": "20270630"}


def test_an_intake_row_for_the_same_person_adds_the_profile(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "jade.roux", profile="etudiant", end_of_activity=month_end(8),
        extra={"supannEtuId": ["E55"]},
    )  # fmt: skip
    row = new_person(
        runtime.config, given_name="Jade", surname="Roux", profile="vacataire",
        personal_email="jade.roux@example.net", end_of_activity=months(5),
    )  # fmt: skip
    result = create_person(runtime, row)
    assert (result.action, result.account) == ("profile-added", person.identifier)
    entry = read(runtime, person)
    assert sorted(entry.get("supannCodePopulation")) == ["etudiant", "vacataire"]
    assert entry.first("supannEmpDateFin") == generalized(months(5))
    assert "teacher" in entry.get("eduPersonAffiliation")
    assert compte(entry).startswith("{COMPTE}A:SupannActif")
    account = find_account(runtime.directory, runtime.config, person.identifier)
    assert account.profile_key == "etudiant"  # studies end later: they decide
    told = [m for m in outbox_mails(runtime) if m["To"] == person.identifier]
    assert told and "nouveau profil" in str(told[-1]["Subject"])
    again = create_person(runtime, row)
    assert again.action == "exists"


def test_the_several_profile_rules_do_not_mix_up_people(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    add_person(runtime, "jade.roux", profile="etudiant", end_of_activity=month_end(8))
    row = new_person(
        runtime.config, given_name="Jade", surname="Rousse", profile="vacataire",
        personal_email="jade.roux@example.net",
    )  # fmt: skip
    result = create_person(runtime, row)
    assert result.action == "created" and result.account != "jade.roux@umontpellier.fr"


def test_profile_rules_are_unchanged_for_one_profile(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "one.only", profile="vacataire", end_of_activity=month_end(-1))
    account = find_account(runtime.directory, runtime.config, person.identifier)
    assert [dataclasses.astuple(a) for a in account.activities] == [("vacataire", month_end(-1))]


def test_an_account_activated_before_its_arrival_is_anticipated_then_active(
    on: Callable[[date], Runtime], mail_relay: object
) -> None:
    from days import days
    from people import NEW_PASSWORD, token_in_mail

    from umacct.services.credentials import activate, send_activation

    runtime = on(TODAY)
    arrival = days(10)
    row = new_person(
        runtime.config, given_name="Eli", surname="Tot", profile="etudiant",
        personal_email="eli.tot@example.net", arrival=arrival,
    )  # fmt: skip
    created = create_person(runtime, row)
    assert created.action == "precreated"
    send_activation(runtime, created.account)
    token = token_in_mail(mail_relay, "eli.tot@example.net", "activation")  # type: ignore[arg-type]
    activate(runtime, token, NEW_PASSWORD)
    account = find_account(runtime.directory, runtime.config, created.account)
    assert account.account_state is not None
    assert account.account_state.format() == (
        f"{{COMPTE}}A:SupannAnticipe:{TODAY:%Y%m%d}:{days(9):%Y%m%d}"
    )
    assert runtime.directory.check_password(account.dn, NEW_PASSWORD)
    code, out, err = umacct("--json", "sweep", day=arrival)
    assert code == 0, err
    assert [r["action"] for r in json.loads(out)] == ["arrive"]
    account = find_account(runtime.directory, runtime.config, created.account)
    assert account.account_state is not None
    assert account.account_state.format() == f"{{COMPTE}}A:SupannActif:{arrival:%Y%m%d}:"


def test_a_site_may_give_a_new_address_when_the_profile_changes_domain(
    on: Callable[[date], Runtime], config_path: object
) -> None:
    from pathlib import Path

    from days import days

    from umacct.services.lifecycle import suspend

    rewrite_config(Path(str(config_path)), policy={"new_address_on_profile_change": True})
    runtime = on(TODAY)
    student = add_person(
        runtime, "lea.futur", profile="etudiant", end_of_activity=days(-1),
        extra={"supannEtuId": ["E77"]},
    )  # fmt: skip
    row = new_person(
        runtime.config, given_name="Lea", surname="Futur", profile="titulaire",
        personal_email="lea.futur@example.net", external_id="E77",
    )  # fmt: skip
    result = create_person(runtime, row)
    assert result.action == "created"
    # uids are one namespace: the new address gets the next free identifier in the new domain
    assert result.account.endswith("@umontpellier.fr") and result.account != student.identifier
    assert "linked to lea.futur@etu.umontpellier.fr" in result.message
    new = find_account(runtime.directory, runtime.config, result.account)
    assert new.values("supannRefId") == [f"{{UMACCT}}previous:{student.identifier}"]
    assert new.values("supannAutreMail") == [student.identifier]
    assert read(runtime, student).get("supannRefId") == [f"{{UMACCT}}next:{result.account}"]
    # The old account goes its own way; when it expires its address stops being an alias.
    suspend(runtime, student.identifier, reason="studies ended", notice=False)
    later = on(days(200))
    from umacct.services.sweep import SweepSummary, sweep

    list(sweep(later, SweepSummary(later.today(), dry_run=False)))
    new = find_account(later.directory, later.config, result.account)
    assert new.values("supannAutreMail") == []


def test_suspend_due_leaves_a_person_whose_other_activity_goes_on(
    on: Callable[[date], Runtime],
) -> None:
    """``suspend --due`` decides as the sweep: it used to suspend them, then crash (exit 1)."""
    runtime = on(TODAY)
    teaching = student_who_teaches(runtime, "doc.due", month_end(8), month_end(-2))
    gone = add_person(runtime, "vac.due", profile="vacataire", end_of_activity=month_end(-1))
    before = read(runtime, teaching)
    for dry in (["--dry-run"], []):
        code, out, err = umacct("suspend", "--due", *dry, "--json")
        assert code == 0, err
        assert [row["account"] for row in json.loads(out)] == [gone.identifier], dry
    assert read(runtime, teaching) == before
    assert compte(read(runtime, gone)).startswith("{COMPTE}A:SupannSursis")
