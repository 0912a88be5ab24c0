"""Two runs at once: two sweeps (a job lock), two processes changing one account (no lost update)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from command_line import umacct
from days import PARIS, TODAY, month_end
from people import add_person, day_after, read
from test_faults_support import (
    STATE_DATE,
    TOOL,
    Site,
    assert_one_line_error,
    departed,
    finish,
    letters,
    site,
    wait_until,
)

from umacct.directory.adapter import Directory
from umacct.directory.errors import ConflictError
from umacct.services.lifecycle import extend
from umacct.services.runtime import Runtime

__all__ = ["site"]

SWEEP_PEOPLE = 1500  # enough for the first sweep to still run when the second starts
ENDED = month_end(-1)  # in grace today, the real day of the tool's processes


def logins_stop(grace_end: date) -> str:
    """``pwdEndTime`` for a grace ending on ``grace_end``: the next local midnight, in UTC."""
    midnight = datetime.combine(day_after(grace_end), time(), tzinfo=PARIS)
    return midnight.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def test_a_second_sweep_while_one_runs_exits_75_and_nothing_is_applied_twice(site: Site) -> None:
    domain = site.config.profiles["vacataire"].domain
    site.add_people(
        [
            departed(f"ana.{letters(n).lower()}", "vacataire", ENDED, domain)
            for n in range(SWEEP_PEOPLE)
        ]
    )
    first = site.spawn("sweep", "--max-changes", str(SWEEP_PEOPLE))
    wait_until(lambda: site.audit_lines() >= 10, "the first sweep at work")
    second = site.run("sweep")
    assert first.poll() is None, "the first sweep ended too early for the test to mean anything"
    assert_one_line_error(second.stderr, (75,), second.returncode)
    assert "sweep" in second.stderr and "running" in second.stderr
    code, _, stderr = finish(first)
    assert code == 0, stderr

    suspended = Counter(
        record["account"]
        for record in site.audit()
        if record["command"] == "sweep" and STATE_DATE in record["changes"]
    )
    assert len(suspended) == SWEEP_PEOPLE and set(suspended.values()) == {1}
    assert set(site.outbox_recipients().values()) == {1}
    assert len(site.outbox_recipients()) == SWEEP_PEOPLE


# --- two processes, one account --------------------------------------------------------------


def extend_records(runtime: Runtime, identifier: str) -> list[Any]:
    """The audit records of successful extensions of one account."""
    return [
        record
        for record in runtime.audit.read(account=identifier)
        if record.command == "extend" and record.result == "ok"
    ]


@pytest.mark.usefixtures("directory_clean")
def test_two_runtimes_interleaved_the_stale_one_is_refused(
    on: Callable[[date], Runtime],
) -> None:
    setup = on(TODAY)
    person = add_person(setup, "ines.double", profile="titulaire", end_of_activity=ENDED)
    assert umacct("suspend", person.identifier, "--reason", "left")[0] == 0
    first, second = on(TODAY), on(TODAY)
    real_modify = Directory.modify
    calls: list[str] = []

    def modify_after_the_other(self: Directory, dn: str, *args: Any, **kwargs: Any) -> None:
        # The second runtime read the account; the first one extends it before it writes.
        if self is second.directory and not calls:
            calls.append(dn)
            extend(first, person.identifier, reason="first")
        real_modify(self, dn, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Directory, "modify", modify_after_the_other)
        with pytest.raises(ConflictError) as refused:
            extend(second, person.identifier, reason="second")
    assert refused.value.exit_code == 75
    entry = read(setup, person)
    # titulaire: 12 months of grace, then one extension of 12 months
    assert entry.first("pwdEndTime") == logins_stop(month_end(23))
    assert [record.details["reason"] for record in extend_records(setup, person.identifier)] == [
        "first"
    ]


@pytest.mark.usefixtures("directory_clean")
def test_another_process_changes_the_account_between_read_and_write_exit_75(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    setup = on(TODAY)
    person = add_person(setup, "remi.double", profile="titulaire", end_of_activity=ENDED)
    assert umacct("suspend", person.identifier, "--reason", "left")[0] == 0
    real_modify = Directory.modify
    others: list[subprocess.CompletedProcess[str]] = []

    def modify_after_another_process(self: Directory, dn: str, *args: Any, **kwargs: Any) -> None:
        if not others:
            others.append(
                subprocess.run(
                    [*TOOL, "--json", "extend", person.identifier, "--reason", "other process"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            )
        real_modify(self, dn, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Directory, "modify", modify_after_another_process)
        code, _, stderr = umacct("--json", "extend", person.identifier, "--reason", "this process")
    assert others[0].returncode == 0, others[0].stderr
    assert code == 75, stderr
    error = json.loads(stderr)
    assert error["exit_code"] == 75 and "changed meanwhile" in error["message"]
    assert read(setup, person).first("pwdEndTime") == logins_stop(month_end(23))
    reasons = [record.details["reason"] for record in extend_records(setup, person.identifier)]
    assert reasons == ["other process"]

    # The rerun the message asks for sees the other extension: it renews, it does not stack.
    code, _, stderr = umacct("--json", "extend", person.identifier, "--reason", "rerun")
    assert code == 77, stderr
    assert f"already extended to {month_end(23).isoformat()}" in json.loads(stderr)["message"]
    assert read(setup, person).first("pwdEndTime") == logins_stop(month_end(23))
    reasons = [record.details["reason"] for record in extend_records(setup, person.identifier)]
    assert reasons == ["other process"]
