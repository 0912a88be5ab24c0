"""Purge archives: exact (28), confined to their folder (29), trusted only as far as they deserve (30)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, clock_on, month_end, ymd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import Person, add_person, compte, read
from test_faults_support import assert_one_line_error

from umacct.errors import InvalidInputError
from umacct.ldif import LdifEntry, entries_to_ldif, entry_to_ldif, ldif_line, parse_ldif
from umacct.localdir import LocalDirectory
from umacct.policy import expiry_instant, to_generalized_time
from umacct.services.lifecycle import suspend
from umacct.services.purge import ARCHIVE_DIR, archive_name, purge, restore
from umacct.services.runtime import Runtime
from umacct.store import PurgeRecord

# Every character str.splitlines() breaks a line on, and the ones RFC 2849 treats specially.
LINE_BREAKERS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]  # fmt: skip
SINGLE_BREAKERS = [char for char in LINE_BREAKERS if len(char) == 1]
AWKWARD = [*LINE_BREAKERS, "\x00", "\x7f", " ", ":", "<", "#", "-", "\t", "dn: x", "::", "é"]

any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
binaryish_text = st.text(
    st.one_of(st.characters(max_codepoint=0xFF), st.sampled_from(SINGLE_BREAKERS)), max_size=40
)
tricky_text = st.lists(st.one_of(st.sampled_from(AWKWARD), any_text), max_size=6).map("".join)
attribute_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,15}", fullmatch=True).filter(
    lambda name: name.lower() not in {"dn", "changetype", "control"}
)


def entries(values: st.SearchStrategy[str]) -> st.SearchStrategy[LdifEntry]:
    return st.builds(
        LdifEntry,
        values,
        st.dictionaries(attribute_names, st.lists(values, min_size=1, max_size=3), max_size=5),
        st.dictionaries(attribute_names, st.lists(st.binary(max_size=20).filter(not_utf8), min_size=1, max_size=2), max_size=2),
    )  # fmt: skip


def not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# --- 28: exact ------------------------------------------------------------------------------


@settings(max_examples=400)
@given(st.lists(st.one_of(entries(any_text), entries(binaryish_text), entries(tricky_text)), min_size=1, max_size=3))  # fmt: skip
def test_sec28_write_then_read_is_the_identity(written: list[LdifEntry]) -> None:
    text = entries_to_ldif(written)
    assert list(parse_ldif(text)) == written
    # Nothing but printable ASCII and LF: no reader can find a line break we did not write.
    assert re.fullmatch(r"[\x20-\x7e\n]*", text)
    assert text.splitlines() == text.split("\n")[:-1]


@settings(max_examples=300)
@given(
    st.lists(tricky_text, min_size=1, max_size=3),
    st.sampled_from(LINE_BREAKERS),
    st.sampled_from(["mailForwardingAddress: attacker@evil.example", "", "dn: uid=root", "-"]),
)
def test_sec28_no_value_adds_an_attribute_or_a_record(
    values: list[str], breaker: str, injected: str
) -> None:
    hostile = [f"{value}{breaker}{injected}{breaker}" for value in values]
    entry = LdifEntry("uid=a,ou=people", {"description": hostile, "cn": [f"{breaker}x"]})
    [read_back] = parse_ldif(entry_to_ldif(entry))
    assert read_back.attributes == {"description": hostile, "cn": [f"{breaker}x"]}


def test_sec28_only_plain_printable_ascii_is_written_as_is() -> None:
    assert ldif_line("cn", "Jean Martin") == "cn: Jean Martin"
    assert ldif_line("cn", "~ ok!") == "cn: ~ ok!"
    must_encode = [*LINE_BREAKERS, "\x00", "\x7f", "\t", " ", ":", "<", "::", "é", "a ", " a"]
    for value in [*must_encode, ":a", "<a", "a\x0bb", "a\n", "a\x7f", "\u00a0"]:
        line = ldif_line("description", value)
        encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
        assert line == f"description:: {encoded}", repr(value)
    assert ldif_line("description", "dn: x") == "description: dn: x"
    assert ldif_line("description", "") == "description:"
    with pytest.raises(InvalidInputError, match="attribute name"):
        ldif_line("cn\nmail", "x")
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        ldif_line("cn", "\ud800")


def test_sec28_archives_the_old_writer_left_raw_are_read_as_written() -> None:
    # The old writer put \x0b, \x0c and \x1c-\x1e as they were: they stay inside the value.
    old = (
        "dn: uid=a,ou=people\r\n"
        "description: \x1cmailForwardingAddress: attacker@evil.example\r\n"
        "title: line one\x0bline two\x0c\r\n"
        "cn: folded\r\n  value\r\n"
        "# a comment\r\n  that continues\r\n"
        "sn: A\r\n\r\n"
    )
    [entry] = parse_ldif("version: 1\n" + old)
    assert entry.attributes == {
        "description": ["\x1cmailForwardingAddress: attacker@evil.example"],
        "title": ["line one\x0bline two\x0c"],
        "cn": ["folded value"],
        "sn": ["A"],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dn: a\ncn:< file:///etc/shadow\n", "URL"),
        ("dn: a\ncn: é\n", "must be base64"),
        ("dn: a\ncn: x\ry\n", "must be base64"),
        ("dn: a\ncn:: !!!\n", "bad base64"),
        ("dn: a\nchangetype: delete\n", "unexpected changetype"),
        ("dn: a\ndn: b\n", "unexpected dn"),
        ("cn: a\n", "does not start with a dn"),
        ("dn: a\nbad name: x\n", "cannot read"),
        (" dn: a\n", "cannot read"),
    ],
)
def test_sec28_the_reader_refuses_what_the_writer_never_writes(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        list(parse_ldif(text))


HOSTILE_DESCRIPTIONS = [
    "\x1cmailForwardingAddress: attacker@evil.example",
    "line one\x0bline two",  # a manual line break from a word processor
    "form\x0cfeed and \x1d\x1e separators",
    "unicode\u2028line\u2029paragraph\x85next",
    "ends with a line feed\n",
    " leading and trailing spaces ",
    ":starts with a colon",
    "<starts with an angle",
    "tab\there and del\x7f",
]


def expired_person(runtime: Runtime, uid: str, **extra: list[str]) -> Person:
    """A person expired long enough ago to be purged today (autre_personnel, 3 months)."""
    person = add_person(
        runtime, uid, profile="autre_personnel", end_of_activity=month_end(-10), extra=extra
    )
    key = (extra.get("mail") or [person.identifier])[0]
    assert suspend(runtime, key, notice=False, reason="cut").action == "expire"
    return person


@pytest.mark.usefixtures("directory_clean")
def test_sec28_every_value_survives_purge_then_restore_exactly(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "ada.exact", description=HOSTILE_DESCRIPTIONS)
    before = read(runtime, person)
    code, _, stderr = umacct("purge", person.identifier, "--yes", "--reason", "left")
    assert code == 0, stderr
    code, _, stderr = umacct("restore", person.identifier, "--reason", "by mistake")
    assert code == 0, stderr
    after = read(runtime, person)
    assert sorted(after.get("description")) == sorted(HOSTILE_DESCRIPTIONS)
    assert after.get("mailForwardingAddress") == []
    for name in ("cn", "sn", "givenName", "mail", "uid", "supannEmpId", "eduPersonAffiliation"):
        assert after.get(name) == before.get(name)


# --- 29: confined ---------------------------------------------------------------------------


@given(any_text.filter(bool))
def test_sec29_archive_names_never_leave_the_folder(identifier: str) -> None:
    name = archive_name(identifier)
    assert re.fullmatch(r"[a-z0-9._@%-]+", name)
    assert ".." not in name and not name.startswith((".", "-"))
    assert len(name) <= 120
    assert Path("/archive", name).resolve().parent == Path("/archive")


@given(any_text.filter(bool), any_text.filter(bool))
def test_sec29_two_identifiers_never_share_an_archive_name(first: str, second: str) -> None:
    if first != second:
        assert archive_name(first) != archive_name(second)


def test_sec29_ordinary_identifiers_keep_their_name() -> None:
    assert archive_name("jean.martin@umontpellier.fr") == "jean.martin@umontpellier.fr"
    assert archive_name("../../x@dom") == "%2e%2e%2f.%2e%2fx@dom"
    assert archive_name("a/b") == "a%2fb"
    assert archive_name("-rf") == "%2drf"


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.mark.usefixtures("directory_clean")
def test_sec29_hostile_mail_values_are_archived_inside_the_folder(
    on: Callable[[date], Runtime], tmp_path: Path
) -> None:
    runtime = on(TODAY)
    mails = ["../../x@dom.example", "a/b@dom.example", "..@dom.example", "ok.one@dom.example"]
    people = [expired_person(runtime, f"zed.conf{n}", mail=[mail]) for n, mail in enumerate(mails)]
    outside = files_under(tmp_path) - files_under(runtime.data_dir)
    code, _, stderr = umacct("purge", "--expired", "--yes", "--reason", "left")
    assert code == 0, stderr
    assert all(runtime.directory.read(person.dn, ["uid"]) is None for person in people)
    assert files_under(tmp_path) - files_under(runtime.data_dir) == outside
    folder = runtime.data_dir / ARCHIVE_DIR
    for mail in mails:
        record = runtime.store.find_purge(mail)
        assert record is not None and record.archive.parent == folder
        assert record.archive.name.startswith(archive_name(mail) + "-")
        assert hashlib.sha256(record.archive.read_bytes()).hexdigest() == record.archive_sha256
    code, _, stderr = umacct("restore", "../../x@dom.example", "--reason", "by mistake")
    assert code == 0, stderr
    assert read(runtime, people[0]).get("mail") == ["../../x@dom.example"]


def block_archive_names(runtime: Runtime, identifier: str) -> None:
    """Take every name an archive of ``identifier`` could get today at 9:00 (the CLI's clock)."""
    stamp = clock_on(TODAY).now().strftime("%Y%m%dT%H%M%SZ")
    folder = runtime.data_dir / ARCHIVE_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for suffix in ("", *(f"-{n}" for n in range(2, 10))):
        (folder / f"{archive_name(identifier)}-{stamp}{suffix}.ldif").mkdir()


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize(
    "command",
    [("purge", "--expired", "--yes", "--reason", "left"), ("sweep", "--purge")],
    ids=["purge-expired", "sweep-purge"],
)
def test_sec29_an_entry_whose_archive_cannot_be_written_is_skipped_and_the_others_purged(
    on: Callable[[date], Runtime], command: tuple[str, ...]
) -> None:
    runtime = on(TODAY)
    people = [expired_person(runtime, f"kai.skip{letter}") for letter in "abc"]
    blocked = people[1]
    block_archive_names(runtime, blocked.identifier)
    code, stdout, stderr = umacct(*command)
    assert code == 65, stderr
    assert "Traceback" not in stderr
    [error] = [line for line in stderr.splitlines() if "error" in line]
    assert blocked.identifier in error
    assert runtime.directory.read(blocked.dn, ["uid"]) is not None
    assert runtime.store.find_purge(blocked.identifier) is None
    for person in (people[0], people[2]):
        assert runtime.directory.read(person.dn, ["uid"]) is None
        assert runtime.store.find_purge(person.identifier) is not None
    if command[0] == "purge":
        [line] = [line for line in stdout.splitlines() if line.startswith(blocked.identifier)]
        assert "error" in line and "not purged" in line


# --- 30: restore trusts the archive only as far as it deserves -----------------------------


def purged(runtime: Runtime, person: Person) -> PurgeRecord:
    purge(runtime, person.identifier)
    record = runtime.store.find_purge(person.identifier)
    assert record is not None and record.archive_sha256 is not None
    return record


def snapshot(runtime: Runtime, person: Person) -> tuple[object, ...]:
    audit = [(r.command, r.account, r.result) for r in runtime.audit.read()]
    return runtime.directory.read(person.dn, ["*"]), runtime.store.dump(), audit


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize(
    "change",
    [
        lambda text: text + "mailForwardingAddress: attacker@evil.example\n",
        lambda text: text.replace("sn: ", "sn: X"),
        lambda text: text.replace("\n\n", "\n"),
    ],
    ids=["added-attribute", "changed-value", "one-byte-less"],
)
def test_sec30_an_archive_that_changed_since_the_purge_is_refused(
    on: Callable[[date], Runtime], change: Callable[[str], str]
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "ivo.digest")
    record = purged(runtime, person)
    record.archive.write_text(change(record.archive.read_text("utf-8")), "utf-8")
    before = snapshot(runtime, person)
    code, _, stderr = umacct(
        "restore", person.identifier, "--reason", "x", "--accept-unverified-archive"
    )
    assert_one_line_error(stderr, (65,), code)
    assert "SHA-256" in stderr
    assert snapshot(runtime, person) == before


def unverified(runtime: Runtime, record: PurgeRecord, text: str) -> None:
    """Rewrite the archive and record the purge as an older umacct did: without a digest."""
    record.archive.write_text(text, "utf-8")
    runtime.store.record_purge(dataclasses.replace(record, archive_sha256=None))


@pytest.mark.usefixtures("directory_clean")
def test_sec30_a_purge_recorded_without_a_digest_needs_the_flag(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "oda.old")
    record = purged(runtime, person)
    unverified(runtime, record, record.archive.read_text("utf-8"))
    before = snapshot(runtime, person)
    code, _, stderr = umacct("restore", person.identifier, "--reason", "x")
    assert_one_line_error(stderr, (77,), code)
    assert "--accept-unverified-archive" in stderr
    assert snapshot(runtime, person) == before
    code, _, stderr = umacct(
        "restore", person.identifier, "--reason", "x", "--accept-unverified-archive"
    )
    assert code == 0, stderr
    assert runtime.directory.read(person.dn, ["uid"]) is not None
    details = runtime.audit.read(account=person.identifier)[-1].details
    assert "accepted unverified" in str(details["archive_sha256"])


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text, dn: text.replace(f"dn: {dn}", "dn: uid=boss,ou=people,dc=x"), "not 'uid="),
        (lambda text, dn: text.replace("uid: una.where", "uid: boss"), "uid 'boss'"),
        (lambda text, dn: text.replace("mail: una.where", "mail: boss"), "boss"),
        (lambda text, dn: text + f"dn: {dn}\ncn: again\n\n", "found 2"),
    ],
    ids=["other-dn", "other-uid", "other-mail", "two-entries"],
)
def test_sec30_restore_writes_only_the_purged_account_at_its_recorded_dn(
    on: Callable[[date], Runtime], change: Callable[[str, str], str], message: str
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "una.where")
    record = purged(runtime, person)
    unverified(runtime, record, change(record.archive.read_text("utf-8"), person.dn))
    before = snapshot(runtime, person)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        restore(runtime, person.identifier, accept_unverified=True)
    assert snapshot(runtime, person) == before
    assert runtime.directory.read("uid=boss,ou=people,dc=x", ["uid"]) is None


