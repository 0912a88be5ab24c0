"""QA (issue 17): search finds compound names however they are typed, and purged people."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import add_person

from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime
from umacct.services.search import search_people

pytestmark = pytest.mark.usefixtures("directory_clean")


def _people(runtime: Runtime) -> dict[str, str]:
    oceane = add_person(
        runtime,
        "oceane.martin-dupont",
        extra={"givenName": ["Océane"], "sn": ["Martin-Dupont"], "cn": ["Océane Martin-Dupont"]},
    )
    spaced = add_person(
        runtime,
        "hugo.martin-dupont",
        extra={"givenName": ["Hugo"], "sn": ["Martin Dupont"], "cn": ["Hugo Martin Dupont"]},
    )
    richard = add_person(
        runtime,
        "anne.richard-de-lorme",
        extra={"givenName": ["Anne"], "sn": ["Richard-de Lorme"], "cn": ["Anne Richard-de Lorme"]},
    )
    antoine = add_person(
        runtime,
        "antoine.saint-exupery",
        extra={"givenName": ["Antoine"], "sn": ["Saint-Exupéry"], "cn": ["Antoine Saint-Exupéry"]},
    )
    return {
        "oceane": oceane.identifier,
        "hugo": spaced.identifier,
        "richard": richard.identifier,
        "antoine": antoine.identifier,
    }


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("MARTIN-DUPONT", {"oceane", "hugo"}),
        ("Martin-Dupont", {"oceane", "hugo"}),
        ("martin dupont", {"oceane", "hugo"}),
        ("martin-dupont oceane", {"oceane"}),
        ("Richard-de", {"richard"}),
        ("saint-exupery", {"antoine"}),
        ("Saint Exupéry", {"antoine"}),
    ],
)
def test_compound_names_are_found_with_hyphens_or_spaces(
    on: Callable[[date], Runtime], text: str, wanted: set[str]
) -> None:
    runtime = on(TODAY)
    people = _people(runtime)
    found = {match.account for match in search_people(runtime, text).matches}
    assert found == {people[key] for key in wanted}, text


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("Louis Benali", "name"),
        ("benali", "name"),
        ("louis.benali82@example.fr", "personal address"),
        ("E0000004", "external id"),
        ("louis.benali", "uid"),
    ],
)
def test_a_purged_person_is_found_and_named(
    on: Callable[[date], Runtime], text: str, matched: str
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime,
        "louis.benali",
        profile="etudiant",
        end_of_activity=month_end(-9),
        extra={
            "givenName": ["Louis"],
            "sn": ["Bénali"],
            "cn": ["Louis Bénali"],
            "displayName": ["Louis Bénali"],
            runtime.config.attributes.personal_mail: ["louis.benali82@example.fr"],
            runtime.config.profiles["etudiant"].external_id_attribute: ["E0000004"],
        },
    )
    suspend(runtime, person.identifier, reason="left", notice=False)
    purge(runtime, person.identifier)
    code, out, err = umacct("search", text, "--json")
    assert code == 0, err
    matches = json.loads(out)
    assert [(m["account"], m["stage"], m["matched"]) for m in matches] == [
        (person.identifier, "purged", matched)
    ], matches
    assert matches[0]["name"] == "Louis Bénali"
    assert matches[0]["restore"] == f"umacct restore {person.identifier} --reason TEXT"
    code, out, err = umacct("search", text, "--format", "table")
    assert code == 0 and f"umacct restore {person.identifier} --reason TEXT" in out, err
    found = search_people(runtime, text).matches
    assert found[0].restore == f"umacct restore {person.identifier} --reason TEXT"
