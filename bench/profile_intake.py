"""Profile one bulk intake: ``python -m bench.profile_intake --count 2000 [--durable] [--profile]``.

Starts a fresh local directory and the loopback SMTP sink of target 1, runs ``umacct create
--csv`` once (under pyinstrument with ``--profile``) and prints its wall time next to
``ldapadd -f`` of the same entries. The profile goes to ``bench/out/profile-intake.txt``
(``--cprofile``: ``bench/out/profile-intake.pstats``; ``--sampled``: py-spy's, to
``bench/out/profile-intake.collapsed``); ``--bare`` drops every index,
``--outbox`` queues the mail instead of sending it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.common import (
    OUT,
    UMACCT,
    local_directory,
    run_timed,
    service_args,
    with_bytecode_cache,
    write_config,
)
from bench.intake import dump_people, free_port, warm_up, write_intake
from bench.sampled import sampled_by_py_spy
from bench.sinks import start_sink

PSTATS = OUT / "profile-intake.pstats"
COLLAPSED = OUT / "profile-intake.collapsed"


def main() -> int:
    """Run one intake (profiled or not) and its reference; print both times."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_intake", description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="people in the intake file")
    parser.add_argument("--durable", action="store_true", help="a slapd that syncs its writes")
    parser.add_argument("--bare", action="store_true", help="a server without any index")
    parser.add_argument("--outbox", action="store_true", help="mail into the outbox, not SMTP")
    parser.add_argument("--profile", action="store_true", help="run the tool under pyinstrument")
    parser.add_argument("--cprofile", action="store_true", help="run the tool under cProfile")
    parser.add_argument(
        "--sampled", action="store_true", help="sample the tool from outside with py-spy"
    )
    parser.add_argument(
        "--connections", type=int, help="[mail.smtp] connections (default: the tool's)"
    )
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / "profile-intake"
    intake = OUT / f"intake-{options.count}.csv"
    write_intake(intake, options.count)
    # Resolved first: without py-spy the run stops before anything is started.
    sampler = sampled_by_py_spy(COLLAPSED) if options.sampled else []
    sink = start_sink(free_port())
    try:
        server = {"durable": options.durable, "indexed": not options.bare}
        with local_directory("profile-intake-slapd", **server) as directory:
            port = None if options.outbox else sink.port
            env = with_bytecode_cache(
                write_config(
                    directory, folder, smtp_port=port, smtp_connections=options.connections
                )
            )
            warm_up(env)
            report = OUT / "profile-intake.txt"
            tool = [UMACCT]
            if options.profile:
                tool = [
                    str(Path(UMACCT).with_name("pyinstrument")),
                    "-o",
                    str(report),
                    "--",
                    UMACCT,
                ]
            elif options.sampled:
                tool = sampler
            elif options.cprofile:
                tool = [sys.executable, "-m", "cProfile", "-o", str(PSTATS), "-m", "umacct"]
            run = run_timed([*tool, "--json", "create", "--csv", str(intake)], env=env)
            ldif = OUT / "profile-intake.ldif"
            created = dump_people(directory, ldif)
        with local_directory("profile-intake-slapd", **server) as directory:
            argv = ["ldapadd", *service_args(directory, folder), "-f", str(ldif)]
            reference = run_timed(argv, env=env).seconds
    finally:
        sink.stop()
    print(
        f"umacct {run.seconds:.2f} s ({created} entries, {sink.count} mails), "
        f"ldapadd {reference:.2f} s: {run.seconds / reference:.2f}x"
    )
    if options.profile or options.cprofile or options.sampled:
        written = COLLAPSED if options.sampled else PSTATS
        print(f"profile: {OUT / 'profile-intake.txt' if options.profile else written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
