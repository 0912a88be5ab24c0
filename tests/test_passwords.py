"""The password policy: length, characters, common passwords, names (security.md 8, 9, 11)."""

from __future__ import annotations

import dataclasses
import random
import secrets
import string
import unicodedata
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct import passwords
from umacct.errors import ConfigError, ExitCode, InvalidInputError, UmacctError
from umacct.passwords import MAX_LENGTH, PasswordContext, check_password, is_common

ZOE = PasswordContext(
    identifier="zoe.quintard@etu.univ-exemple.fr",
    uid="e2107345",
    given_name="Zoé",
    surname="Quintard",
    min_length=12,
)
COMMON = "the password is in a list of commonly used passwords"
DECORATED = "the password is a commonly used password with digits or symbols added"
REPEATED = "the password is one short sequence repeated (like abcabcabc)"
RUN = "the password is a run of consecutive characters (like abcdef or 98765)"
VISIBLE_TEXT = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Cn", "Zl", "Zp")).filter(
    lambda char: char not in passwords._INVISIBLE
)


def counted(text: str) -> int:
    """Code points that count towards the minimum: neither spaces nor emoji selectors."""
    return sum(not char.isspace() and char not in "\ufe0e\ufe0f" for char in text)


def context(**changes: Any) -> PasswordContext:
    return dataclasses.replace(ZOE, **changes)


def refusal(password: str, ctx: PasswordContext = ZOE) -> str:
    with pytest.raises(InvalidInputError) as caught:
        check_password(password, ctx)
    assert caught.value.exit_code is ExitCode.DATA_ERROR
    return caught.value.message


def random_passphrase(groups: int = 4) -> str:
    return "-".join(
        "".join(secrets.choice(string.ascii_lowercase) for _ in range(5)) for _ in range(groups)
    )


