"""Headers that carry addresses: one address in, that one address read back (security.md 34)."""

from __future__ import annotations

import dataclasses
import email.policy
import re
import string
from collections.abc import Callable
from datetime import date
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from string import Template

import pytest
from command_line import umacct
from days import TODAY, clock_on
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from people import add_person, snapshot
from smtp_fixtures import SmtpTestServer

from umacct.config import MailConfig
from umacct.errors import ConfigError, InvalidInputError
from umacct.mail.compose import (
    OutgoingMessage,
    available_kinds,
    compose,
    load_template,
    sender_address,
)
from umacct.services.runtime import Runtime

CLOCK = clock_on(TODAY)
MAIL = MailConfig(from_="Comptes informatiques <comptes@umontpellier.fr>")
# One value for every placeholder any built-in template uses.
PARAMS = {
    "name": "Zoé Lefèvre",
    "account": "zoe.lefevre@umontpellier.fr",
    "address": "zoe@example.net",
    "expiry_date": "2026-11-26",
    "grace_end_date": "2027-06-30",
    "purge_date": "2026-12-26",
    "changed_date": "2025-08-01",
    "extendable": "yes",
    "link": "https://ent.example.org/activation?token=T0KEN",
    "link_validity_fr": "24 heures",
    "link_validity_en": "24 hours",
}
EXPECTED_HEADERS = ["Date", "From", "To", "Subject", "Message-ID", "Auto-Submitted", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]  # fmt: skip

# Every character of an unquoted local part (RFC 5322 atext) and the dot.
ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
# Pieces of RFC 2047 encoded words, so that the search meets whole ones, not only stray '='.
ENCODED_PIECES = st.sampled_from(
    ["=?", "?=", "=?utf-8?q?", "=?UTF-8?B?", "=?us-ascii?Q?", "=40", "=2C", "=3C", "=3E", "_",
     "=?utf-8?q?attacker=40evil.org=2C?=", "=?utf-8?b?YXR0YWNrZXJAZXZpbC5vcmcs?=",
     "=?utf-8?q?attacker=40evil.org=2C_?=", "=?utf-8?q?x=0D=0ABcc=3A_v=40evil.org?="]
)  # fmt: skip
LOCAL_PART = st.lists(
    st.one_of(st.text(alphabet=ATEXT, min_size=1, max_size=70), ENCODED_PIECES),
    min_size=1,
    max_size=8,
).map(".".join) | st.lists(
    st.one_of(st.text(alphabet=ATEXT, min_size=1, max_size=70), ENCODED_PIECES),
    min_size=1,
    max_size=8,
).map("".join)
ASCII_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
UNICODE_LABEL = st.text(
    st.characters(categories=["Ll", "Lu", "Lo", "Mn", "Nd"]), min_size=1, max_size=20
)
DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(st.one_of(ASCII_LABEL, UNICODE_LABEL), min_size=1, max_size=4),
    st.sampled_from(["fr", "org", "com", "рф", "中国", "xn--p1ai", "gouv.fr"]),
)
ADDRESS = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PART, DOMAIN),
    st.text(min_size=1, max_size=120),
)


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def composed(kind: str, to: str, config: MailConfig = MAIL) -> OutgoingMessage | None:
    """The message, or None when the address is refused (with a one-line reason)."""
    try:
        return compose(kind, to, PARAMS, config=config, clock=CLOCK)
    except InvalidInputError as exc:
        assert "\n" not in str(exc)
        return None


def assert_one_recipient(message: OutgoingMessage) -> None:
    """The To header, read by the email package and by its older parser, is the envelope."""
    data = message.data
    parsed = parse(data)
    assert sorted(parsed.keys()) == sorted(EXPECTED_HEADERS)
    to = parsed["To"]
    assert [address.addr_spec for address in to.addresses] == [message.recipient]
    assert [address.display_name for address in to.addresses] == [""]
    old = BytesParser(policy=email.policy.compat32).parsebytes(data)
    assert isinstance(old, Message)
    assert getaddresses(old.get_all("To", [])) == [("", message.recipient)]
    # Nothing in the raw line a reader could decode or split.
    [raw_to] = [line for line in data.split(b"\n") if line.startswith(b"To:")]
    assert raw_to == f"To: {message.recipient}".encode("ascii")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(address=ADDRESS)
def test_sec34_every_accepted_address_is_the_one_recipient_of_to(address: str) -> None:
    message = composed("activation", address)
    if message is not None:
        assert "=?" not in message.recipient
        assert_one_recipient(message)


@pytest.mark.parametrize(
    "address",
    [
        # The example: long enough to be folded, the word decoded into two addresses.
        "=?utf-8?q?attacker=40evil.org=2C_?=president@" + "e" * 50 + ".elysee.fr",
        # Short: read back as two addresses even unfolded.
        "=?utf-8?q?attacker=40evil.org=2C?=president@elysee.fr",
        "=?utf-8?b?YXR0YWNrZXJAZXZpbC5vcmcs?=president@elysee.fr",
        "x=?utf-8?q?a=40evil.org=3E=2C=3C?=president@" + "p" * 60 + ".fr",
        "=?us-ascii?Q?attacker=40evil.org?=@elysee.fr",
        "a.=?utf-8?q?b?=@example.org",
        "a=?b@example.org",
    ],
)
def test_sec34_encoded_words_in_a_recipient_are_refused(address: str) -> None:
    with pytest.raises(InvalidInputError, match="encoded word"):
        compose("activation", address, PARAMS, config=MAIL, clock=CLOCK)