@pytest.mark.usefixtures("directory_clean")
def test_sec30_passwords_policy_operational_and_unknown_attributes_are_never_restored(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "pia.allow")
    record = purged(runtime, person)
    active = f"{{COMPTE}}A:SupannActif:{ymd(TODAY)}:"
    hostile = "".join(
        f"{line}\n"
        for line in [
            "userPassword: {CLEARTEXT}known-to-the-attacker",
            "2.5.4.35: known-to-the-attacker",  # userPassword by its OID
            "USERPASSWORD;binary: known-to-the-attacker",
            "pwdEndTime: 99991231235959Z",
            "pwdAccountLockedTime: 000001010000Z",
            "pwdReset: TRUE",
            "pwdPolicySubentry: cn=weak,dc=x",
            "entryUUID: 00000000-0000-0000-0000-000000000000",
            "creatorsName: cn=admin",
            "objectClass: extensibleObject",
            "objectClass: simpleSecurityObject",
            "noSuchAttribute: x",
            "mailForwardingAddress: attacker@evil.example",
            f"supannRessourceEtatDate: {active}",
            "commonName: Pia Alias",  # cn by an alias: merged with cn
            "2.5.4.4: Allowoid",  # sn by its OID
        ]
    )
    text = record.archive.read_text("utf-8")
    text = re.sub(r"supannRessourceEtatDate: \{COMPTE\}[^\n]*\n", "", text)
    unverified(runtime, record, text.removesuffix("\n") + hostile + "\n")
    result = restore(runtime, person.identifier, accept_unverified=True)
    assert "noSuchAttribute (unknown to the schema)" in result.message
    assert "'extensibleObject'" in result.message
    entry = runtime.directory.read(
        person.dn, ["*", "pwdEndTime", "pwdAccountLockedTime", "pwdReset", "pwdPolicySubentry"]
    )
    assert entry is not None
    for name in ("userPassword", "pwdAccountLockedTime", "pwdReset", "pwdPolicySubentry"):
        assert entry.get(name) == [], name
    assert entry.get("mailForwardingAddress") == []
    assert sorted(entry.get("objectClass")) == ["eduPerson", "inetOrgPerson", "supannPerson"]
    assert "Pia Alias" in entry.get("cn") and "Allowoid" in entry.get("sn")
    # Expired from today: the directory refuses every login, whatever the archive said.
    assert compte(entry) == f"{{COMPTE}}I:SupannExpire:{ymd(TODAY)}:"
    ended = expiry_instant(date.fromordinal(TODAY.toordinal() - 1), runtime.config.policy.timezone)
    assert entry.get("pwdEndTime") == [to_generalized_time(ended)]
    assert not runtime.directory.check_password(person.dn, "known-to-the-attacker")
    assert not runtime.directory.check_password(person.dn, person.password)


