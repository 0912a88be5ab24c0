"""An intake row never hands an account over, and two intakes never duplicate people.

Security requirements 23 (a returning person is recognised only by the same names) and 24
(runs that create accounts at once create each person once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from command_line import umacct
from days import TODAY, month_end, months
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import add_person, outbox_mails, read
from test_faults_support import Site, finish, site

from umacct.errors import InvalidInputError
from umacct.intake import IntakeRow
from umacct.services.create import create_person
from umacct.services.create_input import new_person
from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime

__all__ = ["site"]
PEOPLE = 450  # three batches: the second run looks its batches up while the first adds


def row(runtime: Runtime, given: str, surname: str, **extra: Any) -> IntakeRow:
    fields: dict[str, Any] = {"profile": "vacataire", "personal_email": "new.address@example.org"}
    fields.update(extra)
    return new_person(runtime.config, given_name=given, surname=surname, **fields)


def everything(runtime: Runtime) -> tuple[object, ...]:
    people = sorted(
        (e.dn, sorted((k, tuple(v)) for k, v in e.attributes.items()))
        for e in runtime.directory.search(
            runtime.config.directory.people_dn, "(objectClass=*)", ["*"]
        )
    )
    return people, runtime.store.dump(), [m["To"] for m in outbox_mails(runtime)]


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize("stage", ["grace", "expired", "active"])
def test_sec23_an_external_id_with_other_names_hands_nothing_over(
    on: Callable[[date], Runtime], stage: str
) -> None:
    runtime = on(TODAY)
    victim = add_person(
        runtime, "maelys.oeillet", profile="vacataire", end_of_activity=month_end(-1),
        extra={"supannEmpId": ["P7"]},
    )  # fmt: skip
    if stage != "active":
        suspend(runtime, victim.identifier, reason="left", notice=stage == "grace")
    before = everything(runtime)
    with pytest.raises(InvalidInputError, match=rf"belongs to {victim.identifier}"):
        create_person(runtime, row(runtime, "Mallory", "Attacker", external_id="P7"))
    assert everything(runtime) == before
    assert read(runtime, victim).get("supannMailPerso") == ["maelys.oeillet@example.net"]


@pytest.mark.usefixtures("directory_clean")
def test_sec23_a_purged_account_comes_back_only_to_its_person(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    gone = add_person(
        runtime, "ines.roux", profile="autre_personnel", end_of_activity=month_end(-6),
        extra={"supannEmpId": ["P99"]},
    )  # fmt: skip
    suspend(runtime, gone.identifier, reason="left", notice=False)
    purge(runtime, gone.identifier)
    before = everything(runtime)
    with pytest.raises(InvalidInputError, match="belongs to the purged account"):
        create_person(runtime, row(runtime, "Eve", "Intruder", external_id="P99"))
    assert everything(runtime) == before
    back = create_person(
        runtime, row(runtime, "INÈS", "roux", external_id="p99", profile="autre_personnel")
    )
    assert (back.action, back.account) == ("restored", gone.identifier)


@pytest.mark.usefixtures("directory_clean")
def test_sec23_the_same_person_is_reinstated_and_the_previous_address_told(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "maelys.oeillet", profile="vacataire", end_of_activity=month_end(-1),
        extra={"supannEmpId": ["P7"]},
    )  # fmt: skip
    suspend(runtime, person.identifier, reason="left")
    result = create_person(
        runtime,
        row(runtime, "Maëlys", "Œillet", external_id="P7", end_of_activity=months(6)),
    )
    assert (result.action, result.account) == ("reinstated", person.identifier)
    told = [m for m in outbox_mails(runtime) if m["To"] == "maelys.oeillet@example.net"]
    assert told, "the previous address was not told"
    assert read(runtime, person).get("supannMailPerso") == ["new.address@example.org"]


@pytest.mark.usefixtures("directory_clean")
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["Mallory", "Maely", "Maëlyss", "Ines", "M"]),
    st.sampled_from(["Attacker", "Oeillett", "Oeil", "Roux"]),
)
def test_sec23_no_other_names_get_the_account_whatever_they_are(
    on: Callable[[date], Runtime], given_name: str, surname: str
) -> None:
    runtime = on(TODAY)
    owner = "maelys.oeillet"
    found = runtime.directory.read(f"uid={owner},{runtime.config.directory.people_dn}", ["uid"])
    if found is None:
        add_person(
            runtime, owner, profile="vacataire", end_of_activity=month_end(-1),
            extra={"supannEmpId": ["P7"]},
        )  # fmt: skip
    with pytest.raises(InvalidInputError, match="belongs to"):
        create_person(runtime, row(runtime, given_name, surname, external_id="P7"))


@pytest.mark.usefixtures("directory_clean")
def test_sec23_a_csv_row_with_a_strangers_id_is_refused_and_the_others_go_on(
    on: Callable[[date], Runtime], tmp_path: Path
) -> None:
    runtime = on(TODAY)
    add_person(
        runtime, "maelys.oeillet", end_of_activity=month_end(-1), extra={"supannEmpId": ["P7"]}
    )
    intake = tmp_path / "rentree.csv"
    intake.write_text(
        "given_name,surname,profile,personal_email,external_id\n"
        "Mallory,Attacker,vacataire,m@example.org,P7\n"
        "Jean,Neuf,vacataire,jean@example.org,P8\n",
        encoding="utf-8",
    )
    code, out, err = umacct("--json", "create", "--csv", str(intake))
    assert code == 65, err
    assert "belongs to maelys.oeillet@" in out + err
    assert (
        runtime.directory.read(f"uid=jean.neuf,{runtime.config.directory.people_dn}", ["uid"])
        is not None
    )


def write_people(path: Path, count: int) -> None:
    names = [f"{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(count)]
    lines = ["given_name,surname,profile,personal_email,external_id"]
    lines += [f"Lou,Dup{n},etudiant,lou.{n}@example.net,D{n}" for n in names]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_sec24_two_intakes_of_one_file_at_once_create_each_person_once(
    site: Site, tmp_path: Path
) -> None:
    intake = tmp_path / "rentree.csv"
    write_people(intake, PEOPLE)
    first = site.spawn("create", "--csv", str(intake))
    second = site.spawn("create", "--csv", str(intake))
    results = [finish(first), finish(second)]
    for code, _, stderr in results:
        assert code in (0, 75), stderr
    people = site.people()
    assert len(people) == PEOPLE, f"{len(people)} accounts for {PEOPLE} people"
    ids = Counter(
        value
        for entry in people.values()
        for name, values in entry.items()
        if name.lower() == "supannetuid"
        for value in values
    )
    assert set(ids.values()) == {1}
    # A run that found the lock taken says who holds it; the rerun completes nothing twice.
    for code, _, stderr in results:
        if code == 75:
            assert "create" in stderr and "pid" in stderr
    rerun = site.run("create", "--csv", str(intake))
    assert rerun.returncode == 0, rerun.stderr
    assert len(site.people()) == PEOPLE


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize(
    "address",
    ["someone@umontpellier.fr", "Someone@ETU.umontpellier.fr", "x@sub.umontpellier.fr"],
)
def test_sec35_the_intake_refuses_a_personal_address_inside_the_institution(
    on: Callable[[date], Runtime], address: str
) -> None:
    runtime = on(TODAY)
    before = everything(runtime)
    with pytest.raises(InvalidInputError, match="inside the institution's domain"):
        create_person(runtime, row(runtime, "Jean", "Interne", personal_email=address))
    assert everything(runtime) == before
