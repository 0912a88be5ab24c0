"""The common name's shortcut in clean_name gives the full check's answer.

Each character the shortcut lets through passes every check one by one; names of any kind,
hostile ones included, get the same value or the same error with and without the shortcut.
"""

from __future__ import annotations

import re
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

from umacct import identifiers
from umacct.errors import InvalidInputError
from umacct.identifiers import MAX_NAME_LENGTH, clean_name, confusable_scripts

PLAIN = [chr(code) for code in range(0x110000) if identifiers._PLAIN_NAME.fullmatch(chr(code))]


def test_each_plain_character_passes_every_check() -> None:
    assert len(PLAIN) == 258
    for character in PLAIN:
        assert character == " " or not character.isspace()
        assert identifiers.unicodedata.category(character) not in identifiers._REFUSED_CATEGORIES
        assert identifiers._is_name_character(character), character
        assert confusable_scripts(character) <= {"Latin"}, character


HOSTILE = [
    "\t", "\n", "\r", "\x00", "\x7f", "\x85", "\u00a0", "\u2028", "\u200b", "\u200d", "\u202e",
    "\ufeff", "\u0301", "\u0327", "\u0430", "\u0435", "\u03bf", "\u0391", "\uff21", "\uff0e",
    "\u0149", "\u017f", "\u0132", "\u013f", "\u02bc", "\u2010", "\u2014", "*", "(", "=", ",",
    ";", "+", "#", "\\", '"', "@", "_", "\u00aa", "\u00b5", "\u00d7", "\u00f7", "\u1e9e",
    "\U0001d400", "\u2160", "\u00bd", "\ud800", "\ue000",
]  # fmt: skip
NAMES = st.one_of(
    st.lists(st.sampled_from(PLAIN), max_size=40).map("".join),
    st.lists(st.sampled_from(PLAIN + HOSTILE), max_size=40).map("".join),
    st.text(max_size=40),
    st.integers(MAX_NAME_LENGTH - 3, MAX_NAME_LENGTH + 3).map(lambda n: "é" * n),
    st.integers(MAX_NAME_LENGTH - 3, MAX_NAME_LENGTH + 3).map(lambda n: " a" * n),
)
FULL_CHECK = re.compile("(?!)")  # matches nothing: every name takes the full check


def outcome(text: str) -> tuple[str, str]:
    try:
        return "value", clean_name(text, "given name")
    except InvalidInputError as exc:
        return "error", exc.message


@settings(max_examples=3000, deadline=None)
@given(NAMES)
@example("  Anne-Lætitia   d\u2019Étienne ")
@example("Jean\u0435")
@example("\u017fophie")
@example("")
@example("   ")
@example("a" * MAX_NAME_LENGTH)
@example("a" * (MAX_NAME_LENGTH + 1))
@example(" " + "a" * MAX_NAME_LENGTH + " ")
def test_clean_name_answers_as_the_full_check(text: str) -> None:
    fast = outcome(text)
    with mock.patch.object(identifiers, "_PLAIN_NAME", FULL_CHECK):
        full = outcome(text)
    assert fast == full
