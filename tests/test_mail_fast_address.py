"""The address fast path (umacct/plain_address.py) gives email_validator's answer, or none.

Every address plain_address decides is compared with email_validator under every option set
the tool uses (and the library's loosest and strictest); the intake's and the mailer's checks
are compared whole (value or error message) with and without the fast path.
"""

from __future__ import annotations

import contextlib
import importlib
import string
from collections.abc import Iterator
from typing import Any
from unittest import mock

import email_validator
import pytest
from email_validator import EmailNotValidError
from hypothesis import example, given, settings
from hypothesis import strategies as st

from umacct import intake, plain_address
from umacct.config import MailConfig
from umacct.errors import UmacctError
from umacct.mail import compose
from umacct.plain_address import CASE_INSENSITIVE_MAILBOX_NAMES, SPECIAL_USE_DOMAIN_NAMES

# The module (its name is shadowed by the function in the package).
library_module = importlib.import_module("email_validator.validate_email")
OPTION_SETS: list[dict[str, Any]] = [
    # the intake's and the recipient's checks
    {"allow_smtputf8": False, "allow_quoted_local": False, "allow_domain_literal": False,
     "allow_display_name": False, "allow_empty_local": False},
    # the sender's check ([mail] from)
    {"allow_smtputf8": False},
    # the loosest and the strictest
    {"allow_smtputf8": True, "allow_quoted_local": True, "allow_domain_literal": True,
     "allow_display_name": True, "allow_empty_local": True, "test_environment": True,
     "globally_deliverable": False},
    {"strict": True},
]  # fmt: skip

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
LOOK_ALIKES = [
    "\u0430", "\u043e", "\u0435", "\u0440", "\u03bf",  # Cyrillic a, o, e, r; Greek omicron
    "\uff45", "\uff0e", "\u3002", "\uff61", "\uff20", "\ufe6b",  # full-width e, dots, at-signs
    "\u212a", "\u0131", "\u0130", "\u017f", "\u00df", "\ufb01",  # Kelvin, dotless i, long s...
    "\u0301", "\u0338", "\u200b", "\u200d", "\u202e", "\u00ad", "\u2024", "\u2488",
    "\u00e9", "e\u0301", "\u00a0", "\u2028", "\u0085",
]  # fmt: skip
HOSTILE = ['"', "\\", " ", "\t", "\r", "\n", "\r\n", "\0", "<", ">", "[", "]", ":", ";", ",",
           "(", ")", "@", "@@", ".", "..", "-", "--", "xn--", "=?", "\x7f"]  # fmt: skip
PIECES = st.sampled_from([*ATEXT, *LOOK_ALIKES, *HOSTILE, "a", "b", "Z", "0"])
TLDS = st.sampled_from(["org", "FR", "com", "Org", "c", "eu"]) | st.sampled_from([
    "x1", "1", "123", "a-b", "-a", "a-", "xn--p1ai",
    "xn--bcher-kva", "xn--a", "XN--P1AI", "ab--c", *SPECIAL_USE_DOMAIN_NAMES, "LOCALHOST",
    "Test", "example", "arpa", "in-addr.arpa", "onion.", "\u0440\u0444", "\uff4f\uff52\uff47",
    "org\u3002",
])  # fmt: skip


# Ordinary labels: letters and digits, a hyphen inside at most.
LABELS = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9]{0,20}-?[A-Za-z0-9]{1,20})?", fullmatch=True)


def _label(size: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(string.ascii_letters + string.digits + "-"), min_size=0,
                   max_size=size)  # fmt: skip


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Mostly near the common shape, with hostile pieces, lengths and look-alikes mixed in."""
    atom = st.text(st.sampled_from(ATEXT), min_size=draw(st.sampled_from([0, 1, 1, 1])),
                   max_size=draw(st.sampled_from([8, 30, 70])))  # fmt: skip
    local = ".".join(draw(st.lists(atom, min_size=1, max_size=4)))
    if draw(st.integers(0, 9)) == 0:
        local = draw(st.sampled_from([*CASE_INSENSITIVE_MAILBOX_NAMES, "PostMaster", "NOC"]))
    label = draw(st.sampled_from([_label(10), _label(70), LABELS, LABELS]))
    domain = ".".join([*draw(st.lists(label, min_size=1, max_size=5)), draw(TLDS)])
    if draw(st.integers(0, 9)) == 0:  # a long domain: 253 characters and around
        domain = ".".join(["a" * 63] * 3 + ["b" * draw(st.integers(55, 64)), "org"])[-260:]
        domain = domain.lstrip(".-")
    address = f"{local}@{domain}"
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):  # a hostile piece put in
        piece = draw(PIECES)
        where = draw(st.integers(0, len(address)))
        cut = draw(st.integers(0, 1))
        address = address[:where] + piece + address[where + cut :]
    return address


def common_addresses() -> st.SearchStrategy[str]:
    """Addresses of the shape people give: the fast path must decide every one."""
    atom = st.text(st.sampled_from(string.ascii_letters + string.digits + "_+-"), min_size=1,
                   max_size=12)  # fmt: skip
    return st.builds(
        lambda atoms, labels, tld: f"{'.'.join(atoms)}@{'.'.join(labels)}.{tld}",
        st.lists(atom, min_size=1, max_size=3),
        st.lists(LABELS, min_size=1, max_size=3),
        st.sampled_from(["org", "fr", "COM", "net", "eu", "de", "io", "ac.uk", "gouv.fr"]),
    ).filter(lambda address: address.split("@")[0].lower() not in CASE_INSENSITIVE_MAILBOX_NAMES)


def library_answers(address: str) -> Iterator[tuple[str | None, str] | None]:
    """email_validator's ASCII and normalised forms under each option set (None: refused)."""
    for options in OPTION_SETS:
        try:
            valid = email_validator.validate_email(address, check_deliverability=False, **options)
        except EmailNotValidError:
            yield None
        else:
            yield valid.ascii_email, valid.normalized


