"""A made-up population of a French university, for the demo, the tests and the benchmarks.

Names are French with what makes identifiers hard: accents, apostrophes, hyphens, particles,
ligatures and homonyms. The population is the same for the same seed and reference day.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from umacct.config import ProfileConfig
from umacct.ldif import LdifEntry
from umacct.localdir.ldif import ssha_hash
from umacct.localdir.profiles import PROFILES, STAFF_DOMAIN

GIVEN_NAMES = (
    "Jean", "Marie", "Jean-Pierre", "Anne-Sophie", "Lætitia", "Chloé", "Léa", "Zoé", "Éloïse",
    "Hélène", "Agnès", "Françoise", "Gaëlle", "Noémie", "Maëlys", "Inès", "Aïcha", "Fatoumata",
    "Camille", "Sophie", "Claire", "Juliette", "Océane", "Manon", "Clémence", "Bérénice",
    "François", "Jérôme", "Hervé", "Benoît", "Raphaël", "Joël", "Gaël", "Noël", "Loïc", "Anaïs",
    "Stéphane", "Frédéric", "Thibault", "Mathéo", "Côme", "Élie", "Grégoire", "Mickaël",
    "Jean-Baptiste", "Pierre-Louis", "Marc-Antoine", "Marie-Ève", "Paul", "Louis", "Hugo",
    "Lucas", "Nathan", "Théo", "Mohamed", "Youssef", "Karim", "Moussa", "Thi Hương", "Minh",
    "Ségolène", "Irène", "Adèle", "Béatrice", "Rémi", "Sébastien", "Amélie", "Cécile",
    "Pénélope", "Xavier", "Yannick", "Gwenaëlle", "Ophélie", "Anne", "Jeanne", "Lou", "Max",
)  # fmt: skip
SURNAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "García", "Fournier", "Girard", "Rousseau",
    "Müller", "Lemaître", "Hébert", "Bénard", "Cœur", "Œillet", "Vaïsse", "Gâtineau", "Pérez",
    "d'Artagnan", "N'Diaye", "D'Angelo", "O'Neill", "L'Huillier", "d'Alembert", "M'Bappé",
    "de la Fontaine", "de Gaulle", "du Bellay", "de Saint-Exupéry", "Le Goff", "Le Gall",
    "Le Bihan", "La Rochefoucauld", "Van der Berg", "Da Silva", "Dos Santos", "Ben Ali",
    "Martin-Dupont", "Lévy-Strauss", "Curie-Sklodowska", "Nguyen", "Tran", "Diallo", "Traoré",
    "Koné", "Haddad", "Benali", "Chevalier", "François", "Mercier", "Blanc", "Guérin", "Boyer",
    "Garnier", "Faure", "André", "Rolland", "Noël", "Clément", "Gauthier", "Perrin", "Roussel",
    "Bonnet", "Lambert", "Fontaine", "Rivière", "Brun", "Barbier", "Bréhier", "Kerouédan",
)  # fmt: skip
PERSONAL_DOMAINS = ("example.net", "example.com", "example.fr")
# Mostly students, as in a university.
PROFILE_WEIGHTS = {
    "etudiant": 70, "titulaire": 12, "contractuel": 7,
    "vacataire": 5, "autre_personnel": 3, "heberge_en": 3,
}  # fmt: skip
SHARE_WITH_END_DATE = 0.6
SHARE_AWAITING_ACTIVATION = 0.05
SHARE_DOUBLE_SURNAME = 0.08
END_DATE_DAYS = (-400, 700)
START_DATE_DAYS = (-2000, -1)

_FOLDED = str.maketrans({"æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ø": "o", "Ø": "O"})


def _fold(name: str) -> str:
    """Fold a name into identifier characters: ASCII, lower case, spaces as hyphens."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_FOLDED))
    ascii_only = "".join(char for char in decomposed if not unicodedata.combining(char))
    without_apostrophes = ascii_only.replace("'", "").replace("\u2019", "")
    return "-".join(without_apostrophes.lower().split())


def sample_password(uid: str) -> str:
    """The known password of a generated, active person (tests and benchmarks bind with it)."""
    return f"sample-password-{uid}"


@dataclass(frozen=True)
class _Person:
    given_name: str
    surname: str
    uid: str
    profile_key: str
    number: int


def _generalized_time(day: date) -> str:
    return day.strftime("%Y%m%d") + "000000Z"


