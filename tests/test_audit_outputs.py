"""Where the audit trail and the archives go besides the data dir: syslog, a shared folder."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, days, ymd
from people import add_person, rewrite_config

from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")
DEV_LOG = Path("/dev/log")


@pytest.fixture
def syslog_lines() -> Iterator[list[str]]:
    """What reaches /dev/log, where the C library's syslog() sends (only if no logger is there).

    Everything is read as it comes (slapd logs there too, and a full socket would stop it).
    """
    if DEV_LOG.exists():
        pytest.skip("a system logger owns /dev/log: not taken over by a test")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        receiver.bind(str(DEV_LOG))
    except OSError as error:
        pytest.skip(f"cannot listen at /dev/log here: {error}")
    receiver.settimeout(0.2)
    lines: list[str] = []
    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            try:
                lines.append(receiver.recv(65536).decode("utf-8", "replace"))
            except TimeoutError:
                continue
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        done.set()
        reader.join(timeout=2)
        receiver.close()
        os.unlink(DEV_LOG)


def test_every_audit_record_also_goes_to_syslog_when_asked(
    on: Callable[[date], Runtime], config_path: Path, syslog_lines: list[str]
) -> None:
    rewrite_config(config_path, audit={"syslog": True})
    person = add_person(on(TODAY), "sys.log", profile="vacataire", end_of_activity=days(-2))
    code, _, err = umacct("suspend", person.identifier, "--reason", "left")
    assert code == 0, err
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _ours(syslog_lines, person.identifier):
        time.sleep(0.05)
    assert _ours(syslog_lines, person.identifier), syslog_lines[-5:]


def _ours(lines: list[str], account: str) -> bool:
    return any("umacct" in line and account in line and '"suspend"' in line for line in lines)


def test_archives_go_to_the_configured_folder(
    on: Callable[[date], Runtime], config_path: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-archive"
    rewrite_config(config_path, paths={"archive_dir": str(shared)})
    runtime = on(TODAY)
    expired = [f"{{COMPTE}}I:SupannExpire:{ymd(days(-90))}:"]
    person = add_person(runtime, "arch.shared", state_values=expired, end_of_activity=days(-200))
    code, _, err = umacct("purge", person.identifier, "--yes", "--reason", "left")
    assert code == 0, err
    assert [p.name.startswith("arch.shared@") for p in shared.glob("*.ldif")] == [True]
    code, _, err = umacct("restore", person.identifier, "--reason", "mistake")
    assert code == 0, err
