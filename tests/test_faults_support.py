"""What the fault-injection tests share: a directory of their own, the tool as a real process,
and views of the directory, the audit log and the mail that can be compared before and after.

No test lives here; the fixtures are imported by name by the ``test_faults_*`` modules.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from days import months
from people import generalized

from umacct.config import Config, load_config
from umacct.ldif import parse_ldif
from umacct.localdir import LocalDirectory, start
from umacct.policy import active_states

TOOL = [sys.executable, "-m", "umacct"]
PROCESS_TIMEOUT = 120.0
POLL_SECONDS = 0.02
STATE_DATE = "supannRessourceEtatDate"


@dataclass
class Site:
    """A directory started for one test, a configuration for it, and the tool run against it."""

    directory: LocalDirectory
    config_path: Path
    data_dir: Path

    @property
    def config(self) -> Config:
        """The configuration as the tool loads it."""
        return load_config(self.config_path)

    def env(self) -> dict[str, str]:
        """The environment of a tool process: this site's configuration and bind password."""
        return {
            **os.environ,
            "UMACCT_CONFIG": str(self.config_path),
            "UMACCT_BIND_PASSWORD": self.directory.bind_password,
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``umacct ARGS`` as a real process to its end."""
        return subprocess.run(
            [*TOOL, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """Start ``umacct ARGS`` as a real process and return at once."""
        return subprocess.Popen(
            [*TOOL, *args],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # --- what is there ------------------------------------------------------------------------

    def people(self) -> dict[str, dict[str, list[str]]]:
        """Every entry under the people unit, as the directory manager reads it (uid -> attrs)."""
        listing = self.directory.run_root(
            "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-s", "one",
            "-b", self.directory.people_dn, "*", "pwdEndTime",
        )  # fmt: skip
        found: dict[str, dict[str, list[str]]] = {}
        for entry in parse_ldif(listing):
            attributes = {name.lower(): list(values) for name, values in entry.attributes.items()}
            found[attributes["uid"][0]] = attributes
        return found

    def people_count(self) -> int:
        """How many entries the people unit holds now (0 while the server is down)."""
        try:
            listing = self.directory.run_root(
                "ldapsearch", "-LLL", "-s", "one", "-b", self.directory.people_dn, "1.1"
            )
        except Exception:
            return 0
        return listing.count("dn:")

    def audit(self) -> list[dict[str, Any]]:
        """The audit log's records, oldest first (a torn last line is skipped)."""
        path = self.config.paths.audit_log_path
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def audit_lines(self) -> int:
        """How many lines the audit log has now."""
        path = self.config.paths.audit_log_path
        return path.read_bytes().count(b"\n") if path.exists() else 0

    def outbox_recipients(self) -> Counter[str]:
        """How many messages the outbox holds for each recipient."""
        folder = self.config.outbox_dir
        counts: Counter[str] = Counter()
        if folder.exists():
            for message in folder.glob("*.eml"):
                for line in message.read_text(encoding="utf-8").splitlines():
                    if line.startswith("To: "):
                        counts[line.removeprefix("To: ").strip()] += 1
                        break
        return counts

    def add_people(self, entries: list[dict[str, list[str]]]) -> None:
        """Add entries (uid first) directly as the directory manager, in one ldapadd."""
        blocks = []
        for attributes in entries:
            dn = f"uid={attributes['uid'][0]},{self.directory.people_dn}"
            lines = [f"dn: {dn}"]
            lines += [f"{name}: {value}" for name, values in attributes.items() for value in values]
            blocks.append("\n".join(lines))
        self.directory.run_root("ldapadd", ldif="\n\n".join(blocks) + "\n")


def make_site(
    folder: Path, *, mail: dict[str, Any] | None = None, page_size: int | None = None
) -> Site:
    """Start a directory in ``folder``/ldap and write a configuration for it (outbox mail)."""
    directory = start(folder / "ldap")
    document = directory.config_dict(folder / "data")
    if mail is not None:
        document["mail"] = mail
    if page_size is not None:
        document["directory"]["page_size"] = page_size
    config_path = folder / "config.toml"
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    return Site(directory, config_path, folder / "data")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A directory of the test's own (it may be killed and restarted), stopped after the test."""
    made = make_site(tmp_path)
    yield made
    made.directory.stop()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for a spawned process; its exit code, stdout and stderr."""
    stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
    return process.returncode, stdout, stderr


def assert_one_line_error(stderr: str, codes: tuple[int, ...], returncode: int) -> None:
    """The tool stopped with one of ``codes`` and one clear error line (no traceback)."""
    assert returncode in codes, stderr
    assert "Traceback" not in stderr
    if stderr.startswith("{"):  # --json: one JSON object
        [line] = stderr.splitlines()
        assert json.loads(line)["exit_code"] == returncode
        return
    errors = [line for line in stderr.splitlines() if line.startswith("umacct: error: ")]
    assert len(errors) == 1, stderr


def departed(uid: str, profile: str, end_of_activity: date, domain: str) -> dict[str, list[str]]:
    """An active vacataire-like person whose activity ended on ``end_of_activity``.

    Active since a year before that day.
    """
    states = active_states(months(-12, day=end_of_activity))
    return {
        "uid": [uid],
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"],
        "mail": [f"{uid}@{domain}"],
        "cn": [uid.replace(".", " ").title()],
        "sn": [uid.split(".")[-1].title()],
        "givenName": [uid.split(".")[0].title()],
        "eduPersonAffiliation": ["member", "teacher"],
        "eduPersonPrimaryAffiliation": ["teacher"],
        "supannMailPerso": [f"{uid}@example.net"],
        "supannCodePopulation": [profile],
        STATE_DATE: [state.format() for state in states],
        "supannRessourceEtat": [state.short().format() for state in states],
        "supannEmpDateFin": [generalized(end_of_activity)],
    }


def letters(number: int) -> str:
    """A distinct alphabetic word for each number (names may not hold digits)."""
    word = ""
    number += 26 * 27  # at least three letters
    while number:
        number, rest = divmod(number, 26)
        word = "abcdefghijklmnopqrstuvwxyz"[rest] + word
    return word.capitalize()


# --- a connection that breaks after the server applied a write ----------------------------

ADD_RESPONSE, MODIFY_RESPONSE, DELETE_RESPONSE = 0x69, 0x67, 0x6B


class LosingProxy:
    """A TCP proxy to slapd that drops the connection instead of relaying one write's answer.

    The ``nth`` response with the LDAP operation tag ``tag`` is swallowed and both sockets
    are closed: the server has applied the write, the tool never hears about it (what a
    network cut or a server crash at the wrong moment does).
    """

    def __init__(self, target_port: int, tag: int, nth: int) -> None:
        self.target_port = target_port
        self.tag = tag
        self.remaining = nth
        self.dropped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self.target_port))
                threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
                threading.Thread(target=self._answers, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        _close(source, sink)

    def _answers(self, server: socket.socket, client: socket.socket) -> None:
        pending = b""
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                pending += data
                while (size := _message_size(pending)) is not None and size <= len(pending):
                    message, pending = pending[:size], pending[size:]
                    if _operation_tag(message) == self.tag and not self.dropped.is_set():
                        self.remaining -= 1
                        if self.remaining == 0:
                            self.dropped.set()
                            _close(server, client)
                            return
                    client.sendall(message)
        _close(server, client)


def _close(*sockets: socket.socket) -> None:
    for each in sockets:
        with contextlib.suppress(OSError):
            each.shutdown(socket.SHUT_RDWR)
        each.close()


def _length(data: bytes, offset: int) -> tuple[int, int] | None:
    """A BER length at ``offset``: (length, offset of the content), or None if incomplete."""
    if len(data) <= offset:
        return None
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if len(data) < offset + 1 + count:
        return None
    return int.from_bytes(data[offset + 1 : offset + 1 + count], "big"), offset + 1 + count


def _message_size(data: bytes) -> int | None:
    found = _length(data, 1)
    return None if found is None else found[0] + found[1]


def _operation_tag(message: bytes) -> int:
    """The protocolOp tag of a complete LDAPMessage (after the message id)."""
    found = _length(message, 1)
    assert found is not None
    _, content = found
    id_length = _length(message, content + 1)
    assert id_length is not None
    return message[id_length[1] + id_length[0]]


@pytest.fixture
def proxies() -> Iterator[list[LosingProxy]]:
    """The proxies a test puts in front of its directory, closed after it."""
    made: list[LosingProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def accounts_in_grace(site: Site) -> set[str]:
    """The accounts in their grace period, by address (lower-cased)."""
    return {
        entry["mail"][0].lower()
        for entry in site.people().values()
        if any(value.startswith("{COMPTE}A:SupannSursis:") for value in entry[STATE_DATE.lower()])
    }


def through_proxy(site: Site, proxy: LosingProxy) -> None:
    """Point the site's configuration at ``proxy`` instead of slapd."""
    document = tomllib.loads(site.config_path.read_text(encoding="utf-8"))
    document["directory"]["urls"] = [f"ldap://127.0.0.1:{proxy.port}"]
    site.config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))


def audit_trail(site: Site, command: str) -> dict[str, Counter[str]]:
    """Per account, how many records of ``command`` had each result.

    A record written before a batch of writes (result ``pending``) names its accounts in
    ``details.accounts``; each counts as one ``pending`` record of its own.
    """
    results: dict[str, Counter[str]] = {}
    for record in site.audit():
        if record["command"] != command:
            continue
        accounts = record["details"].get("accounts") or [record["account"]]
        for account in accounts:
            results.setdefault(account, Counter())[record["result"]] += 1
    return results


def assert_audit_agrees(site: Site, command: str, changed: set[str]) -> None:
    """``changed`` accounts each have exactly one successful record, or one whose outcome the
    tool could not know (the write in flight when it was cut off); no other account has one.
    """
    trail = audit_trail(site, command)
    confirmed = {account for account, counts in trail.items() if counts["ok"]}
    uncertain = {
        account for account, counts in trail.items() if counts["unknown"] + counts["pending"]
    }
    assert all(counts["ok"] <= 1 for counts in trail.values())  # nothing done twice
    assert confirmed <= changed  # no success recorded for what is not there
    assert changed <= confirmed | uncertain  # no change without its record
