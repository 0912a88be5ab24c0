"""``umacct doctor`` against the local directory, one without SUPANN, and broken settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.localdir import LocalDirectory, start

runner = CliRunner()


def checks(output: str) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in json.loads(output)}


def test_all_green_on_the_local_directory(config_path: Path) -> None:
    result = runner.invoke(app, ["--json", "doctor"])
    assert result.exit_code == 0, result.output
    rows = checks(result.stdout)
    assert {row["status"] for row in rows.values()} == {"ok"}
    for name in (
        "connection",
        "bind",
        "write access",
        "schema: attributes",
        "password policy",
        "mail transport",
    ):
        assert name in rows


@pytest.fixture(scope="module")
def plain_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    directory = start(tmp_path_factory.mktemp("plain"), supann_schema=False)
    yield directory
    directory.stop()


def test_names_what_is_missing_without_the_supann_schema(
    plain_directory: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(plain_directory.config_dict(tmp_path / "data")), encoding="utf-8")
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", plain_directory.bind_password)
    result = runner.invoke(app, ["--json", "--config", str(path), "doctor"])
    assert result.exit_code == 1
    rows = checks(result.stdout)
    missing = rows["schema: attributes"]["detail"]
    assert rows["schema: attributes"]["status"] == "FAIL"
    for attribute in (
        "supannCodePopulation",
        "supannRessourceEtatDate",
        "supannMailPerso",
        "supannEmpDateFin",
    ):
        assert attribute in missing
    assert "eduPersonAffiliation" not in missing
    assert "supannPerson" in rows["schema: object classes"]["detail"]
    assert rows["schema: attributes"]["fix"]


def test_wrong_password_and_dead_server(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", "not-the-password")
    rows = checks(runner.invoke(app, ["--json", "doctor"]).stdout)
    assert rows["connection"]["status"] == "FAIL"
    assert "invalid credentials" in rows["connection"]["detail"]


def test_no_password_anywhere(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UMACCT_BIND_PASSWORD")
    result = runner.invoke(app, ["--json", "doctor"])
    assert result.exit_code == 1
    assert checks(result.stdout)["bind password"]["status"] == "FAIL"
