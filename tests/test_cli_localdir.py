"""``umacct localdir`` starts a directory the tool can use at once, and stops it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.config import load_config

runner = CliRunner()


def test_start_config_doctor_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ldap"
    started = runner.invoke(
        app, ["--json", "localdir", "start", "--dir", str(folder), "--population", "30"]
    )
    assert started.exit_code == 0, started.output
    try:
        info = json.loads(started.stdout)
        config = load_config(info["config_path"])
        assert config.directory.urls == [info["url"]]
        shown = runner.invoke(app, ["localdir", "config", "--dir", str(folder)])
        assert shown.stdout == Path(info["config_path"]).read_text()
        monkeypatch.setenv("UMACCT_CONFIG", info["config_path"])
        monkeypatch.setenv("UMACCT_BIND_PASSWORD", Path(info["password_file"]).read_text())
        assert runner.invoke(app, ["doctor"]).exit_code == 0
    finally:
        stopped = runner.invoke(app, ["localdir", "stop", "--dir", str(folder)])
    assert stopped.exit_code == 0
    assert "stopped" in stopped.stderr
    again = runner.invoke(app, ["localdir", "stop", "--dir", str(folder)])
    assert "no directory was running" in again.stderr


def test_start_on_a_stopped_directory_restarts_it_with_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from command_line import umacct

    folder = tmp_path / "ldap"
    code, out, err = umacct(
        "localdir", "start", "--dir", str(folder), "--population", "12", "--json"
    )
    assert code == 0, err
    first = json.loads(out)
    try:
        monkeypatch.setenv("UMACCT_CONFIG", first["config_path"])
        monkeypatch.setenv("UMACCT_BIND_PASSWORD", Path(first["password_file"]).read_text())
        code, out, err = umacct("list", "--json")
        people = sorted(row["account"] for row in json.loads(out))
        assert len(people) == 12, err
        victim = people[0]
        assert umacct("lock", victim, "--kind", "technical", "--reason", "test")[0] == 0
        audit = load_config(first["config_path"]).paths.audit_log_path
        logged = audit.read_bytes()
        assert logged
        assert umacct("localdir", "stop", "--dir", str(folder))[0] == 0
        code, out, err = umacct("localdir", "start", "--dir", str(folder), "--json")
        assert code == 0, err
        again = json.loads(out)
        assert again["restarted"] is True and again["url"] == first["url"]
        assert "started again with its data" in err
        assert audit.read_bytes() == logged  # the audit log, archives and state stay
        code, out, err = umacct("list", "--json")
        assert sorted(row["account"] for row in json.loads(out)) == people
        code, _, err = umacct("localdir", "start", "--dir", str(folder))
        assert code == 77 and "already running" in err
        assert umacct("localdir", "stop", "--dir", str(folder))[0] == 0
        code, out, err = umacct("localdir", "start", "--dir", str(folder), "--reset", "--json")
        assert code == 0, err
        fresh = json.loads(out)
        assert fresh["restarted"] is False and "wiped" in err
        assert not audit.exists()
        monkeypatch.setenv("UMACCT_BIND_PASSWORD", Path(fresh["password_file"]).read_text())
        code, out, err = umacct("list", "--json")
        assert (code, json.loads(out)) == (0, []), err
    finally:
        umacct("localdir", "stop", "--dir", str(folder))


def test_config_of_a_folder_with_no_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["localdir", "config", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 67
    assert "no local directory was started" in result.stderr and "unexpected" not in result.stderr
