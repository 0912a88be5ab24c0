"""The audit log: round trip, redaction, append-only writes, failures (security.md 22)."""

from __future__ import annotations

import os
import pwd
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.audit import REDACTED, AuditLog, AuditRecord, diff_changes, escape_controls
from umacct.clock import FixedClock
from umacct.errors import ExitCode, UnavailableError

T0 = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
ALICE = "alice.martin@univ.example"
ME = pwd.getpwuid(os.getuid()).pw_name
HELPDESK = pwd.getpwuid(1)  # a real account ("daemon" on Debian), to stand for a helpdesk user


def log_at(path: Path, instant: datetime = T0) -> AuditLog:
    return AuditLog(path, FixedClock(instant))


@pytest.fixture(autouse=True)
def _no_sudo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.delenv("SUDO_UID", raising=False)


def as_sudo(monkeypatch: pytest.MonkeyPatch, user: pwd.struct_passwd = HELPDESK) -> str:
    """The environment ``sudo`` gives a command run by ``user``."""
    monkeypatch.setenv("SUDO_USER", user.pw_name)
    monkeypatch.setenv("SUDO_UID", str(user.pw_uid))
    return user.pw_name


def test_sec22_append_read_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helpdesk = as_sudo(monkeypatch)
    path = tmp_path / "audit.jsonl"
    changes = {"supannRessourceEtat": {"before": ["{COMPTE}A:SupannActif"], "after": []}}
    written = log_at(path).append("suspend", ALICE, changes, reason="charter", forced=True)
    assert written.time == T0
    assert written.actor == ME
    assert written.sudo_user == helpdesk
    [read] = log_at(path).read()
    assert read == AuditRecord(
        time=T0,
        actor=ME,
        sudo_user=helpdesk,
        command="suspend",
        account=ALICE,
        changes=changes,
        result="ok",
        details={"reason": "charter", "forced": True},
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sec22_results_and_missing_log(tmp_path: Path) -> None:
    log = log_at(tmp_path / "audit.jsonl")
    assert log.read() == []
    log.append("purge", None, {}, result="dry-run")
    log.append("purge", ALICE, {}, result="error: directory unavailable")
    assert [r.result for r in log.read()] == ["dry-run", "error: directory unavailable"]


def test_sec22_secrets_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    secrets_written = ["S3cret-Passw0rd!", "tok-abcdef", "hunter2-nested", "sec-val"]
    record = log_at(path).append(
        "reset-password",
        ALICE,
        {
            "userPassword": {"before": ["{SSHA}oldhash"], "after": [secrets_written[0]]},
            "resetToken": {"before": [], "after": [secrets_written[1]]},
            "mail": {"before": ["a@univ.example"], "after": ["b@univ.example"]},
        },
        token=secrets_written[1],
        extra={"new_password": secrets_written[2], "note": "kept"},
        client_secret=secrets_written[3],
    )
    content = path.read_text()
    for secret in [*secrets_written, "oldhash"]:
        assert secret not in content
        assert secret not in repr(record)
    assert record.changes["userPassword"] == {"before": [REDACTED], "after": [REDACTED]}
    assert record.changes["resetToken"] == {"before": [], "after": [REDACTED]}
    assert record.changes["mail"]["after"] == ["b@univ.example"]
    assert record.details["token"] == REDACTED
    assert record.details["extra"] == {"new_password": REDACTED, "note": "kept"}
    assert "b@univ.example" in content


def test_sec22_append_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    log = log_at(path)
    log.append("create", ALICE, {})
    before = path.read_bytes()
    flags_seen: list[int] = []
    real_open = os.open

    def spy_open(file: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if Path(file) == path:
            flags_seen.append(flags)
        return real_open(file, flags, mode)

    monkeypatch.setattr(os, "open", spy_open)
    log_at(path, T0 + timedelta(hours=1)).append("activate", ALICE, {})
    monkeypatch.undo()
    assert flags_seen
    assert all(flags & os.O_APPEND and not flags & os.O_TRUNC for flags in flags_seen)
    after = path.read_bytes()
    assert after.startswith(before)
    assert after.count(b"\n") == 2
    assert [r.command for r in log.read()] == ["create", "activate"]


def test_sec22_unwritable_log_stops_the_change(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    for path in (not_a_dir / "audit.jsonl", tmp_path):
        log = log_at(path)
        with pytest.raises(UnavailableError, match="cannot") as caught:
            log.ensure_writable()
        assert caught.value.exit_code == ExitCode.UNAVAILABLE
        with pytest.raises(UnavailableError):
            log.append("create", ALICE, {})


def test_sec22_ensure_writable_creates_a_private_log(tmp_path: Path) -> None:
    path = tmp_path / "new" / "audit.jsonl"
    log_at(path).ensure_writable()
    assert path.exists()
    assert path.read_bytes() == b""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_sec22_failed_write_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    log = log_at(path)
    log.ensure_writable()

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(UnavailableError, match="cannot write: No space left"):
        log.append("create", ALICE, {})


def test_torn_last_line_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = log_at(path)
    log.append("create", ALICE, {})
    with path.open("a") as handle:
        handle.write('{"time": "2027-06-30T09:00:00+00:00", "actor": "ro')
    assert [r.command for r in log.read()] == ["create"]
    log.append("activate", ALICE, {})
    assert [r.command for r in log.read()] == ["create", "activate"]
    assert path.read_text().splitlines()[-1].startswith('{"time"')


def test_read_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    log_at(path, T0).append("create", ALICE, {})
    log_at(path, T0 + timedelta(days=1)).append("create", "bob@univ.example", {})
    helpdesk = as_sudo(monkeypatch)
    log_at(path, T0 + timedelta(days=2)).append("suspend", ALICE, {})
    log_at(path, T0 + timedelta(days=3)).append("sweep", None, {})
    log = log_at(path)
    assert [r.command for r in log.read(account=ALICE)] == ["create", "suspend"]
    assert [r.command for r in log.read(since=T0 + timedelta(days=1))] == [
        "create",
        "suspend",
        "sweep",
    ]
    assert [r.command for r in log.read(actor=helpdesk)] == ["suspend", "sweep"]
    assert len(log.read(actor=ME)) == 4
    assert [r.command for r in log.read(limit_last=2)] == ["suspend", "sweep"]
    assert [r.command for r in log.read(account=ALICE, limit_last=1)] == ["suspend"]


def test_last_records_are_read_back_from_the_end(tmp_path: Path) -> None:
    """``limit_last`` (``show``'s last five) reads the log backwards, across block boundaries."""
    path = tmp_path / "audit.jsonl"
    log = log_at(path)
    for number in range(300):
        account = ALICE if number % 2 else "bob@univ.example"
        log.append("sweep" if number % 3 else "create", account, {}, note="x" * 500, n=number)
    with path.open("a") as handle:
        handle.write('\n\n{"time": "2027-06-30T09:00:00+00:00", "actor": "ro')
    everything, alice = log.read(), log.read(account=ALICE)
    assert path.stat().st_size > 3 * 65536 and len(everything) == 300
    for limit in (0, 1, 5, 299, 400):
        assert log.read(limit_last=limit) == everything[max(0, 300 - limit) :]
        assert log.read(account=ALICE, limit_last=limit) == alice[max(0, 150 - limit) :]


def test_diff_changes_lists_only_differences() -> None:
    before = {"mail": ["a@univ.example"], "cn": ["Alice"], "Description": ["x", "y"]}
    after = {"mail": ["b@univ.example"], "cn": ["Alice"], "description": ["y", "x"], "sn": ["M"]}
    assert diff_changes(before, after) == {
        "mail": {"before": ["a@univ.example"], "after": ["b@univ.example"]},
        "sn": {"before": [], "after": ["M"]},
    }
    assert diff_changes({"sn": ["M"]}, {}) == {"sn": {"before": ["M"], "after": []}}


_names = st.sampled_from(["cn", "sn", "mail", "title", "supannmailperso"])
_values = st.lists(st.text(max_size=5), max_size=3)
_entries = st.dictionaries(_names, _values)


@given(before=_entries, after=_entries)
def test_diff_changes_property(before: dict[str, list[str]], after: dict[str, list[str]]) -> None:
    changes = diff_changes(before, after)
    for name in set(before) | set(after):
        old, new = before.get(name, []), after.get(name, [])
        if sorted(old) == sorted(new):
            assert name not in changes
        else:
            assert changes[name] == {"before": old, "after": new}


@settings(max_examples=50)
@given(
    command=st.text(min_size=1, max_size=20),
    account=st.none() | st.text(max_size=30),
    note=st.text(max_size=40),
)
def test_any_text_stays_on_one_line_and_round_trips(
    tmp_path_factory: pytest.TempPathFactory, command: str, account: str | None, note: str
) -> None:
    """Any text comes back as written, control characters as their escapes."""
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    log = log_at(path)
    log.append(command, account, {"cn": {"before": [note], "after": []}}, note=note)
    assert path.read_bytes().count(b"\n") == 1
    [record] = log.read()
    expected = (escape_controls(command), account and escape_controls(account))
    assert (record.command, record.account) == expected
    assert record.details["note"] == escape_controls(note)
    assert record.changes["cn"]["before"] == [escape_controls(note)]
    if note.isprintable():
        assert record.details["note"] == note


def test_read_by_account_finds_accounts_written_with_escapes(tmp_path: Path) -> None:
    """The fast pre-filter on the raw line agrees with the JSON encoding of the account."""
    log = log_at(tmp_path / "audit.jsonl")
    for account in ("zoé@example.org", 'quote"d@example.org', ALICE):
        log.append("create", account, {})
    for account in ("zoé@example.org", 'quote"d@example.org', ALICE):
        assert [record.account for record in log.read(account=account)] == [account]


def test_group_commit_flushes_once_per_group_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushes.append(fd), real_fsync(fd))[1])
    log = log_at(tmp_path / "audit.jsonl")
    log.append("create", ALICE, {})
    assert len(flushes) == 1  # alone: every record is flushed
    with log.group_commit(every=100):
        for _ in range(250):
            log.append("sweep", ALICE, {})
        assert len(log.read()) == 251  # every record is in the file before the block ends
        assert len(flushes) == 3
    assert len(flushes) == 4  # the last 50 at the end of the block
    log.append("create", ALICE, {})
    assert len(flushes) == 5
