"""Who acted, in the audit log, and text that cannot fool a terminal (security requirement 32).

The actor is the OS user of the process (``getuid`` -> ``pwd``), never ``$LOGNAME`` or ``$USER``;
the user behind ``sudo`` is recorded only when ``$SUDO_UID`` is that user's uid. Control and
invisible characters in any audited text come back from the log as escapes.
"""

from __future__ import annotations

import json
import os
import pwd
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.audit import UNVERIFIED_SUDO_USER, AuditLog, AuditRecord, escape_controls, os_actor
from umacct.clock import FixedClock

T0 = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
ALICE = "alice.martin@univ.example"
ME = pwd.getpwuid(os.getuid())
OTHER = pwd.getpwuid(1)  # "daemon": stands for the person who typed sudo
SERVICE = pwd.getpwuid(65534)  # "nobody": stands for a dedicated service user (sudo -u umacct)
ESCAPED = {"Cc", "Cf", "Cs", "Zl", "Zp"}
HOSTILE = [
    "\x1b[2J\x1b[1;31mdeleted by root\x1b[0m",  # ANSI: clear the screen, forge colour
    "line\nforged line",
    "carriage\rreturn",
    "nul\x00byte",
    "del\x7fete",
    "c1 \x9b31m csi",  # C1 CSI: a terminal escape in one character
    "bidi \u202egnp.exe",
    "zero\u200bwidth",
    "line\u2028separator",
    "tab\there",
]


@pytest.fixture(autouse=True)
def _clean_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUDO_USER", "SUDO_UID", "SUDO_GID", "SUDO_COMMAND"):
        monkeypatch.delenv(name, raising=False)


def log_at(path: Path) -> AuditLog:
    return AuditLog(path, FixedClock(T0))


