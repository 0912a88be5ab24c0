"""Profile one nightly sweep: ``python -m bench.profile_sweep --accounts 100000 --due 1000``.

Builds the durable directory of target 2 (only ``due`` people past their end of activity),
runs ``umacct sweep`` once under pyinstrument and prints its wall time and peak RSS. The
profile goes to ``bench/out/profile-sweep.txt`` (``--cprofile``: cProfile's, to
``bench/out/profile-sweep.pstats``; ``--sampled``: py-spy's, to
``bench/out/profile-sweep.collapsed``); ``--bare`` drops every index.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.common import OUT, UMACCT, run_timed, with_bytecode_cache, write_config
from bench.sampled import sampled_by_py_spy
from bench.sweep import sweep_directory


def main() -> int:
    """Run one profiled sweep and print where its profile went."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_sweep", description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000, help="people in the directory")
    parser.add_argument("--due", type=int, default=1000, help="people past their end of activity")
    parser.add_argument("--bare", action="store_true", help="a server without any index")
    parser.add_argument("--cprofile", action="store_true", help="cProfile, not pyinstrument")
    parser.add_argument(
        "--sampled", action="store_true", help="sampled from outside by py-spy (its RSS counts)"
    )
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    report = OUT / ("profile-sweep.pstats" if options.cprofile else "profile-sweep.txt")
    tool = [str(Path(UMACCT).with_name("pyinstrument")), "-o", str(report), "--", UMACCT]
    if options.cprofile:
        tool = [sys.executable, "-m", "cProfile", "-o", str(report), "-m", "umacct"]
    if options.sampled:
        report = OUT / "profile-sweep.collapsed"
        tool = sampled_by_py_spy(report)
    with sweep_directory(
        "profile-sweep-slapd", options.accounts, options.due, indexed=not options.bare
    ) as directory:
        # Compiled modules kept, as an installed copy has them (and as target 2 measures).
        run_timed(
            [UMACCT, "sweep", "--dry-run"],
            env=with_bytecode_cache(write_config(directory, OUT / "profile-sweep")),
        )
        env = with_bytecode_cache(write_config(directory, OUT / "profile-sweep"))
        run = run_timed([*tool, "sweep"], env=env, memory=True)
    print(
        f"umacct sweep {run.seconds:.2f} s under the profiler, peak RSS {run.peak_rss_mib:.0f} MiB"
    )
    print(f"profile: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
