"""Stress the intake's LDAP transactions: ``python -m bench.stress_transactions --runs 40 --hogs 4``.

slapd 2.5 answers each update of a transaction before its worker thread is done with it
(README, "Performance"), so the tool pauses before ending a transaction. This runs many
intakes, each on a fresh local slapd, while ``hogs`` busy processes compete for the CPUs,
and checks after each one that slapd is still alive. It exits 1 if slapd died or an intake
failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
from pathlib import Path

from bench.common import OUT, UMACCT, local_directory, write_config
from bench.intake import write_intake
from umacct.services.create import BATCH_SIZE


def _hog() -> None:
    while True:
        pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def main() -> int:
    """Run the intakes; print one line per run and a summary."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.stress_transactions", description=__doc__
    )
    parser.add_argument("--runs", type=int, default=40, help="intakes, each on a fresh slapd")
    parser.add_argument("--count", type=int, default=2000, help="people per intake")
    parser.add_argument("--hogs", type=int, default=4, help="busy processes running meanwhile")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    intake = OUT / f"intake-{options.count}.csv"
    write_intake(intake, options.count)
    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(options.hogs)]
    for hog in hogs:
        hog.start()
    failures = 0
    try:
        for run in range(options.runs):
            with local_directory("stress-slapd") as directory:
                env = write_config(directory, OUT / "stress", transactions="auto")
                done = subprocess.run(
                    [UMACCT, "create", "--csv", str(intake), "--no-mail"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                alive = _alive(directory.pid)
            failures += done.returncode != 0 or not alive
            print(f"run {run + 1}: exit {done.returncode}, slapd alive: {alive}", flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
    # The first batch of each run is added without a transaction (README, "Performance").
    transactions = options.runs * max(0, -(-options.count // BATCH_SIZE) - 1)
    print(f"{options.runs} runs, about {transactions} transactions, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
