"""The SQLite state store: file modes, schema, notices, job locks, error mapping."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from umacct.errors import (
    ExitCode,
    InvalidInputError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.store import SCHEMA_VERSION, STATE_FILE, SQLiteStore

T0 = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "data") as opened:
        yield opened


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_private_data_dir_and_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "data"
    with SQLiteStore(data_dir) as store:
        store.record_notice("a@univ.example", "warn", "k", T0)
        assert _mode(data_dir) == 0o700
        for path in data_dir.glob(f"{STATE_FILE}*"):
            assert _mode(path) == 0o600, path


def test_existing_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    tmp_path.joinpath(STATE_FILE).touch(mode=0o644)
    tmp_path.joinpath(STATE_FILE).chmod(0o644)
    with SQLiteStore(tmp_path):
        assert _mode(tmp_path / STATE_FILE) == 0o600


def test_existing_data_dir_mode_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with SQLiteStore(tmp_path):
        assert _mode(tmp_path) == 0o755


def test_wal_mode_and_schema_version(store: SQLiteStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert store.schema_version() == SCHEMA_VERSION


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as first:
        first.record_notice("a@univ.example", "warn", "k", T0)
    with SQLiteStore(tmp_path) as second:
        assert second.last_notice("a@univ.example", "warn") == T0
        assert len(second.dump()["schema_migrations"]) == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        conn = sqlite3.connect(store.path)
        with conn:
            conn.execute("INSERT INTO schema_migrations VALUES (999, 'x')")
        conn.close()
    with pytest.raises(UnavailableError, match="newer than this umacct"):
        SQLiteStore(tmp_path)


def test_notice_is_recorded_once(store: SQLiteStore) -> None:
    key = "expiry in 30 days for grace_end 2027-06-30"
    assert store.record_notice("a@univ.example", "expiry-warning", key, T0) is True
    later = T0 + timedelta(days=1)
    assert store.record_notice("a@univ.example", "expiry-warning", key, later) is False
    assert store.record_notice("b@univ.example", "expiry-warning", key, later) is True
    assert store.last_notice("a@univ.example", "expiry-warning") == T0


def test_last_notice_is_the_latest_of_the_kind(store: SQLiteStore) -> None:
    assert store.last_notice("a@univ.example", "reminder") is None
    for days in (0, 30, 10):
        store.record_notice("a@univ.example", "reminder", f"r{days}", T0 + timedelta(days=days))
    store.record_notice("a@univ.example", "other", "x", T0 + timedelta(days=99))
    assert store.last_notice("a@univ.example", "reminder") == T0 + timedelta(days=30)


def test_naive_datetimes_are_refused(store: SQLiteStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_notice("a@univ.example", "warn", "k", datetime(2027, 1, 1))


def test_dump_lists_every_table(store: SQLiteStore) -> None:
    store.record_notice("a@univ.example", "warn", "k", T0)
    dump = store.dump()
    assert set(dump) == {
        "extension_requests",
        "notices",
        "purged",
        "saved_values",
        "schema_migrations",
        "tokens",
    }
    assert dump["notices"] == [
        {
            "account": "a@univ.example",
            "kind": "warn",
            "key": "k",
            "sent_at": T0.isoformat(timespec="microseconds"),
        }
    ]


def test_cancel_with_no_purposes_cancels_nothing(store: SQLiteStore) -> None:
    assert store.cancel_tokens("a@univ.example", [], T0) == 0


def test_busy_store_is_a_temporary_error(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, busy_timeout_ms=50) as store:
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(TemporaryError, match="busy") as caught:
                store.record_notice("a@univ.example", "warn", "k", T0)
            assert caught.value.exit_code == ExitCode.TEMPORARY_FAILURE
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()


# --- job locks ---------------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from umacct.store import SQLiteStore
    with SQLiteStore(Path(sys.argv[1])) as store, store.job_lock("sweep"):
        print("held", flush=True)
        if sys.argv[2] == "stdin":
            sys.stdin.read()
        else:
            time.sleep(float(sys.argv[2]))
    """
)


def _start_holder(data_dir: Path, hold: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir), hold],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_job_lock_held_by_another_process_is_a_temporary_error(store: SQLiteStore) -> None:
    holder = _start_holder(store.data_dir, "stdin")
    try:
        with pytest.raises(TemporaryError) as caught, store.job_lock("sweep"):
            pass
        assert caught.value.message == (
            f"another sweep is running (pid {holder.pid}); try again later"
        )
        assert caught.value.exit_code == ExitCode.TEMPORARY_FAILURE
    finally:
        holder.communicate("")
    with store.job_lock("sweep"):
        assert (store.data_dir / "sweep.lock").read_text().strip() == str(os.getpid())


