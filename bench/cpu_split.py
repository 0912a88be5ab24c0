"""Where an intake's time goes between processes: ``python -m bench.cpu_split [--smtp] [--no-mail]``.

Runs ``umacct create --csv`` of ``--count`` people on a fresh bare no-sync directory, three
times, and prints each run's wall time next to the CPU time of the tool (all its threads)
and of slapd over the same run. A tool whose CPU time is close to its wall time is bound by
its own work, not by waiting on the server: making the server's side faster would not help.
``--no-mail`` leaves the activation mail out (and so the tokens and the mail thread).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from bench.common import OUT, UMACCT, local_directory, with_bytecode_cache, write_config
from bench.intake import free_port, warm_up, write_intake
from bench.sinks import start_sink


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User and system CPU time of this process's children that ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    """Three runs of one intake; wall and CPU times printed for each."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_split", description=__doc__)
    parser.add_argument("--count", type=int, default=3000, help="people in the intake file")
    parser.add_argument("--smtp", action="store_true", help="mail through SMTP, not the outbox")
    parser.add_argument("--no-mail", action="store_true", help="create --no-mail")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    intake = OUT / f"intake-{options.count}.csv"
    write_intake(intake, options.count)
    sink = start_sink(free_port())
    argv = [UMACCT, "--json", "create", "--csv", str(intake)]
    if options.no_mail:
        argv.append("--no-mail")
    try:
        for _ in range(3):
            with local_directory("cpu-split-slapd", indexed=False) as directory:
                port = sink.port if options.smtp else None
                env = with_bytecode_cache(
                    write_config(directory, OUT / "cpu-split", smtp_port=port)
                )
                warm_up(env)
                os.sync()
                slapd_before, tool_before = cpu_seconds(directory.pid), children_cpu_seconds()
                started = time.perf_counter()
                subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
                wall = time.perf_counter() - started
                tool = children_cpu_seconds() - tool_before
                slapd = cpu_seconds(directory.pid) - slapd_before
                print(f"wall {wall:.2f} s, tool CPU {tool:.2f} s, slapd CPU {slapd:.2f} s")
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
