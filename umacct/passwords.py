"""What a person may choose as a password (security.md 8, 9 and 11).

The rules, in the order they are checked (the first that fails gives the reason):

1. Not empty: an empty simple bind is an anonymous success (RFC 4513), so it never goes further.
2. Only visible text: control characters (NUL, CR, LF, TAB, DEL, the C1 range...), line and
   paragraph separators, invisible formatting characters (zero-width spaces, direction marks),
   the other invisible code points (Hangul fillers, the blank Braille pattern, the combining
   grapheme joiner, variation selectors but the emoji ones), lone surrogates and unassigned
   code points are refused, as typed and after NFKC; they break LDAP tools and terminals or
   cannot be typed again reliably.
3. Something to type: a password of spaces only, or of combining marks (and spaces) only, is
   refused.
4. Length, counted in code points without the spaces (and the emoji presentation selectors),
   both as typed and after NFKC normalisation: each count at least the configured minimum
   (``[policy] password_min_length``, 12 by default), so that twelve spaces, or one character
   that NFKC expands to eighteen (U+FDFA), never pass for twelve. At most ``MAX_LENGTH`` code
   points, spaces included, in either form: a longer password is refused, never truncated.
5. Not a commonly used password: the shipped list (``umacct/data/common-passwords.txt``) is
   compared case- and accent-insensitively, with inner spaces ignored, and also after stripping
   the digits and symbols around it, so ``Password2024!`` counts as ``password``.
6. Not one short sequence repeated (``abcabcabcabc``) nor a run of consecutive characters
   (``abcdefghijkl``, ``987654321098``): the common list leaves those out.
7. Nothing of the person: their given names and surnames (each part of a compound name), their
   uid, the local part of their institutional address and the labels of its domain (the
   top-level domain aside). Parts of ``NAME_SUBSTRING_MIN`` code points or more are refused
   anywhere in the password; parts of ``NAME_WORD_MIN`` code points only as a separate word
   (``Luc`` refuses ``Luc-2024-...`` but not ``lucky...``); shorter parts are ignored, or a
   surname such as ``Li`` would refuse every password holding ``li``.

There are no composition rules (NIST SP 800-63B). The password that passes is returned in its
NFKC form: that is the one to set, so that the same person typing it on another keyboard or
system gets the same bytes.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import re
import unicodedata
from dataclasses import dataclass

from umacct.errors import ConfigError, InvalidInputError, UmacctError

MIN_LENGTH_FLOOR = 8
MAX_LENGTH = 256
NAME_SUBSTRING_MIN = 4
NAME_WORD_MIN = 3
COMMON_PASSWORDS_FILE = "common-passwords.txt"

_FORBIDDEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a lone surrogate, which is not valid text",
    "Cn": "a character that Unicode does not assign",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
# Code points that show nothing and are not spaces (Unicode's Default_Ignorable_Code_Point that
# are letters or marks, and the blank Braille pattern): twelve Hangul fillers look like nothing.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE0E)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
# The text and emoji presentation selectors an emoji keyboard adds (U+2764 U+FE0F is a red
# heart): allowed, not counted.
_PRESENTATION_SELECTORS = frozenset("\ufe0e\ufe0f")
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
_SPACES = re.compile(r"\s+")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")
_EDGE_NON_ALNUM = re.compile(r"^[\W_]+|[\W_]+$")
_EDGE_NON_LETTERS = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_ASCII_DIGITS = "0123456789"


@dataclass(frozen=True)
class PasswordContext:
    """Who the password is for, and the site's minimum length.

    ``identifier`` is the institutional address; any of the names may be empty.
    """

    identifier: str
    uid: str
    given_name: str
    surname: str
    min_length: int

    def __post_init__(self) -> None:
        """Refuse a minimum length outside what the policy allows."""
        if not MIN_LENGTH_FLOOR <= self.min_length <= MAX_LENGTH:
            raise ConfigError(
                f"[policy] password_min_length: expected from {MIN_LENGTH_FLOOR} to "
                f"{MAX_LENGTH}, got {self.min_length}"
            )


def check_password(password: str, context: PasswordContext) -> str:
    """Return the NFKC form of ``password`` to set, or raise ``InvalidInputError`` saying why not.

    The reason never quotes the password.
    """
    if not password:
        raise InvalidInputError("the password is empty")
    normalized = unicodedata.normalize("NFKC", password)
    folded = _fold(normalized)
    problem = (
        _character_problem(password)
        or _character_problem(normalized)
        or _substance_problem(password)
        or _substance_problem(normalized)
        or _length_problem(password, normalized, context.min_length)
        or _common_problem(folded)
        or _pattern_problem(folded)
        or _personal_problem(folded, context)
    )
    if problem:
        raise InvalidInputError(problem)
    return normalized


def is_common(password: str) -> bool:
    """Whether ``password`` is in the common list, or is one of its entries with digits or symbols around."""
    return _common_problem(_fold(unicodedata.normalize("NFKC", password))) is not None


def describe_rules(min_length: int) -> str:
    """The rules in one sentence, to show before asking for a password."""
    return (
        f"at least {min_length} characters besides spaces (at most {MAX_LENGTH} in all); spaces "
        "and any letters are welcome; not a commonly used password, and nothing of your name "
        "or identifier"
    )


def _fold(text: str) -> str:
    """Lower-case ``text`` and take its accents off, so that ``Éloïse`` matches ``eloise``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def _character_problem(text: str) -> str | None:
    for char in text:
        kind = _FORBIDDEN_CATEGORIES.get(unicodedata.category(char))
        if kind is None and char in _INVISIBLE:
            kind = "an invisible character"
        if kind:
            return f"the password contains {kind} (U+{ord(char):04X}); use visible characters only"
    return None