@pytest.mark.usefixtures("directory_clean")
def test_sec30_a_verified_restore_sets_pwd_end_time_again(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "rex.again")
    archived_end = read(runtime, person).get("pwdEndTime")
    purged(runtime, person)
    restore(runtime, person.identifier)
    entry = read(runtime, person)
    ended = expiry_instant(date.fromordinal(TODAY.toordinal() - 1), runtime.config.policy.timezone)
    assert entry.get("pwdEndTime") == [to_generalized_time(ended)] != archived_end
    assert not runtime.directory.check_password(person.dn, person.password)


@pytest.mark.usefixtures("directory_clean")
def test_restore_dry_run_changes_nothing_and_an_entry_back_at_the_dn_is_refused(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "rex.twice")
    purged(runtime, person)
    audited = len(runtime.audit.read())
    code, out, err = umacct(
        "restore", person.identifier, "--reason", "asked", "--dry-run", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["dry_run"], result["action"], result["account"]) == (
        True,
        "restore",
        person.identifier,
    )
    assert runtime.directory.read(person.dn, ["uid"]) is None
    assert len(runtime.audit.read()) == audited
    add_person(runtime, "rex.twice", profile="autre_personnel")  # handed out again meanwhile
    code, out, err = umacct("restore", person.identifier, "--reason", "asked")
    assert (code, out) == (77, ""), err
    assert "an entry is at" in err and "nothing restored" in err and "LDAP 68" not in err


