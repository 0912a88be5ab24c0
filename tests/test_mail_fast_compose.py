"""The composition's shortcuts give the bytes the plain way gave, message for message.

The references below are the composer's code before the shortcuts: ``string.Template`` on
the whole text, ``binascii.b2a_qp`` on the whole body (lines ending in a blank aside),
``format_datetime`` for each message and the ``From`` header built for each message.
"""

from __future__ import annotations

import binascii
import string
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from umacct.clock import FixedClock
from umacct.config import MailConfig
from umacct.errors import UmacctError
from umacct.mail import compose
from umacct.mail.compose import (
    Composer,
    MailTemplate,
    available_kinds,
    load_template,
    normalise_recipient,
    sender_address,
)

MAIL = MailConfig(from_="Comptes informatiques <comptes@umontpellier.fr>")


# --- the references ----------------------------------------------------------------------------


def reference_quoted_printable(body: str) -> bytes:
    """``b2a_qp`` of the whole body, but for the blanks ending a line (see ``_encoded_line``)."""
    lines = body.encode("utf-8").splitlines() or [b""]
    if any(line.endswith((b" ", b"\t")) for line in lines):
        return b"".join(compose._encoded_line(line) for line in lines)
    return binascii.b2a_qp(b"\n".join(lines) + b"\n", quotetabs=False, istext=True, header=False)


def reference_substitute(text: str, values: Mapping[str, str]) -> str:
    return string.Template(text).substitute(values)


def reference_render(template: MailTemplate, params: Mapping[str, str]) -> tuple[str, str]:
    values = compose._expanded_parameters(params)
    body = "\n".join(compose._kept_lines(template, values))
    return reference_substitute(template.subject, values), reference_substitute(body, values)


def reference_message(
    kind: str, to: str, params: Mapping[str, str], now: datetime, message_id: str
) -> bytes:
    recipient = normalise_recipient(to)
    sender = sender_address(MAIL)
    subject, body = reference_render(load_template(kind), params)
    head = "".join([
        f"Date: {format_datetime(now)}\n",
        compose._folded_header("From", str(sender)),
        f"To: {recipient}\n",
        compose._subject_header(subject),
        f"Message-ID: {message_id}\n",
        "Auto-Submitted: auto-generated\n",
        compose._BODY_HEADERS,
    ])  # fmt: skip
    return head.encode("ascii") + b"\n" + reference_quoted_printable(body)


def outcome(function: object, *args: object) -> tuple[str, object]:
    try:
        return "value", function(*args)  # type: ignore[operator]
    except (KeyError, ValueError, UmacctError) as exc:
        return type(exc).__name__, str(exc)


# --- quoted-printable, line by line ------------------------------------------------------------

