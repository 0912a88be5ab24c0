"""The local directory keeps slapd's database apart from the tool's data folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from command_line import umacct

from umacct.localdir import slapd as launcher
from umacct.localdir import start
from umacct.localdir.instances import restart_stopped, wipe_instance

DATABASE_FILES = {"data.mdb", "lock.mdb"}


def names(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def service_account(folder: Path) -> str:
    """The tool's service account as the directory manager reads it (over ldapi)."""
    directory = launcher.attach(folder)
    return directory.run_root("ldapsearch", "-LLL", "-b", directory.bind_dn, "-s", "base", "1.1")


def test_slapd_keeps_its_database_out_of_the_tools_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ldap"
    code, out, err = umacct("localdir", "start", "--dir", str(folder), "--json")
    assert code == 0, err
    try:
        started = json.loads(out)
        monkeypatch.setenv("UMACCT_CONFIG", started["config_path"])
        monkeypatch.setenv("UMACCT_BIND_PASSWORD", Path(started["password_file"]).read_text())
        assert umacct("doctor", "--write-test")[0] == 0  # makes the tool's data folder
        assert names(folder / launcher.DATABASE_FOLDER) >= DATABASE_FILES
        assert (folder / "data").is_dir()
        assert not DATABASE_FILES & names(folder / "data")
        assert umacct("localdir", "stop", "--dir", str(folder))[0] == 0
        # docs/state.md: deleting a host's data folder loses nothing of the directory.
        shutil.rmtree(folder / "data")
        code, out, err = umacct("localdir", "start", "--dir", str(folder), "--json")
        assert code == 0, err
        assert json.loads(out)["restarted"] is True
        assert f"dn: {launcher.attach(folder).bind_dn}" in service_account(folder)
        assert umacct("doctor")[0] == 0
    finally:
        umacct("localdir", "stop", "--dir", str(folder))
    assert launcher.DATABASE_FOLDER in wipe_instance(folder)
    assert not (folder / launcher.DATABASE_FOLDER).exists()


def test_a_folder_of_the_old_layout_keeps_its_database_in_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "old"
    with monkeypatch.context() as old:
        old.setattr(launcher, "DATABASE_FOLDER", "data")  # as folders were made before
        directory = start(folder)
    bind_dn = directory.bind_dn
    directory.stop()
    assert names(folder / "data") >= DATABASE_FILES
    restarted = restart_stopped(folder)
    try:
        assert f"dn: {bind_dn}" in service_account(folder)
        assert not (folder / launcher.DATABASE_FOLDER).exists()  # read where it is, not moved
    finally:
        restarted.stop()
    assert "data" in wipe_instance(folder)
    assert not (folder / "data").exists()