@pytest.mark.usefixtures("directory_clean")
def test_sec30_the_schema_names_types_by_name_alias_and_oid(on: Callable[[date], Runtime]) -> None:
    schema = on(TODAY).directory.subschema()
    assert schema.attribute_name("2.5.4.35") == "userPassword"
    assert schema.attribute_name("commonName") == schema.attribute_name("2.5.4.3") == "cn"
    assert schema.is_operational("pwdEndTime") and schema.is_operational("entryUUID")
    assert not schema.is_operational("description")
    assert schema.attribute_lineage("supannAutreMail") == ["supannautremail", "mail"]
    assert {"inetorgperson", "organizationalperson", "person", "top"} <= schema.class_lineage(
        "2.16.840.1.113730.3.2.2"  # inetOrgPerson by its OID
    )
    assert schema.class_name("extensibleObject") == "extensibleObject"


@pytest.mark.usefixtures("directory_clean")
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from(LINE_BREAKERS[3:]), min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=1))  # fmt: skip
def test_sec28_random_values_survive_a_real_purge_and_restore(
    on: Callable[[date], Runtime], descriptions: list[str]
) -> None:
    runtime = on(TODAY)
    uid = f"hy.{hashlib.sha256(repr(descriptions).encode()).hexdigest()[:10]}"
    person = expired_person(runtime, uid, description=descriptions)
    stored = read(runtime, person).get("description")
    record = purged(runtime, person)
    restore(runtime, person.identifier)
    assert sorted(read(runtime, person).get("description")) == sorted(stored)
    runtime.directory.delete(record.dn)


