"""``umacct search``: the helpdesk's most common lookup, through the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, month_end
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import add_person

from umacct.errors import InvalidInputError
from umacct.services.runtime import Runtime
from umacct.services.search import search_people

pytestmark = pytest.mark.usefixtures("directory_clean")


def _louis(runtime: Runtime) -> str:
    person = add_person(
        runtime,
        "louis.benali",
        profile="titulaire",
        extra={
            "givenName": ["Louis"],
            "sn": ["Bénali"],
            "cn": ["Louis Bénali"],
            "supannAliasLogin": ["lbenali"],
            "supannEmpId": ["P4521"],
        },
    )
    add_person(runtime, "lucie.aubenas", extra={"givenName": ["Lucie"], "sn": ["Aubenas"]})
    return person.identifier


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("Louis Benali", "name"),
        ("benali", "name"),
        ("BENALI Louis", "name"),
        ("Bénali", "name"),
        ("bénali, louis", "name"),
        ("louis.benali@umontpellier.fr", "identifier"),
        ("LOUIS.BENALI", "uid"),
        ("lbenali", "alias"),
        ("louis.benali@example.net", "personal address"),
        ("P4521", "external id"),
    ],
)
def test_search_finds_a_person_every_way_the_helpdesk_asks(
    on: Callable[[date], Runtime], config_path: Path, text: str, matched: str
) -> None:
    identifier = _louis(on(TODAY))
    code, out, err = umacct("search", text, "--json")
    assert code == 0, err
    [found] = json.loads(out)
    assert (found["account"], found["matched"]) == (identifier, matched)
    assert found["aliases"] == ["lbenali"] and found["external_ids"] == ["P4521"]


def test_search_on_a_terminal_prints_a_few_lines_each(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    identifier = _louis(on(TODAY))
    code, out, err = umacct("search", "benali", "--format", "table")
    assert code == 0, err
    first, second = out.splitlines()
    assert first.startswith(identifier) and "Louis Bénali" in first and "titulaire" in first
    assert "alias lbenali" in second and "external id P4521" in second
    code, out, err = umacct("search", "benali")  # piped: one tab-separated row
    assert out.splitlines()[1].split("\t")[0] == identifier
    code, out, err = umacct("search", "Louis", "Benali", "--json")  # no quotes needed
    assert [found["account"] for found in json.loads(out)] == [identifier]


def test_a_word_inside_another_name_is_not_a_match(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    _louis(on(TODAY))
    code, out, err = umacct("search", "ben", "--json")  # a prefix of Bénali, inside Aubenas
    assert code == 0, err
    assert [found["account"] for found in json.loads(out)] == ["louis.benali@umontpellier.fr"]
    code, out, err = umacct("search", "nobody here", "--json")
    assert (code, json.loads(out)) == (0, [])
    assert "nobody found" in err


def test_search_finds_a_purged_account(on: Callable[[date], Runtime], config_path: Path) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "gone.person", profile="autre_personnel", end_of_activity=month_end(-10)
    )
    assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    assert umacct("purge", person.identifier, "--yes", "--reason", "gone")[0] == 0
    code, out, err = umacct("search", person.identifier, "--json")
    assert code == 0, err
    [found] = json.loads(out)
    assert (found["account"], found["stage"]) == (person.identifier, "purged")


@pytest.mark.parametrize("text", ["", "a", " ", "x\x1b[2J", "é" * 300])
def test_a_search_no_one_could_match_is_refused(config_path: Path, text: str) -> None:
    code, out, err = umacct("search", text)
    assert code == 65 and out == ""
    assert len(err.splitlines()) == 1


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=2, max_size=30))
def test_any_text_is_searched_safely_and_changes_nothing(
    on: Callable[[date], Runtime], config_path: Path, text: str
) -> None:
    runtime = on(TODAY)
    dn = f"uid=safe.search,{runtime.config.directory.people_dn}"
    if runtime.directory.read(dn, ["uid"]) is None:
        add_person(runtime, "safe.search")
    before = runtime.directory.read(dn, ["*"])
    try:
        result = search_people(runtime, text)
    except InvalidInputError as error:
        assert "\n" not in error.message
    else:
        assert all(match.matched for match in result.matches)
    assert runtime.directory.read(dn, ["*"]) == before
