"""SUPANN resource state strings: parsing, formatting, stages and the values the tool writes."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from umacct.errors import InvalidInputError
from umacct.policy import (
    NONEXISTENT_SUBSTATES,
    STATE_DATE_PATTERN,
    SUBSTATES,
    ResourceState,
    ResourceStatus,
    Stage,
    active_states,
    created_states,
    expired_states,
    find_state,
    grace_states,
    precreated_states,
    replace_resource_values,
    replace_state_dates,
    replace_statuses,
    resource_of,
    stage_of,
)

VALID_PAIRS = sorted((state, sub) for state, subs in SUBSTATES.items() for sub in subs)
resources = st.one_of(
    st.sampled_from(["COMPTE", "MAIL", "WIFI", "VPN"]),
    st.from_regex(r"[A-Z0-9_-]{1,12}", fullmatch=True),
)
optional_dates = st.one_of(st.none(), st.dates())


@st.composite
def writable_states(draw: st.DrawFn) -> ResourceState:
    state, substate = draw(st.sampled_from(VALID_PAIRS))
    start, end = draw(optional_dates), draw(optional_dates)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return ResourceState(draw(resources), state, substate, start, end)


@given(writable_states())
def test_valid_states_round_trip(state: ResourceState) -> None:
    assert ResourceState.parse(state.format()) == state


@given(writable_states())
def test_every_formatted_value_matches_the_pattern_other_tools_use(state: ResourceState) -> None:
    text = state.format()
    assert STATE_DATE_PATTERN.match(text)
    assert text.count(":") == 3


@given(writable_states())
def test_short_form_round_trips(state: ResourceState) -> None:
    status = state.short()
    assert ResourceStatus.parse(status.format()) == status
    assert status.format() == f"{{{state.resource}}}{state.state}:{state.substate}"


def test_every_colon_is_kept_when_parts_are_empty() -> None:
    state = ResourceState("COMPTE", "S", "SupannVerrouille", date(2024, 1, 1))
    assert state.format() == "{COMPTE}S:SupannVerrouille:20240101:"
    assert ResourceState("MAIL", "I", "SupannInactif").format() == "{MAIL}I:SupannInactif::"


@pytest.mark.parametrize("substate", sorted(NONEXISTENT_SUBSTATES))
@pytest.mark.parametrize("state", ["A", "I", "S"])
def test_nonexistent_substates_are_never_written(state: str, substate: str) -> None:
    with pytest.raises(InvalidInputError, match=substate):
        ResourceState("COMPTE", state, substate, date(2026, 1, 1)).format()
    with pytest.raises(InvalidInputError, match=substate):
        ResourceStatus("COMPTE", state, substate).format()


@pytest.mark.parametrize(
    "state",
    [
        ResourceState("COMPTE", "A", "SupannExpire"),  # sub-state under the wrong state
        ResourceState("COMPTE", "X", "SupannActif"),
        ResourceState("COMPTE", "A", ""),
        ResourceState("compte", "A", "SupannActif"),  # not the canonical name
        ResourceState("COM:PTE", "A", "SupannActif"),
        ResourceState("COMPTE", "A", "SupannSursis", date(2026, 7, 1), date(2026, 6, 30)),
    ],
)
def test_formatter_refuses_what_is_not_a_supann_state(state: ResourceState) -> None:
    with pytest.raises(InvalidInputError):
        state.format()


def test_short_form_without_substate() -> None:
    assert ResourceStatus("COMPTE", "A").format() == "{COMPTE}A"
    assert ResourceStatus.parse("{COMPTE}A") == ResourceStatus("COMPTE", "A")
    assert ResourceStatus.parse("{mail}I:SupannExpire") == ResourceStatus(
        "MAIL", "I", "SupannExpire"
    )
    with pytest.raises(InvalidInputError):
        ResourceStatus("COMPTE", "Z").format()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "COMPTE}A:SupannActif::",
        "{COMPTE}A:SupannActif:",
        "{COMPTE}A:SupannActif:::",
        "{}A:SupannActif::",
        "{COMPTE}:SupannActif::",
        "{COMPTE}A:SupannActif:2026:",
        "{COMPTE}A:SupannActif:20261301:",
        "{COMPTE}A:SupannActif::20260230",
        "{COMPTE}A:SupannActif:2026-01-01:",
    ],
)
def test_malformed_values_raise_invalid_input_quoting_them(value: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        ResourceState.parse(value)
    assert repr(value) in raised.value.message


@given(st.text())
def test_any_text_either_parses_to_a_matching_value_or_is_invalid_input(value: str) -> None:
    try:
        state = ResourceState.parse(value)
    except InvalidInputError:
        return
    assert STATE_DATE_PATTERN.match(value)
    assert state.resource == state.resource.upper()


@pytest.mark.parametrize("value", ["", "COMPTE", "{COMPTE}", "{COMPTE}A:B:C", "{COMPTE}:X"])
def test_malformed_short_values_raise_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInputError):
        ResourceStatus.parse(value)


def test_resource_names_are_read_without_regard_to_case() -> None:
    state = ResourceState.parse("{compte}A:SupannActif:20250901:")
    assert state == ResourceState("COMPTE", "A", "SupannActif", date(2025, 9, 1))
    assert find_state(["{Compte}A:SupannActif:20250901:"]) == state


@pytest.mark.parametrize(
    ("value", "stage"),
    [
        ("{COMPTE}I:SupannPrecree:20260801:", Stage.PRECREATED),
        ("{COMPTE}I:SupannCree:20260901:", Stage.CREATED),
        ("{COMPTE}A:SupannActif:20260901:", Stage.ACTIVE),
        ("{COMPTE}A:SupannAnticipe:20260825:", Stage.ACTIVE),
        ("{COMPTE}A:SupannSursis:20260701:20261231", Stage.GRACE),
        ("{COMPTE}I:SupannExpire:20270101:", Stage.EXPIRED),
        ("{COMPTE}S:SupannVerrouille:20240101:", Stage.FOREIGN),
        ("{COMPTE}S:SupannVerrouAdministratif::", Stage.FOREIGN),
        ("{COMPTE}S:SupannVerrouTechnique:20240101:", Stage.FOREIGN),
        ("{COMPTE}I:SupannInactif::", Stage.FOREIGN),
        ("{COMPTE}I:SupannSupprDonnees:20270201:", Stage.FOREIGN),
        ("{COMPTE}I:SupannSupprCompte:20270301:", Stage.EXPIRED),
        ("{COMPTE}I:SupannSuspendu::", Stage.FOREIGN),  # nonstandard, written by another tool
    ],
)
def test_stage_of_each_account_state(value: str, stage: Stage) -> None:
    assert stage_of(ResourceState.parse(value)) is stage


def test_no_account_state_is_unknown_stage() -> None:
    assert find_state(["{MAIL}A:SupannActif:20260901:"]) is None
    assert stage_of(None) is Stage.UNKNOWN


def test_find_state_ignores_malformed_values_of_other_resources() -> None:
    values = ["{WIFI}garbage", "not a state", "{COMPTE}A:SupannActif:20260901:"]
    assert find_state(values) == ResourceState("COMPTE", "A", "SupannActif", date(2026, 9, 1))
    assert find_state(values, "MAIL") is None


def test_find_state_refuses_a_malformed_or_duplicated_account_state() -> None:
    with pytest.raises(InvalidInputError, match="COMPTE"):
        find_state(["{COMPTE}A:SupannActif"])
    with pytest.raises(InvalidInputError, match="2 state values"):
        find_state(["{COMPTE}A:SupannActif:20260901:", "{COMPTE}I:SupannCree:20260801:"])


def test_values_the_tool_writes_for_each_stage() -> None:
    day = date(2026, 9, 1)
    assert [s.format() for s in precreated_states(day)] == ["{COMPTE}I:SupannPrecree:20260901:"]
    assert [s.format() for s in created_states(day)] == ["{COMPTE}I:SupannCree:20260901:"]
    assert [s.format() for s in active_states(day)] == [
        "{COMPTE}A:SupannActif:20260901:",
        "{MAIL}A:SupannActif:20260901:",
    ]
    assert [s.format() for s in grace_states(date(2026, 6, 30), date(2026, 12, 31))] == [
        "{COMPTE}A:SupannSursis:20260701:20261231",
        "{MAIL}A:SupannSursis:20260701:20261231",
    ]
    assert [s.format() for s in expired_states(date(2026, 12, 31))] == [
        "{COMPTE}I:SupannExpire:20270101:",
        "{MAIL}I:SupannExpire:20270101:",
    ]


def test_replacing_account_and_mail_keeps_other_resources_untouched() -> None:
    old = [
        "{WIFI}A:SupannActif:20250101:",
        "{COMPTE}A:SupannActif:20250901:",
        "{mail}A:SupannActif:20250901:",
        "{VPN}S:SupannVerrouille::",
    ]
    new = replace_state_dates(old, grace_states(date(2026, 6, 30), date(2026, 12, 31)))
    assert new == [
        "{WIFI}A:SupannActif:20250101:",
        "{VPN}S:SupannVerrouille::",
        "{COMPTE}A:SupannSursis:20260701:20261231",
        "{MAIL}A:SupannSursis:20260701:20261231",
    ]
    short = replace_statuses(
        ["{COMPTE}A", "{WIFI}A:SupannActif"], expired_states(date(2026, 12, 31))
    )
    assert short == ["{WIFI}A:SupannActif", "{COMPTE}I:SupannExpire", "{MAIL}I:SupannExpire"]


other_values = st.one_of(
    st.builds(lambda s: s.format(), writable_states()).filter(
        lambda v: resource_of(v) not in ("COMPTE", "MAIL")
    ),
    st.text(),
)


@given(
    st.lists(other_values, max_size=6),
    st.lists(st.sampled_from(["{COMPTE}A:SupannActif::", "{Mail}I:SupannCree::"]), max_size=3),
    st.randoms(),
)
def test_replace_never_touches_other_values(
    others: list[str], ours: list[str], rng: random.Random
) -> None:
    values = others + ours
    rng.shuffle(values)
    new = replace_state_dates(values, expired_states(date(2026, 12, 31)))
    assert new[:-2] == [v for v in values if resource_of(v) not in ("COMPTE", "MAIL")]
    assert new[-2:] == ["{COMPTE}I:SupannExpire:20270101:", "{MAIL}I:SupannExpire:20270101:"]


def test_replacement_values_must_name_a_resource() -> None:
    with pytest.raises(InvalidInputError, match="names no resource"):
        replace_resource_values(["{COMPTE}A"], ["A:SupannActif"])