def _supann_attributes(
    person: _Person, profile: ProfileConfig, rng: random.Random, today: date, active: bool
) -> dict[str, list[str]]:
    external_id = (
        f"{person.number:08d}"
        if profile.external_id_attribute == "supannEtuId"
        else (f"E{person.number:07d}")
    )
    personal = f"{person.uid}{rng.randint(1, 99)}@{rng.choice(PERSONAL_DOMAINS)}"
    since = (today + timedelta(days=rng.randint(*START_DATE_DAYS))).strftime("%Y%m%d")
    state, substate = ("A", "SupannActif") if active else ("I", "SupannCree")
    attributes = {
        "supannCodePopulation": [person.profile_key],
        "eduPersonAffiliation": list(profile.affiliations),
        "eduPersonPrimaryAffiliation": [profile.affiliations[-1]],
        "eduPersonPrincipalName": [f"{person.uid}@{STAFF_DOMAIN}"],
        "supannMailPerso": [personal],
        profile.external_id_attribute: [external_id],
        "supannRessourceEtat": [f"{{COMPTE}}{state}:{substate}", f"{{MAIL}}{state}:{substate}"],
        "supannRessourceEtatDate": [
            f"{{COMPTE}}{state}:{substate}:{since}:",
            f"{{MAIL}}{state}:{substate}:{since}:",
        ],
    }
    if rng.random() < SHARE_WITH_END_DATE:
        end = today + timedelta(days=rng.randint(*END_DATE_DAYS))
        attributes[profile.end_date_attribute] = [_generalized_time(end)]
    return attributes


TEACHING_STUDENT_EVERY = 25
"""One student in this many also teaches as a vacataire (doctoral students): two profiles."""


def _teaches_too(attributes: dict[str, list[str]], person: _Person, today: date) -> None:
    """A doctoral student who also teaches: a vacataire contract, ended for some of them.

    Drawn from the person's number only, so that the rest of the population stays the same.
    """
    vacataire = PROFILES["vacataire"]
    contract_end = today + timedelta(days=(person.number % 300) - 200)
    attributes["supannCodePopulation"] = [person.profile_key, "vacataire"]
    attributes[vacataire.end_date_attribute] = [_generalized_time(contract_end)]
    attributes[vacataire.external_id_attribute] = [f"V{person.number:07d}"]
    attributes["eduPersonAffiliation"] = [
        *attributes["eduPersonAffiliation"],
        *(a for a in vacataire.affiliations if a not in attributes["eduPersonAffiliation"]),
    ]


def _person_entry(
    person: _Person, people_dn: str, rng: random.Random, today: date, supann: bool
) -> LdifEntry:
    profile = PROFILES[person.profile_key]
    active = rng.random() >= SHARE_AWAITING_ACTIVATION
    full_name = f"{person.given_name} {person.surname}"
    attributes: dict[str, list[str]] = {
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"]
        if supann
        else ["inetOrgPerson"],
        "uid": [person.uid],
        "mail": [f"{person.uid}@{profile.domain}"],
        "cn": [full_name],
        "sn": [person.surname],
        "givenName": [person.given_name],
        "displayName": [full_name],
    }
    if supann:
        attributes.update(_supann_attributes(person, profile, rng, today, active))
        if person.profile_key == "etudiant" and person.number % TEACHING_STUDENT_EVERY == 0:
            _teaches_too(attributes, person, today)
    if active:
        attributes["userPassword"] = [ssha_hash(sample_password(person.uid), rng.randbytes(8))]
    return LdifEntry(f"uid={person.uid},{people_dn}", attributes)


def _draw_people(count: int, rng: random.Random) -> list[_Person]:
    keys = list(PROFILE_WEIGHTS)
    weights = list(PROFILE_WEIGHTS.values())
    taken: dict[str, int] = {}
    people = []
    for number in range(1, count + 1):
        given_name = rng.choice(GIVEN_NAMES)
        surname = rng.choice(SURNAMES)
        if rng.random() < SHARE_DOUBLE_SURNAME:
            surname = f"{surname}-{rng.choice(SURNAMES)}"
        stem = f"{_fold(given_name)}.{_fold(surname)}"
        # Homonyms get a numeric suffix, from 2 on: jean.martin, jean.martin2, ...
        taken[stem] = taken.get(stem, 0) + 1
        uid = stem if taken[stem] == 1 else f"{stem}{taken[stem]}"
        profile_key = rng.choices(keys, weights)[0]
        people.append(_Person(given_name, surname, uid, profile_key, number))
    return people


def generate_people(
    count: int,
    seed: int = 1,
    *,
    people_dn: str = "ou=people,dc=example,dc=org",
    supann: bool = True,
    today: date | None = None,
) -> list[LdifEntry]:
    """Make ``count`` people spread over the six profiles, the same for the same seed.

    Most are active with the password ``sample_password(uid)``; a few await activation and
    have no password. End-of-activity dates fall around ``today`` (default: the real today).
    With ``supann=False`` the entries are plain inetOrgPerson entries.
    """
    rng = random.Random(seed)  # noqa: S311 (reproducible made-up data, no secret)
    reference = today or date.today()
    return [
        _person_entry(person, people_dn, rng, reference, supann)
        for person in _draw_people(count, rng)
    ]
