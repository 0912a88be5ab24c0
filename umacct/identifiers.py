"""People's names and the identifiers built from them.

A person's identifier is their institutional address ``<given>.<surname>@<profile domain>``.
The local part is built from the names as typed:

* letters are folded to ASCII: ``é`` -> ``e``, ``ç`` -> ``c``, ``œ`` -> ``oe``, ``æ`` -> ``ae``,
  ``ß`` -> ``ss``; every other letter is decomposed (NFKD) and its accents dropped; letters that
  do not decompose have a table (``ø`` -> ``o``, ``ł`` -> ``l``, ``þ`` -> ``th``...);
* Greek and Cyrillic are transliterated with a simple table (Greek after ELOT 743, Cyrillic
  after the ICAO passport table); other scripts (Arabic, Hebrew, CJK...) cannot be folded: a
  name with nothing left after folding is refused and a Latin transcription must be given;
* lower case; whitespace and dashes become hyphens; apostrophes (ASCII, typographic U+2019, modifier U+02BC, grave, acute) vanish, so
  ``N'Diaye`` gives ``ndiaye``; other punctuation is dropped; runs of hyphens collapse and no
  part starts or ends with a hyphen;
* the local part is at most 64 characters (RFC 5321); the base keeps room for a numeric suffix
  (``jean.martin2``) that tells apart people with the same names.

The display forms of the names (``PersonName``) are kept as typed, NFKC-normalised (full-width
letters become plain ones), trimmed, with inner whitespace collapsed. A name holds letters,
marks, digits, spaces, hyphens, apostrophes and dots only: control characters, line breaks,
invisible formatting characters, symbols and punctuation such as ``*()=,;+#`` and the backslash are refused, and so is a
word that mixes Latin, Greek and Cyrillic letters (``Jean`` written with a Cyrillic ``e``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Collection, Set
from dataclasses import dataclass, field
from itertools import chain

from umacct.errors import InvalidInputError

MAX_NAME_LENGTH = 128
MAX_LOCAL_PART_LENGTH = 64
MAX_SUFFIX = 9999
MAX_BASE_LENGTH = MAX_LOCAL_PART_LENGTH - len(str(MAX_SUFFIX))
FIRST_SUFFIX = 2

LOCAL_PART_PATTERN = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
_SUFFIXED = re.compile(r"[0-9]+")
_APOSTROPHES = frozenset("'\u2019\u02bc`\u00b4\u2018\u02bb")
# Control, format (bidi overrides, zero-width characters), surrogate and private-use
# characters, and line or paragraph separators: none belongs in a name.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_CONFUSABLE_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})
# Characters each of which passes every check of clean_name (no refused category, a name
# character, Latin or no script; a test checks them one by one): a name made of them only
# needs its spaces collapsed. ASCII letters, digits, space, hyphen, apostrophes, dot, and the
# Latin-1 and Latin Extended-A letters (é, ï, ç, œ, ł, š...).
_PLAIN_NAME = re.compile("[A-Za-z0-9 '`.\\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017f\u2019]*")

# Applied after NFKD and case folding, so only lower-case, accent-free letters are needed.
_LETTERS = {
    # Latin letters that NFKD does not decompose
    "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ħ": "h",
    "ı": "i", "ĸ": "k", "ŋ": "n", "ŧ": "t", "ə": "e", "ɛ": "e", "ɔ": "o", "ƒ": "f",  # noqa: RUF001
    "ʒ": "z", "ŀ": "l",
    # Greek
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th",  # noqa: RUF001
    "ι": "i", "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p",  # noqa: RUF001
    "ρ": "r", "σ": "s", "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps",  # noqa: RUF001
    "ω": "o",
    # Cyrillic; letters with a mark (short i, yo, yi, short u) lose it in NFKD
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",  # noqa: RUF001
    "и": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",  # noqa: RUF001
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",  # noqa: RUF001
    "щ": "shch", "ъ": "ie", "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia", "і": "i",  # noqa: RUF001
    "є": "ie", "ґ": "g", "ј": "j", "љ": "lj", "њ": "nj", "ђ": "dj", "ћ": "c", "џ": "dz",  # noqa: RUF001
    "ѓ": "g", "ќ": "k", "ѕ": "dz",  # noqa: RUF001
}  # fmt: skip
_GREEK_DIGRAPHS = {"ου": "ou", "αυ": "av", "ευ": "ev"}  # noqa: RUF001
_GREEK_DIGRAPH = re.compile("|".join(_GREEK_DIGRAPHS))


@dataclass(frozen=True)
class PersonName:
    """A person's given name and surname in their display forms.

    Building one cleans both names (NFC, trimmed, inner whitespace collapsed), folds them
    into the identifier's base once, and raises ``InvalidInputError`` when either is empty,
    too long, holds a control character or folds to nothing.
    """

    given_name: str
    surname: str
    local_part: str = field(init=False, repr=False, compare=False)
    """The identifier's base local part, ``given.surname`` folded (before any suffix)."""

    def __post_init__(self) -> None:
        given_name = clean_name(self.given_name, "given name")
        surname = clean_name(self.surname, "surname")
        object.__setattr__(self, "given_name", given_name)
        object.__setattr__(self, "surname", surname)
        object.__setattr__(self, "local_part", local_part(given_name, surname))


