"""``python -m bench`` (``make bench``): the five performance targets against their references.

Prints the table and writes ``bench/RESULTS.md``. ``--quick`` runs smaller populations and one
round (a few minutes: a smoke run, which judges no target); ``--only 1,4`` picks targets. Every directory is a throwaway local
slapd under ``bench/out/`` (git-ignored), stopped at the end.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from bench.common import OUT, Result, machine_notes, render_table
from bench.file_system import settle

RESULTS = OUT.parent / "RESULTS.md"


@dataclass(frozen=True)
class Sizes:
    """Population sizes and rounds of one run."""

    intake: int
    sweep_accounts: int
    sweep_small: int
    sweep_due: int
    rounds: int
    startup_rounds: int


FULL = Sizes(3_000, 20_000, 4_000, 500, 5, 15)
QUICK = Sizes(600, 4_000, 1_000, 100, 1, 7)
QUICK_NOTE = (
    "quick run: populations five times smaller than the targets' and one round, so each"
    " process's fixed costs (start-up, connection, local disk syncs) weigh more and single"
    " rounds are noisy; the targets are judged by the full run (`python -m bench`), and a"
    " quick run exits 0 whatever its ratios"
)


def _measure(target: int, sizes: Sizes) -> list[Result]:
    # Each module is imported only when its target runs (aiosmtpd, the services...).
    if target == 1:
        from bench.intake import measure_intake

        count, rounds = sizes.intake, sizes.rounds
        return [
            *measure_intake(count, rounds, durable=False, indexed=False, smtp=True),
            *measure_intake(count, rounds, durable=False, indexed=False, smtp=False),
            *measure_intake(count, rounds, durable=True, indexed=False, smtp=True),
            *measure_intake(count, rounds, durable=False, indexed=True, judged=False),
            *measure_intake(count, rounds, durable=True, indexed=True, judged=False),
        ]
    if target in (2, 3):
        from bench.sweep import measure_sweep

        return list(
            measure_sweep(sizes.sweep_accounts, sizes.sweep_due, sizes.rounds, sizes.sweep_small)
        )
    if target == 4:
        from bench.startup import measure_startup

        return measure_startup(sizes.startup_rounds)
    from bench.policy_bench import measure_policy

    return [measure_policy(max(3, sizes.rounds))]


def main() -> int:
    """Run the chosen targets, print and save the table; exit 1 if any target fails."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller populations, one round")
    parser.add_argument("--only", default="1,2,4,5", help="targets to run (3 comes with 2)")
    options = parser.parse_args()
    sizes = QUICK if options.quick else FULL
    wanted = sorted({2 if int(part) == 3 else int(part) for part in options.only.split(",")})
    OUT.mkdir(parents=True, exist_ok=True)
    file_system = settle()
    started = time.monotonic()
    results: list[Result] = []
    for target in wanted:
        print(f"target {target}...", file=sys.stderr, flush=True)
        results += _measure(target, sizes)
    table = render_table(results)
    command = " ".join(["python -m bench", *map(shlex.quote, sys.argv[1:])])
    notes = [*machine_notes(), file_system]
    if options.quick:
        notes.insert(0, QUICK_NOTE)
    print(table)
    print("\n".join(f"- {note}" for note in notes))
    RESULTS.write_text(
        f"# Benchmark results\n\nCommand: `{command}` (from the repository root; `make bench` "
        f"runs the full set)\n\nRun on {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"{time.monotonic() - started:.0f} s in all.\n\n{table}\n\n## Machine\n\n"
        + "\n".join(f"- {note}" for note in notes)
        + "\n",
        encoding="utf-8",
    )
    return 0 if options.quick or all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
