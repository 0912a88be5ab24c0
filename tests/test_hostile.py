"""The hostile-input corpus through the real CLI: a clear error, the exact exit code, no change.

Before every case the directory holds people in several states, the state store holds
links, the mail queue holds mail (the relay is down, so any new mail would be queued too)
and the outbox, archive and audit log hold files. The whole world is dumped before and after
the case (``world``) and must be identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from command_line import umacct
from days import TODAY, days, month_end, ymd
from hostile_cases import CASES, Case
from people import add_person
from smtp_fixtures import free_port

from umacct.config import Config, load_config
from umacct.localdir import LocalDirectory
from umacct.mail.queue import MailQueue, queue_path
from umacct.services.runtime import Runtime
from umacct.store import SQLiteStore

pytestmark = pytest.mark.usefixtures("directory_clean")

ERROR_PREFIX = "umacct: error: "
# Expired eight weeks ago: past its purge delay (30 days) too.
EXPIRED_ON = ymd(days(-56))
EXPIRED_STATES = [
    f"{{COMPTE}}I:SupannExpire:{EXPIRED_ON}:",
    f"{{MAIL}}I:SupannExpire:{EXPIRED_ON}:",
]
SERVICE_BIND_TRACES = ("pwdLastSuccess:", "entryCSN:", "modifyTimestamp:")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Seeded:
    """The seeded world: who is there, and the files the cases use."""

    people: dict[str, str]
    config: Config
    slapd: LocalDirectory
    tmp: Path


def cli(args: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Run the real CLI in this process, on the test's clock (today); exit code, stdout, stderr."""
    return umacct(*args, stdin=stdin, catch_exceptions=False)


def directory_dump(slapd: LocalDirectory) -> list[str]:
    """Every entry under the base with all user and operational attributes, as LDIF blocks.

    A refused command writes nothing, so every entry stays as it was, timestamps and CSNs
    included, except for what the tool's own bind leaves on the service account: ppolicy
    records each successful bind there (pwdLastSuccess, and so entryCSN and modifyTimestamp).
    """
    ldif = slapd.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", slapd.base_dn, "(objectClass=*)", "*", "+"
    )
    blocks = []
    for block in filter(None, (text.strip() for text in ldif.split("\n\n"))):
        lines = block.splitlines()
        if lines[0] == f"dn: {slapd.bind_dn}":
            lines = [line for line in lines if not line.startswith(SERVICE_BIND_TRACES)]
        blocks.append("\n".join(lines))
    return sorted(blocks)


def data_dump(config: Config) -> dict[str, Any]:
    """The state store, the mail queue, and every other file of the data dir, byte for byte."""
    data_dir = Path(config.paths.data_dir)
    with SQLiteStore(data_dir) as store:
        state = store.dump()
    with MailQueue(queue_path(config)) as queue:
        queued = queue.pending()
    files = {
        str(path.relative_to(data_dir)): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        # Lock files hold no state (a job's advisory lock, left in place on purpose).
        if path.is_file() and not path.name.endswith((*SQLITE_SUFFIXES, ".lock"))
    }
    return {"store": state, "queue": queued, "files": files}


def world(seeded: Seeded) -> dict[str, Any]:
    """Everything a refused command must leave untouched."""
    return {"directory": directory_dump(seeded.slapd), **data_dump(seeded.config)}


