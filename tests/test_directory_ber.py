"""The hand-made BER of the directory adapter, checked against ldap3's pyasn1 codec."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ldap3.operation.search import compile_filter, parse_filter
from ldap3.protocol.rfc4511 import LDAPMessage
from pyasn1.codec.ber import decoder, encoder

from umacct.directory import ber
from umacct.directory.escape import (
    filter_and,
    filter_eq,
    filter_ge,
    filter_le,
    filter_not,
    filter_or,
    filter_prefix,
    filter_present,
)

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
names = st.sampled_from(["uid", "mail", "supannMailPerso", "2.5.4.3", "cn;lang-fr", "X-a"])


def ldap3_ber(search_filter: str) -> bytes:
    node = parse_filter(search_filter, None, False, True, None, False).elements[0]
    return bytes(encoder.encode(compile_filter(node)))


def leaves() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(filter_eq, names, texts),
        st.builds(filter_ge, names, texts),
        st.builds(filter_le, names, texts),
        st.builds(filter_prefix, names, texts.filter(bool)),
        st.builds(filter_present, names),
    )


filters = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4).map(lambda parts: filter_and(*parts)),
        st.lists(inner, min_size=1, max_size=4).map(lambda parts: filter_or(*parts)),
        inner.map(filter_not),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(filters)
@example(filter_eq("uid", "*)(uid=*"))
@example(filter_eq("cn", " spaced \x00 \\ é "))
@example(filter_or(*(filter_eq("uid", f"u{n}") for n in range(600))))
def test_security_16_filters_encode_as_ldap3_encodes_them(search_filter: str) -> None:
    assert ber.encode_filter(search_filter) == ldap3_ber(search_filter)


def test_substrings_and_approximate_filters_encode_as_ldap3_does() -> None:
    for search_filter in ("(cn=*a*b*)", "(cn=a*b)", "(cn=*\\2a)", "(cn~=Jon)"):
        assert ber.encode_filter(search_filter) == ldap3_ber(search_filter)


@pytest.mark.parametrize(
    "broken",
    [
        "",
        "uid=a",
        "(uid=a",
        "(uid=a))",
        "(=a)",
        "(uid)",
        "(uid:dn:=a)",
        "(uid>=a*)",
        "(uid=a**b)",
        "(uid=\\zz)",
        "(uid=a\\)",
        "(uid=a(b)",
        "(&)",
        "(!(uid=a)(uid=b))",
    ],
)
def test_malformed_filters_are_refused(broken: str) -> None:
    with pytest.raises(ValueError, match="invalid filter"):
        ber.encode_filter(broken)


def test_search_request_is_what_ldap3_reads() -> None:
    request = ber.search_request(
        "ou=people,dc=example,dc=org", "one", ber.encode_filter("(uid=é*)"), ["uid", "mail"], 7
    )
    paging = ber.control("1.2.840.113556.1.4.319", False, ber.paged_results_value(50, b"\x01"))
    message, rest = decoder.decode(ber.message(9, request, [paging]), asn1Spec=LDAPMessage())
    assert rest == b""
    assert int(message["messageID"]) == 9
    search = message["protocolOp"].getComponent()
    assert bytes(search["baseObject"]) == b"ou=people,dc=example,dc=org"
    assert int(search["scope"]) == 1
    assert int(search["derefAliases"]) == 0
    assert int(search["sizeLimit"]) == 7
    assert [bytes(name) for name in search["attributes"]] == [b"uid", b"mail"]
    assert bytes(encoder.encode(search["filter"])) == ldap3_ber("(uid=é*)")
    [control] = message["controls"]
    assert str(control["controlType"]) == "1.2.840.113556.1.4.319"
    assert not control["criticality"]


def test_modify_and_delete_requests_are_what_ldap3_reads() -> None:
    changes = [("replace", "supannRessourceEtatDate", ["{COMPTE}G:x", "{MAIL}G:é"]),
               ("delete", "pwdEndTime", []), ("add", "mail", ["a@um.fr"])]  # fmt: skip
    assertion = ber.control("1.3.6.1.1.12", True, ber.encode_filter("(uid=a)"))
    message, rest = decoder.decode(
        ber.message(5, ber.modify_request("uid=a,dc=org", changes), [assertion]),
        asn1Spec=LDAPMessage(),
    )
    assert rest == b""
    modify = message["protocolOp"].getComponent()
    assert bytes(modify["object"]) == b"uid=a,dc=org"
    read = [
        (int(change["operation"]), bytes(change["modification"]["type"]),
         [bytes(value).decode() for value in change["modification"]["vals"]])
        for change in modify["changes"]
    ]  # fmt: skip
    assert read == [(2, b"supannRessourceEtatDate", ["{COMPTE}G:x", "{MAIL}G:é"]),
                    (1, b"pwdEndTime", []), (0, b"mail", ["a@um.fr"])]  # fmt: skip
    [control] = message["controls"]
    assert str(control["controlType"]) == "1.3.6.1.1.12" and control["criticality"]
    assert bytes(control["controlValue"]) == ldap3_ber("(uid=a)")
    deleted, rest = decoder.decode(
        ber.message(6, ber.delete_request("uid=é,dc=org")), asn1Spec=LDAPMessage()
    )
    assert rest == b""
    assert bytes(deleted["protocolOp"].getComponent()) == "uid=é,dc=org".encode()


def test_search_answers_are_decoded() -> None:
    # SearchResultEntry: dn "uid=a,dc=ex", uid: a, jpegPhoto: ff d8 (two attribute lists)
    attribute = ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, b"uid") + ber.tlv(ber.SET, (
        ber.tlv(ber.OCTET_STRING, b"a")
    )))  # fmt: skip
    photo = ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, b"jpegPhoto") + ber.tlv(ber.SET, (
        ber.tlv(ber.OCTET_STRING, b"\xff\xd8")
    )))  # fmt: skip
    entry = ber.tlv(
        ber.SEARCH_ENTRY,
        ber.tlv(ber.OCTET_STRING, "uid=à,dc=ex".encode())
        + ber.tlv(ber.SEQUENCE, attribute + photo),
    )
    decoded = ber.decode_message(ber.message(4, entry))
    assert (decoded.message_id, decoded.tag) == (4, ber.SEARCH_ENTRY)
    assert ber.decode_entry(decoded) == ("uid=à,dc=ex", {"uid": [b"a"], "jpegPhoto": [b"\xff\xd8"]})


def test_search_done_with_referral_and_paging_cookie() -> None:
    referral = ber.tlv(0xA3, ber.tlv(ber.OCTET_STRING, b"ldap://other/"))
    done = ber.tlv(
        ber.SEARCH_DONE,
        ber.tlv(ber.ENUMERATED, b"\x0a") + ber.tlv(ber.OCTET_STRING, b"")
        + ber.tlv(ber.OCTET_STRING, b"elsewhere") + referral,
    )  # fmt: skip
    paging = ber.control("1.2.840.113556.1.4.319", False, ber.paged_results_value(0, b"next"))
    other = ber.control("1.2.3.4", True)
    decoded = ber.decode_message(ber.message(5, done, [other, paging]))
    result = ber.decode_result(decoded)
    assert (result.code, result.diagnostic, result.referrals) == (
        10,
        "elsewhere",
        ("ldap://other/",),
    )
    controls = ber.decode_controls(decoded)
    assert controls == {
        "1.2.3.4": b"",
        "1.2.840.113556.1.4.319": ber.paged_results_value(0, b"next"),
    }
    assert ber.decode_paged_cookie(controls["1.2.840.113556.1.4.319"]) == b"next"


def test_transaction_requests_follow_rfc_5805() -> None:
    start = ber.decode_message(ber.message(2, ber.extended_request("1.3.6.1.1.21.1")))
    assert start.raw == bytes.fromhex("3015020102771080") + b"\x0e1.3.6.1.1.21.1"
    assert ber.end_transaction_value(True, b"") == bytes.fromhex("30020400")
    assert ber.end_transaction_value(False, b"7") == bytes.fromhex("3006010100040137")
    assert ber.control("1.3.6.1.1.21.2", True, b"") == bytes.fromhex(
        "3015040e312e332e362e312e312e32312e320101ff0400"
    )


@given(st.integers(0, 2**31 - 1))
def test_integers_are_minimal_and_positive(value: int) -> None:
    encoded = ber.message(value, ber.extended_request("1.2.3"))
    message, _ = decoder.decode(encoded, asn1Spec=LDAPMessage())
    assert int(message["messageID"]) == value


# --- the requests of the tool's own connection (binds, unbind, abandon, passwords) ------------


def test_bind_requests_are_what_ldap3_reads() -> None:
    simple, rest = decoder.decode(
        ber.message(1, ber.simple_bind_request("cn=umacct,dc=org", "pé s".encode())),
        asn1Spec=LDAPMessage(),
    )
    assert rest == b""
    bind = simple["protocolOp"].getComponent()
    assert int(bind["version"]) == 3
    assert bytes(bind["name"]) == b"cn=umacct,dc=org"
    assert bytes(bind["authentication"].getComponent()) == "pé s".encode()
    external, _ = decoder.decode(
        ber.message(1, ber.sasl_bind_request("EXTERNAL", b"")), asn1Spec=LDAPMessage()
    )
    sasl = external["protocolOp"].getComponent()
    assert bytes(sasl["name"]) == b""
    credentials = sasl["authentication"].getComponent()
    assert bytes(credentials["mechanism"]) == b"EXTERNAL"
    assert bytes(credentials["credentials"]) == b""


def test_unbind_and_abandon_are_what_ldap3_reads() -> None:
    unbind, _ = decoder.decode(ber.message(3, ber.UNBIND), asn1Spec=LDAPMessage())
    assert unbind["protocolOp"].getName() == "unbindRequest"
    abandon, _ = decoder.decode(ber.message(4, ber.abandon_request(300)), asn1Spec=LDAPMessage())
    assert abandon["protocolOp"].getName() == "abandonRequest"
    assert int(abandon["protocolOp"].getComponent()) == 300


def test_password_modify_value_follows_rfc_3062() -> None:
    value = ber.password_modify_value("uid=a,dc=org", b"new", b"old")
    assert value == bytes.fromhex("3018") + b"\x80\x0cuid=a,dc=org\x81\x03old\x82\x03new"
    assert ber.password_modify_value("uid=a", b"n", None) == b"\x30\x0a\x80\x05uid=a\x82\x01n"


@pytest.mark.parametrize(
    ("header", "size"),
    [(b"", None), (b"\x30", None), (b"\x30\x05", 7), (b"\x30\x82\x01", None),
     (b"\x30\x82\x01\x00", 260), (b"\x30\x84\x08\x00\x00\x00", 2**27 + 6)],
)  # fmt: skip
def test_a_message_size_is_known_from_its_header(header: bytes, size: int | None) -> None:
    assert ber.message_size(header) == size


def test_indefinite_or_huge_lengths_are_refused() -> None:
    for header in (b"\x30\x80", b"\x30\x85\x01\x00\x00\x00\x00"):
        with pytest.raises(ValueError, match="unsupported BER length"):
            ber.message_size(header)


def test_a_continuation_reference_is_decoded() -> None:
    urls = ber.tlv(ber.OCTET_STRING, b"ldap://a/ou=x??sub") + ber.tlv(
        ber.OCTET_STRING, b"ldap://b/"
    )
    message = ber.decode_message(ber.message(7, ber.tlv(ber.SEARCH_REFERENCE, urls)))
    assert ber.decode_references(message) == ("ldap://a/ou=x??sub", "ldap://b/")
