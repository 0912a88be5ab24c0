"""Before a batch's modifies go, one ``pending`` audit record on disk names its accounts.

The sweep sends a batch's writes together, ahead of their own audit records: a process
killed in between (SIGKILL, the machine's power) would leave up to a batch of changes with
no trace in the audit log. The pending record, written and flushed before the first modify
is sent, names every account about to be written, as a bulk intake's does for its adds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from command_line import umacct
from days import TODAY
from people import add_person, compte, read

from umacct.audit import AuditLog
from umacct.directory import Directory
from umacct.directory.adapter import MODIFY_WINDOW
from umacct.errors import UnavailableError
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")


class AuditAtSend:
    """The real directory; at each ``modify_many``, what the audit log holds on disk."""

    def __init__(self, directory: Directory, runtime: Runtime) -> None:
        self._directory = directory
        self._runtime = runtime
        self.seen: list[list[dict[str, Any]]] = []

    def modify_many(self, *args: Any, **options: Any) -> Any:
        path = self._runtime.audit.path
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        self.seen.append([json.loads(line) for line in lines])
        return self._directory.modify_many(*args, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._directory, name)


def test_a_batchs_accounts_are_in_the_audit_log_before_its_writes_go(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    gone = [
        add_person(runtime, f"rose.n{n}", end_of_activity=TODAY - timedelta(days=2))
        for n in range(3)
    ]
    add_person(runtime, "sam.stays", end_of_activity=TODAY + timedelta(days=90))
    spy = AuditAtSend(runtime.directory, runtime)
    runtime._directory = spy  # type: ignore[assignment]
    summary = SweepSummary(runtime.today(), dry_run=False)
    assert [r.action for r in sweep(runtime, summary)] == ["suspend"] * 3
    [on_disk] = spy.seen  # one batch
    [pending] = [record for record in on_disk if record["result"] == "pending"]
    assert pending["command"] == "sweep"
    assert pending["account"] is None and pending["changes"] == {}
    assert sorted(pending["details"]["accounts"]) == sorted(p.identifier for p in gone)
    assert not [record for record in on_disk if record["changes"]]  # no write audited yet
    records = runtime.audit.read()
    assert [r.result for r in records] == ["pending", "ok", "ok", "ok"]


def test_a_stop_mid_batch_sends_no_more_writes_and_each_one_sent_is_named_pending(
    on: Callable[[date], Runtime],
) -> None:
    """The audit log full after 3 records: the writes not sent yet stay unsent (found in review:
    the window kept being topped up after the stop, 37 of 40 suspended with no record)."""
    setup = on(TODAY)
    people = [
        add_person(setup, f"aud.n{n}", end_of_activity=TODAY - timedelta(days=1)) for n in range(40)
    ]
    real_write = AuditLog.write
    written = {"ok": 0}

    def write(self: AuditLog, records: Any) -> Any:
        if any(record.result == "ok" for record in records):
            if written["ok"] >= 3:
                raise UnavailableError(f"audit log {self.path}: cannot write: disk full")
            written["ok"] += 1
        return real_write(self, records)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AuditLog, "write", write)
        code, _, stderr = umacct("sweep")
    assert code == 69, stderr
    runtime = on(TODAY)
    in_grace = {
        person.identifier
        for person in people
        if compte(read(runtime, person)).startswith("{COMPTE}A:SupannSursis:")
    }
    records = runtime.audit.read()
    audited = {record.account for record in records if record.result == "ok"}
    [pending] = [record for record in records if record.result == "pending"]
    assert audited <= in_grace and len(audited) == 3
    assert len(in_grace) <= len(audited) + MODIFY_WINDOW  # at most the writes in flight
    assert in_grace <= set(pending.details["accounts"])  # each named before it went
    code, _, stderr = umacct("sweep")  # the log writable again: the rerun does the rest
    assert code == 0, stderr
    assert all(
        compte(read(runtime, person)).startswith("{COMPTE}A:SupannSursis:") for person in people
    )
