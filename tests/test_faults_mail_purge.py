"""The mail relay going down during an intake, and the archive folder failing during a purge."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import Person, add_person
from smtp_fixtures import SmtpTestServer
from test_faults_slapd import write_intake
from test_faults_support import Site, assert_one_line_error, make_site, wait_until

from umacct.config import load_config
from umacct.services.runtime import Runtime
from umacct.store import SQLiteStore

INTAKE_ROWS = 300
FILLER_BLOCKS = 64


@pytest.fixture
def smtp_site(tmp_path: Path, smtp_server: SmtpTestServer) -> Iterator[Site]:
    """A directory of its own whose tool mails through the loopback SMTP server."""
    mail = {
        "transport": "smtp",
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "security": "none", "timeout": 5},
    }  # fmt: skip
    made = make_site(tmp_path, mail=mail)
    yield made
    made.directory.stop()


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a ``--json`` run printed, after checking it succeeded."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_relay_down_during_an_intake_queues_and_a_flush_delivers_each_mail_once(
    smtp_site: Site, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    intake = tmp_path / "rentree.csv"
    write_intake(intake, INTAKE_ROWS)
    process = smtp_site.spawn("--json", "create", "--csv", str(intake))
    wait_until(lambda: len(smtp_server.received) >= 20, "the first activation mails")
    smtp_server.stop()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["summary"] == {"created": INTAKE_ROWS, "failed": 0}
    mails = Counter(result["mail"] for result in report["results"])
    sent_before = len(smtp_server.received)
    assert mails == {"sent": sent_before, "queued": INTAKE_ROWS - sent_before}
    assert len(smtp_site.people()) == INTAKE_ROWS
    queued = json_of(smtp_site.run("--json", "mail", "list"))
    assert len(queued) == INTAKE_ROWS - sent_before

    down = smtp_site.run("--json", "mail", "flush")
    assert down.returncode == 69 and json.loads(down.stderr)["exit_code"] == 69
    assert len(json_of(smtp_site.run("--json", "mail", "list"))) == len(queued)

    smtp_server.start()
    flushed = json_of(smtp_site.run("--json", "mail", "flush"))
    assert (flushed["sent"], flushed["remaining"]) == (len(queued), 0)
    assert json_of(smtp_site.run("--json", "mail", "flush"))["sent"] == 0
    recipients = Counter(address for mail in smtp_server.received for address in mail.rcpt_tos)
    expected = Counter(entry["supannmailperso"][0] for entry in smtp_site.people().values())
    assert recipients == expected  # every person once: none lost, none sent twice


# --- the archive fails during a purge ------------------------------------------------------


def expired_people(runtime: Runtime, count: int) -> list[Person]:
    """People whose grace period ended long ago (purgeable today), through the tool itself."""
    ended = month_end(-10)  # autre_personnel, 3 months: the grace ended month_end(-7)
    people = [
        add_person(runtime, f"zoe.purge{chr(97 + n)}", profile="autre_personnel",
                   end_of_activity=ended)
        for n in range(count)
    ]  # fmt: skip
    for person in people:
        assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    return people


def purge_state(runtime: Runtime, people: list[Person], config_path: Path) -> tuple[Any, ...]:
    """The entries, the store and the purge lines of the audit log."""
    config = load_config(config_path)
    with SQLiteStore(Path(config.paths.data_dir)) as store:
        dump = store.dump()
    entries = [runtime.directory.read(person.dn, ["*"]) for person in people]
    purges = [record for record in runtime.audit.read() if record.command == "purge"]
    return entries, dump, purges


@contextlib.contextmanager
def full_filesystem(folder: Path) -> Iterator[None]:
    """A 64 KiB tmpfs mounted on ``folder`` and filled up; unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder)],
        capture_output=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), (folder / "filler").open("wb", buffering=0) as filler:
            for _ in range(FILLER_BLOCKS):  # bounded: the tmpfs is full long before the end
                filler.write(b"\0" * 4096)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _archive_is_a_file(folder: Path) -> contextlib.AbstractContextManager[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder\n", encoding="utf-8")
    return _removed_after(folder)


@contextlib.contextmanager
def _removed_after(path: Path) -> Iterator[None]:
    try:
        yield
    finally:
        path.unlink()


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (full_filesystem, "No space left on device"),
        (_archive_is_a_file, "a file of that name exists"),
    ],
    ids=["archive-full", "archive-unwritable"],
)
def test_sec20_no_entry_is_deleted_without_its_archive(
    on: Callable[[date], Runtime],
    config_path: Path,
    fault: Callable[[Path], contextlib.AbstractContextManager[None]],
    reason: str,
) -> None:
    runtime = on(TODAY)
    people = expired_people(runtime, 3)
    archive = Path(load_config(config_path).paths.data_dir) / "archive"
    before = purge_state(runtime, people, config_path)
    with fault(archive):
        code, _, stderr = umacct("purge", "--expired", "--yes", "--reason", "left")
        assert_one_line_error(stderr, (69,), code)
        assert reason in stderr and "nothing was deleted" in stderr
        assert purge_state(runtime, people, config_path) == before
        assert not list(archive.glob("*.ldif"))
    code, _, stderr = umacct("purge", "--expired", "--yes", "--reason", "left")
    assert code == 0, stderr
    assert all(runtime.directory.read(person.dn, ["uid"]) is None for person in people)
    archived = sorted(archive.glob("*.ldif"))
    assert [path.name.split("-")[0] for path in archived] == sorted(p.identifier for p in people)
    for person, path in zip(sorted(people, key=lambda p: p.identifier), archived, strict=True):
        assert f"dn: {person.dn}" in path.read_text(encoding="utf-8")
