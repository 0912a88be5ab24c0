"""The numbers behind docs/directory.md: the tool's own LDAP client against ldap3's public API.

    .venv/bin/python -m bench.client_choice [--entries 3000] [--modifies 500] [--rounds 3]

Both clients do the same work on the same local slapd (no fsync, README indexes), in
alternation, each side keeping its median: the import, a connection with its bind and a
WhoAmI, ``--entries`` adds (pipelined, 200 in flight: ldap3's ASYNC strategy, the only way
its public API pipelines), a paged search streaming those entries back (ldap3's
``paged_search(generator=True)``), and ``--modifies`` modifies one at a time. Prints a table;
nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import local_directory
from umacct.config import parse_config
from umacct.directory import Change, connect
from umacct.directory.escape import dn_join
from umacct.localdir import LocalDirectory

WINDOW = 200
PAGE = 500


def _attributes(uid: str) -> dict[str, list[str]]:
    return {
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"],
        "uid": [uid],
        "cn": [f"Bench {uid}"],
        "sn": [uid],
        "mail": [f"{uid}@example.org"],
        "eduPersonAffiliation": ["member", "student"],
        "supannEtuDateFin": ["20270630000000Z"],
    }


def _import_seconds(module: str) -> float:
    """The import time of ``module`` alone, the tool's configuration module loaded first."""
    code = (
        "import time, umacct.config; t = time.perf_counter(); "
        f"import {module}; print(time.perf_counter() - t)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(run.stdout)


class Ours:
    """The tool's client: its own socket, requests encoded by ``umacct.directory.ber``."""

    name = "umacct"

    def __init__(self, directory: LocalDirectory) -> None:
        self.settings = parse_config(directory.config_dict(directory.folder / "data")).directory
        self.password = directory.bind_password

    def connect(self) -> Any:
        return connect(self.settings, self.password)

    def bind_whoami(self) -> None:
        with self.connect() as opened:
            opened.whoami()

    def add(self, connection: Any, items: list[tuple[str, dict[str, list[str]]]]) -> None:
        for result in connection.add_many(items, window=WINDOW):
            assert result.error is None, result.error

    def search(self, connection: Any, base: str) -> int:
        return sum(1 for _ in connection.search(base, "(uid=b*)", ["uid", "mail"], page_size=PAGE))

    def modify(self, connection: Any, dns: list[str], value: str) -> None:
        for dn in dns:
            connection.modify(dn, [Change("replace", "supannEtuDateFin", (value,))])

    def delete(self, connection: Any, dns: list[str]) -> None:
        for dn in dns:
            connection.delete(dn)


class Ldap3:
    """ldap3 2.9.1 through its public API only."""

    name = "ldap3"

    def __init__(self, directory: LocalDirectory) -> None:
        self.url = directory.url
        self.bind_dn = directory.bind_dn
        self.password = directory.bind_password

    def connect(self, strategy: str = "SAFE_SYNC") -> Any:
        import ldap3

        server = ldap3.Server(self.url, get_info=ldap3.NONE)
        connection = ldap3.Connection(
            server, self.bind_dn, self.password, client_strategy=getattr(ldap3, strategy),
            raise_exceptions=False, check_names=False, auto_referrals=False,
        )  # fmt: skip
        connection.bind()
        return connection

    def bind_whoami(self) -> None:
        connection = self.connect()
        connection.extend.standard.who_am_i()
        connection.unbind()

    def add(self, _: Any, items: list[tuple[str, dict[str, list[str]]]]) -> None:
        connection = self.connect("ASYNC")
        pending: list[int] = []
        for dn, attributes in items:
            pending.append(connection.add(dn, attributes=attributes))
            if len(pending) >= WINDOW:
                for message_id in pending[: WINDOW // 2]:
                    _, result = connection.get_response(message_id)
                    assert result["result"] == 0, result
                del pending[: WINDOW // 2]
        for message_id in pending:
            _, result = connection.get_response(message_id)
            assert result["result"] == 0, result
        connection.unbind()

    def search(self, connection: Any, base: str) -> int:
        import ldap3

        found = connection.extend.standard.paged_search(
            base, "(uid=b*)", ldap3.SUBTREE, attributes=["uid", "mail"], paged_size=PAGE,
            generator=True,
        )  # fmt: skip
        return sum(1 for item in found if item.get("type") == "searchResEntry")

    def modify(self, connection: Any, dns: list[str], value: str) -> None:
        import ldap3

        for dn in dns:
            _, result, _, _ = connection.modify(
                dn, {"supannEtuDateFin": [(ldap3.MODIFY_REPLACE, [value])]}
            )
            assert result["result"] == 0, result

    def delete(self, connection: Any, dns: list[str]) -> None:
        for dn in dns:
            connection.delete(dn)


@contextmanager
def _timed(into: list[float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into.append(time.perf_counter() - started)


def _round(
    client: Any, people_dn: str, entries: int, modifies: int, times: dict[str, list[float]]
) -> None:
    items = [(dn_join("uid", f"b{n}", people_dn), _attributes(f"b{n}")) for n in range(entries)]
    dns = [dn for dn, _ in items]
    with _timed(times["bind + whoami"]):
        client.bind_whoami()
    connection = client.connect()
    with _timed(times[f"{entries} adds, pipelined"]):
        client.add(connection, items)
    with _timed(times[f"paged search of {entries}"]):
        assert client.search(connection, people_dn) == entries
    with _timed(times[f"{modifies} modifies, one at a time"]):
        client.modify(connection, dns[:modifies], "20280630000000Z")
    client.delete(connection, dns)
    if client.name == "umacct":
        connection.close()
    else:
        connection.unbind()


def measure(entries: int, modifies: int, rounds: int) -> list[tuple[str, float, float]]:
    """Per task: (task, ours, ldap3) medians in seconds."""
    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    ours["import"] = [_import_seconds("umacct.directory") for _ in range(rounds)]
    theirs["import"] = [_import_seconds("ldap3") for _ in range(rounds)]
    with local_directory("client-choice") as directory:
        clients: list[tuple[Any, dict[str, list[float]]]] = [
            (Ours(directory), ours), (Ldap3(directory), theirs),
        ]  # fmt: skip
        for times in (ours, theirs):
            for task in ("bind + whoami", f"{entries} adds, pipelined",
                         f"paged search of {entries}", f"{modifies} modifies, one at a time"):  # fmt: skip
                times.setdefault(task, [])
        for number in range(rounds):
            for client, times in clients if number % 2 == 0 else clients[::-1]:
                _round(client, directory.people_dn, entries, modifies, times)
    median: Callable[[list[float]], float] = statistics.median
    return [(task, median(ours[task]), median(theirs[task])) for task in ours]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_choice", description=__doc__)
    parser.add_argument("--entries", type=int, default=3000)
    parser.add_argument("--modifies", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    rows = measure(options.entries, options.modifies, options.rounds)
    print("| task | umacct | ldap3 (public API) | ldap3 / umacct |")
    print("|---|---:|---:|---:|")
    for task, ours, theirs in rows:
        print(f"| {task} | {ours * 1000:.1f} ms | {theirs * 1000:.1f} ms | {theirs / ours:.2f}x |")
    print(f"\nmedians of {options.rounds} interleaved rounds; command: "
          f"python -m bench.client_choice --entries {options.entries} "
          f"--modifies {options.modifies} --rounds {options.rounds}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