# Whatever a line may hold: line ends of every kind, controls, '=' and blanks near the
# 76-character breaks, non-ASCII letters (several UTF-8 bytes, each one quoted).
LINE_PIECES = st.sampled_from([
    " ", "\t", "=", "==", "a", "Z", ".", "é", "€", "\u00a0", "\r", "\n", "\r\n", "\x0b",
    "\x0c", "\x1c", "\x85", "\u2028", "\x00", "\x7f", "$", "$name", "=3D", " \t", "x" * 70,
    "\U0001f600", "\ud800",
])  # fmt: skip
TEXT_LINES = st.lists(
    st.one_of(
        st.lists(LINE_PIECES, max_size=12).map("".join),
        st.text(max_size=200),
        st.integers(60, 90).flatmap(lambda n: st.just("y" * n) | st.just("é" * (n // 2))),
    ),
    max_size=12,
)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(lines=TEXT_LINES, others=TEXT_LINES, data=st.data())
@example(lines=[], others=[], data=None)
@example(lines=[""], others=[""], data=None)
@example(lines=["a" * 77 + " ", "a" * 76 + "\t", "a" * 75 + "=", "b" * 200], others=[], data=None)
def test_the_body_is_encoded_as_the_whole_body_was(
    lines: list[str], others: list[str], data: st.DataObject | None
) -> None:
    lines = [line for line in lines if encodable(line)]
    others = [line for line in others if encodable(line)]
    shared = data.draw(st.lists(st.sampled_from(lines))) if data and lines else []
    template_body = "\n".join([*others, *shared])
    body = "\n".join(lines) + ("\n" if data and data.draw(st.booleans()) else "")
    known = compose._static_lines(template_body)
    assert compose._quoted_printable(body, known) == reference_quoted_printable(body)
    assert compose._quoted_printable(body) == reference_quoted_printable(body)


@settings(max_examples=1500, deadline=None)
@given(lines=TEXT_LINES)
@example(lines=["a" * 77, "é" * 39, "a" * 75 + " ", "=" + "x" * 70 + " \t", ".", "x" * 75 + "."])
def test_the_body_is_quoted_printable_as_rfc_2045_asks(lines: list[str]) -> None:
    lines = [line for line in lines if encodable(line)]
    body = "\n".join(lines)
    encoded = compose._quoted_printable(body)
    assert binascii.a2b_qp(encoded) == b"\n".join(body.encode("utf-8").splitlines()) + b"\n"
    assert encoded.isascii()
    for line in encoded.split(b"\n"):
        assert len(line) <= 76  # the email package's policy wrote up to 78
        assert not line.endswith((b" ", b"\t"))
        assert line != b"."  # a line of one dot ends an SMTP message
        assert all(32 <= byte < 127 or byte == 9 for byte in line)


def test_the_known_lines_hold_no_placeholder() -> None:
    known = compose._static_lines("Bonjour $name,\nà bientôt\n$$\nfin\r")
    assert set(known) == {"à bientôt".encode()}
    assert known["à bientôt".encode()] == b"=C3=A0 bient=C3=B4t\n"


# --- substitution from pieces found once -------------------------------------------------------

TEMPLATE_PIECES = st.sampled_from([
    "$name", "${name}", "$account", "${account}x", "$$", "$$name", "$", "$ ", "$1", "${",
    "${name", "${ name}", "$Name", "$NAME", "$_x", "$x_", "$é", "text ", "é", "\n", "}", "{",
    "$name$name", "$$$name", "$missing", "${missing}",
])  # fmt: skip
VALUES = st.dictionaries(
    st.sampled_from(["name", "account", "Name", "NAME", "_x", "x_"]),
    st.text(max_size=10) | st.sampled_from(["$name", "${account}", "$$"]),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(TEMPLATE_PIECES, max_size=12).map("".join), VALUES)
@example("Bonjour $name, $$5 pour ${account}.", {"name": "Zoé", "account": "z@u.fr"})
@example("$missing then $", {})
@example("$ then $missing", {})
def test_substitution_is_string_template(text: str, values: dict[str, str]) -> None:
    template = MailTemplate("note", "", "", "note.txt")
    fast = outcome(compose._substitute, template, text, values)
    slow = outcome(reference_substitute, text, values)
    if slow[0] == "KeyError":
        assert fast == ("InvalidInputError", f"mail 'note' needs parameter {slow[1]}")
    elif slow[0] == "ValueError":
        assert fast == ("ConfigError", f"note.txt: bad placeholder: {slow[1]}")
    else:
        assert fast == slow


# --- the Date line, once per second ------------------------------------------------------------

ZONES = st.sampled_from([
    None, UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(seconds=3601)), ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),
])  # fmt: skip


@st.composite
def instants(draw: st.DrawFn) -> list[datetime]:
    """Successive instants: some in the same second, some the same instant in other zones."""
    first = draw(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1)))
    zone = draw(ZONES)
    moments = [first.replace(tzinfo=zone)]
    for _ in range(draw(st.integers(1, 12))):
        last = moments[-1]
        step = draw(st.sampled_from(["micro", "second", "hour", "zone", "naive", "fold"]))
        if step == "micro":
            moments.append(last + timedelta(microseconds=draw(st.integers(0, 999_999))))
        elif step == "second":
            moments.append(last + timedelta(seconds=draw(st.integers(-2, 2))))
        elif step == "hour":  # across a change of summer time, as the case may be
            moments.append(last + timedelta(hours=draw(st.integers(-3, 3))))
        elif step == "zone" and last.tzinfo is not None:
            moments.append(last.astimezone(draw(ZONES) or UTC))
        elif step == "naive":
            moments.append(last.replace(tzinfo=draw(ZONES)))
        else:
            moments.append(last.replace(fold=1 - last.fold))
    return moments


