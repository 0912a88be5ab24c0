"""What the state tests share: a branch of the session directory of each test's own, and
configurations ("hosts") that keep their state there. No test lives here."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from days import clock_on

from umacct.config import Config, load_config, parse_config
from umacct.directory import Directory, connect
from umacct.localdir import LocalDirectory
from umacct.services.runtime import Runtime
from umacct.state.admin import init_branch
from umacct.state.directory_store import DirectoryStore


def new_branch(slapd: LocalDirectory) -> str:
    """A state branch no other test uses, below the local directory's (its ACL covers it)."""
    return f"ou=t{secrets.token_hex(6)},{slapd.state_dn}"


def drop_branch(slapd: LocalDirectory, state_dn: str) -> None:
    """Delete a branch and everything below it, as the directory manager."""
    slapd.run_root("ldapdelete", "-r", state_dn)


def host_config(slapd: LocalDirectory, data_dir: Path, state_dn: str) -> dict[str, Any]:
    """The configuration of one host: its own data folder, the shared state branch."""
    document = slapd.config_dict(data_dir)
    document["directory"]["state_dn"] = state_dn
    document["state"] = {"backend": "directory"}
    return document


def bound(slapd: LocalDirectory) -> Callable[[], Directory]:
    """Opens connections bound as the tool to the session directory."""
    settings = parse_config(slapd.config_dict(Path("unused"))).directory
    return lambda: connect(settings, slapd.bind_password)


@pytest.fixture
def branch(slapd: LocalDirectory) -> Iterator[str]:
    """An empty state branch (made with its units), deleted after the test."""
    state_dn = new_branch(slapd)
    with bound(slapd)() as directory:
        init_branch(directory, state_dn)
    yield state_dn
    drop_branch(slapd, state_dn)


@pytest.fixture
def directory_store(slapd: LocalDirectory, branch: str) -> Iterator[DirectoryStore]:
    """A directory store on the test's branch, with its own connection."""
    opener = bound(slapd)
    with opener() as directory:
        yield DirectoryStore(directory, branch, connect=opener)


@dataclass
class Host:
    """One host running the tool: a configuration file and a data folder of its own."""

    name: str
    config_path: Path
    data_dir: Path

    @property
    def config(self) -> Config:
        """Its configuration as the tool loads it."""
        return load_config(self.config_path)

    def runtime(self, day: date) -> Runtime:
        """A runtime of this host on ``day`` at 9:00 (Paris); close it."""
        return Runtime(self.config, clock=clock_on(day))


@pytest.fixture
def two_hosts(
    slapd: LocalDirectory, branch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Host, Host]:
    """Hosts A and B: two configurations, two data folders, one directory and state branch."""
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    hosts = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.toml"
        data_dir = tmp_path / f"data-{name}"
        path.write_bytes(tomli_w.dumps(host_config(slapd, data_dir, branch)).encode("utf-8"))
        hosts.append(Host(name, path, data_dir))
    return hosts[0], hosts[1]


@pytest.fixture
def on_host() -> Iterator[Callable[[Host, date], Runtime]]:
    """Make runtimes of a host on a day (closed after the test)."""
    made: list[Runtime] = []

    def make(host: Host, day: date) -> Runtime:
        runtime = host.runtime(day)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()