def _substance_problem(password: str) -> str | None:
    kept = [char for char in password if not char.isspace()]
    if not kept:
        return "the password is only spaces"
    if all(
        unicodedata.category(char) in _MARK_CATEGORIES or char in _PRESENTATION_SELECTORS
        for char in kept
    ):
        return "the password is only combining marks, with no letter or sign to carry them"
    return None


def counted_length(text: str) -> int:
    """The code points of ``text`` that count towards the minimum: not spaces nor selectors."""
    return sum(not char.isspace() and char not in _PRESENTATION_SELECTORS for char in text)


def _length_problem(password: str, normalized: str, min_length: int) -> str | None:
    # Both forms must be long enough: NFKC may expand one character into many (U+FDFA gives
    # 18) or fold several into one (e + U+0301 gives é).
    length = min(counted_length(password), counted_length(normalized))
    if length < min_length:
        return (
            f"the password is too short: at least {min_length} characters besides spaces, "
            f"it has {length}"
        )
    longest = max(len(password), len(normalized))
    if longest > MAX_LENGTH:
        return f"the password is too long: {longest} characters, at most {MAX_LENGTH}"
    return None


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The shipped list, read once on first use."""
    resource = importlib.resources.files("umacct") / "data" / COMMON_PASSWORDS_FILE
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UmacctError(
            f"the list of common passwords cannot be read (umacct/data/{COMMON_PASSWORDS_FILE}): "
            "the installation is incomplete"
        ) from exc
    return frozenset(text[_end_of_header(text) :].split())


def _end_of_header(text: str) -> int:
    """Where the entries start: the file opens with ``#`` comment lines, and has none after."""
    start = 0
    while text.startswith("#", start):
        start = text.find("\n", start) + 1 or len(text)
    return start


def _common_problem(folded: str) -> str | None:
    common = _common_passwords()
    compact, trimmed, core = _bare_forms(folded)
    if folded in common or compact in common:
        return "the password is in a list of commonly used passwords"
    if trimmed in common or core in common:
        return "the password is a commonly used password with digits or symbols added"
    return None


def _pattern_problem(folded: str) -> str | None:
    compact, trimmed, _ = _bare_forms(folded)
    for form in (compact, trimmed):
        if _is_repetition(form):
            return "the password is one short sequence repeated (like abcabcabc)"
        if _is_run(form):
            return "the password is a run of consecutive characters (like abcdef or 98765)"
    return None


def _bare_forms(folded: str) -> tuple[str, str, str]:
    """The password without spaces; then without the symbols around it; then letters only at its ends."""
    compact = _SPACES.sub("", folded)
    return compact, _EDGE_NON_ALNUM.sub("", compact), _EDGE_NON_LETTERS.sub("", compact)


def _is_repetition(text: str) -> bool:
    # A string is a repetition of a shorter unit exactly when it occurs inside itself doubled,
    # at an offset shorter than its length.
    return len(text) >= 2 and (text + text).find(text, 1) < len(text)


def _is_run(text: str) -> bool:
    steps = {_step(before, after) for before, after in itertools.pairwise(text)}
    return len(text) >= 3 and steps in ({1}, {-1})


def _step(before: str, after: str) -> int:
    # Digits wrap around, so that 7890123 reads as one run as people type it.
    if before in _ASCII_DIGITS and after in _ASCII_DIGITS:
        return (int(after) - int(before) + 5) % 10 - 5
    return ord(after) - ord(before)


def _personal_problem(folded: str, context: PasswordContext) -> str | None:
    for word, whose in _personal_words(context):
        if len(word) >= NAME_SUBSTRING_MIN:
            found = word in folded
        else:
            found = re.search(rf"(?<![^\W\d_]){re.escape(word)}(?![^\W\d_])", folded) is not None
        if found:
            return f"the password contains {whose} ({word})"
    return None


def _personal_words(context: PasswordContext) -> list[tuple[str, str]]:
    """The folded words of the person that a password must not hold, with what each one is."""
    local_part, _, domain = context.identifier.rpartition("@")
    if not local_part:
        local_part, domain = domain, ""
    domain_labels = domain.split(".")[:-1]
    sources = [
        ("your name", [context.given_name, context.surname], False),
        ("your identifier", [context.uid, local_part], True),
        ("part of your address", domain_labels, False),
    ]
    words: list[tuple[str, str]] = []
    seen: set[str] = set()
    for whose, texts, whole_too in sources:
        for text in texts:
            folded = _fold(text)
            candidates = _LETTER_RUNS.findall(folded)
            if whole_too:
                candidates.insert(0, folded)
            for word in candidates:
                if len(word) >= NAME_WORD_MIN and word not in seen:
                    seen.add(word)
                    words.append((word, whose))
    return words