@settings(max_examples=800, deadline=None)
@given(instants())
@example(
    [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris")),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris")),
        datetime(2026, 10, 25, 2, 30, 0, 5, tzinfo=ZoneInfo("Europe/Paris"), fold=0),
        datetime(2026, 10, 25, 2, 30, 0, 6, tzinfo=ZoneInfo("Europe/Paris"), fold=1),
        datetime(2026, 10, 25, 2, 30, 0, 7),
    ]
)
def test_the_date_line_is_format_datetime_of_each_instant(moments: list[datetime]) -> None:
    composer = Composer(MAIL, FixedClock(datetime.now(UTC)))
    for moment in moments:
        assert composer._date_header(moment) == f"Date: {format_datetime(moment)}\n"


# --- no line break: one search instead of a loop -----------------------------------------------


def test_the_forbidden_characters_are_searched_exactly() -> None:
    found = {chr(code) for code in range(0x110000) if compose._FORBIDDEN.search(chr(code))}
    assert found == compose._FORBIDDEN_CHARACTERS


# --- whole messages ----------------------------------------------------------------------------

TEXT = st.text(
    st.characters(exclude_categories=["Cc", "Cs"], exclude_characters="\u2028\u2029"),
    max_size=60,
) | st.sampled_from(["$name", "=?utf-8?q?x?=", "a" * 90, "Zoé Lefèvre", " trailing "])


def parameters_of(kind: str) -> st.SearchStrategy[dict[str, str]]:
    template = load_template(kind)
    flags = set(compose._BLOCK_MARKER.findall(template.body))
    names = set(string.Template(template.subject + "\n" + template.body).get_identifiers())
    plain: dict[str, st.SearchStrategy[str]] = {}
    days = st.dates(date(2000, 1, 1), date(2100, 12, 31)).map(date.isoformat)
    for name in names:
        if name.endswith(("_date_fr", "_date_en")):
            plain[name[:-3]] = days
        elif name.endswith("_date"):
            plain[name] = days
        else:
            plain[name] = TEXT
    for _, flag in flags:
        plain[flag] = st.sampled_from(["yes", "no"])
    return st.fixed_dictionaries(plain)


KINDS = available_kinds()


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_kind_is_composed_as_before(kind: str, data: st.DataObject) -> None:
    moments = data.draw(instants())
    addresses = st.sampled_from(["Zoe@Example.NET", "a.b@umontpellier.fr", "x+y@b.org"])
    recipients = data.draw(st.lists(addresses, min_size=len(moments), max_size=len(moments)))
    clock = MovingClock(moments)
    composer = Composer(MAIL, clock)  # one composer for the whole run, as a run has
    for moment, to in zip(moments, recipients, strict=True):
        params = data.draw(parameters_of(kind))
        clock.instant = moment
        message = composer.compose(kind, to, params)
        expected = reference_message(kind, to, params, moment, message.message_id)
        assert message.data == expected


class MovingClock:
    """A clock the test moves."""

    def __init__(self, moments: list[datetime]) -> None:
        self.instant = moments[0]

    def now(self) -> datetime:
        return self.instant
