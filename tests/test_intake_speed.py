"""The intake's and the sweep's fast paths give what the slow ones give, on any input at all:
filter and DN values kept as they are only when escaping would keep them, and a DN joined
under a parent parsed once."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from umacct.cli import output
from umacct.cli.output import dumps_json, to_jsonable
from umacct.directory import escape
from umacct.directory.escape import (
    _escaped_dn_value,
    _escaped_filter_value,
    dn_join,
    escape_dn_value,
    escape_filter_value,
    parse_dn,
)
from umacct.services.create_results import CreateOutcome, RowFailure

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


# --- the JSON report ---------------------------------------------------------------------------


class Colour(enum.StrEnum):
    RED = "red"
    BIDI = "x\u202ey"


class Level(enum.IntEnum):
    LOW = 1


class Odd(enum.Enum):
    PAIR = (1, 2)
    DAY = date(2030, 1, 1)


class Name(str):
    pass


class Count(int):
    pass


@dataclass(frozen=True)
class Row:
    account: object
    when: object = None
    extra: object = None


@dataclass
class Empty:
    pass


class Opaque:
    pass


SCALARS = (
    TEXT
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none()
    | st.sampled_from(
        [
            Colour.RED,
            Colour.BIDI,
            Level.LOW,
            Odd.PAIR,
            Odd.DAY,
            Name("a\x00"),
            Count(3),
            date(2030, 1, 2),
            datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            datetime(2030, 1, 2, 3, 4),
            Path("/tmp/x\u2028y"),
            Empty(),
            Row,
            Opaque(),
            float("nan"),
            float("-inf"),
        ]
    )
)
KEYS = TEXT | st.integers(-3, 3) | st.none() | st.booleans() | st.sampled_from([Colour.RED, 1.5])
TREES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(st.integers() | TEXT, max_size=3)
        | st.dictionaries(KEYS, inner, max_size=4)
        | st.dictionaries(KEYS, inner, max_size=3).map(MappingProxyType)
        | st.builds(Row, inner, inner, inner)
    ),
    max_leaves=20,
)


def generic_json(value: object) -> str:
    """The report as it was written: converted by to_jsonable, then json.dumps's indent=2."""
    text = json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)
    return output._UNSAFE_IN_JSON.sub(output._escape_json, text)


@settings(max_examples=1000, deadline=None)
@given(value=TREES)
@example(value=[])
@example(value={})
@example(value={1: "a", "1": "b"})
@example(value=[Row("a", [], {}), Row(Empty(), (), set())])
@example(value={"x": Opaque()})
def test_the_json_written_is_the_one_the_generic_conversion_gave(value: object) -> None:
    assert outcome_or_type_error(dumps_json, value) == outcome_or_type_error(generic_json, value)


def outcome_or_type_error(function: Callable[[object], str], value: object) -> object:
    try:
        return function(value)
    except TypeError as error:
        return TypeError, str(error)


def test_a_create_report_is_written_as_before() -> None:
    outcome = CreateOutcome(
        account="jeanne.dupont@univ-exemple.fr",
        uid="jeanne.dupont",
        profile="étudiant",
        state="I:SupannCree",
        action="created",
        changed=True,
        arrival=date(2030, 9, 1),
        activation_expires=datetime(2030, 9, 8, 12, tzinfo=UTC),
        mail="queued",
        message="the link\u202e goes to jeanne@example.org",
        line=2,
    )
    report = {
        "file": "/srv/rentrée.csv",
        "encoding": "utf-8",
        "dry_run": False,
        "summary": {"created": 2, "failed": 1},
        "results": [outcome, dataclasses.replace(outcome, line=None, mail=None)],
        "errors": [RowFailure(4, "bad\x1b[2J address")],
        "warnings": [],
        "rejects": Path("/tmp/rejects.csv"),
    }
    assert dumps_json(report) == generic_json(report)
    assert "\\u202e" in dumps_json(report) and "\\u001b" in dumps_json(report)


def test_every_character_escaped_in_json_is_one_isprintable_refuses() -> None:
    # What lets dumps_json skip the escaping of a text printable but for its line breaks.
    matched = [code for code in range(0x110000) if output._UNSAFE_IN_JSON.match(chr(code))]
    assert len(matched) > 2000
    assert not [code for code in matched if chr(code).isprintable()]
