"""Bulk paths: pipelined adds (hand-built BER), batched audit records and token inserts, mail
sent in the background while the next batch is added."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from days import TODAY
from hypothesis import given, settings
from hypothesis import strategies as st
from ldap3.protocol.rfc4511 import LDAPMessage
from pyasn1.codec.ber import decoder

from umacct.directory import AlreadyExistsError
from umacct.directory.adapter import AddResult
from umacct.directory.ber import add_request, decode_message, decode_result, message
from umacct.directory.wire import SEND_CHUNK
from umacct.errors import InvalidInputError, UnavailableError
from umacct.intake import read_intake
from umacct.services.create import CreateOutcome, RowFailure, create_people
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")
HEADER = "given_name;surname;profile;personal_email;end_of_activity;external_id;arrival\n"
FIRST_NAMES = ["Élise", "Jean", "Anaïs", "Loïc", "Zoé", "Hervé", "Maëlys", "Côme"]
SURNAMES = ["Martin", "Dubois", "Lefèvre", "Noël", "Hébert", "Le Goff", "Da Silva", "Brun"]


def person(runtime: Runtime, uid: str, **extra: list[str]) -> tuple[str, dict[str, list[str]]]:
    dn = f"uid={uid},{runtime.config.directory.people_dn}"
    return dn, {"objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [uid], "sn": ["Bulk"]} | extra


def test_add_many_adds_everything_in_order_with_a_window_smaller_than_the_batch(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    items = [person(runtime, f"bulk{n}", description=[f"n° {n} é"]) for n in range(450)]
    results = list(runtime.directory.add_many(items, window=64))
    assert [result.dn for result in results] == [dn for dn, _ in items]
    assert all(result.error is None for result in results)
    entry = runtime.directory.read(items[449][0], ["description"])
    assert entry is not None and entry.get("description") == ["n° 449 é"]


def test_add_many_tops_the_window_up_to_its_size_as_answers_come(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half the window answered, the other half leaves: the server never works on fewer."""
    runtime = on(TODAY)
    wire = runtime.directory._wire
    requested, answered, in_flight = [0], [0], []
    next_id, answer = wire.next_id, wire.answer

    def counted_id() -> int:
        requested[0] += 1
        return next_id()

    def counted_answer(*args: Any) -> Any:
        in_flight.append(requested[0] - answered[0])
        answered[0] += 1
        return answer(*args)

    monkeypatch.setattr(wire, "next_id", counted_id)
    monkeypatch.setattr(wire, "answer", counted_answer)
    items = [person(runtime, f"top{n}") for n in range(300)]
    assert all(result.error is None for result in runtime.directory.add_many(items, window=64))
    assert max(in_flight) == 64
    steady = in_flight[64 : 300 - 64]  # after the first refill, until the last requests left
    assert min(steady) >= 32 and max(steady) == 64


