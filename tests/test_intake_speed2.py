"""The intake's second round of fast paths, each compared with the way it replaces."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

from helpers import minimal_config
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.audit import AuditLog, _audited_changes, _audited_entry
from umacct.clock import FixedClock
from umacct.config import parse_config
from umacct.directory import ber
from umacct.identifiers import PersonName
from umacct.intake import IntakeRow
from umacct.policy.dates import to_supann_date
from umacct.services.arrivals import arrival_states
from umacct.services.create_entry import NewEntries
from umacct.state import token_rows
from umacct.state.token_rows import TokenRow, insert_token_rows
from umacct.store import _MIGRATIONS


def _tokens_table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in _MIGRATIONS[0][:2]:
        conn.execute(statement)
    return conn


_rows = st.tuples(
    st.sampled_from(["a@x.fr", "b@x.fr", "c@x.fr", "d@x.fr"]),
    st.sampled_from(["activation", "reset"]),
    st.sampled_from(["2027-01-01T08:00:00.000000Z", "2027-01-01T09:00:00.000000Z"]),
    st.sampled_from(["{}", '{"a": "b"}']),
)
_batches = st.lists(
    st.tuples(st.lists(_rows, max_size=6), st.booleans(), st.booleans()), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(_batches, st.integers(min_value=1, max_value=3))
def test_a_batch_of_tokens_gives_the_rows_ids_and_cancellations_of_one_by_one(
    batches: list[tuple[list[tuple[str, str, str, str]], bool, bool]], chunk: int
) -> None:
    fast, slow = _tokens_table(), _tokens_table()
    serial = 0
    token_rows._CHUNK, before = chunk, token_rows._CHUNK
    try:
        for drawn, use_first, uniform in batches:
            rows = drawn
            if uniform and drawn:  # the intake's case: one purpose, one instant, each account once
                first = drawn[0]
                accounts = {row[0]: row[3] for row in drawn}
                rows = [(a, first[1], first[2], p) for a, p in accounts.items()]
            batch: list[TokenRow] = []
            for account, purpose, issued, payload in rows:
                serial += 1
                batch.append((account, purpose, f"h{serial}", issued, "2027-01-02", payload))
            got = insert_token_rows(fast, batch)
            expected = [token_rows._insert_one(slow, row) for row in batch]
            assert got == expected
            if use_first and got:
                for conn in (fast, slow):
                    conn.execute("UPDATE tokens SET used_at = 'x' WHERE id = ?", (got[0],))
            assert _table(fast) == _table(slow)
    finally:
        token_rows._CHUNK = before


def _table(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM tokens ORDER BY id").fetchall()


# --- a new account's entry: its states' values built once per arrival day -----------------------

_DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


def _former_attributes(
    runtime: object, row: IntakeRow, uid: str, identifier: str, today: date
) -> dict[str, list[str]]:
    """What ``_Creator._attributes`` built before, every row's states formatted again."""
    config = parse_config(minimal_config())
    profile = config.profiles[row.profile]
    names = config.attributes
    states = arrival_states(today, row.arrival)
    full_name = f"{row.name.given_name} {row.name.surname}"
    attributes: dict[str, list[str]] = {
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"],
        "uid": [uid],
        "mail": [identifier],
        "cn": [full_name],
        "sn": [row.name.surname],
        "givenName": [row.name.given_name],
        "displayName": [full_name],
        names.principal_name: [identifier],
        config.directory.profile_attribute: [row.profile],
        names.affiliation: list(profile.affiliations),
        names.primary_affiliation: list(profile.affiliations[:1]),
        names.personal_mail: [row.personal_email],
        names.state_date: [state.format() for state in states],
        names.state: [state.short().format() for state in states],
    }
    if row.external_id:
        attributes[profile.external_id_attribute] = [row.external_id]
    if row.end_of_activity:
        attributes[profile.end_date_attribute] = [to_supann_date(row.end_of_activity)]
    return {name: values for name, values in attributes.items() if values}


@settings(max_examples=200, deadline=None)
@given(
    _DAYS,
    st.lists(
        st.tuples(st.none() | _DAYS, st.none() | _DAYS, st.none() | st.just("E123")), max_size=8
    ),
)
def test_a_new_entry_is_the_one_built_before_whatever_the_days(
    today: date, rows: list[tuple[date | None, date | None, str | None]]
) -> None:
    runtime = SimpleNamespace(config=parse_config(minimal_config()))
    entries = NewEntries(runtime, today)  # type: ignore[arg-type]
    profile = runtime.config.profiles["etudiant"]
    built = []
    for number, (arrival, end, external_id) in enumerate(rows):
        row = IntakeRow(
            number + 2, PersonName("Jean", "Dupont"), "etudiant", "jd@gmail.com", end,
            external_id, arrival,
        )  # fmt: skip
        states = entries.states(arrival)
        assert states == arrival_states(today, arrival)
        attributes = entries.attributes(row, profile, "jdupont", "jean.dupont@etu.x", states)
        assert attributes == _former_attributes(runtime, row, "jdupont", "jean.dupont@etu.x", today)
        built.append(attributes)
        # States not from ``states()`` are formatted as they are.
        other = arrival_states(today, date(2095, 1, 1))
        assert entries.attributes(row, profile, "u", "i", other)["supannRessourceEtatDate"] == [
            state.format() for state in other
        ]
    # Every entry has lists of its own.
    for attributes in built:
        attributes["supannRessourceEtat"].append("x")
    assert all(len(attributes["supannRessourceEtat"]) == 3 for attributes in built)


