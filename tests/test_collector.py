"""The collector of the tool's own process: what a bulk intake holds is never scanned again."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from test_faults_slapd import write_intake

from umacct.cli import collector
from umacct.localdir import LocalDirectory

# Run as the console script runs, with every collection during the command counted.
_COUNTED_RUN = """
import gc, json, sys
from umacct.cli import app, collector
counted = {"collections": 0, "command": False}
def count(phase, info):
    if phase == "start" and counted["command"]:
        counted["collections"] += 1
gc.callbacks.append(count)
release = collector.release_for_command
def released():
    release()
    counted["command"] = True
collector.release_for_command = released
leaving = collector.leaving
def left():
    counted["command"] = False
    sys.stderr.write("COUNTED " + json.dumps(counted) + "\\n")
    leaving()
collector.leaving = left
sys.argv = ["umacct", *sys.argv[1:]]
app.main()
"""


def test_an_intake_of_thousands_makes_no_collection(
    directory_clean: LocalDirectory, config_path: Path, tmp_path: Path
) -> None:
    """Each scan of what an intake holds (rows, results, what it knows) finds nothing to free."""
    intake = tmp_path / "rentree.csv"
    write_intake(intake, 3000)
    run = subprocess.run(
        [sys.executable, "-c", _COUNTED_RUN, "--json", "create", "--csv", str(intake), "--no-mail"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["summary"] == {"created": 3000, "failed": 0}
    counted = json.loads(run.stderr.rpartition("COUNTED ")[2])
    assert counted["collections"] == 0


def test_a_process_that_is_not_the_tool_keeps_its_own_collector() -> None:
    """A test runner (or any program) calling the application: its collector is left alone."""
    frozen = gc.get_freeze_count()
    collector.kept_to_the_end()
    collector.release_for_command()
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()
