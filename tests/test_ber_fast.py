"""The adds, modifies and messages an intake encodes by the thousand, built piece by piece in
one join: the very bytes of the nested elements (``tlv`` within ``tlv``), as ldap3 reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ldap3.protocol.rfc4511 import LDAPMessage
from pyasn1.codec.ber import decoder

from umacct.directory import ber
from umacct.directory.ber import _parsed_filter
from umacct.directory.escape import AnyEqual, filter_eq, filter_or

# Short, long-form (128 bytes and more, 256 and more) and non-ASCII values.
texts = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=100, max_size=300),
    st.integers(0, 70_000).map(lambda size: "é" * size),
)
names = st.one_of(st.sampled_from(["uid", "mail", "2.5.4.3", "cn;lang-fr"]), texts)
attributes = st.dictionaries(names, st.lists(texts, max_size=4), max_size=6)
operations = st.sampled_from(sorted(ber.MODIFY_OPERATIONS))
changes = st.lists(st.tuples(operations, names, st.lists(texts, max_size=3)), max_size=5)


def nested_add(dn: str, attrs: Mapping[str, Sequence[str]]) -> bytes:
    """The AddRequest as the element-by-element encoder built it before."""
    encoded = b"".join(nested_attribute(name, values) for name, values in attrs.items())
    return ber.tlv(ber.ADD_REQUEST, octets(dn) + ber.tlv(ber.SEQUENCE, encoded))


def nested_attribute(name: str, values: Sequence[str]) -> bytes:
    value_set = ber.tlv(ber.SET, b"".join(octets(value) for value in values))
    return ber.tlv(ber.SEQUENCE, octets(name) + value_set)


def nested_modify(dn: str, items: Sequence[tuple[str, str, Sequence[str]]]) -> bytes:
    encoded = b"".join(
        ber.tlv(
            ber.SEQUENCE,
            ber.tlv(ber.ENUMERATED, bytes((ber.MODIFY_OPERATIONS[operation],)))
            + nested_attribute(name, values),
        )
        for operation, name, values in items
    )
    return ber.tlv(ber.MODIFY_REQUEST, octets(dn) + ber.tlv(ber.SEQUENCE, encoded))


def nested_message(message_id: int, operation: bytes, controls: Sequence[bytes]) -> bytes:
    number = message_id.to_bytes(message_id.bit_length() // 8 + 1, "big")
    content = ber.tlv(ber.INTEGER, number) + operation
    if controls:
        content += ber.tlv(0xA0, b"".join(controls))
    return ber.tlv(ber.SEQUENCE, content)


def octets(text: str) -> bytes:
    return ber.tlv(ber.OCTET_STRING, text.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(dn=texts, attrs=attributes)
@example(dn="uid=a,dc=org", attrs={})
@example(dn="x" * 127, attrs={"a": ["b" * 127]})
@example(dn="x" * 128, attrs={"a": ["b" * 128], "c": [""]})
@example(dn="é" * 40_000, attrs={"a": ["b" * 70_000]})
def test_an_add_is_the_nested_elements_bytes(dn: str, attrs: dict[str, list[str]]) -> None:
    assert ber.add_request(dn, attrs) == nested_add(dn, attrs)


@settings(max_examples=200, deadline=None)
@given(dn=texts, items=changes)
@example(dn="uid=a,dc=org", items=[("delete", "pwdEndTime", [])])
def test_a_modify_is_the_nested_elements_bytes(
    dn: str, items: list[tuple[str, str, list[str]]]
) -> None:
    assert ber.modify_request(dn, items) == nested_modify(dn, items)


@settings(max_examples=200, deadline=None)
@given(
    message_id=st.integers(0, 2**31 - 1),
    operation=st.binary(max_size=300),
    controls=st.lists(st.binary(max_size=200), max_size=3),
)
@example(message_id=127, operation=b"", controls=[])
@example(message_id=128, operation=b"x" * 120, controls=[b"y" * 10])
def test_a_message_is_the_nested_elements_bytes(
    message_id: int, operation: bytes, controls: list[bytes]
) -> None:
    assert ber.message(message_id, operation, controls) == nested_message(
        message_id, operation, controls
    )


@settings(max_examples=100, deadline=None)
@given(message_id=st.integers(1, 2**31 - 1), dn=texts, attrs=attributes)
def test_ldap3_reads_the_add_as_sent(message_id: int, dn: str, attrs: dict[str, list[str]]) -> None:
    raw = ber.message(message_id, ber.add_request(dn, attrs))
    decoded, rest = decoder.decode(raw, asn1Spec=LDAPMessage())
    assert rest == b""
    assert int(decoded["messageID"]) == message_id
    add = decoded["protocolOp"].getComponent()
    assert bytes(add["entry"]) == dn.encode()
    read = {
        bytes(attribute["type"]).decode(): [bytes(value).decode() for value in attribute["vals"]]
        for attribute in add["attributes"]
    }
    assert read == attrs


def test_a_lone_surrogate_is_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        ber.add_request("uid=a", {"cn": ["\udc80"]})
    with pytest.raises(UnicodeEncodeError):
        ber.add_request("uid=\ud800", {})
    with pytest.raises(KeyError):
        ber.modify_request("uid=a", [("increment", "n", ["1"])])


# --- filters: the flat AND / OR of plain equalities, read in one pass --------------------------

FILTER_TEXT = st.lists(st.sampled_from([*"()|&!=*\\<>~:a;é \x00\udc80", "uid", "5c"])).map("".join)
PLAIN = st.text(st.characters(blacklist_characters="()*\\"), max_size=6)
FLAT = st.builds(
    lambda kind, items: f"({kind}{''.join(f'({name}={value})' for name, value in items)})",
    st.sampled_from(["|", "&", "!", ""]),
    st.lists(st.tuples(PLAIN, PLAIN), max_size=5),
)


@settings(max_examples=1000, deadline=None)
@given(text=FILTER_TEXT | FLAT)
@example(text="(|(uid=a)(mail=b@c))")
@example(text="(&(uid=a))")
@example(text="(|(uid=a)(mail>=b))")
@example(text="(|(uid=a)(mail=b*))")
@example(text="(|(uid=a)(mail=\\2a))")
@example(text="(|(uid==a)(x=))")
@example(text="(|(uid=a)(:x=b))")
@example(text="(|(uid=\udc80))")
@example(text="(|)")
@example(text="(|(&=))")  # an operator where an attribute starts: the parser refuses
@example(text="(&(!a=b))")
@example(text="(|(a|b=c))")
@example(text="(|(uid=a))x")
def test_a_flat_filter_is_the_parser_s_bytes(text: str) -> None:
    try:
        expected: object = _parsed_filter(text)
    except (ValueError, UnicodeEncodeError) as error:
        expected = type(error)
    try:
        got: object = ber.encode_filter(text)
    except (ValueError, UnicodeEncodeError) as error:
        got = type(error)
    assert got == expected


def test_a_long_look_up_filter_is_read_in_one_pass() -> None:
    text = filter_or(*(filter_eq("supannMailPerso", f"p{n}@example.org") for n in range(3000)))
    assert ber.encode_filter(text) == _parsed_filter(text)


# --- equality tests kept as values (escape.AnyEqual), encoded without a filter string -----------

ATTRIBUTE_NAMES = st.sampled_from(["uid", "mail", "supannRefId", "2.5.4.3", "cn;lang-fr", "a-b"])


@settings(max_examples=500, deadline=None)
@given(tests=st.lists(st.tuples(ATTRIBUTE_NAMES, texts), min_size=1, max_size=6))
@example(tests=[("uid", "a")])
@example(tests=[("uid", "(x=*)"), ("mail", "\\2a\x00")])
@example(tests=[("mail", "é" * 200), ("uid", "")])
def test_equality_tests_encode_as_their_filter_text_does(tests: list[tuple[str, str]]) -> None:
    filter_ = AnyEqual(tests)
    assert str(filter_) == filter_or(*(filter_eq(name, value) for name, value in tests))
    assert ber.equality_or(filter_.tests) == ber.encode_filter(str(filter_))


@pytest.mark.parametrize("name", ["", "uid=", "(uid", "u id", "1uid", "uid;"])
def test_equality_tests_refuse_a_name_a_filter_would_refuse(name: str) -> None:
    with pytest.raises(ValueError, match="attribute"):
        filter_eq(name, "a")
    with pytest.raises(ValueError, match="attribute"):
        AnyEqual([("uid", "a"), (name, "b")])


def test_equality_tests_need_one_test_at_least() -> None:
    with pytest.raises(ValueError):
        AnyEqual([])


def test_equality_tests_take_text_values_only() -> None:
    with pytest.raises(TypeError, match="uid is bytes"):
        AnyEqual([("mail", "a@b"), ("uid", b"a")])  # type: ignore[list-item]
