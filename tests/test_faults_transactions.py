"""The commit of a batch's transaction applied, but its answer lost: the outcome is unknown.

A proxy swallows the answer to the first End Transaction and cuts the connection. The
tool exits 69 not knowing whether the batch exists; the audit log must say so for each of
its accounts, and the rerun must mail each person once and create nobody twice.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from test_faults_slapd import write_intake
from test_faults_support import (
    LosingProxy,
    Site,
    assert_audit_agrees,
    assert_one_line_error,
    audit_trail,
    site,
    through_proxy,
)

from umacct.services.create_batches import next_batch_size

__all__ = ["site"]

EXTENDED_RESPONSE = 0x78
BATCH = 200
ROWS = 450
SECOND = next_batch_size(ROWS - BATCH, BATCH)  # 125: the last rows go in halving batches
THIRD = next_batch_size(ROWS - BATCH - SECOND, BATCH)  # 63
PIPELINED = BATCH + SECOND


@pytest.fixture
def proxy(site: Site) -> Iterator[LosingProxy]:
    """The second extended answer is lost: the first Start Transaction's is the first."""
    document = tomllib.loads(site.config_path.read_text(encoding="utf-8"))
    document["directory"]["transactions"] = "auto"  # chosen: the default is off
    site.config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    losing = LosingProxy(site.directory.port, EXTENDED_RESPONSE, 2)
    through_proxy(site, losing)
    yield losing
    losing.close()


def test_a_lost_commit_answer_is_audited_as_unknown_and_the_rerun_completes(
    site: Site, proxy: LosingProxy, tmp_path: Path
) -> None:
    intake = tmp_path / "rentree.csv"
    write_intake(intake, ROWS)
    first = site.run("create", "--csv", str(intake))
    assert proxy.dropped.is_set()
    assert_one_line_error(first.stderr, (69,), first.returncode)
    assert "one transaction" in first.stderr
    # The first two batches went pipelined (the second left before the first's answers told
    # which attributes the server had stored), the third was committed: its answer was lost.
    assert len(site.people()) == PIPELINED + THIRD
    trail = audit_trail(site, "create")
    outcomes = Counter(tuple(sorted(counts.elements())) for counts in trail.values())
    assert outcomes == {("ok", "pending"): PIPELINED, ("pending", "unknown"): THIRD}
    assert len(site.outbox_recipients()) == PIPELINED

    rerun = site.run("create", "--csv", str(intake))
    assert rerun.returncode == 0, rerun.stderr
    people = site.people()
    external_ids = Counter(value for entry in people.values() for value in entry["supannetuid"])
    assert external_ids == Counter(f"S{n}" for n in range(ROWS))  # each once, none lost
    assert_audit_agrees(site, "create", {entry["mail"][0] for entry in people.values()})
    personal = Counter(entry["supannmailperso"][0] for entry in people.values())
    assert site.outbox_recipients() == personal  # one activation mail each
