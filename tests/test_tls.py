"""TLS to the directory (security 17): a test CA, StartTLS and ldaps, and every refusal."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.config import DirectoryConfig
from umacct.directory import ber
from umacct.directory.connection import open_with_failover
from umacct.directory.wire import Wire
from umacct.errors import ConfigError, InvalidInputError, UnavailableError
from umacct.localdir import LocalDirectory, start
from umacct.localdir.tls import make_ca, make_server_certificate

runner = CliRunner()
MODES = ["starttls", "ldaps"]


@pytest.fixture(scope="module")
def tls_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    """A directory with a test CA: StartTLS on its port, ldaps on a second one."""
    directory = start(tmp_path_factory.mktemp("tls"), tls=True)
    yield directory
    directory.stop()


def settings(directory: LocalDirectory, mode: str, **changes: Any) -> DirectoryConfig:
    document = directory.config_dict(Path("unused"), mode)  # type: ignore[arg-type]
    return replace(DirectoryConfig(**document["directory"]), **changes)


def connect_error(directory: LocalDirectory, config: DirectoryConfig) -> str:
    with pytest.raises(UnavailableError) as refused:
        open_with_failover(config, directory.bind_password)
    return refused.value.message


def use_config(
    directory: LocalDirectory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **directory_keys: Any,
) -> None:
    """Select a configuration for ``directory`` with these ``[directory]`` keys, through the environment."""
    document = directory.config_dict(tmp_path / "data", directory_keys.pop("tls", "none"))
    document["directory"].update(directory_keys)
    document["directory"] = {k: v for k, v in document["directory"].items() if v is not None}
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    monkeypatch.setenv("UMACCT_CONFIG", str(path))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", directory.bind_password)


def whoami(connection: Wire) -> str:
    request = ber.extended_request("1.3.6.1.4.1.4203.1.11.3")
    result = connection.exchange("whoami", "", request, ber.EXTENDED_RESPONSE)
    return (result.value or b"").decode()


def doctor_rows(output: str) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in json.loads(output)}


# --- a valid certificate --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_sec17_a_valid_certificate_works(tls_directory: LocalDirectory, mode: str) -> None:
    connection, address = open_with_failover(
        settings(tls_directory, mode), tls_directory.bind_password
    )
    try:
        assert address.host == "localhost"
        assert connection.tls_version in ("TLSv1.2", "TLSv1.3")
        assert whoami(connection) == f"dn:{tls_directory.bind_dn}"
    finally:
        connection.close()


@pytest.mark.parametrize("mode", MODES)
def test_sec17_doctor_shows_tls_verified_with_the_test_ca(
    tls_directory: LocalDirectory, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(tls_directory, tmp_path, monkeypatch, tls=mode)
    result = runner.invoke(app, ["--json", "doctor"])
    assert result.exit_code == 0, result.output
    connection = doctor_rows(result.stdout)["connection"]
    assert connection["status"] == "ok"
    assert "TLS, certificate verified" in connection["detail"]


def test_the_certificate_survives_a_restart(tls_directory: LocalDirectory) -> None:
    tls_directory.restart()
    connection, _ = open_with_failover(
        settings(tls_directory, "ldaps"), tls_directory.bind_password
    )
    connection.close()


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_sec17_without_the_ca_the_certificate_is_not_trusted(
    tls_directory: LocalDirectory, mode: str
) -> None:
    message = connect_error(tls_directory, settings(tls_directory, mode, ca_file=None))
    assert "certificate of localhost not trusted" in message
    assert "self-signed certificate in certificate chain" in message


@pytest.mark.parametrize("mode", MODES)
def test_sec17_a_certificate_from_another_ca_is_not_trusted(
    tls_directory: LocalDirectory, mode: str, tmp_path: Path
) -> None:
    other = make_ca(tmp_path / "other", name="another CA")
    message = connect_error(
        tls_directory, settings(tls_directory, mode, ca_file=str(other.certificate))
    )
    assert "certificate of localhost not trusted" in message


@pytest.mark.parametrize("mode", MODES)
def test_sec17_a_wrong_host_name_is_refused(tls_directory: LocalDirectory, mode: str) -> None:
    # The certificate names localhost only: 127.0.0.1 is the right server under a wrong name.
    config = settings(tls_directory, mode)
    wrong = [url.replace("localhost", "127.0.0.1") for url in config.urls]
    message = connect_error(tls_directory, replace(config, urls=wrong))
    assert "host name mismatch: the certificate of 127.0.0.1 does not name it" in message


def test_sec17_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    authority = make_ca(tmp_path / "ca")
    certificate = make_server_certificate(tmp_path / "server", authority, "ldap.example.org")
    with start(tmp_path / "dir", tls=True) as directory:
        # Swap the served certificate for one naming another host, then restart.
        served = directory.folder / "tls"
        (served / "server.pem").write_bytes(certificate.certificate.read_bytes())
        (served / "server.key").write_bytes(certificate.key.read_bytes())
        (served / "ca.pem").write_bytes(authority.certificate.read_bytes())
        directory.restart()
        message = connect_error(directory, settings(directory, "ldaps"))
    assert "host name mismatch: the certificate of localhost does not name it" in message


@pytest.mark.parametrize("mode", MODES)
def test_sec17_refusals_exit_69_with_one_clear_line(
    tls_directory: LocalDirectory, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(tls_directory, tmp_path, monkeypatch, tls=mode, ca_file=None)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 69, result.output
    assert result.stderr.count("\n") == 1
    assert "not trusted" in result.stderr


def test_an_unreadable_ca_file_is_a_configuration_error(tls_directory: LocalDirectory) -> None:
    config = settings(tls_directory, "ldaps", ca_file="/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match=r"ca_file /nonexistent/ca\.pem: cannot load it"):
        open_with_failover(config, tls_directory.bind_password)


# --- cleartext ------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything opens a TCP connection."""

    def refuse(*_: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize("url", ["ldap://192.0.2.10", "ldap://ldap.example.org:389"])
def test_sec17_cleartext_to_a_remote_server_is_refused_before_connecting(
    tls_directory: LocalDirectory, url: str, no_network: None
) -> None:
    config = settings(tls_directory, "none", urls=[tls_directory.url, url])
    began = time.monotonic()
    with pytest.raises(ConfigError, match="cleartext is allowed only to loopback"):
        open_with_failover(config, tls_directory.bind_password)
    assert time.monotonic() - began < 1


def test_sec17_cleartext_to_a_remote_server_exits_78(
    tls_directory: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(tls_directory, tmp_path, monkeypatch, urls=["ldap://192.0.2.10:389"])
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 78, result.output
    assert "sends the bind password in clear to ldap://192.0.2.10:389" in result.stderr


def test_cleartext_to_loopback_is_allowed(tls_directory: LocalDirectory) -> None:
    connection, _ = open_with_failover(settings(tls_directory, "none"), tls_directory.bind_password)
    connection.close()


def test_a_directory_started_without_tls_has_no_tls_configuration(slapd: LocalDirectory) -> None:
    with pytest.raises(InvalidInputError, match="started without TLS"):
        slapd.config_dict(Path("unused"), "ldaps")
