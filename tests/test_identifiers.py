"""Names and the identifiers built from them (umacct.identifiers)."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from umacct.errors import InvalidInputError
from umacct.identifiers import (
    MAX_BASE_LENGTH,
    MAX_LOCAL_PART_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SUFFIX,
    PersonName,
    candidates_prefix,
    choose_local_part,
    fold_name,
    institutional_address,
    is_candidate,
    local_part,
)

LOCAL_PART = re.compile(r"^[a-z0-9]+([.-][a-z0-9]+)*$")
FOLDED = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*)?$")
RESERVED = ["admin", "postmaster", "root"]

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Jean-Pierre", "jean-pierre"),
        ("de la Fontaine", "de-la-fontaine"),
        ("N'Diaye", "ndiaye"),
        ("Œillet", "oeillet"),
        ("Lætitia", "laetitia"),
        ("Müller", "muller"),
        ("Straße", "strasse"),
        ("STRASSE", "strasse"),
        ("Çağlar", "caglar"),
        ("O'Neil", "oneil"),
        ("Le Goff", "le-goff"),
        ("  Marie  Claire ", "marie-claire"),
        ("Zoë", "zoe"),
        ("Ñúñez", "nunez"),
        ("D\u2019Artagnan", "dartagnan"),
        ("D\u02bcArtagnan", "dartagnan"),
        ("D`Artagnan", "dartagnan"),
        ("D\u00b4Artagnan", "dartagnan"),
        ("Anne-Lætitia d'Étienne", "anne-laetitia-detienne"),
        ("Jean -- Paul", "jean-paul"),
        ("Jean \u2013 Paul", "jean-paul"),
        ("-Jean-", "jean"),
        ("J.-P. Sartre", "j-p-sartre"),
        ("Saint-Exupéry (de)", "saint-exupery-de"),
        ("Øystein", "oystein"),
        ("Đorđević", "dordevic"),
        ("Łukasz", "lukasz"),
        ("Þórður", "thordur"),
        ("Ĳsbrand", "ijsbrand"),
        ("İlkay", "ilkay"),
        ("Nguyễn", "nguyen"),
        ("Dvořák", "dvorak"),
        ("Henri 4", "henri-4"),
    ],
)
def test_fold_name_french_and_european_names(name: str, folded: str) -> None:
    assert fold_name(name) == folded


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Παπαδόπουλος", "papadopoulos"),
        ("Ευγενία", "evgenia"),
        ("Щербаков", "shcherbakov"),
        ("Юлия", "iuliia"),
        ("Сергей", "sergei"),
        ("Олександр", "oleksandr"),
        ("Игорь", "igor"),
        ("ЪЬ", "ie"),
    ],
)
def test_fold_name_transliterates_greek_and_cyrillic(name: str, folded: str) -> None:
    assert fold_name(name) == folded


@pytest.mark.parametrize("name", ["王", "محمد", "כהן", "'", "---", "...", "\u00b4"])
def test_fold_name_may_give_nothing(name: str) -> None:
    assert fold_name(name) == ""


def test_local_part_joins_with_a_dot() -> None:
    assert local_part("Jean", "Martin") == "jean.martin"
    assert local_part("Anne-Lætitia", "d'Étienne") == "anne-laetitia.detienne"


@pytest.mark.parametrize(
    ("given_name", "surname"), [("王", "Martin"), ("Jean", "王伟"), ("'", "x")]
)
def test_local_part_refuses_names_that_fold_to_nothing(given_name: str, surname: str) -> None:
    with pytest.raises(InvalidInputError, match="give a Latin transcription"):
        local_part(given_name, surname)


def test_local_part_shortens_long_names_leaving_room_for_a_suffix() -> None:
    base = local_part("Maximilien", "de " * 40 + "Robespierre")
    assert len(base) <= MAX_BASE_LENGTH
    assert base.startswith("maximilien.de-de")
    assert LOCAL_PART.match(base)
    assert len(f"{base}{MAX_SUFFIX}") <= MAX_LOCAL_PART_LENGTH


def test_local_part_drops_a_hyphenated_part_cut_in_the_middle() -> None:
    base = local_part("Jean", "Abcdefghij-" * 6 + "Klm")
    assert base == "jean." + "-".join(["abcdefghij"] * 5)


def test_local_part_cuts_both_names_when_both_are_long() -> None:
    base = local_part("a" * 50, "b" * 50)
    given, family = base.split(".")
    assert len(base) == MAX_BASE_LENGTH
    assert given and family


@given(names, names)
def test_local_part_is_well_formed_for_any_foldable_names(given_name: str, surname: str) -> None:
    assume(fold_name(given_name) and fold_name(surname))
    base = local_part(given_name, surname)
    assert LOCAL_PART.match(base)
    assert "--" not in base
    assert len(base) <= MAX_BASE_LENGTH
    assert local_part(given_name, surname) == base
    folded_again = local_part(fold_name(given_name), fold_name(surname))
    assert folded_again == base


@given(names)
def test_fold_name_output_is_folded_and_idempotent(name: str) -> None:
    folded = fold_name(name)
    assert FOLDED.match(folded)
    assert fold_name(folded) == folded


def test_person_name_keeps_display_forms_cleaned() -> None:
    name = PersonName("  Marie \u00a0 Claire ", "Le   Goff")
    assert name.given_name == "Marie Claire"
    assert name.surname == "Le Goff"
    decomposed = PersonName("Zoe\u0308", "Martin")
    assert decomposed.given_name == "Zoë"
    assert name.local_part == "marie-claire.le-goff"


@pytest.mark.parametrize(
    ("given_name", "reason"),
    [
        ("Jean\nPierre", "U\\+000A"),
        ("Jean\rPierre", "U\\+000D"),
        ("Jean\0", "U\\+0000"),
        ("Jean\tPierre", "U\\+0009"),
        ("Jean\u202ePierre", "U\\+202E"),
        ("Jean\u2028Pierre", "U\\+2028"),
        ("   ", "empty"),
        ("", "empty"),
        ("a" * (MAX_NAME_LENGTH + 1), "at most"),
    ],
)
def test_person_name_refuses_hostile_or_empty_names(given_name: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        PersonName(given_name, "Martin")


def test_person_name_accepts_a_name_of_the_maximum_length() -> None:
    assert PersonName("a" * MAX_NAME_LENGTH, "b").given_name == "a" * MAX_NAME_LENGTH


def test_choose_local_part_gives_suffixes_from_two() -> None:
    assert choose_local_part("jean.martin", set(), RESERVED) == "jean.martin"
    assert choose_local_part("jean.martin", {"jean.martin"}, RESERVED) == "jean.martin2"
    taken = {"jean.martin", "jean.martin2", "jean.martin4"}
    assert choose_local_part("jean.martin", taken, RESERVED) == "jean.martin3"


def test_choose_local_part_compares_taken_case_insensitively() -> None:
    assert choose_local_part("jean.martin", {"Jean.Martin"}, []) == "jean.martin2"


def test_choose_local_part_accepts_a_function() -> None:
    asked: list[str] = []

    def taken(candidate: str) -> bool:
        asked.append(candidate)
        return len(asked) < 3

    assert choose_local_part("jean.martin", taken, []) == "jean.martin3"
    assert asked == ["jean.martin", "jean.martin2", "jean.martin3"]


def test_choose_local_part_suffixes_a_reserved_base() -> None:
    assert choose_local_part("admin", set(), RESERVED) == "admin2"
    assert choose_local_part("root", set(), ["ROOT"]) == "root2"


def test_choose_local_part_is_bounded() -> None:
    with pytest.raises(InvalidInputError, match="no free identifier"):
        choose_local_part("jean.martin", lambda _candidate: True, [])


@pytest.mark.parametrize("base", ["", "Jean.Martin", "jean..martin", "jean.", "x" * 61, "a@b"])
def test_choose_local_part_refuses_a_malformed_base(base: str) -> None:
    with pytest.raises(InvalidInputError, match="not a valid identifier base"):
        choose_local_part(base, set(), [])


local_parts = st.from_regex(r"\A[a-z0-9]{1,10}(\.[a-z0-9]{1,10})?\Z")


@given(local_parts, st.sets(st.from_regex(r"\A[a-z0-9.]{1,14}\Z")), st.lists(local_parts))
def test_choose_local_part_never_returns_taken_or_reserved(
    base: str, taken: set[str], reserved: list[str]
) -> None:
    # Make the collisions likely: take a run of the base's own candidates too.
    taken |= {base} | {f"{base}{n}" for n in range(2, 6)}
    chosen = choose_local_part(base, taken, reserved)
    assert chosen not in taken
    assert chosen not in reserved
    assert is_candidate(base, chosen)
    assert len(chosen) <= MAX_LOCAL_PART_LENGTH


@pytest.mark.parametrize(
    ("uid", "expected"),
    [
        ("jean.martin", True),
        ("jean.martin2", True),
        ("jean.martin123", True),
        ("Jean.Martin7", True),
        ("jean.martine", False),
        ("jean.martin-2", False),
        ("jean.martin2a", False),
        ("jean.marti", False),
        ("jean.martin\u0663", False),
    ],
)
def test_is_candidate(uid: str, expected: bool) -> None:
    assert is_candidate("jean.martin", uid) is expected


def test_candidates_prefix_is_the_checked_base() -> None:
    assert candidates_prefix("jean.martin") == "jean.martin"
    with pytest.raises(InvalidInputError):
        candidates_prefix("jean.martin*")


def test_institutional_address() -> None:
    assert (
        institutional_address("jean.martin2", "umontpellier.fr") == "jean.martin2@umontpellier.fr"
    )
