"""Staff-only rights, end to end against slapd: antispam level and own directory data."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import tomli_w
from command_line import umacct
from days import TODAY
from hypothesis import given
from hypothesis import strategies as st
from people import add_person, read

from umacct.errors import ConfigError, InvalidInputError, RefusedError
from umacct.services.runtime import Runtime
from umacct.services.staff import (
    SYNTAX_INTEGER,
    SYNTAX_POSTAL_ADDRESS,
    SYNTAX_TELEPHONE_NUMBER,
    antispam,
    check_value,
    set_directory_data,
    show_directory_data,
)

pytestmark = pytest.mark.usefixtures("directory_clean")

LEVELS = {"off": "antispam:off", "normal": "antispam:normal", "high": "antispam:high"}


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI on the test's clock (today); return the exit code, stdout and stderr."""
    return umacct(*args)


@pytest.fixture
def with_antispam(config_path: Path) -> Path:
    """The session configuration plus an [antispam] table (``description`` as the attribute)."""
    document = tomllib.loads(config_path.read_text("utf-8"))
    document["antispam"] = {"attribute": "description", "levels": LEVELS}
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    os.chmod(config_path, 0o600)
    return config_path


def test_antispam_without_a_table_exits_78(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "ana.lopez", profile="titulaire")
    with pytest.raises(ConfigError, match=r"no \[antispam\] table"):
        antispam(runtime, person.identifier)
    code, _, err = cli("--json", "antispam", person.identifier, "high")
    assert code == 78
    assert "[antispam]" in json.loads(err)["message"]


@pytest.mark.usefixtures("with_antispam")
def test_antispam_show_and_set_for_staff(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "bo.chen", profile="vacataire")
    assert antispam(runtime, person.identifier).level is None
    result = antispam(runtime, person.identifier, "high")
    assert (result.level, result.value, result.changed) == ("high", "antispam:high", True)
    assert read(runtime, person).get("description") == ["antispam:high"]
    assert runtime.audit.read(account=person.identifier)[-1].command == "antispam"
    assert not antispam(runtime, person.identifier, "high").changed

    code, out, _ = cli("--json", "antispam", "bo.chen")
    assert code == 0
    assert json.loads(out)["level"] == "high"
    code, out, _ = cli("--json", "antispam", "bo.chen", "off", "--dry-run")
    assert code == 0 and json.loads(out)["level"] == "off"
    assert read(runtime, person).get("description") == ["antispam:high"]
    code, out, _ = cli("--json", "antispam", "bo.chen", "normal")
    assert code == 0 and json.loads(out)["level"] == "normal"
    code, out, _ = cli("antispam", "bo.chen")
    assert code == 0 and "antispam level normal" in out


@pytest.mark.usefixtures("with_antispam")
def test_antispam_refusals_change_nothing(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    student = add_person(runtime, "cy.dupont", profile="etudiant")
    staff = add_person(runtime, "dee.martin", profile="titulaire")
    before = [read(runtime, student), read(runtime, staff)]
    with pytest.raises(RefusedError, match="profile etudiant"):
        antispam(runtime, student.identifier, "high")
    code, _, err = cli("antispam", student.identifier, "high")
    assert code == 77 and "etudiant" in err
    code, _, err = cli("antispam", staff.identifier, "maximum")
    assert code == 65 and "off, normal, high" in err
    assert [read(runtime, student), read(runtime, staff)] == before
    assert runtime.audit.read() == []


def test_directory_show_and_set(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "eli.bernard", profile="titulaire")
    data = set_directory_data(
        runtime,
        person.uid,
        ["telephoneNumber=+33 4 67 14 30 30", "roomNumber=B204", "title=Ingénieure d'études"],
    )
    assert data.changed == ["roomNumber", "telephoneNumber", "title"]
    entry = read(runtime, person)
    assert entry.get("telephoneNumber") == ["+33 4 67 14 30 30"]
    assert entry.get("title") == ["Ingénieure d'études"]
    record = runtime.audit.read(account=person.identifier)[-1]
    assert record.command == "directory set"
    assert show_directory_data(runtime, person.identifier).attributes["roomNumber"] == ["B204"]

    code, out, _ = cli(
        "--json", "directory", "set", person.identifier, "postalAddress=Bât. 4 $ 34090 Montpellier",
        "roomNumber=",
    )  # fmt: skip
    assert code == 0
    document = json.loads(out)
    assert document["changed"] == ["postalAddress", "roomNumber"]
    assert document["attributes"]["roomNumber"] == []
    code, out, _ = cli("--json", "directory", "show", person.identifier)
    assert code == 0
    assert json.loads(out)["attributes"]["postalAddress"] == ["Bât. 4 $ 34090 Montpellier"]
    code, out, _ = cli("directory", "show", person.identifier, "--format", "csv")
    assert code == 0 and out.startswith("telephoneNumber,")


def test_directory_refusals_change_nothing(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    staff = add_person(runtime, "fay.morel", profile="titulaire")
    guest = add_person(runtime, "gil.roux", profile="heberge_en")
    before = [read(runtime, staff), read(runtime, guest)]
    cases = [
        (["mail=someone@example.org"], 77, "not editable"),
        (["roomNumber=B1", "userPassword=secret"], 77, "not editable"),
        (["roomNumber=B1", "telephoneNumber=call me"], 65, "not a telephone number"),
        (["title=Chef\nde projet"], 65, "control characters"),
        (["postalAddress=Bât. 4 $ $ Montpellier"], 65, "none may be empty"),
        (["roomNumber"], 65, "expected ATTR=VALUE"),
    ]
    for pairs, exit_code, words in cases:
        code, _, err = cli("directory", "set", staff.identifier, *pairs)
        assert (code, words in err) == (exit_code, True), (pairs, err)
    with pytest.raises(InvalidInputError):
        set_directory_data(runtime, staff.identifier, ["roomNumber=B1", "telephoneNumber=abc"])
    code, _, err = cli("directory", "set", guest.identifier, "roomNumber=B1")
    assert code == 77 and "heberge_en" in err
    code, _, err = cli("directory", "show", guest.identifier)
    assert code == 77
    assert [read(runtime, staff), read(runtime, guest)] == before
    assert runtime.audit.read() == []


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz@#*!?", min_size=1))
def test_telephone_numbers_refuse_letters(text: str) -> None:
    with pytest.raises(InvalidInputError, match="telephoneNumber"):
        check_value("telephoneNumber", SYNTAX_TELEPHONE_NUMBER, f"04 67 {text}")


@given(st.integers())
def test_integers_pass_and_words_do_not(number: int) -> None:
    check_value("roomCount", SYNTAX_INTEGER, str(number))
    with pytest.raises(InvalidInputError):
        check_value("roomCount", SYNTAX_INTEGER, f"{number}x")


def test_postal_address_lines() -> None:
    check_value("postalAddress", SYNTAX_POSTAL_ADDRESS, "163 rue Auguste Broussonnet $ Montpellier")
    with pytest.raises(InvalidInputError):
        check_value("postalAddress", SYNTAX_POSTAL_ADDRESS, "$ Montpellier")
