"""Target 1: ``umacct create --csv`` of N people, activation mail included, against ``ldapadd``.

Measured on a bare server (no index: the client's cost shows most) and on one with the
README's indexes, without fsync and durable; mail through SMTP or into the outbox.

Both bind as the tool's service account over ``ldap://127.0.0.1`` (ACLs evaluated the same
way). The reference LDIF is the very set of entries the tool created, read back with
``ldapsearch``, so both sides write the same bytes to the same server. Mail goes to an SMTP
sink on loopback that accepts and drops every message (``bench.sinks``: Postfix's
``smtp-sink``, else aiosmtpd in the runner's process).
"""

from __future__ import annotations

import csv
import socket
import statistics
import sys
from pathlib import Path

from bench.common import (
    OUT,
    SERVER_KINDS,
    UMACCT,
    Result,
    local_directory,
    paired_ratios,
    ratios_list,
    run_timed,
    service_args,
    times_list,
    with_bytecode_cache,
    write_config,
)
from bench.sinks import Sink, start_sink
from umacct.clock import SystemClock
from umacct.config import SmtpConfig, load_config
from umacct.localdir import LocalDirectory
from umacct.localdir.population import generate_people
from umacct.mail.compose import compose


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_intake(path: Path, count: int) -> None:
    """An intake file of ``count`` new people, names as varied as a real intake."""
    people = generate_people(count, seed=606, people_dn="ou=intake")
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["given_name", "surname", "profile", "personal_email", "external_id"])
        for number, person in enumerate(people, 1):
            values = person.attributes
            writer.writerow([
                values["givenName"][0], values["sn"][0], values["supannCodePopulation"][0],
                values["supannMailPerso"][0], f"B{number:07d}",
            ])  # fmt: skip


def warm_up(env: dict[str, str]) -> None:
    """A dry run of a 3-row intake: the tool's compiled modules cached, as an installed copy's.

    It changes nothing (and sends nothing); with PYTHONDONTWRITEBYTECODE set, a development
    tree would otherwise compile its own modules on every timed run (see
    ``with_bytecode_cache``).
    """
    small = OUT / "intake-warm-up.csv"
    write_intake(small, 3)
    run_timed([UMACCT, "--json", "create", "--csv", str(small), "--dry-run"], env=env)


def dump_people(directory: LocalDirectory, path: Path) -> int:
    """Write the people the directory holds as LDIF to ``path``; returns how many."""
    listing = directory.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-s", "one", "-b", directory.people_dn, "*"
    )
    path.write_text(listing, encoding="utf-8")
    return listing.count("\ndn:") + listing.startswith("dn:")


def measure_intake(
    count: int, rounds: int, *, durable: bool, indexed: bool, smtp: bool = True, judged: bool = True
) -> list[Result]:
    """Median of ``rounds`` interleaved rounds of each side, each on a fresh directory.

    ``durable``: the server syncs its writes (else ``olcDbNoSync``); ``indexed``: the README's
    indexes (else none); ``smtp``: mail through SMTP to a loopback sink (else the outbox).
    Transactions are off (the default). With ``smtp`` and ``judged``, each round also times
    the mail floor (``bench.mail_floor``: the same number of messages of the same size to
    the same sink by a bare client), printed beside the target, not judged.
    """
    kind = "durable" if durable else "nosync"
    mail = "SMTP" if smtp else "outbox"
    name = f"intake-{kind}-{'indexed' if indexed else 'bare'}-{mail.lower()}"
    folder = OUT / name
    sink = start_sink(free_port())
    try:
        intake = OUT / f"intake-{count}.csv"
        write_intake(intake, count)
        ldif = OUT / f"{name}.ldif"
        tool_times: list[float] = []
        reference_times: list[float] = []
        floor_times: list[float] = []
        options = {"durable": durable, "indexed": indexed}
        # Each side starts on a fresh directory: deleting the entries costs as much as adding.
        for round_number in range(rounds):
            with local_directory(f"{name}-slapd", **options) as directory:
                env = with_bytecode_cache(
                    write_config(directory, folder, smtp_port=sink.port if smtp else None)
                )
                warm_up(env)
                before = sink.count
                run = run_timed([UMACCT, "--json", "create", "--csv", str(intake)], env=env)
                tool_times.append(run.seconds)
                if smtp and sink.wait_for(before + count) - before != count:
                    raise RuntimeError(f"{sink.count - before} activation mails for {count} people")
                if smtp and judged:
                    floor_times.append(time_mail_floor(sink, count, env))
                if round_number == 0 and dump_people(directory, ldif) != count:
                    raise RuntimeError(f"the directory does not hold the {count} people created")
            with local_directory(f"{name}-slapd", **options) as directory:
                argv = ["ldapadd", *service_args(directory, folder), "-f", str(ldif)]
                reference_times.append(run_timed(argv, env=env).seconds)
    finally:
        sink.stop()
    reference = statistics.median(reference_times)
    ratios = paired_ratios(tool_times, reference_times)
    results = [
        Result(
            "1 bulk intake",
            f"create --csv {count:,} + {mail}, {kind}, {SERVER_KINDS[indexed]}",
            statistics.median(tool_times),
            reference,
            (1.2 if durable else 2.0),
            "s",
            f"ldapadd -f of the same entries; {'mail to the ' + sink.name + '; ' if smtp else ''}"
            f"all runs: tool {times_list(tool_times)}, ldapadd {times_list(reference_times)}; "
            f"ratios {ratios_list(ratios)}",
            judged=judged,
            round_ratios=ratios,
        )
    ]
    if floor_times:
        results.append(
            Result(
                "1 bulk intake",
                f"mail floor: {count:,} messages alone to the same sink, {kind}",
                statistics.median(floor_times),
                reference,
                (1.2 if durable else 2.0),
                "s",
                "a bare client (bench.mail_floor) sending the intake's messages, same size, "
                f"pipelined, over {SmtpConfig.connections} connections; against the same ldapadd; "
                f"all runs: {times_list(floor_times)}",
                judged=False,
            )
        )
    return results


def time_mail_floor(sink: Sink, count: int, env: dict[str, str]) -> float:
    """Time ``bench.mail_floor`` sending ``count`` messages of the size of the tool's."""
    before = sink.count
    argv = [
        sys.executable,
        "-m",
        "bench.mail_floor",
        str(sink.port),
        str(count),
        str(SmtpConfig.connections),
        str(activation_size(env)),
    ]
    seconds = run_timed(argv, env=env).seconds
    if sink.wait_for(before + count) - before != count:
        raise RuntimeError(f"the mail floor sent {sink.count - before} of {count} messages")
    return seconds


def activation_size(env: dict[str, str]) -> int:
    """The size of one activation mail of the intake, composed as the tool composes it."""
    config = load_config(env["UMACCT_CONFIG"])
    params = {
        "name": "Élise Martin",
        "account": "elise.martin@etu.umontpellier.fr",
        "link": "https://comptes.umontpellier.fr/activation?token=" + "x" * 43,
        "link_validity_fr": "24 heures",
        "link_validity_en": "24 hours",
    }
    message = compose("activation", "elise.martin@example.org", params, config=config.mail,
                      clock=SystemClock())  # fmt: skip
    return len(message.data)
