"""What a two-host site needs doctor and the audit log to say: syslog, archives, the state.

``[audit] syslog``: each record reaches the configured socket (a datagram socket of the
test's own, never the system's ``/dev/log``), or the run says once that it did not and the
file's record notes it; doctor has a row for it. ``[paths] archive_dir`` is checked as the
purge checks it, without making it. With the directory state backend, the ``state store``
row names the branch, not a ``state.db`` nobody uses.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, days
from people import add_person, rewrite_config

from umacct.config import load_config
from umacct.localdir import LocalDirectory
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


@pytest.fixture
def log_folder() -> Iterator[Path]:
    """A short folder for sockets (a socket's path is at most 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="umacct-log-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def logger(log_folder: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A datagram socket of this test's own, listening as a system logger would."""
    path = log_folder / "log"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(5)
    yield path, receiver
    receiver.close()


def doctor_rows() -> tuple[int, dict[str, dict[str, object]]]:
    code, out, err = umacct("--json", "doctor")
    assert out, err
    return code, {row["check"]: row for row in json.loads(out)}


def audit_lines(config_path: Path) -> list[dict[str, object]]:
    path = load_config(str(config_path)).paths.audit_log_path
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def suspend_someone(on: Callable[[date], Runtime], uid: str) -> tuple[str, str]:
    person = add_person(on(TODAY), uid, profile="vacataire", end_of_activity=days(-2))
    code, _, err = umacct("suspend", person.identifier, "--reason", "left")
    assert code == 0, err
    return person.identifier, err


# --- [audit] syslog -------------------------------------------------------------------------


def test_each_record_reaches_the_configured_syslog_socket(
    on: Callable[[date], Runtime], config_path: Path, logger: tuple[Path, socket.socket]
) -> None:
    path, receiver = logger
    rewrite_config(config_path, audit={"syslog": True, "syslog_socket": str(path)})
    identifier, err = suspend_someone(on, "sys.copy")
    assert "warning" not in err
    line = receiver.recv(65536).decode("ascii")
    assert line.startswith("<38>umacct[")  # facility auth, severity info, tag umacct
    record = json.loads(line.split(": ", 1)[1])
    assert (record["command"], record["account"]) == ("suspend", identifier)
    assert audit_lines(config_path)[-1] == record  # the same record, with nothing noted
    code, rows = doctor_rows()
    assert code == 0, rows
    row = rows["audit syslog"]
    assert row["status"] == "ok", row
    assert str(path) in str(row["detail"])


def test_a_record_syslog_cannot_take_is_kept_in_the_file_which_says_so_and_the_run_warns_once(
    on: Callable[[date], Runtime], config_path: Path, log_folder: Path
) -> None:
    missing = log_folder / "no-logger-here"
    rewrite_config(config_path, audit={"syslog": True, "syslog_socket": str(missing)})
    identifier, err = suspend_someone(on, "sys.lost")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert "not sent to syslog" in warnings[0] and str(missing) in warnings[0]
    assert str(load_config(str(config_path)).paths.audit_log_path) in warnings[0]
    record = audit_lines(config_path)[-1]
    assert (record["command"], record["account"], record["result"]) == (
        "suspend", identifier, "ok",
    )  # fmt: skip
    details = record["details"]
    assert isinstance(details, dict)
    assert str(details["syslog"]).startswith(f"not sent: cannot reach {missing}: ")
    code, out, _ = umacct("--json", "show", identifier)
    assert code == 0 and json.loads(out)["substate"] == "SupannSursis"  # the change is kept

    code, rows = doctor_rows()
    assert code == 1
    row = rows["audit syslog"]
    assert row["status"] == "FAIL"
    assert f"cannot reach syslog at {missing}: No such file or directory" in str(row["detail"])
    assert "syslog_socket" in str(row["fix"])


def test_a_socket_nobody_listens_on_fails_the_doctor_row(
    config_path: Path, log_folder: Path
) -> None:
    path = log_folder / "log"
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(path))
    gone.close()  # the socket file stays: a logger that stopped
    rewrite_config(config_path, audit={"syslog": True, "syslog_socket": str(path)})
    code, rows = doctor_rows()
    assert code == 1
    assert "Connection refused" in str(rows["audit syslog"]["detail"])


def test_syslog_off_is_a_row_too(config_path: Path) -> None:
    code, rows = doctor_rows()
    assert code == 0, rows
    assert rows["audit syslog"]["status"] == "ok"
    assert str(rows["audit syslog"]["detail"]).startswith("off: ")


# --- [paths] archive_dir --------------------------------------------------------------------


def test_an_archive_folder_not_made_yet_is_a_row_and_doctor_does_not_make_it(
    config_path: Path, log_folder: Path
) -> None:
    archive = log_folder / "nonexistent" / "arch"
    rewrite_config(config_path, paths={"archive_dir": str(archive)})
    code, rows = doctor_rows()
    assert code == 0, rows
    row = rows["archive folder"]
    assert row["status"] == "ok"
    assert row["detail"] == f"{archive} not created yet (made 0700 on first use)"
    assert not archive.parent.exists()


def test_an_archive_folder_every_user_may_write_fails_as_the_purge_refuses_it(
    config_path: Path, log_folder: Path
) -> None:
    archive = log_folder / "arch"
    archive.mkdir()
    os.chmod(archive, 0o777)
    rewrite_config(config_path, paths={"archive_dir": str(archive)})
    code, rows = doctor_rows()
    assert code == 1
    row = rows["archive folder"]
    assert row["status"] == "FAIL"
    assert str(row["detail"]).startswith(f"{archive}: writable by every user (mode 0777)")
    assert row["fix"] == f"chmod o-w,g-w {archive}"


def test_the_default_archive_folder_is_checked_in_the_data_dir(config_path: Path) -> None:
    code, rows = doctor_rows()
    assert code == 0, rows
    archive = load_config(str(config_path)).paths.archive_path
    assert str(rows["archive folder"]["detail"]).startswith(str(archive))


# --- the state store ------------------------------------------------------------------------


def test_with_the_directory_backend_the_state_store_row_names_the_branch(
    config_path: Path, slapd: LocalDirectory
) -> None:
    rewrite_config(
        config_path, directory={"state_dn": slapd.state_dn}, state={"backend": "directory"}
    )
    code, rows = doctor_rows()
    assert code == 0, rows
    detail = str(rows["state store"]["detail"])
    assert detail.startswith(f"directory: {slapd.state_dn}")
    assert "state.db" not in detail


def test_with_sqlite_the_state_store_row_is_the_file(config_path: Path) -> None:
    code, rows = doctor_rows()
    assert code == 0, rows
    data_dir = load_config(str(config_path)).paths.data_dir
    assert str(rows["state store"]["detail"]).startswith(f"{data_dir}/state.db")
