"""``umacct doctor`` against the local directory, one without SUPANN, and broken settings."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from smtp_fixtures import SmtpTestServer, relay_asking_login
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.localdir import LocalDirectory, start

runner = CliRunner()


def checks(output: str) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in json.loads(output)}


def test_all_green_on_the_local_directory(config_path: Path) -> None:
    result = runner.invoke(app, ["--json", "doctor", "--write-test"])
    assert result.exit_code == 0, result.output
    rows = checks(result.stdout)
    assert {row["status"] for row in rows.values()} == {"ok", "WARN"}
    assert [name for name, row in rows.items() if row["status"] == "WARN"] == ["mail transport"]
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


# --- doctor writes nothing unless asked; the outbox warned about; SMTP really checked ------


def test_doctor_writes_nothing_unless_asked(config_path: Path, slapd: LocalDirectory) -> None:
    data_dir = Path(slapd.config_dict(config_path.parent / "data")["paths"]["data_dir"])
    assert not data_dir.exists()
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    rows = checks(result.stdout)
    assert rows["write access"]["status"] == "skip"
    assert "--write-test" in rows["write access"]["detail"]
    assert "not created yet" in rows["data dir"]["detail"]
    assert not data_dir.exists()  # no folder made, no probe written
    result = runner.invoke(app, ["doctor", "--write-test", "--json"])
    assert checks(result.stdout)["write access"]["status"] == "ok"
    assert data_dir.is_dir()


def test_the_outbox_is_a_warning_and_its_fix_is_shown_as_written(config_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "--format", "table"])
    assert result.exit_code == 0, result.output
    assert "WARN" in result.stdout and "delivers" in result.stdout
    assert '[mail] transport = "smtp"' in result.stdout.replace("\n", " ").replace("│", " ")


def test_doctor_talks_to_the_smtp_relay(mail_relay: SmtpTestServer) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    row = checks(result.stdout)["mail transport"]
    assert row["status"] == "ok", row
    assert "connected, EHLO" in row["detail"]
    mail_relay.stop()
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1
    row = checks(result.stdout)["mail transport"]
    assert row["status"] == "FAIL" and "connection failed" in row["detail"]
    assert mail_relay.received == []  # nothing sent


def test_doctor_checks_starttls_and_auth_as_configured(
    mail_relay: SmtpTestServer,
    config_path: Path,
    smtp_starttls_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp = {"host": mail_relay.host, "port": mail_relay.port, "security": "starttls"}
    rewrite_mail(config_path, smtp)
    row = checks(runner.invoke(app, ["doctor", "--json"]).stdout)["mail transport"]
    assert row["status"] == "FAIL" and "does not offer STARTTLS" in row["detail"]
    rewrite_mail(config_path, {**smtp, "port": smtp_starttls_server.port})
    row = checks(runner.invoke(app, ["doctor", "--json"]).stdout)["mail transport"]
    assert row["status"] == "FAIL" and "TLS failed" in row["detail"]  # self-signed: refused
    monkeypatch.setenv("UMACCT_SMTP_PASSWORD", "relay-secret")
    rewrite_mail(config_path, {**smtp, "security": "none", "username": "umacct"})
    row = checks(runner.invoke(app, ["doctor", "--json"]).stdout)["mail transport"]
    assert row["status"] == "FAIL" and "does not offer AUTH" in row["detail"]


def test_doctor_logs_in_to_a_relay_that_asks(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = relay_asking_login(b"relay-secret")
    relay.start()
    try:
        monkeypatch.setenv("UMACCT_SMTP_PASSWORD", "relay-secret")
        smtp = {"host": relay.host, "port": relay.port, "security": "none", "username": "umacct"}
        rewrite_mail(config_path, smtp)
        row = checks(runner.invoke(app, ["doctor", "--json"]).stdout)["mail transport"]
        assert row["status"] == "ok" and "AUTH as umacct" in row["detail"], row
        monkeypatch.setenv("UMACCT_SMTP_PASSWORD", "wrong")
        row = checks(runner.invoke(app, ["doctor", "--json"]).stdout)["mail transport"]
        assert row["status"] == "FAIL" and "refused the login" in row["detail"]
    finally:
        relay.stop()


def rewrite_mail(config_path: Path, smtp: dict[str, object]) -> None:
    document = tomllib.loads(config_path.read_text("utf-8"))
    document["mail"] = {"transport": "smtp", "smtp": {**smtp, "timeout": 5}}
    config_path.write_text(tomli_w.dumps(document), "utf-8")


@pytest.mark.parametrize(
    ("table", "values", "words"),
    [
        ("directory", {"urls": ["ldap://192.0.2.10"], "tls": "none"}, "in clear"),
        ("mail", {"transport": "smtp", "smtp": {"host": "relay.example.org", "security": "none"}},
         "in clear"),
    ],
)  # fmt: skip
def test_sec15_sec17_config_check_refuses_what_every_command_would(
    config_path: Path, table: str, values: dict[str, object], words: str
) -> None:
    document = tomllib.loads(config_path.read_text("utf-8"))
    document[table] = {**document.get(table, {}), **values}
    config_path.write_text(tomli_w.dumps(document), "utf-8")
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 78, result.output
    assert words in result.stderr and result.stdout == ""