def clean_name(text: str, what: str = "name") -> str:
    """Return the display form of a name (NFKC, trimmed, inner whitespace collapsed).

    Refuses control and invisible characters, anything but letters, marks, digits, spaces,
    hyphens, apostrophes and dots (so no filter, DN or spreadsheet-formula syntax reaches the
    directory or a CSV report), a word that mixes Latin, Greek and Cyrillic letters (a
    look-alike of another person's name), and empty or long names.
    """
    if _PLAIN_NAME.fullmatch(text):  # the common name: each check passes character by character
        cleaned = " ".join(unicodedata.normalize("NFKC", text).split())
        if cleaned and len(cleaned) <= MAX_NAME_LENGTH and _PLAIN_NAME.fullmatch(cleaned):
            return cleaned
    for character in text:
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            raise InvalidInputError(
                f"{what} {text!r}: control, line-break or invisible character "
                f"U+{ord(character):04X} is not allowed"
            )
    # NFKC: full-width and other compatibility forms become the plain letters they show.
    cleaned = " ".join(unicodedata.normalize("NFKC", text).split())
    if not cleaned:
        raise InvalidInputError(f"{what} is empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{what} is {len(cleaned)} characters long (at most {MAX_NAME_LENGTH})"
        )
    for character in cleaned:
        if not _is_name_character(character):
            raise InvalidInputError(
                f"{what} {text!r}: {character!r} is not allowed in a name "
                "(letters, digits, spaces, hyphens, apostrophes and dots only)"
            )
    for word in re.split(r"[\s\-\u2010-\u2015.]+", cleaned):
        if len(confusable_scripts(word)) > 1:
            raise InvalidInputError(
                f"{what} {text!r}: the word {word!r} mixes scripts "
                f"({', '.join(sorted(confusable_scripts(word)))}); write it in one script"
            )
    return cleaned


def _is_name_character(character: str) -> bool:
    # Digits stay: some registries number people who share a name.
    category = unicodedata.category(character)
    return (
        category[0] in "LMN"
        or category in ("Zs", "Pd")
        or character in _APOSTROPHES
        or character == "."
    )


def confusable_scripts(word: str) -> set[str]:
    """The confusable scripts (Latin, Greek, Cyrillic) whose letters appear in ``word``."""
    if word.isascii():  # the common case: ASCII letters are all Latin
        return {"Latin"} if any(character.isalpha() for character in word) else set()
    found = set()
    for character in word:
        if unicodedata.category(character)[0] == "L":
            script = unicodedata.name(character, "").split(" ")[0]
            if script in _CONFUSABLE_SCRIPTS:
                found.add(script.title())
    return found


@functools.lru_cache(maxsize=8192)
def fold_name(name: str) -> str:
    """Fold a name to lower-case ASCII letters, digits and single inner hyphens.

    ``"Anne-Lætitia d'Étienne"`` gives ``"anne-laetitia-detienne"``; the result may be empty
    when the name holds no letter that can be folded.
    """
    # Apostrophes and spacing accents (category Sk) go before NFKD, which would turn the
    # spacing accents into a space plus a combining mark.
    kept = "".join(
        character
        for character in unicodedata.normalize("NFC", name)
        if character not in _APOSTROPHES and unicodedata.category(character) != "Sk"
    )
    decomposed = unicodedata.normalize("NFKD", kept)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    bare = _GREEK_DIGRAPH.sub(lambda match: _GREEK_DIGRAPHS[match.group()], bare)
    pieces: list[str] = []
    for character in bare:
        latin = _LETTERS.get(character)
        if latin is not None:
            pieces.append(latin)
        elif character.isascii() and character.isalnum():
            pieces.append(character)
        elif character.isspace() or unicodedata.category(character) == "Pd":
            pieces.append("-")
    return "-".join(part for part in "".join(pieces).split("-") if part)