@pytest.mark.usefixtures("directory_clean")
def test_sec30_a_returning_person_is_restored_through_the_same_checks(
    on: Callable[[date], Runtime],
) -> None:
    from umacct.services.create import create_person
    from umacct.services.create_input import new_person

    runtime = on(TODAY)
    person = expired_person(runtime, "eli.back", supannEmpId=["P31"])
    record = purged(runtime, person)
    text = record.archive.read_text("utf-8")
    record.archive.write_text(text + "mailForwardingAddress: attacker@evil.example\n", "utf-8")
    row = new_person(
        runtime.config, given_name="Eli", surname="Back", profile="autre_personnel",
        personal_email="eli@example.net", external_id="P31",
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="SHA-256"):
        create_person(runtime, row)
    assert runtime.directory.read(person.dn, ["uid"]) is None
    record.archive.write_text(text, "utf-8")
    assert create_person(runtime, row).action == "restored"
    assert read(runtime, person).get("mailForwardingAddress") == []


def test_sec28_binary_values_are_archived_not_lost(
    on: Callable[[date], Runtime], directory_clean: LocalDirectory
) -> None:
    runtime = on(TODAY)
    person = expired_person(runtime, "bea.photo")
    photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\n\r\x0b\x1c" + bytes(range(256))
    encoded = base64.b64encode(photo).decode("ascii")
    directory_clean.run_root(
        "ldapmodify", ldif=f"dn: {person.dn}\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:: {encoded}\n\n"
    )  # fmt: skip
    record = purged(runtime, person)
    [archived] = parse_ldif(record.archive.read_text("utf-8"))
    assert archived.binary == {"jpegphoto": [photo]}
    result = restore(runtime, person.identifier)
    assert "jpegphoto (binary, kept in the archive)" in result.message
    assert runtime.audit.read(account=person.identifier)[-2].details["archive_sha256"] == (
        record.archive_sha256
    )
