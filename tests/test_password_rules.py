"""Passwords that look long and are not: spaces, separators, marks, NFKC expansion (security.md 36)."""

from __future__ import annotations

import dataclasses
import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY
from hypothesis import given, settings
from hypothesis import strategies as st
from people import NEW_PASSWORD, add_person, snapshot, token_in_mail
from smtp_fixtures import SmtpTestServer

from umacct.errors import InvalidInputError
from umacct.passwords import MAX_LENGTH, PasswordContext, check_password
from umacct.services.runtime import Runtime

ZOE = PasswordContext(
    identifier="zoe.quintard@etu.univ-exemple.fr",
    uid="e2107345",
    given_name="Zoé",
    surname="Quintard",
    min_length=12,
)
# Every code point Python calls a space (str.isspace), and every combining mark.
SPACES = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
MARKS = [
    chr(code)
    for code in range(sys.maxunicode + 1)
    if unicodedata.category(chr(code)) in ("Mn", "Mc", "Me")
]
# Characters NFKC turns into several (U+FDFA gives 18 code points).
EXPANDING = [
    chr(code)
    for code in range(sys.maxunicode + 1)
    if len(unicodedata.normalize("NFKC", chr(code))) > 1
    and unicodedata.category(chr(code)) not in ("Cs", "Cn")
]
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"}


def counted(text: str) -> int:
    return sum(not char.isspace() and char not in "\ufe0e\ufe0f" for char in text)


def refusal(password: str, ctx: PasswordContext = ZOE) -> str:
    with pytest.raises(InvalidInputError) as caught:
        check_password(password, ctx)
    return caught.value.message


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        (" " * 12, "only spaces"),
        (" " * 40, "only spaces"),
        ("\u00a0" * 12, "only spaces"),
        ("\u3000" * 12, "only spaces"),
        ("\u2003\u2009\u202f\u205f\u1680 " * 4, "only spaces"),
        ("\u0301" * 14, "only combining marks"),
        ("\u0301 \u0302 \u0303 \u0304 \u0305 \u0306 \u0307 \u0308 \u0309 \u030a \u030b \u030c", "only combining marks"),
        ("\u20dd" * 12, "only combining marks"),
        ("\ufe0f" * 12, "only combining marks"),
        ("\ufdfa", "too short: at least 12 characters besides spaces, it has 1"),
        ("\ufdfa\ufdfb", "too short: at least 12 characters besides spaces, it has 2"),
        ("tortue \ufdfa", "too short: at least 12 characters besides spaces, it has 7"),
        ("a b c d e f g h i j k", "too short: at least 12 characters besides spaces, it has 11"),
        ("    tortue  viole    ", "too short: at least 12 characters besides spaces, it has 11"),
        ("tortue violette\u2028sur le toit", "a line separator (U+2028)"),
        ("tortue violette\u2029sur le toit", "a paragraph separator (U+2029)"),
        ("tortue violette\x1b[31msur le toit", "a control character (U+001B)"),
        ("tortue violette\x9bsur le toit", "a control character (U+009B)"),
        ("\u3164" * 12, "an invisible character (U+3164)"),
        ("\uffa0" * 12, "an invisible character (U+FFA0)"),
        ("\u2800" * 12, "an invisible character (U+2800)"),
        ("tortue violette\u034fsur le toit", "an invisible character (U+034F)"),
        ("tortue violette\ufe00sur le toit", "an invisible character (U+FE00)"),
    ],
)  # fmt: skip
def test_sec36_passwords_that_only_look_long_are_refused(password: str, reason: str) -> None:
    message = refusal(password)
    assert reason in message
    assert password.strip() not in message or not password.strip()


def test_sec36_a_character_nfkc_expands_does_not_pass_for_many() -> None:
    # 18 code points once normalised, one as typed: too short for 12, whichever count.
    assert len(unicodedata.normalize("NFKC", "\ufdfa")) == 18
    assert "too short" in refusal("\ufdfa", dataclasses.replace(ZOE, min_length=8))
    # Twelve typed, all visible, each expanding: both counts reach 12, so it goes further.
    assert check_password("\u3392\u33a1 rue \u2474\u2475 \ufb01l \u33c4 ok", ZOE)


def test_sec36_emoji_and_spaced_passphrases_are_still_welcome() -> None:
    for password in (
        "tortue violette sur le toit",
        "\u2764\ufe0f\U0001f422\U0001f3e0 la tortue verte dort",
        "  deux espaces avant",
        "नमस्ते दुनिया मेरा घर",
    ):
        assert check_password(password, ZOE) == unicodedata.normalize("NFKC", password)


@settings(max_examples=500, deadline=None)
@given(
    password=st.text(max_size=300)
    | st.text(st.sampled_from(SPACES), max_size=60)
    | st.text(st.sampled_from(SPACES + MARKS), max_size=60)
    | st.text(st.sampled_from(SPACES + EXPANDING), max_size=14)
    | st.text(st.sampled_from([*SPACES, *MARKS, *EXPANDING, "a", "\u2028", "\u2029"]), max_size=30),
    min_length=st.integers(8, 64),
)
def test_sec36_what_is_accepted_is_long_enough_and_visible(password: str, min_length: int) -> None:
    ctx = dataclasses.replace(ZOE, min_length=min_length)
    normalized = unicodedata.normalize("NFKC", password)
    try:
        accepted = check_password(password, ctx)
    except InvalidInputError as refused:
        assert "\n" not in refused.message
        return
    assert accepted == normalized
    for text in (password, normalized):
        assert counted(text) >= min_length
        assert len(text) <= MAX_LENGTH
        assert not any(unicodedata.category(char) in FORBIDDEN_CATEGORIES for char in text)
        assert not all(char.isspace() or unicodedata.category(char)[0] == "M" for char in text)


@settings(max_examples=200, deadline=None)
@given(password=st.text(st.sampled_from(SPACES + MARKS), min_size=1, max_size=300))
def test_sec36_spaces_and_marks_alone_are_always_refused(password: str) -> None:
    refusal(password)


@pytest.mark.usefixtures("directory_clean")
def test_sec36_twelve_spaces_do_not_activate_an_account(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    today = on(TODAY)
    person = add_person(today, "noa.martel", awaiting_activation=True)
    assert umacct("activate", person.identifier)[0] == 0
    token = token_in_mail(mail_relay, "noa.martel@example.net", "activation")
    before = snapshot(today, person)
    for password in (" " * 12, "\u3000" * 16, "\ufdfa", "\u0301" * 20):
        code, out, err = umacct("--json", "activate", "--token", token, "--password-stdin", stdin=password + "\n")  # fmt: skip
        assert code == 65, err
        assert out == ""
        assert json.loads(err.strip().splitlines()[-1])["message"].startswith("the password is")
        assert not today.directory.check_password(person.dn, password)
    assert snapshot(today, person) == before
    done = umacct("activate", "--token", token, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert done[0] == 0, done[2]


def test_sec36_a_sign_that_nfkc_turns_into_a_space_and_a_mark_carries_nothing() -> None:
    """U+00B8 (cedilla) is a visible sign as typed, but NFKC makes it a space and a mark."""
    with pytest.raises(InvalidInputError, match="only combining marks"):
        check_password("\u00b8\u0591" + "\u0300" * 10, dataclasses.replace(ZOE, min_length=8))