@pytest.fixture
def seeded(
    on: Callable[[date], Runtime], config_path: Path, slapd: LocalDirectory, tmp_path: Path
) -> Iterator[Seeded]:
    """People in every state, links in the store, mail in the queue and the outbox."""
    document = tomllib.loads(config_path.read_text("utf-8"))
    document["antispam"] = {"attribute": "description", "levels": {"normal": "n", "high": "h"}}
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    runtime = on(TODAY)
    people = {
        "active": add_person(runtime, "ana.active", profile="titulaire"),
        "grace": add_person(
            runtime, "bob.grace", profile="contractuel", end_of_activity=month_end(-1)
        ),
        "new": add_person(runtime, "cleo.new", profile="etudiant", awaiting_activation=True),
        "expired": add_person(
            runtime, "dan.expired", profile="vacataire", state_values=EXPIRED_STATES
        ),
        "staff": add_person(runtime, "eve.staff", profile="autre_personnel"),
    }
    addresses = {key: person.identifier for key, person in people.items()}
    # Mail goes to the outbox for these, then to a relay that is down: later mail is queued.
    assert cli(["suspend", addresses["grace"], "--reason", "seed"])[0] == 0
    document["mail"] = {
        "transport": "smtp",
        "smtp": {"host": "127.0.0.1", "port": free_port(), "security": "none", "timeout": 2},
    }
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    code, _, err = cli(["activate", addresses["new"]])
    assert code == 0, err
    config = load_config(config_path)
    assert MailQueue(queue_path(config)).count_pending() == 1
    yield Seeded(addresses, config, slapd, tmp_path)


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two worlds, for the failure message."""
    out = []
    for key in before:
        if before[key] != after[key]:
            out.append(f"{key}: {before[key]!r} -> {after[key]!r}"[:3000])
    return out


def expand(case: Case, seeded: Seeded) -> list[str]:
    """The case's argv with the seeded addresses and its CSV file filled in."""
    csv_path = seeded.tmp / "intake.csv"
    if case.csv is not None:
        csv_path.write_bytes(case.csv)
    values = {**seeded.people, "csv": str(csv_path), "people_dn": seeded.slapd.people_dn}
    out = []
    for part in case.argv:
        filled = part
        for key, value in values.items():
            filled = filled.replace("{" + key + "}", value)
        out.append(filled)
    return out


def check_error_line(case: Case, code: int, out: str, err: str) -> None:
    """One line on stderr, naming the problem; nothing on stdout; no traceback."""
    assert code == case.code, f"{case.name}: exit {code}, stderr: {err!r}"
    assert "Traceback" not in err
    if case.code == 2:
        # click's own usage report, or the tool's one line for a refused value
        assert any(line.startswith(("Error:", ERROR_PREFIX)) for line in err.splitlines()), err
        assert case.says.lower() in err.lower(), err
        return
    if case.row_report:
        *rows, summary = err.strip().splitlines()
        assert rows and all(line.startswith("line ") for line in rows), err
        assert "failed" in summary, err
        assert case.says.lower() in err.lower(), err
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{case.name}: expected one line, got {err!r}"
    assert lines[0].startswith(ERROR_PREFIX), err
    assert case.says.lower() in lines[0].lower(), f"{case.name}: {lines[0]!r}"
    assert out == "", f"{case.name}: stdout {out!r}"


def check_json_error(case: Case, code: int, out: str, err: str) -> None:
    """With --json: one JSON object on stderr with the same exit code."""
    assert code == case.code, f"{case.name} --json: exit {code}, stderr: {err!r}"
    if case.row_report:
        # The intake's report is the command's data: one JSON document on stdout.
        assert json.loads(out)["summary"]["failed"] >= 1
        return
    document = json.loads(err)
    assert document["exit_code"] == case.code
    assert case.says.lower() in document["message"].lower()
    assert out == ""


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_sec13_sec16_hostile_input_is_refused_without_change(case: Case, seeded: Seeded) -> None:
    args = expand(case, seeded)
    before = world(seeded)
    code, out, err = cli(args, case.stdin)
    if case.accepted:
        assert code == 0, f"{case.name}: exit {code}, stderr: {err!r}"
        assert case.says.lower() in out.lower(), out
    else:
        check_error_line(case, code, out, err)
        if case.code != 2:
            check_json_error(case, *cli(["--json", *args], case.stdin))
    after = world(seeded)
    assert after == before, f"{case.name} changed: {changes(before, after)}"


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)
    codes = {case.code for case in CASES}
    assert {0, 2, 65, 67, 77} <= codes


SUBPROCESS_CASES = [case for case in CASES if case.name in {
    "account-filter-show", "address-crlf-create", "option-missing-value",
    "option-password-argument", "date-impossible-suspend",
}]  # fmt: skip


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[case.name for case in SUBPROCESS_CASES])
def test_sec16_hostile_input_through_a_real_process(case: Case, seeded: Seeded) -> None:
    before = world(seeded)
    argv = [sys.executable, "-m", "umacct", *expand(case, seeded)]
    run = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=dict(os.environ), check=False
    )
    check_error_line(case, run.returncode, run.stdout, run.stderr)
    assert world(seeded) == before