def texts(value: object) -> Iterator[str]:
    """Every string in a record's field, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from texts(item)


def all_texts(record: AuditRecord) -> list[str]:
    fields = (record.actor, record.sudo_user, record.command, record.account, record.result)
    return [
        *texts([f for f in fields if f is not None]),
        *texts(record.changes),
        *texts(record.details),
    ]


def assert_no_control(record: AuditRecord) -> None:
    for text in all_texts(record):
        bad = [c for c in text if unicodedata.category(c) in ESCAPED]
        assert not bad, (text, bad)


# --- the actor -------------------------------------------------------------------------------


def test_sec32_the_actor_comes_from_the_os_not_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "mallory")
    record = log_at(tmp_path / "audit.jsonl").append("suspend", ALICE, {})
    assert record.actor == ME.pw_name
    assert "mallory" not in (tmp_path / "audit.jsonl").read_text()


@pytest.mark.parametrize("runs_as", [ME, SERVICE], ids=["root", "service user"])
def test_sec32_the_sudo_user_is_recorded_beside_the_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs_as: pwd.struct_passwd
) -> None:
    """``sudo umacct`` and ``sudo -u umacct umacct`` alike: the OS user, and who typed sudo."""
    monkeypatch.setattr(os, "getuid", lambda: runs_as.pw_uid)
    monkeypatch.setenv("SUDO_USER", OTHER.pw_name)
    monkeypatch.setenv("SUDO_UID", str(OTHER.pw_uid))
    log = log_at(tmp_path / "audit.jsonl")
    written = log.append("suspend", ALICE, {}, reason="left")
    assert (written.actor, written.sudo_user) == (runs_as.pw_name, OTHER.pw_name)
    assert UNVERIFIED_SUDO_USER not in written.details
    [read] = log.read(actor=OTHER.pw_name)
    assert read == written


@pytest.mark.parametrize(
    "sudo_uid",
    [None, "", "0", str(OTHER.pw_uid + 1), "one", f" {OTHER.pw_uid}", f"0{OTHER.pw_uid}", "1.0"],
    ids=["missing", "empty", "root's", "another", "word", "spaced", "leading zero", "decimal"],
)
def test_sec32_a_sudo_user_without_its_uid_is_not_taken_for_the_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sudo_uid: str | None
) -> None:
    monkeypatch.setenv("SUDO_USER", OTHER.pw_name)
    if sudo_uid is not None:
        monkeypatch.setenv("SUDO_UID", sudo_uid)
    log = log_at(tmp_path / "audit.jsonl")
    written = log.append("suspend", ALICE, {})
    assert written.sudo_user is None
    assert written.details[UNVERIFIED_SUDO_USER] == OTHER.pw_name
    assert log.read(actor=OTHER.pw_name) == []  # never matched as the person who acted


def test_sec32_an_unknown_or_hostile_sudo_user_is_kept_escaped_and_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = "\x1b[2Jno-such-user-" + "x" * 200
    monkeypatch.setenv("SUDO_USER", claimed)
    monkeypatch.setenv("SUDO_UID", "0")
    written = log_at(tmp_path / "audit.jsonl").append("suspend", ALICE, {})
    assert written.sudo_user is None
    kept = written.details[UNVERIFIED_SUDO_USER]
    assert kept == escape_controls(claimed[:64])
    assert_no_control(written)


_env_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
)


@settings(max_examples=100, deadline=None)
@given(user=st.sampled_from(["root", "daemon", "nobody", "bin"]) | _env_text, uid=_env_text)
def test_sec32_sudo_user_is_trusted_only_when_its_uid_matches(user: str, uid: str) -> None:
    actor = os_actor({"SUDO_USER": user, "SUDO_UID": uid})
    try:
        matches = bool(user) and str(pwd.getpwnam(user).pw_uid) == uid
    except (KeyError, ValueError):
        matches = False
    assert actor.user == ME.pw_name
    assert actor.sudo_user == (user if matches else None)
    if user and not matches:
        assert actor.unverified_sudo_user == escape_controls(user[:64])


# --- control characters ----------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_sec32_control_characters_are_escaped_in_every_audited_text(
    tmp_path: Path, hostile: str
) -> None:
    path = tmp_path / "audit.jsonl"
    log = log_at(path)
    log.append(
        f"cmd {hostile}",
        f"acct{hostile}@univ.example",
        {f"description{hostile}": {"before": [hostile], "after": [f"new {hostile}"]}},
        result=f"error: {hostile}",
        reason=hostile,
        nested={f"key{hostile}": [hostile]},
        path=Path(f"/tmp/{hostile}"),
    )
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")
    assert all(0x20 <= byte < 0x7F for byte in raw[:-1])  # one line of printable ASCII
    [record] = log.read()
    assert_no_control(record)
    assert record.details["reason"] == escape_controls(hostile)
    assert "\\x" in record.details["reason"] or "\\u" in record.details["reason"]
    assert log.read(account=f"acct{hostile}@univ.example") == [record]  # still found


def test_sec32_a_line_written_raw_by_an_older_version_is_read_escaped(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    document = {
        "time": T0.isoformat(),
        "actor": "root\x1b[31m",
        "sudo_user": None,
        "command": "suspend",
        "account": ALICE,
        "changes": {"cn": {"before": ["a\u202eb"], "after": []}},
        "result": "ok\x7f",
        "details": {"reason": "x\x1b]0;title\x07"},
    }
    path.write_text(json.dumps(document, ensure_ascii=False) + "\n", encoding="utf-8")
    [record] = log_at(path).read()
    assert_no_control(record)
    assert record.details["reason"] == "x\\x1b]0;title\\x07"


@settings(max_examples=80, deadline=None)
@given(
    command=st.text(min_size=1, max_size=20),
    account=st.none() | st.text(max_size=30),
    name=st.text(min_size=1, max_size=15),
    value=st.text(max_size=40),
)
def test_sec32_no_text_comes_back_from_the_log_with_a_control_character(
    tmp_path_factory: pytest.TempPathFactory,
    command: str,
    account: str | None,
    name: str,
    value: str,
) -> None:
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    log = log_at(path)
    log.append(command, account, {name: {"before": [value], "after": []}}, note=value)
    [record] = log.read()
    assert_no_control(record)
    assert record.command == escape_controls(command)
    assert escape_controls(record.command) == record.command  # escaping twice changes nothing


def test_escape_controls_keeps_clean_text_and_letters_of_every_script() -> None:
    for clean in ("Zoé N'Diaye", "Ελένη", "Алексей", "王芳", "\u00a0nbsp", "tab-less", "emoji 🙂"):
        assert escape_controls(clean) == clean
    assert escape_controls("\x1b") == "\\x1b"
    assert escape_controls("\u202e") == "\\u202e"
    assert escape_controls("\U000e0001") == "\\U000e0001"