# --- a new account's audit record: its changes built straight from the entry ------------------

_NAMES = st.sampled_from(
    ["cn", "mail", "userPassword", "USERPASSWORD;binary", "2.5.4.35", "secretary", "x\u202e"]
) | st.text(st.characters(), max_size=6)
_VALUES = st.lists(
    st.text(st.characters(), max_size=5) | st.sampled_from(["a", "é", "\x1b", "\u2028"]),
    max_size=3,
)
_ODD = st.lists(st.integers() | st.none() | st.text(max_size=2), min_size=1, max_size=2)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_NAMES, _VALUES | _ODD, max_size=6))
def test_an_added_entry_is_audited_as_its_changes_from_nothing(
    attributes: dict[str, list[str]],
) -> None:
    expected = outcome(
        _audited_changes, {n: {"before": [], "after": v} for n, v in attributes.items()}
    )
    assert outcome(_audited_entry, attributes) == expected


def test_an_added_entry_record_is_the_record_of_its_changes(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2027, 1, 1, 8, tzinfo=UTC))
    log = AuditLog(tmp_path / "audit.jsonl", clock)
    entry = {"uid": ["jd"], "userPassword": ["s"], "cn": ["J\x1bD"], "objectClass": ["a", "b"]}
    changes = {name: {"before": [], "after": values} for name, values in entry.items()}
    added = log.record_added("create", "j@x.fr", entry, "ok", line=3)
    assert added == log.record("create", "j@x.fr", changes, "ok", line=3)
    assert added.to_json() == log.record("create", "j@x.fr", changes, "ok", line=3).to_json()
    entry["uid"].append("other")  # the record keeps its own copy
    assert added.changes["uid"] == {"before": [], "after": ["jd"]}


def outcome(function: Callable[..., object], *args: object) -> tuple[str, object]:
    try:
        return "ok", function(*args)
    except Exception as error:
        return "error", type(error)


# --- a search answer's entry: short lengths read inline -------------------------------------

_OCTETS = st.binary(max_size=20) | st.binary(min_size=120, max_size=300) | st.just(b"\xff\xfe")
_ENTRY_ATTRIBUTES = st.lists(
    st.tuples(
        st.sampled_from([b"uid", b"mail", b"sn", b"\xc3"]) | _OCTETS, st.lists(_OCTETS, max_size=3)
    ),
    max_size=5,
)


def _entry_content(
    dn: bytes, attributes: list[tuple[bytes, list[bytes]]], skews: dict[int, int]
) -> bytes:
    """The entry's content, the n-th length written off by ``skews[n]`` (a damaged answer)."""
    count = 0

    def tlv(tag: int, content: bytes) -> bytes:
        nonlocal count
        count += 1
        skew = skews.get(count, 0)
        if not skew:
            return ber.tlv(tag, content)
        length = max(0, len(content) + skew)
        head = bytes([length]) if length < 0x80 else ber._length(length)
        return bytes([tag]) + head + content

    listed = b"".join(
        tlv(ber.SEQUENCE, tlv(ber.OCTET_STRING, name) + tlv(
            ber.SET, b"".join(tlv(ber.OCTET_STRING, value) for value in values)
        ))
        for name, values in attributes
    )  # fmt: skip
    return tlv(ber.OCTET_STRING, dn) + tlv(ber.SEQUENCE, listed)


def _decoded(function: Callable[[ber.Message], object], raw: bytes) -> tuple[str, object]:
    try:
        return "ok", function(ber.Message(raw, 1, ber.SEARCH_ENTRY, 0, len(raw)))
    except (IndexError, ValueError) as error:
        return type(error).__name__, str(error)


@settings(max_examples=1500, deadline=None)
@given(
    _OCTETS,
    _ENTRY_ATTRIBUTES,
    st.dictionaries(st.integers(1, 20), st.integers(-3, 3), max_size=2),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=2),
    st.none() | st.integers(0, 1 << 16),
)
def test_an_entry_is_decoded_as_element_by_element_whatever_its_bytes(
    dn: bytes,
    attributes: list[tuple[bytes, list[bytes]]],
    skews: dict[int, int],
    flips: list[tuple[int, int]],
    cut: int | None,
) -> None:
    raw = bytearray(_entry_content(dn, attributes, skews))
    for where, value in flips:  # damaged: lengths and tags anywhere
        if raw:
            raw[where % len(raw)] = value
    data = bytes(raw if cut is None else raw[: cut % (len(raw) + 1)])
    reference = _decoded(ber._slow_decode_entry, data)
    assert _decoded(ber.decode_entry, data) == reference
    fast = _decoded(ber._fast_decode_entry, data)
    assert fast == reference or (fast[0] != "ok" and reference[0] != "ok")


def test_a_batch_of_tokens_fits_a_library_with_fewer_parameters_per_statement() -> None:
    """999 parameters a statement (SQLite before 3.32): the 1,000 rows go in several."""
    conn = _tokens_table()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    batch: list[TokenRow] = [
        (f"p{n}@x.fr", "activation", f"h{n}", "2027-01-01T08:00:00Z", "2027-01-02", "{}")
        for n in range(1000)
    ]
    assert insert_token_rows(conn, batch) == list(range(1, 1001))
