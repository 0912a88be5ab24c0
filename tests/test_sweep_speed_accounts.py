"""An entry's deciding activity is worked out once per distinct set of the values it reads.

``account_from_entry`` keeps, per configuration, the answer of ``decided_activities`` (the
activities, the deciding profile key and end of activity) by the entry's profile values and
end-date values, the only values it reads: a sweep's due people share them. Compared here,
on any entries (unknown and repeated profiles, well and badly formed dates, composite
values, mixed-case attribute names) read in any order and any time zone, with the answer
worked out afresh each time.
"""

from __future__ import annotations

import dataclasses
import random
import tomllib
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.config import Config, example_config_text, parse_config
from umacct.directory import Entry
from umacct.policy import to_supann_date
from umacct.services import accounts
from umacct.services.accounts import account_from_entry, decided_activities

_BASE = parse_config(tomllib.loads(example_config_text()))
_COMPOSITE = "supannEmpProfil"


def _config(zone: str, composite: bool) -> Config:
    profiles = dict(_BASE.profiles)
    if composite:
        profiles["vacataire"] = dataclasses.replace(
            profiles["vacataire"],
            end_date_attribute=_COMPOSITE,
            end_date_match="population={SUPANN}ENS-VAC",
        )
    return dataclasses.replace(
        _BASE, profiles=profiles, policy=dataclasses.replace(_BASE.policy, timezone=zone)
    )


_DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))
_DATE_VALUES = st.one_of(
    _DAYS.map(to_supann_date),
    _DAYS.map(lambda day: f"{day:%Y%m%d}220000Z"),
    _DAYS.map(lambda day: f"{day:%Y%m%d}"),
    st.sampled_from(["", "2027", "20270231000000Z", "99999999999999Z", "20270101000000+0100"]),
    st.text(max_size=16),
)
_COMPOSITE_VALUES = st.builds(
    lambda population, day, extra: f"[population={population}][datefin={day}]{extra}",
    st.sampled_from(["{SUPANN}ENS-VAC", "{supann}ens-vac", "{SUPANN}OTHER", ""]),
    st.one_of(_DAYS.map(lambda day: f"{day:%Y%m%d}"), st.text(max_size=9)),
    st.sampled_from(["", "[etablissement={UAI}0341087X]", "]]", "[datefin=20300101]"]),
)
_PROFILES = st.lists(
    st.one_of(
        st.sampled_from(sorted(_BASE.profiles)), st.sampled_from(["inconnu", "", "ETUDIANT"])
    ),
    max_size=4,
)
_END_ATTRIBUTES = ["supannempdatefin", "supannextdatefin", "supannetudatefin", "SupannEmpDateFin"]


@st.composite
def _entries(draw: st.DrawFn) -> Entry:
    attributes: dict[str, list[str]] = {}
    profiles = draw(_PROFILES)
    if profiles or draw(st.booleans()):
        attributes["supanncodepopulation"] = profiles
    for name in draw(st.lists(st.sampled_from(_END_ATTRIBUTES), max_size=3, unique=True)):
        attributes[name] = draw(st.lists(_DATE_VALUES, max_size=3))
    if draw(st.booleans()):
        attributes[_COMPOSITE.lower()] = draw(st.lists(_COMPOSITE_VALUES, max_size=3))
    attributes["uid"] = [draw(st.sampled_from(["a", "b"]))]
    return Entry("uid=x,ou=people,dc=example,dc=org", attributes)


@settings(max_examples=400, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Paris", "Pacific/Kiritimati", "America/Adak", "UTC"]),
    composite=st.booleans(),
    entries=st.lists(_entries(), min_size=1, max_size=12),
    order=st.randoms(use_true_random=False),
)
def test_the_kept_answer_is_the_one_worked_out_afresh(
    zone: str, composite: bool, entries: list[Entry], order: random.Random
) -> None:
    config = _config(zone, composite)
    # Each entry read twice, in any order: the second time (and any entry with the same
    # values) is answered from what was kept.
    readings = entries * 2
    order.shuffle(readings)
    for entry in readings:
        fresh = decided_activities(entry, config)
        account = account_from_entry(entry, config)
        assert (account.activities, account.profile_key, account.end_of_activity) == fresh


def test_another_configuration_is_not_answered_from_the_first_ones() -> None:
    entry = Entry(
        "uid=x,ou=people,dc=example,dc=org",
        {"supanncodepopulation": ["vacataire"], "supannempdatefin": ["20270830220000Z"]},
    )
    paris, kiritimati = _config("Europe/Paris", False), _config("Pacific/Kiritimati", False)
    assert account_from_entry(entry, paris).end_of_activity == date(2027, 8, 31)
    assert account_from_entry(entry, kiritimati).end_of_activity == date(2027, 8, 31)
    adak = _config("America/Adak", False)
    assert account_from_entry(entry, adak).end_of_activity == date(2027, 8, 30)
    assert account_from_entry(entry, paris).end_of_activity == date(2027, 8, 31)


def test_at_most_a_bounded_number_of_answers_is_kept() -> None:
    config = _config("UTC", False)
    for number in range(accounts._DecidedCache.LIMIT + 10):
        day = date(2000, 1, 1).toordinal() + number
        entry = Entry(
            "uid=x,ou=people,dc=example,dc=org",
            {"supanncodepopulation": ["titulaire"],
             "supannempdatefin": [to_supann_date(date.fromordinal(day))]},
        )  # fmt: skip
        assert account_from_entry(entry, config).end_of_activity == date.fromordinal(day)
    assert len(accounts._DecidedCache.of(config).answers) <= accounts._DecidedCache.LIMIT
