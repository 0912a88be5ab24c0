"""An intake stopped while a batch's adds are on their way: every batch before it reported, in
order, none after a missing one; every account added audited and mailed.

Found by review of the overlapping batches: the last batch's failure hid the batch before it,
a failed batch let the one after it be told in its place, and a reader gone (``| head``)
closed the directory before the adds on their way were read.
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from days import TODAY, days
from test_faults_slapd import write_intake
from test_faults_support import TOOL, Site, audit_trail, site

from umacct.directory.adapter import AddResult
from umacct.errors import UnavailableError
from umacct.intake import read_intake
from umacct.services import create
from umacct.services.changes import UNCERTAIN
from umacct.services.create import CreateOutcome, RowFailure, create_people
from umacct.services.runtime import Runtime

__all__ = ["site"]
HEADER = "given_name;surname;profile;personal_email;end_of_activity;external_id;arrival\n"


class _Lost:
    """A batch's adds whose answers never come: the connection is gone."""

    def __init__(self, adds: Any) -> None:
        self._adds = adds

    def __iter__(self) -> Iterator[AddResult]:
        return self

    def __next__(self) -> AddResult:
        raise UnavailableError("add: connection to the directory lost (test)")

    def close(self) -> None:
        self._adds.close()


def _losing_batch(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch, number: int
) -> Runtime:
    """A directory whose ``number``-th batch of 4 adds loses its answers."""
    monkeypatch.setattr(create, "BATCH_SIZE", 4)
    runtime = on(TODAY)
    send_adds = runtime.directory.send_adds
    sent = []

    def losing(*args: Any, **options: Any) -> Any:
        sent.append(1)
        adds = send_adds(*args, **options)
        return _Lost(adds) if len(sent) == number else adds

    monkeypatch.setattr(runtime.directory, "send_adds", losing)
    return runtime


def _rows(runtime: Runtime, count: int, past_from: int | None = None) -> list[Any]:
    lines = []
    for n in range(count):
        end = days(-10).isoformat() if past_from is not None and n >= past_from else ""
        lines.append(f"Élise;Stop{n};etudiant;stop{n}@example.net;{end};T{n};\n")
    return read_intake((HEADER + "".join(lines)).encode(), profiles=runtime.config.profiles).rows


def _run(runtime: Runtime, rows: list[Any]) -> list[CreateOutcome | RowFailure]:
    told: list[CreateOutcome | RowFailure] = []
    with pytest.raises(UnavailableError):
        for result in create_people(runtime, rows, send_mail=False):
            told.append(result)
    return told


@pytest.mark.usefixtures("directory_clean")
def test_the_last_batch_lost_still_reports_the_batches_before_it(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _losing_batch(on, monkeypatch, 3)  # 12 rows: batches of 4, the third lost
    told = _run(runtime, _rows(runtime, 12))
    assert [r.line for r in told] == list(range(2, 10))  # lines of rows 0-7
    uncertain = [r for r in runtime.audit.read() if r.result == UNCERTAIN]
    assert len(uncertain) == 4  # the third batch's accounts: a rerun completes them


@pytest.mark.usefixtures("directory_clean")
def test_a_lost_batch_is_never_replaced_by_the_one_after_it(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _losing_batch(on, monkeypatch, 2)
    # The third batch adds nobody (ends of activity in the past): nothing stops it.
    told = _run(runtime, _rows(runtime, 12, past_from=8))
    assert [r.line for r in told] == [2, 3, 4, 5]  # the first batch, and nothing after the gap


def test_a_reader_gone_mid_intake_leaves_every_account_added_audited_and_mailed(
    site: Site, tmp_path: Path
) -> None:
    """``umacct create --csv F | head -1`` at a terminal (the progress bar on stderr)."""
    intake = tmp_path / "rentree.csv"
    write_intake(intake, 650)
    terminal, terminal_end = pty.openpty()
    process = subprocess.Popen(
        [*TOOL, "create", "--csv", str(intake)],
        env=site.env(), stdout=subprocess.PIPE, stderr=terminal_end,
    )  # fmt: skip
    os.close(terminal_end)
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()  # as `| head -1` does: the next writes fail
    _drain(terminal)
    assert process.wait(timeout=120) == 141
    people = site.people()
    assert 0 < len(people) < 650  # stopped in the middle
    trail = audit_trail(site, "create")
    added = {entry["mail"][0] for entry in people.values()}
    assert all(trail[account]["ok"] == 1 for account in added), "an account added unaudited"
    assert not any(counts[UNCERTAIN] for counts in trail.values())
    mailed = site.outbox_recipients()
    assert sum(mailed.values()) == len(people)  # each account added has its link on its way


def _drain(descriptor: int) -> None:
    """Read the terminal until the process closes it (its progress bar must not block)."""
    with contextlib.suppress(OSError):
        while os.read(descriptor, 65536):
            pass
    os.close(descriptor)
