"""RFC 4515 / RFC 4514 escaping and the filter builders (security requirement 16)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ldap3.operation.search import compile_filter, parse_filter
from ldap3.utils.dn import parse_dn as ldap3_parse_dn

from umacct.directory.escape import (
    check_attribute_name,
    dn_join,
    escape_dn_value,
    escape_filter_value,
    filter_and,
    filter_eq,
    filter_ge,
    filter_le,
    filter_not,
    filter_or,
    filter_present,
    parse_dn,
    rdn_value,
)

# Strings that UTF-8 can encode: no lone surrogates.
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]))
nonempty_texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1)
EDGE_CASES = [
    " ",
    "  ",
    " a",
    "a ",
    "\x00",
    "*)(uid=*",
    "#",
    "#a",
    "a#",
    ",",
    "+",
    "\\",
    "=",
    "é",
    "a\nb",
]
PARENT = "ou=people,dc=example,dc=org"


def decode_filter_value(escaped: str) -> bytes:
    r"""Independent RFC 4515 decoder: ``\XX`` is a byte, anything else is its UTF-8 form."""
    out = bytearray()
    pos = 0
    while pos < len(escaped):
        if escaped[pos] == "\\":
            out.append(int(escaped[pos + 1 : pos + 3], 16))
            pos += 3
        else:
            out += escaped[pos].encode("utf-8")
            pos += 1
    return bytes(out)


def decode_dn_value(escaped: str) -> str:
    r"""Independent RFC 4514 decoder of one value: ``\XX`` is a byte, ``\c`` is ``c``."""
    out = bytearray()
    pos = 0
    while pos < len(escaped):
        if escaped[pos] == "\\":
            pair = escaped[pos + 1 : pos + 3]
            if re.fullmatch(r"[0-9a-fA-F]{2}", pair):
                out.append(int(pair, 16))
                pos += 3
                continue
            out += escaped[pos + 1].encode("utf-8")
            pos += 2
        else:
            out += escaped[pos].encode("utf-8")
            pos += 1
    return out.decode("utf-8")


def without_escapes(escaped: str, pattern: str) -> str:
    return re.sub(pattern, "", escaped)


# --- filter values ------------------------------------------------------------------------


@given(texts)
@example("")
@example("*)(uid=*")
@example(" leading and trailing ")
@example("\x00")
def test_filter_value_round_trips(value: str) -> None:
    assert decode_filter_value(escape_filter_value(value)) == value.encode("utf-8")


@given(st.binary())
@example(b"\xff\xfe")
@example(b"\xc3")
def test_filter_value_round_trips_any_bytes(value: bytes) -> None:
    escaped = escape_filter_value(value)
    escaped.encode("utf-8")  # always valid text, even from non-UTF-8 bytes
    assert decode_filter_value(escaped) == value


@given(st.one_of(texts, st.binary()))
def test_filter_value_has_no_unescaped_special(value: str | bytes) -> None:
    rest = without_escapes(escape_filter_value(value), r"\\[0-9a-f]{2}")
    assert not set(rest) & set("\\*()\x00")
    escaped = escape_filter_value(value)
    assert not escaped[:1].isspace()
    assert not escaped[-1:].isspace()
    assert all(ch.isprintable() or ch.isspace() for ch in rest)


def test_filter_value_edge_cases_security_16() -> None:
    assert escape_filter_value("*)(uid=*") == r"\2a\29\28uid=\2a"
    assert escape_filter_value("\x00") == r"\00"
    assert escape_filter_value("a\\b") == r"a\5cb"
    assert escape_filter_value("") == ""
    assert escape_filter_value(" x ") == r"\20x\20"
    assert escape_filter_value(b"\xff") == r"\ff"
    assert escape_filter_value("é") == "é"


def test_filter_value_refuses_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        escape_filter_value("\ud800")


# --- filter builders, checked with ldap3's own filter parser --------------------------------


def parsed(search_filter: str) -> object:
    return parse_filter(search_filter, None, False, True, None, False).elements[0]


@given(st.sampled_from(["uid", "mail", "supannMailPerso", "2.5.4.3", "cn;lang-fr"]), texts)
@example("uid", "*)(uid=*")
@example("uid", "x)(|(objectClass=*)")
@example("cn", " spaced ")
@example("cn", "a>=b")
def test_filter_eq_cannot_be_injected_security_16(attribute: str, value: str) -> None:
    node = parsed(filter_eq(attribute, value))
    compiled = compile_filter(node)
    assert compiled.getName() == "equalityMatch"
    assert str(compiled["equalityMatch"]["attributeDesc"]) == attribute
    assert bytes(compiled["equalityMatch"]["assertionValue"]) == value.encode("utf-8")


@pytest.mark.parametrize(
    ("builder", "tag"), [(filter_le, "lessOrEqual"), (filter_ge, "greaterOrEqual")]
)
def test_ordering_builders(builder: object, tag: str) -> None:
    assert callable(builder)
    compiled = compile_filter(parsed(builder("pwdEndTime", "20240101000000Z")))
    assert compiled.getName() == tag
    assert bytes(compiled[tag]["assertionValue"]) == b"20240101000000Z"


@given(st.text())
@example("uid)(objectClass=*")
@example("uid=*")
@example("uid\n")
@example("")
@example("1.2.")
def test_hostile_attribute_names_are_refused_security_16(name: str) -> None:
    valid = re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*", name) or re.fullmatch(
        r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+(;[A-Za-z0-9-]+)*", name
    )
    if valid:
        assert filter_eq(name, "x") == f"({name}=x)"
    else:
        with pytest.raises(ValueError):
            filter_eq(name, "x")


def test_combinators() -> None:
    a, b = filter_eq("uid", "a"), filter_present("mail")
    assert filter_and(a, b) == "(&(uid=a)(mail=*))"
    assert filter_or(a, b) == "(|(uid=a)(mail=*))"
    assert filter_and(a) == a
    assert filter_not(b) == "(!(mail=*))"
    assert compile_filter(parsed(filter_and(a, filter_not(b)))).getName() == "and"


@pytest.mark.parametrize("part", ["uid=a", "(uid=a)(uid=b)", "(uid=a", "uid=a)", ")(", ""])
def test_combinators_refuse_raw_fragments(part: str) -> None:
    with pytest.raises(ValueError):
        filter_and(filter_eq("uid", "x"), part)
    with pytest.raises(ValueError):
        filter_not(part)


def test_combinators_refuse_nothing() -> None:
    with pytest.raises(ValueError):
        filter_and()
    with pytest.raises(ValueError):
        filter_or()


# --- DN values ----------------------------------------------------------------------------


@given(nonempty_texts)
def test_dn_value_round_trips(value: str) -> None:
    escaped = escape_dn_value(value)
    assert decode_dn_value(escaped) == value
    assert rdn_value(dn_join("uid", value, PARENT)) == value


@given(nonempty_texts)
def test_dn_value_has_no_unescaped_special_security_16(value: str) -> None:
    escaped = escape_dn_value(value)
    rest = without_escapes(escaped, r'\\([0-9a-f]{2}|[ "#+,;<=>\\])')
    assert not set(rest) & set('\\,+"<>;=\x00')
    if escaped.startswith((" ", "#")) or (escaped.endswith(" ") and not escaped.endswith("\\ ")):
        pytest.fail(f"unescaped leading/trailing character in {escaped!r}")


@pytest.mark.parametrize("value", EDGE_CASES)
def test_dn_value_edge_cases_agree_with_ldap3_parser(value: str) -> None:
    dn = dn_join("cn", value, PARENT)
    first = ldap3_parse_dn(dn, escape=False, strip=False)[0]
    assert first[0] == "cn"
    assert decode_dn_value(first[1]) == value
    assert parse_dn(dn)[1:] == ((("ou", "people"),), (("dc", "example"),), (("dc", "org"),))


def test_dn_value_edge_cases() -> None:
    assert escape_dn_value(" ") == "\\ "
    assert escape_dn_value(" a ") == "\\ a\\ "
    assert escape_dn_value("#a#") == "\\#a\\#"
    assert escape_dn_value("\x00") == "\\00"
    assert escape_dn_value("a,b+c") == "a\\,b\\+c"
    assert escape_dn_value('<"\\;>=') == '\\<\\"\\\\\\;\\>\\='


def test_dn_value_refuses_empty() -> None:
    with pytest.raises(ValueError):
        escape_dn_value("")
    with pytest.raises(ValueError):
        dn_join("uid", "", PARENT)


# --- DN parsing ---------------------------------------------------------------------------


def test_parse_dn() -> None:
    assert parse_dn("uid=a\\2cb\\ ,ou=people, dc=ex") == (
        (("uid", "a,b "),),
        (("ou", "people"),),
        (("dc", "ex"),),
    )
    assert parse_dn("cn=a+sn=b,dc=ex") == ((("cn", "a"), ("sn", "b")), (("dc", "ex"),))
    assert parse_dn("cn=\\c3\\a9t\\c3\\a9,dc=ex")[0] == (("cn", "été"),)
    assert parse_dn("2.5.4.3=x,dc=ex")[0] == (("2.5.4.3", "x"),)


@pytest.mark.parametrize(
    "dn",
    ["", " ", "uid", "uid=", "uid=a,", ",uid=a", "uid=a;b", "uid=#0403", "u id=a", "uid=a\\zz",
     "uid=\\ff", "uid=a\x00"],
)  # fmt: skip
def test_parse_dn_refuses_malformed(dn: str) -> None:
    with pytest.raises(ValueError):
        parse_dn(dn)


def test_rdn_value_refuses_multivalued_rdn() -> None:
    with pytest.raises(ValueError):
        rdn_value("cn=a+sn=b,dc=ex")


def test_dn_join_checks_its_parts() -> None:
    with pytest.raises(ValueError):
        dn_join("uid,ou=x", "a", PARENT)
    with pytest.raises(ValueError):
        dn_join("uid;binary", "a", PARENT)
    with pytest.raises(ValueError):
        dn_join("uid", "a", "not a dn")


def test_check_attribute_name() -> None:
    assert check_attribute_name("supannEtuId") == "supannEtuId"
    with pytest.raises(ValueError):
        check_attribute_name("cn;lang-fr", options=False)
    assert check_attribute_name("cn;lang-fr") == "cn;lang-fr"  # known valid with options only
    with pytest.raises(ValueError):
        check_attribute_name("cn;lang-fr", options=False)


@given(st.text(alphabet="aZ09-;.( é", max_size=8), st.booleans())
@example("cn;binary", False)
def test_an_attribute_name_checked_again_gets_the_same_answer(name: str, options: bool) -> None:
    """Valid names are remembered (a sweep checks the same few per account): never wrongly."""
    first: str | type[ValueError]
    try:
        first = check_attribute_name(name, options=options)
    except ValueError:
        first = ValueError
    for _ in range(2):
        if first is ValueError:
            with pytest.raises(ValueError):
                check_attribute_name(name, options=options)
        else:
            assert check_attribute_name(name, options=options) == name


def test_filter_prefix_escapes_the_prefix_and_keeps_one_wildcard() -> None:
    from umacct.directory.escape import filter_prefix

    assert filter_prefix("supannRessourceEtatDate", "{COMPTE}A:SupannSursis:") == (
        "(supannRessourceEtatDate={COMPTE}A:SupannSursis:*)"
    )
    assert filter_prefix("uid", "a*)(uid=") == r"(uid=a\2a\29\28uid=*)"
    with pytest.raises(ValueError, match="empty prefix"):
        filter_prefix("uid", "")