def test_job_lock_can_wait_for_the_holder(store: SQLiteStore) -> None:
    holder = _start_holder(store.data_dir, "0.3")
    try:
        with store.job_lock("sweep", wait_seconds=10):
            assert holder.wait(timeout=10) == 0
    finally:
        holder.communicate()


def test_job_lock_wait_times_out(store: SQLiteStore) -> None:
    holder = _start_holder(store.data_dir, "stdin")
    try:
        with (
            pytest.raises(TemporaryError, match="another sweep is running"),
            store.job_lock("sweep", wait_seconds=0.2),
        ):
            pass
    finally:
        holder.communicate("")


def test_job_lock_file_is_private_and_names_are_checked(store: SQLiteStore) -> None:
    with store.job_lock("daily-sweep"):
        assert _mode(store.data_dir / "daily-sweep.lock") == 0o600
    for bad in ("../escape", "", "Sweep", "a/b"):
        with pytest.raises(InvalidInputError), store.job_lock(bad):
            pass


def test_sec21_purged_identifiers_are_remembered(tmp_path: Path) -> None:
    from umacct.store import PurgeRecord

    with SQLiteStore(tmp_path) as store:
        now = datetime(2027, 3, 1, tzinfo=UTC)
        assert store.find_purge("jean.martin@example.org") is None
        store.record_purge(
            PurgeRecord(
                "jean.martin@example.org",
                "jean.martin",
                "uid=jean.martin,ou=people",
                tmp_path / "a.ldif",
                now,
            )
        )
        assert store.find_purge("JEAN.MARTIN") is not None
        found = store.find_purge("jean.martin@example.org")
        assert found is not None and found.restored_at is None
        store.mark_restored("jean.martin@example.org", now)
        found = store.find_purge("jean.martin")
        assert found is not None and found.restored_at == now


def test_sec30_a_purge_keeps_the_sha256_of_its_archive(tmp_path: Path) -> None:
    from umacct.store import PurgeRecord

    digest = "ab" * 32
    with SQLiteStore(tmp_path) as store:
        record = PurgeRecord("a@x.org", "a", "uid=a,ou=people", tmp_path / "a.ldif", T0)
        store.record_purge(dataclasses.replace(record, archive_sha256=digest))
        found = store.find_purge("a")
        assert found is not None and found.archive_sha256 == digest


def test_sec30_purges_recorded_before_digests_are_kept_without_one(tmp_path: Path) -> None:
    from umacct.store import _MIGRATIONS

    with sqlite3.connect(tmp_path / STATE_FILE) as conn:  # a store written by umacct 2
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        for version, statements in enumerate(_MIGRATIONS[:2], start=1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (version,))
        conn.execute(
            "INSERT INTO purged (account, uid, dn, archive, purged_at) VALUES (?, ?, ?, ?, ?)",
            ("a@x.org", "a", "uid=a,ou=people", "/old/a.ldif", T0.isoformat()),
        )
    conn.close()
    with SQLiteStore(tmp_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        found = store.find_purge("a@x.org")
        assert found is not None and found.archive_sha256 is None
        assert found.archive == Path("/old/a.ldif")


def test_saved_values_round_trip(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        now = datetime(2027, 3, 1, tzinfo=UTC)
        assert store.saved_values("a@x.org", "affiliations") is None
        store.save_values("a@x.org", {"affiliations": ["member", "staff"], "primary": []}, now)
        assert store.saved_values("a@x.org", "affiliations") == ["member", "staff"]
        assert store.saved_values("a@x.org", "primary") == []


def _open_at(folder: str, start: float) -> str:
    """Open (and so create) the store in ``folder`` at the instant ``start``; what happened."""
    import time

    while time.time() < start:
        pass
    try:
        SQLiteStore(Path(folder)).close()
    except UmacctError as error:
        return error.message
    return "ok"


def test_runs_started_together_on_a_fresh_data_folder_all_open_the_store(tmp_path: Path) -> None:
    """Two cron jobs at the same minute on a new install: none may fail "database is locked"."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("fork")
    with context.Pool(5) as pool:
        for trial in range(15):
            folder = tmp_path / f"data{trial}"
            start = time.time() + 0.2
            answers = pool.starmap(_open_at, [(str(folder), start)] * 5)
            assert answers == ["ok"] * 5, answers
