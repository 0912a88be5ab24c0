"""Target 4: start-up. ``umacct show`` and ``umacct --help`` against minimal typer scripts.

Each command runs ``rounds`` times, interleaved with its reference so that load changes hit
both alike; the median of each side is compared. The references live in ``bench/reference``:
a script that imports typer and ldap3, binds and does the same search as ``show``, and a
typer hello-world.

Both sides run with their compiled modules kept between runs (``bench/out/pycache``), as an
installed tool has them: see ``with_bytecode_cache``.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    OUT,
    UMACCT,
    Result,
    local_directory,
    run_timed,
    with_bytecode_cache,
    write_config,
)

REFERENCE = Path(__file__).resolve().parent / "reference"


def _interleaved(
    rounds: int, tool: Sequence[str], reference: Sequence[str], env: dict[str, str]
) -> tuple[list[float], list[float]]:
    tool_times, reference_times = [], []
    run_timed(tool, env=env)  # warm the file cache
    run_timed(reference, env=env)
    for _ in range(rounds):
        tool_times.append(run_timed(tool, env=env).seconds)
        reference_times.append(run_timed(reference, env=env).seconds)
    return tool_times, reference_times


def measure_startup(rounds: int) -> list[Result]:
    """``show`` of one generated account, and ``--help``."""
    with local_directory("startup-slapd", population=50) as directory:
        env = write_config(directory, OUT / "startup")
        listing = directory.run_root(
            "ldapsearch", "-LLL", "-b", directory.people_dn, "(uid=*)", "mail"
        )
        account = next(line[6:] for line in listing.splitlines() if line.startswith("mail: "))
        env |= {"BENCH_URL": directory.url, "BENCH_BIND_DN": directory.bind_dn,
                "BENCH_BASE_DN": directory.base_dn}  # fmt: skip
        env = with_bytecode_cache(env)
        show = _interleaved(
            rounds,
            [UMACCT, "--json", "show", account],
            [sys.executable, str(REFERENCE / "show_minimal.py"), account],
            env,
        )
        help_ = _interleaved(
            rounds,
            [UMACCT, "--help"],
            [sys.executable, str(REFERENCE / "hello_typer.py"), "--help"],
            env,
        )
    return [
        Result("4 start-up", "show ACCOUNT (median)", statistics.median(show[0]),
               statistics.median(show[1]), 1.3, "s",
               "reference: typer + ldap3 script, bind and the same search; both from cached bytecode"),
        Result("4 start-up", "--help (median)", statistics.median(help_[0]),
               statistics.median(help_[1]), 1.2, "s", "reference: typer hello-world --help"),
    ]  # fmt: skip