def test_add_many_reports_each_failure_and_goes_on(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    runtime.directory.add(*person(runtime, "taken"))
    results = list(runtime.directory.add_many([
        person(runtime, "first"),
        person(runtime, "taken"),
        person(runtime, "empty", sn=[]),
        person(runtime, "badclass", objectClass=["noSuchClass"]),
        person(runtime, "last"),
    ]))  # fmt: skip
    errors = [result.error for result in results]
    assert errors[0] is None and errors[4] is None
    assert isinstance(errors[1], AlreadyExistsError)
    assert isinstance(errors[2], InvalidInputError) and "no value for sn" in errors[2].message
    assert errors[3] is not None and "uid=badclass" in errors[3].message
    assert runtime.directory.read(person(runtime, "empty")[0], []) is None


def test_add_many_stopped_early_leaves_the_connection_usable(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    results = runtime.directory.add_many(person(runtime, f"early{n}") for n in range(300))
    assert next(results) == AddResult(person(runtime, "early0")[0])
    results.close()
    # Answers of the adds in flight were read: the next operation gets its own answer.
    assert runtime.directory.read(person(runtime, "early0")[0], ["uid"]) is not None
    assert runtime.directory.whoami().startswith("dn:")


def test_add_many_sends_a_window_in_chunks_the_server_starts_on(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = on(TODAY)
    wire = runtime.directory._wire
    writes: list[int] = []
    send = wire.send
    monkeypatch.setattr(wire, "send", lambda *args: writes.append(len(args[2])) or send(*args))
    items = [person(runtime, f"chunk{n}") for n in range(2 * SEND_CHUNK * 4)]
    results = list(runtime.directory.add_many(items, window=len(items)))
    assert all(result.error is None for result in results)
    # One write per SEND_CHUNK adds (one write of the whole window left the server idle
    # while the client encoded it).
    assert len(writes) == 8


@pytest.mark.parametrize("window", [0, 1000])
def test_add_many_refuses_a_window_slapd_would_punish(
    on: Callable[[date], Runtime], window: int
) -> None:
    runtime = on(TODAY)
    with pytest.raises(InvalidInputError, match="window"):
        list(runtime.directory.add_many([person(runtime, "w")], window=window))


values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    message_id=st.integers(1, 2**31 - 1),
    dn=values,
    attributes=st.dictionaries(
        st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,20}", fullmatch=True),
        st.lists(values, min_size=1, max_size=5),
        max_size=12,
    ),
)
def test_hand_built_add_request_is_what_ldap3_reads(
    message_id: int, dn: str, attributes: dict[str, list[str]]
) -> None:
    encoded = message(message_id, add_request(dn, attributes))
    ldap_message, rest = decoder.decode(encoded, asn1Spec=LDAPMessage())
    assert rest == b""
    assert int(ldap_message["messageID"]) == message_id
    request = ldap_message["protocolOp"].getComponent()
    assert bytes(request["entry"]).decode("utf-8") == dn
    decoded = {
        bytes(attribute["type"]).decode(): [bytes(v).decode("utf-8") for v in attribute["vals"]]
        for attribute in request["attributes"]
    }
    assert decoded == attributes


def test_add_response_decoding_reads_code_and_diagnostic() -> None:
    # LDAPMessage { 300, addResponse { entryAlreadyExists, "", "Already exists" } }
    message = bytes.fromhex("301b0202012c6915") + bytes.fromhex("0a0144") + b"\x04\x00"
    message += b"\x04\x0eAlready exists"
    decoded = decode_message(message)
    assert (decoded.message_id, decoded.tag) == (300, 0x69)
    result = decode_result(decoded)
    assert (result.code, result.matched, result.diagnostic) == (68, "", "Already exists")


def intake(count: int) -> str:
    lines = [HEADER]
    for n in range(count):
        given = FIRST_NAMES[n % len(FIRST_NAMES)]
        surname = SURNAMES[(n // len(FIRST_NAMES)) % len(SURNAMES)]
        lines.append(f"{given};{surname};etudiant;bulk{n}@example.net;;B{n:05d};\n")
    return "".join(lines)


def test_sec22_bulk_intake_writes_one_record_per_account_after_a_flushed_intent(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    rows = read_intake(intake(450).encode(), profiles=runtime.config.profiles).rows
    results = list(create_people(runtime, rows, send_mail=False))
    created = [r for r in results if isinstance(r, CreateOutcome) and r.action == "created"]
    assert len(created) == 450
    assert len({r.account for r in created}) == 450  # homonyms got distinct identifiers
    records = runtime.audit.read()
    intents = [r for r in records if r.result == "pending"]
    assert len(intents) == 6  # one per batch: 200, then halves (125, 63, 31, 25, 6)
    announced = [account for r in intents for account in r.details["accounts"]]  # type: ignore[attr-defined]
    assert sorted(announced) == sorted(r.account for r in created)
    done = [r for r in records if r.command == "create" and r.result == "ok"]
    assert sorted(r.account or "" for r in done) == sorted(r.account for r in created)
    # Each intent precedes the records of its batch.
    positions = {id(r): n for n, r in enumerate(records)}
    first_done = min(positions[id(r)] for r in done)
    assert positions[id(intents[0])] < first_done
    again = list(create_people(runtime, rows, send_mail=False))
    assert {r.action for r in again if isinstance(r, CreateOutcome)} == {"exists"}
    assert len(runtime.audit.read()) == len(records)  # nothing added, nothing announced


def test_bulk_intake_flushes_the_audit_once_a_batch_and_before_its_results(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = on(TODAY)
    rows = read_intake(intake(450).encode(), profiles=runtime.config.profiles).rows
    written: list[str] = []
    on_disk: set[str] = set()
    flushes = 0
    real_fsync, write = os.fsync, runtime.audit.write

    def recording_fsync(descriptor: int) -> None:
        nonlocal flushes
        real_fsync(descriptor)
        flushes += 1
        on_disk.update(written)

    def recording_write(records: Any, **options: Any) -> Any:
        written.extend(record.account for record in records if record.result == "ok")
        return write(records, **options)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(runtime.audit, "write", recording_write)
    told = []
    for result in create_people(runtime, rows, send_mail=False):
        assert isinstance(result, CreateOutcome)
        assert result.account in on_disk  # its record was on disk before it was told
        told.append(result.account)
    assert len(told) == 450
    # One flush with each batch's pending record (the records before it ride along), one last.
    assert flushes == 7


def test_sec3_issue_many_records_every_token_and_cancels_older_ones(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    older = runtime.tokens.issue("a@x.fr", TokenPurpose.ACTIVATION, timedelta(hours=24))
    issued = runtime.tokens.issue_many(
        ["a@x.fr", "b@x.fr", "c@x.fr"], TokenPurpose.ACTIVATION, timedelta(hours=24)
    )
    assert [token.account for token in issued] == ["a@x.fr", "b@x.fr", "c@x.fr"]
    assert len({token.token for token in issued}) == 3
    for token in issued:
        assert runtime.tokens.check(token.token, TokenPurpose.ACTIVATION).account == token.account
    with pytest.raises(InvalidInputError):
        runtime.tokens.check(older.token, TokenPurpose.ACTIVATION)
    with pytest.raises(InvalidInputError, match="24 h"):
        runtime.tokens.issue_many(["d@x.fr"], TokenPurpose.ACTIVATION, timedelta(hours=25))


def test_bulk_intake_with_mail_sends_one_link_per_created_account(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    rows = read_intake(intake(30).encode(), profiles=runtime.config.profiles).rows
    results = [r for r in create_people(runtime, rows) if isinstance(r, CreateOutcome)]
    assert [r.mail for r in results] == ["outbox"] * 30  # the tests' transport: the outbox
    assert all(len(runtime.tokens.pending(r.account)) == 1 for r in results)


def test_a_run_stopped_by_the_directory_still_sends_the_links_already_handed_over(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = on(TODAY)
    rows = read_intake(intake(450).encode(), profiles=runtime.config.profiles).rows
    directory = runtime.directory
    send_adds = directory.send_adds
    calls = []

    def fails_on_the_second_batch(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise UnavailableError("directory gone")
        return send_adds(*args, **kwargs)

    monkeypatch.setattr(directory, "send_adds", fails_on_the_second_batch)
    outcomes: list[CreateOutcome | RowFailure] = []
    with pytest.raises(UnavailableError, match="directory gone"):
        outcomes.extend(create_people(runtime, rows))
    # The first batch's mails were on their way when the second batch failed: all went out,
    # and the first batch is reported before the error.
    assert [r.mail for r in outcomes if isinstance(r, CreateOutcome)] == ["outbox"] * 200
    mails = sorted(runtime.config.outbox_dir.glob("*.eml"))
    assert len(mails) == 200
    assert runtime.mailer.pending() == []
    monkeypatch.undo()
    # The run again: the 200 are reported as existing, with their links on their way; the
    # other 250 are created and mailed.
    again = [r for r in create_people(runtime, rows) if isinstance(r, CreateOutcome)]
    assert sorted(r.action for r in again).count("exists") == 200
    assert all(r.mail is None for r in again if r.action == "exists")
    assert [r.mail for r in again if r.action == "created"] == ["outbox"] * 250
