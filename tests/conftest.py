"""Fixtures shared by every test: a clean environment and one real slapd per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from faketime_support import UNDER_FAKETIME, write_environment_copy_on_write

from umacct.errors import UnavailableError
from umacct.localdir import LocalDirectory, start

pytest_plugins = ["smtp_fixtures", "people"]

if UNDER_FAKETIME:
    write_environment_copy_on_write()


@pytest.fixture(autouse=True)
def clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No colour switches, a fixed width, a file keyring and no user configuration or secret."""
    home = tmp_path_factory.mktemp("home")
    for name in ("NO_COLOR", "FORCE_COLOR", "UMACCT_CONFIG", "UMACCT_BIND_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    """One empty local directory for the whole session (population 0)."""
    try:
        directory = start(tmp_path_factory.mktemp("slapd"))
    except UnavailableError as error:
        pytest.fail(f"cannot start the test directory: {error.message}")
    yield directory
    directory.stop()


@pytest.fixture
def directory_clean(slapd: LocalDirectory) -> Iterator[LocalDirectory]:
    """The session directory, emptied of people after the test."""
    yield slapd
    slapd.clear_people()


@pytest.fixture
def config_path(slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration file for the session directory, selected through the environment."""
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(slapd.config_dict(tmp_path / "data")).encode("utf-8"))
    monkeypatch.setenv("UMACCT_CONFIG", str(path))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    return path
