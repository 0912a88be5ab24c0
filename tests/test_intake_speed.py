"""The intake's and the sweep's fast paths give what the slow ones give, on any input at all:
filter and DN values kept as they are only when escaping would keep them, and a DN joined
under a parent parsed once."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from umacct.directory import escape
from umacct.directory.escape import (
    _escaped_dn_value,
    _escaped_filter_value,
    dn_join,
    escape_dn_value,
    escape_filter_value,
    parse_dn,
)

# Every code point (controls, NUL, lone surrogates, bidi, separators, unassigned), and the
# characters each escaping cares about.
SPECIALS = list('\\*()\x00,+"<>;=# \t\n\xa0\u2028\u2029\u202e\u200b\ufeff\udc80\ud800\U000e0001')
TEXT = st.text(st.characters(), max_size=12) | st.text(st.sampled_from([*SPECIALS, "a", "é"]))
PLAIN = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")))


def outcome(function: object, *args: object) -> tuple[str, object]:
    try:
        return "value", function(*args)  # type: ignore[operator]
    except ValueError as error:
        return "error", type(error)


@settings(max_examples=1000, deadline=None)
@given(value=TEXT | PLAIN)
@example(value="")
@example(value=" a")
@example(value="a ")
@example(value="\u3000a")
@example(value="{COMPTE}A:SupannActif:20300101:")
@example(value="uid=x,ou=people,dc=org")
@example(value="\ud800")
def test_a_filter_value_is_kept_only_when_escaping_keeps_it(value: str) -> None:
    assert outcome(escape_filter_value, value) == outcome(_escaped_filter_value, value)


@given(value=st.binary(max_size=12))
def test_bytes_still_take_the_byte_by_byte_path(value: bytes) -> None:
    assert escape_filter_value(value) == _escaped_filter_value(value)


@settings(max_examples=1000, deadline=None)
@given(value=(TEXT | PLAIN).filter(bool))
@example(value="#a")
@example(value="a#")
@example(value=" a")
@example(value="a ")
@example(value="jeanne.dupont12")
@example(value="\udc80")
def test_a_dn_value_is_kept_only_when_escaping_keeps_it(value: str) -> None:
    assert outcome(escape_dn_value, value) == outcome(_escaped_dn_value, value)


PARENTS = st.sampled_from(
    ["ou=people,dc=univ-exemple,dc=fr", "dc=org", " ou = a , dc=b", "o=\\2C x", "", "dc=", "x"]
) | st.text(st.sampled_from(list("=,+\\ a#")), max_size=10)


@settings(max_examples=500, deadline=None)
@given(value=TEXT.filter(bool), parent=PARENTS)
@example(value="a", parent="dc=org")
@example(value="a", parent="broken")
def test_a_dn_joined_is_the_one_parsing_the_parent_each_time_gave(value: str, parent: str) -> None:
    for _ in range(2):  # the second time from the cache, or failing again
        try:
            parsed = parse_dn(parent)
        except ValueError:
            with pytest.raises(ValueError):
                dn_join("uid", value, parent)
            continue
        try:
            escaped = _escaped_dn_value(value)
        except ValueError:
            with pytest.raises(ValueError):
                dn_join("uid", value, parent)
            continue
        joined = dn_join("uid", value, parent)
        assert joined == f"uid={escaped},{parent}"
        assert parse_dn(joined) == ((("uid", value),), *parsed)


def test_a_bad_parent_or_attribute_is_refused_every_time() -> None:
    for _ in range(3):
        with pytest.raises(ValueError, match="malformed DN"):
            dn_join("uid", "a", "no equals sign")
        with pytest.raises(ValueError, match="not an LDAP attribute name"):
            dn_join("uid;x", "a", "dc=org")
    assert escape._parsed_parent.cache_info().currsize <= 64