def same_names(given_a: str, surname_a: str, given_b: str, surname_b: str) -> bool:
    """Whether two people's names are the same once folded (accents, case, hyphens, spaces).

    A name that folds to nothing (another script) is compared case-insensitively as it is.
    """

    def key(name: str) -> str:
        return fold_name(name) or unicodedata.normalize("NFC", name).strip().casefold()

    return key(given_a) == key(given_b) and key(surname_a) == key(surname_b)


def local_part(given_name: str, surname: str) -> str:
    """The base local part ``given.surname``, folded and cut to leave room for a suffix.

    Raises ``InvalidInputError`` when either name folds to nothing (non-Latin script
    without a transliteration table, or no letter at all).
    """
    given, family = fold_name(given_name), fold_name(surname)
    for original, folded, what in ((given_name, given, "given name"), (surname, family, "surname")):
        if not folded:
            raise InvalidInputError(
                f"cannot build an identifier from the {what} {original!r}; "
                "give a Latin transcription"
            )
    room = MAX_BASE_LENGTH - 1  # the dot
    if len(given) + len(family) > room:
        half = room // 2
        if len(given) <= half:
            family = _shorten(family, room - len(given))
        elif len(family) <= half:
            given = _shorten(given, room - len(family))
        else:
            given = _shorten(given, half)
            family = _shorten(family, room - len(given))
    return f"{given}.{family}"


def _shorten(folded: str, limit: int) -> str:
    """Cut a folded name to ``limit``, dropping a hyphenated part cut in the middle."""
    if len(folded) <= limit:
        return folded
    cut = folded[:limit]
    if folded[limit] != "-" and "-" in cut:
        cut = cut[: cut.rindex("-")]
    return cut.rstrip("-")


def check_local_part(base: str) -> str:
    """Return ``base`` if it is a well-formed base local part; raise InvalidInputError if not."""
    if len(base) > MAX_BASE_LENGTH or not LOCAL_PART_PATTERN.fullmatch(base):
        raise InvalidInputError(
            f"{base!r} is not a valid identifier base: lower-case letters and digits "
            f"separated by single dots or hyphens, at most {MAX_BASE_LENGTH} characters"
        )
    return base


def candidates_prefix(base: str) -> str:
    """The prefix that every candidate for ``base`` starts with, checked.

    The caller fetches every taken candidate in one directory search, ``(uid=<prefix>*)``
    with the prefix escaped, and keeps the results for which ``is_candidate`` is true.
    """
    return check_local_part(base)


def is_candidate(base: str, uid: str) -> bool:
    """Whether ``uid`` is ``base`` or ``base`` followed by digits only (case-insensitive)."""
    folded = uid.lower()
    if not folded.startswith(base):
        return False
    suffix = folded[len(base) :]
    return not suffix or _SUFFIXED.fullmatch(suffix) is not None


def choose_local_part(
    base: str,
    taken: Callable[[str], bool] | Set[str],
    reserved: Collection[str],
) -> str:
    """The first of ``base``, ``base2``, ``base3``... that is neither taken nor reserved.

    ``taken`` is a set of local parts in use (by existing or purged accounts), compared
    case-insensitively, or a function that answers for one candidate. A reserved base gets a
    suffix like a taken one. Raises ``InvalidInputError`` when every suffix up to
    ``MAX_SUFFIX`` is taken.
    """
    check_local_part(base)
    if isinstance(taken, Set):
        taken_lower = frozenset(uid.lower() for uid in taken)
        is_taken: Callable[[str], bool] = taken_lower.__contains__
    else:
        is_taken = taken
    reserved_lower = frozenset(name.lower() for name in reserved)
    candidates = chain([base], (f"{base}{n}" for n in range(FIRST_SUFFIX, MAX_SUFFIX + 1)))
    for candidate in candidates:
        if candidate not in reserved_lower and not is_taken(candidate):
            return candidate
    raise InvalidInputError(
        f"no free identifier for {base!r} up to {base}{MAX_SUFFIX}; give one explicitly"
    )


def institutional_address(local: str, domain: str) -> str:
    """The identifier itself: ``local@domain``."""
    return f"{local}@{domain}"