@settings(max_examples=3000, deadline=None)
@given(st.one_of(addresses(), st.text(max_size=80), st.lists(PIECES, max_size=40).map("".join)))
@example("Zoe.Lefevre@Example.ORG")
@example("postmaster@example.org")
@example("a@b.test")
@example("a@B.LOCAL")
@example("a@xn--p1ai.org")
@example("a@b--c.org")
@example("a@b.c1")
@example("a@b.org.")
@example("a@-b.org")
@example("a@b-.org")
@example("a..b@b.org")
@example(".a@b.org")
@example("a.@b.org")
@example('"a"@b.org')
@example("a@[1.2.3.4]")
@example("A <a@b.org>")
@example("a@b.org\n")
@example("a@b.\u043erg")
@example("a@b\uff0eorg")
@example("a@\u212aelvin.org")
@example("a\u0301@b.org")
@example(f"{'a' * 64}@b.org")
@example(f"{'a' * 65}@b.org")
@example(f"a@{'b' * 63}.org")
@example(f"a@{'b' * 64}.org")
@example(f"{'a' * 64}@{'.'.join(['b' * 61] * 3)}.org")
@example(f"a@{'.'.join(['b' * 62] * 4)}.o")
@example(f"a@{'.'.join(['b' * 62] * 4)}.or")
def test_plain_address_is_the_library_answer(address: str) -> None:
    fast = plain_address.plain_address(address)
    if fast is not None:
        assert list(library_answers(address)) == [(fast, fast)] * len(OPTION_SETS), address


@settings(max_examples=500, deadline=None)
@given(common_addresses())
def test_the_common_addresses_take_the_fast_path(address: str) -> None:
    fast = plain_address.plain_address(address)
    assert fast is not None, address
    assert list(library_answers(address)) == [(fast, fast)] * len(OPTION_SETS)


def test_the_copied_lists_are_the_library_ones() -> None:
    assert set(library_module.CASE_INSENSITIVE_MAILBOX_NAMES) == CASE_INSENSITIVE_MAILBOX_NAMES
    assert tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES) == SPECIAL_USE_DOMAIN_NAMES


def test_a_changed_library_list_is_followed() -> None:
    assert plain_address.plain_address("a@b.example") == "a@b.example"
    with mock.patch.object(email_validator, "SPECIAL_USE_DOMAIN_NAMES", ["example"]):
        assert plain_address.plain_address("a@b.example") is None
    with mock.patch.object(library_module, "CASE_INSENSITIVE_MAILBOX_NAMES", ["hello"]):
        assert plain_address.plain_address("Hello@b.org") is None
        assert plain_address.plain_address("Postmaster@b.org") == "Postmaster@b.org"


@contextlib.contextmanager
def slow_path() -> Iterator[None]:
    """Every address through email_validator, as before the fast path."""
    with (
        mock.patch.object(intake, "plain_address", lambda _: None),
        mock.patch.object(compose, "plain_address", lambda _: None),
    ):
        yield


def outcome(check: Any, address: str) -> tuple[str, str]:
    try:
        return "value", check(address)
    except UmacctError as exc:
        return type(exc).__name__, exc.message


def sender(address: str) -> str:
    compose._sender_address.cache_clear()
    return str(compose.sender_address(MailConfig(from_=f"Comptes <{address}>")))


CHECKS = [intake.validate_email, compose.normalise_recipient, sender]


@settings(max_examples=1500, deadline=None)
@given(st.one_of(addresses(), common_addresses()))
@example("  Zoe@Example.org ")
@example("Zoe@Example.org\r\nBcc: x@y.org")
@example("Zo\u0435@example.org")
def test_the_checks_answer_as_without_the_fast_path(address: str) -> None:
    fast = [outcome(check, address) for check in CHECKS]
    with slow_path():
        slow = [outcome(check, address) for check in CHECKS]
    assert fast == slow


@pytest.mark.parametrize("check", CHECKS)
def test_a_plain_address_needs_no_email_validator_import(check: Any) -> None:
    # The fast path does not touch the library: a run of plain addresses never imports it.
    with mock.patch.dict("sys.modules", {"email_validator": None}):
        compose._sender_address.cache_clear()
        assert outcome(check, "Zoe.Lefevre@Example.org")[0] == "value"
