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