def list_entries() -> list[str]:
    text = (files("umacct") / "data" / passwords.COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def missing_list(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(passwords, "COMMON_PASSWORDS_FILE", "no-such-list.txt")
    passwords._common_passwords.cache_clear()
    yield
    passwords._common_passwords.cache_clear()


# --- empty and forbidden characters (11) ----------------------------------------------------


def test_sec11_empty_password_is_refused() -> None:
    assert refusal("") == "the password is empty"


@pytest.mark.parametrize(
    ("char", "reason"),
    [
        ("\x00", "a control character (U+0000)"),
        ("\r", "a control character (U+000D)"),
        ("\n", "a control character (U+000A)"),
        ("\t", "a control character (U+0009)"),
        ("\x7f", "a control character (U+007F)"),
        ("\x85", "a control character (U+0085)"),
        ("\u200b", "an invisible formatting character (U+200B)"),
        ("\u202e", "an invisible formatting character (U+202E)"),
        ("\ufeff", "an invisible formatting character (U+FEFF)"),
        ("\ud800", "a lone surrogate, which is not valid text (U+D800)"),
        ("\u0378", "a character that Unicode does not assign (U+0378)"),
    ],
)
def test_sec11_control_and_invisible_characters_are_refused(char: str, reason: str) -> None:
    password = f"tortue violette{char}sur le toit"
    message = refusal(password)
    assert message == f"the password contains {reason}; use visible characters only"
    assert "tortue" not in message


def test_sec11_spaces_and_letters_of_any_script_are_welcome() -> None:
    for password in (
        "Пароль из четырёх слов",
        "雨の日に猫が三匹踊る夜です",
        "  deux espaces avant",
    ):
        assert check_password(password, ZOE) == password


# --- length (8) -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(password=st.text(VISIBLE_TEXT, min_size=1, max_size=300), min_length=st.integers(8, 64))
def test_sec08_length_is_counted_in_nfkc_code_points(password: str, min_length: int) -> None:
    # Counted without spaces, both as typed and after NFKC (security.md 36).
    ctx = context(min_length=min_length)
    normalized = unicodedata.normalize("NFKC", password)
    length = min(counted(password), counted(normalized))
    longest = max(len(password), len(normalized))
    try:
        accepted = check_password(password, ctx)
    except InvalidInputError as refused:
        if refused.message.startswith("the password is only"):
            assert any(  # as typed, or once NFKC made a sign a space and a mark (U+00B8)
                all(c.isspace() or unicodedata.category(c)[0] == "M" for c in text)
                for text in (password, normalized)
            )
        elif length < min_length:
            expected = (
                f"the password is too short: at least {min_length} characters besides spaces, "
                f"it has {length}"
            )
            assert refused.message == expected
        elif longest > MAX_LENGTH:
            expected = f"the password is too long: {longest} characters, at most {MAX_LENGTH}"
            assert refused.message == expected
        else:
            assert "too short" not in refused.message
            assert "too long" not in refused.message
    else:
        assert min_length <= length
        assert longest <= MAX_LENGTH
        assert accepted == normalized


def test_sec08_a_300_character_password_is_refused_not_truncated() -> None:
    password = random_passphrase(groups=50)
    assert len(password) == 299
    assert refusal(password + "x") == "the password is too long: 300 characters, at most 256"


def test_sec08_the_longest_allowed_password_is_kept_whole() -> None:
    password = random_passphrase(groups=43)[:MAX_LENGTH]
    assert len(password) == MAX_LENGTH
    assert check_password(password, ZOE) == password


def test_sec08_compatibility_characters_count_after_normalisation() -> None:
    # 10 code points typed (spaces aside), 12 once the ligatures are unfolded: the smaller
    # count is the one that must reach the minimum (security.md 36).
    typed = "\ufb01xed \ufb02ags ok"
    assert refusal(typed, context(min_length=12)) == (
        "the password is too short: at least 12 characters besides spaces, it has 10"
    )
    assert check_password(typed, context(min_length=10)) == "fixed flags ok"


def test_sec08_combining_accents_count_once_composed() -> None:
    typed = "e\u0301te\u0301 chaud!"
    assert len(typed) == 12
    assert refusal(typed) == (
        "the password is too short: at least 12 characters besides spaces, it has 9"
    )


def test_sec08_the_nfkc_form_is_what_gets_set() -> None:
    fullwidth = (
        "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48\u00a0\uff52\uff4f\uff53\uff45\uff53"
    )
    assert check_password(fullwidth, ZOE) == "Fullwidth roses"


def test_sec08_minimum_length_is_configurable() -> None:
    strict = context(min_length=15)
    assert refusal("grue bleue 9471", strict) == (
        "the password is too short: at least 15 characters besides spaces, it has 13"
    )
    assert check_password("grue bleue 947 ocres", strict) == "grue bleue 947 ocres"


@pytest.mark.parametrize("min_length", [0, 7, MAX_LENGTH + 1])
def test_sec08_minimum_length_outside_the_policy_is_a_config_error(min_length: int) -> None:
    with pytest.raises(ConfigError, match="password_min_length"):
        context(min_length=min_length)


# --- common passwords and patterns (9) ------------------------------------------------------


def test_sec09_a_sample_of_the_list_is_refused() -> None:
    entries = list_entries()
    lenient = context(min_length=8)
    sample = random.Random(9).sample([e for e in entries if len(e) >= 8], 300)
    for entry in sample:
        assert refusal(entry, lenient) == COMMON
        assert refusal(entry.upper(), lenient) == COMMON
    for entry in (e for e in entries if len(e) >= 12):
        assert refusal(entry) == COMMON


@pytest.mark.parametrize(
    "password",
    ["Password2024!", "2024Dragon!!", "!!Sunshine!!2024", "Monkey 123456", "Pässwörd 2024!"],
)
def test_sec09_a_common_password_with_digits_or_symbols_added_is_refused(password: str) -> None:
    assert refusal(password) == DECORATED
    assert is_common(password)


def test_sec09_common_list_ignores_case_accents_and_spaces() -> None:
    assert is_common("password")
    assert is_common("PASSWORD")
    assert is_common("Pässwörd")
    assert is_common("i love you")
    assert refusal("Mot De Passe", context(min_length=8)) == COMMON


def test_sec09_an_uncommon_password_is_not_common() -> None:
    assert not is_common(random_passphrase())


@pytest.mark.parametrize(
    "password", ["abcabcabcabc", "aaaaaaaaaaaa", "mot-mot-mot-mot-", "xyzxyz xyzxyz"]
)
def test_sec09_a_short_sequence_repeated_is_refused(password: str) -> None:
    assert refusal(password) == REPEATED


@pytest.mark.parametrize(
    "password", ["abcdefghijkl", "zyxwvutsrqpo", "789012345678", "987654321098!"]
)
def test_sec09_a_run_of_consecutive_characters_is_refused(password: str) -> None:
    assert refusal(password) == RUN


# --- the person's names and identifier (9) --------------------------------------------------

JEAN_PIERRE = PasswordContext(
    identifier="jp.le-goff@univ-exemple.fr",
    uid="jplg29",
    given_name="Jean-Pierre",
    surname="Le Goff",
    min_length=12,
)


@pytest.mark.parametrize(
    ("ctx", "password", "reason"),
    [
        (ZOE, "Blue sky QUINTARD over hills", "your name (quintard)"),
        (ZOE, "ma tante Quïntàrd est là", "your name (quintard)"),
        (ZOE, "Zoé aime les grues bleues", "your name (zoe)"),
        (ZOE, "code e2107345 du semestre", "your identifier (e2107345)"),
        (ZOE, "la fac Univ-Exemple en juin", "part of your address (univ)"),
        (JEAN_PIERRE, "Pierre et le loup, opus 67", "your name (pierre)"),
        (JEAN_PIERRE, "un GOFF sur la grève du port", "your name (goff)"),
        (JEAN_PIERRE, "jplg29 ouvre la fenetre", "your identifier (jplg29)"),
    ],
)
def test_sec09_the_persons_names_and_identifier_are_refused(
    ctx: PasswordContext, password: str, reason: str
) -> None:
    assert refusal(password, ctx) == f"the password contains {reason}"


@settings(max_examples=100)
@given(
    name=st.sampled_from(["Éloïse", "Martin", "Lefèvre", "Nguyễn", "Ødegård"]),
    upper=st.lists(st.booleans(), min_size=8, max_size=8),
    position=st.sampled_from(["start", "middle", "end"]),
)
def test_sec09_a_name_is_found_whatever_its_case_accents_and_place(
    name: str, upper: list[bool], position: str
) -> None:
    ctx = context(given_name="Anne-Sophie", surname=name)
    written = "".join(c.upper() if up else c.lower() for c, up in zip(name, upper, strict=False))
    filler = "grues bleues du 9 mai"
    password = {
        "start": f"{written} {filler}",
        "middle": f"grues {written} bleues 9",
        "end": f"{filler}-{written}",
    }[position]
    folded = passwords._fold(name)
    assert refusal(password, ctx) == f"the password contains your name ({folded})"


def test_sec09_a_three_letter_name_counts_only_as_a_separate_word() -> None:
    luc = context(given_name="Luc", surname="Quintard")
    assert refusal("Luc-2024 ouvre la porte", luc) == "the password contains your name (luc)"
    assert check_password("lucky stars tonight", luc) == "lucky stars tonight"


def test_sec09_a_two_letter_surname_does_not_forbid_its_letters() -> None:
    li = PasswordContext("wei.li@example.org", "wli", "Wei", "Li", 12)
    assert check_password("little lime lizard", li) == "little lime lizard"
    assert check_password("li li la, tortue", li) == "li li la, tortue"


def test_sec09_strong_random_passphrases_are_accepted() -> None:
    for _ in range(50):
        password = random_passphrase()
        assert check_password(password, ZOE) == password
    for password in ("Tortue-violette 42 sur le toit", "quatre chats gris dansent sous la pluie"):
        assert check_password(password, ZOE) == password


@settings(max_examples=300)
@given(st.text(st.sampled_from(string.ascii_letters + string.digits + "!-_ "), min_size=12))
def test_sec09_a_reason_never_quotes_the_password(password: str) -> None:
    try:
        check_password(password, ZOE)
    except InvalidInputError as refused:
        assert password not in refused.message


# --- the shipped list -----------------------------------------------------------------------


def test_sec09_the_list_states_its_source_and_license() -> None:
    text = (files("umacct") / "data" / passwords.COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    header = text[: text.index("\n123456\n")]
    for fact in ("zxcvbn", "4.5.0", "frequency_lists.py", "License: MIT", "Permission is hereby"):
        assert fact in header


def test_sec09_list_entries_are_folded_and_unique() -> None:
    entries = list_entries()
    assert len(entries) == len(set(entries)) == 30000
    assert all(entry == passwords._fold(entry) and entry.split() == [entry] for entry in entries)


def test_a_missing_list_is_an_installation_error(missing_list: None) -> None:
    with pytest.raises(UmacctError, match="installation is incomplete"):
        is_common("anything at all")


def test_the_rules_tell_the_minimum_length() -> None:
    assert "at least 14 characters" in passwords.describe_rules(14)