@pytest.mark.parametrize(
    "address",
    [
        "?=zoe@example.org",  # '?=' alone starts nothing
        "a=b?c@example.org",
        "x" * 64 + "@" + ".".join(["d" * 63] * 2) + ".fr",  # long local part and domain
        "zoé@example.org".replace("é", "e") + "",
        "zoe@université.fr",  # a unicode domain is sent in its ASCII form
        "o'neil+tag@ex-ample.org",
    ],
)
def test_sec34_plain_addresses_long_or_unicode_still_go_out(address: str) -> None:
    message = composed("activation", address)
    assert message is not None
    assert_one_recipient(message)


def parameters_of(kind: str) -> dict[str, str]:
    """A value for every placeholder and block flag of the template ``kind``."""
    template = load_template(kind)
    text = f"{template.subject}\n{template.body}"
    values: dict[str, str] = {}
    for name in Template(text).get_identifiers():
        base = name.removesuffix("_fr").removesuffix("_en")
        if base.endswith("_date"):  # a date's _fr and _en forms come from the date itself
            values[base] = "2026-11-26"
        else:
            values[name] = PARAMS.get(name, "Zoé")
    values.update({flag: "yes" for flag in re.findall(r"\[\[/?([A-Za-z_]\w*)\]\]", text)})
    return values


@pytest.mark.parametrize("kind", available_kinds())
def test_sec34_every_kind_carries_one_recipient(kind: str) -> None:
    # The old-address notice, the forwarding confirmation and notice, and every other kind.
    params = parameters_of(kind)
    to = "x" * 60 + "@" + "d" * 60 + ".univ-exemple.fr"
    message = compose(kind, to, params, config=MAIL, clock=CLOCK)
    assert_one_recipient(message)
    with pytest.raises(InvalidInputError, match="encoded word"):
        compose(kind, "=?utf-8?q?a=40evil.org=2C?=b@example.org", params, config=MAIL, clock=CLOCK)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.lists(
        st.one_of(ENCODED_PIECES, st.text(min_size=1, max_size=30), st.just(" ")), max_size=8
    ).map("".join)
)
# The email package's folding lost the space of "𐀀 0" here (two encoded words joined).
@example(name=" =40=40000000\xa0\xa0\U00010000000000\xa0\xa0\U00010000 0\xa0")
def test_sec34_a_parameter_in_the_subject_adds_no_header_nor_address(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    # A site template may put a parameter in the Subject: an encoded word in it stays text.
    folder = tmp_path_factory.mktemp("templates")
    (folder / "note.txt").write_text("Subject: Bonjour $name\n\n$name\n", encoding="utf-8")
    config = dataclasses.replace(MAIL, templates_dir=str(folder))
    assume(name.strip())
    try:
        message = compose("note", "zoe@example.net", {"name": name}, config=config, clock=CLOCK)
    except InvalidInputError:
        return  # control characters and line breaks: security.md 13
    assert_one_recipient(message)
    subject = parse(message.data)["Subject"]
    if "=?" in name:
        assert subject == f"Bonjour {name}"
    else:  # folding may move whitespace, nothing more
        assert subject.split() == f"Bonjour {name}".split()


def test_sec34_an_encoded_header_in_a_subject_parameter_stays_text(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("Subject: Bonjour $name\n\n$name\n", encoding="utf-8")
    config = dataclasses.replace(MAIL, templates_dir=str(tmp_path))
    name = "=?utf-8?q?x=0D=0ABcc=3A_victim=40evil.org?="
    message = compose("note", "zoe@example.net", {"name": name}, config=config, clock=CLOCK)
    head = message.data.partition(b"\n\n")[0]
    assert b"Bcc" not in head and b"\r" not in head
    assert parse(message.data)["Subject"] == f"Bonjour {name}"
    assert_one_recipient(message)


@pytest.mark.parametrize(
    "from_",
    [
        "=?utf-8?q?a=40evil.org=2C?= <comptes@umontpellier.fr>",
        "Comptes <=?utf-8?q?a?=comptes@umontpellier.fr>",
    ],
)
def test_sec34_an_encoded_word_in_the_configured_from_is_refused(from_: str) -> None:
    with pytest.raises(ConfigError, match="=\\?"):
        sender_address(MailConfig(from_=from_))


def test_sec34_the_from_header_is_one_address() -> None:
    config = MailConfig(from_='"Comptes, DSI" <comptes@umontpellier.fr>')
    message = compose("activation", "zoe@example.net", PARAMS, config=config, clock=CLOCK)
    from_ = parse(message.data)["From"]
    assert [str(address.addr_spec) for address in from_.addresses] == ["comptes@umontpellier.fr"]
    assert message.sender == "comptes@umontpellier.fr"


# --- end to end: the address commands ----------------------------------------------------


@pytest.mark.usefixtures("directory_clean")
def test_sec34_an_encoded_word_address_is_refused_before_any_change(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "ines.faure")
    bad = "=?utf-8?q?attacker=40evil.org=2C?=president@elysee.fr"
    for args in (
        ("set-recovery", person.uid, bad),
        ("redirect", person.uid, bad),
        ("set-recovery", person.uid, bad, "--no-confirm", "--reason", "identity checked"),
        ("redirect", person.uid, bad, "--no-confirm", "--reason", "identity checked"),
    ):
        before = (snapshot(runtime, person), len(mail_relay.received))
        code, out, err = umacct(*args)
        assert code == 65, (args, out, err)
        assert "encoded word" in err
        assert (snapshot(runtime, person), len(mail_relay.received)) == before, args
