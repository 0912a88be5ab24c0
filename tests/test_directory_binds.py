"""The binds sysadmins use: simple (DN and password) and SASL EXTERNAL over ldapi, no password."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.config import DirectoryConfig, parse_config
from umacct.directory import Identity, connect, mapped_identity, needs_password
from umacct.directory import connection as connection_module
from umacct.directory.escape import dn_join
from umacct.directory.wire import Wire
from umacct.errors import ConfigError
from umacct.localdir import LocalDirectory

runner = CliRunner()


@pytest.fixture(scope="module")
def settings(slapd: LocalDirectory, tmp_path_factory: pytest.TempPathFactory) -> DirectoryConfig:
    return parse_config(slapd.config_dict(tmp_path_factory.mktemp("binds"))).directory


def external(slapd: LocalDirectory, settings: DirectoryConfig) -> DirectoryConfig:
    return replace(settings, bind_method="sasl_external", urls=[slapd.ldapi_url])


def test_sec42_sasl_external_over_ldapi_binds_as_the_mapped_os_user(
    slapd: LocalDirectory, settings: DirectoryConfig
) -> None:
    with connect(external(slapd, settings)) as directory:
        identity = mapped_identity(directory)
        assert identity.dn == slapd.root_dn  # the local directory maps its OS user to its manager
        assert identity.mapped
        assert identity.describe() == f"{slapd.root_dn} (SASL EXTERNAL over ldapi)"
        assert directory.read(slapd.people_dn, ["ou"]) is not None


def test_sec42_sasl_external_sends_no_password_even_when_one_is_at_hand(
    slapd: LocalDirectory, settings: DirectoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[bytes] = []
    real_send = Wire.send

    def spy(wire: Wire, operation: str, target: str, data: bytes) -> None:
        sent.append(data)
        real_send(wire, operation, target, data)

    monkeypatch.setattr(Wire, "send", spy)
    chosen = external(slapd, settings)
    assert not needs_password(chosen)
    with connect(chosen, slapd.bind_password) as directory:
        assert directory.whoami() == f"dn:{slapd.root_dn}"
    assert sent
    assert not any(slapd.bind_password.encode() in data for data in sent)
    assert b"EXTERNAL" in sent[0]


def test_a_simple_bind_shows_the_service_account(
    slapd: LocalDirectory, settings: DirectoryConfig
) -> None:
    assert needs_password(settings)
    with connect(settings, slapd.bind_password) as directory:
        identity = mapped_identity(directory)
    assert identity == Identity(f"dn:{slapd.bind_dn}", "simple")
    assert identity.describe() == f"{slapd.bind_dn} (simple bind)"


def test_password_checks_still_bind_as_the_person_over_ldapi(
    slapd: LocalDirectory, settings: DirectoryConfig, directory_clean: LocalDirectory
) -> None:
    dn = dn_join("uid", "ext", slapd.people_dn)
    with connect(external(slapd, settings)) as directory:
        directory.add(
            dn, {"objectClass": ["inetOrgPerson"], "uid": ["ext"], "cn": ["E"], "sn": ["E"]}
        )
        directory.password_modify(dn, "correct horse battery staple")
        assert directory.check_password(dn, "correct horse battery staple")
        assert not directory.check_password(dn, "wrong horse battery staple")


@pytest.mark.parametrize(
    "urls", [["ldap://127.0.0.1:389"], ["ldapi:///", "ldaps://ldap.example.org"]]
)
def test_sec42_sasl_external_is_refused_over_anything_but_ldapi_before_connecting(
    settings: DirectoryConfig, monkeypatch: pytest.MonkeyPatch, urls: list[str]
) -> None:
    def no_network(*_: object) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(connection_module, "_open_socket", no_network)
    with pytest.raises(ConfigError, match="ldapi:// only"):
        connect(replace(settings, bind_method="sasl_external", urls=urls))


def configured(slapd: LocalDirectory, tmp_path: Path, **keys: Any) -> Path:
    document = slapd.config_dict(tmp_path / "data")
    document["directory"].update(keys)
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"bind_method": "gssapi"}, "expected 'simple' or 'sasl_external', got 'gssapi'"),
        ({"bind_method": ""}, "expected 'simple' or 'sasl_external'"),
        ({"bind_method": 1}, "expected"),
        ({"bind_method": "sasl_external"}, "'sasl_external' binds over ldapi:// only"),
        ({"follow_referrals": "yes"}, "follow_referrals"),
    ],
)
def test_a_bad_bind_setting_exits_78_with_one_line(
    slapd: LocalDirectory, tmp_path: Path, keys: dict[str, Any], message: str
) -> None:
    path = configured(slapd, tmp_path, **keys)
    result = runner.invoke(app, ["--config", str(path), "config", "check"])
    assert result.exit_code == 78, result.output
    assert "[directory]" in result.stderr and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_bind_settings_default_to_a_simple_bind_and_no_referral(
    slapd: LocalDirectory, tmp_path: Path
) -> None:
    chosen = parse_config(slapd.config_dict(tmp_path)).directory
    assert (chosen.bind_method, chosen.follow_referrals) == ("simple", False)
    document = slapd.config_dict(tmp_path)
    document["directory"].update(bind_method="sasl_external", urls=[slapd.ldapi_url])
    assert parse_config(document).directory.bind_method == "sasl_external"


def test_an_os_user_mapped_to_no_entry_is_named_as_such() -> None:
    unmapped = Identity(
        "dn:gidNumber=1000+uidNumber=1000,cn=peercred,cn=external,cn=auth", "sasl_external"
    )
    assert not unmapped.mapped
    assert "mapped to no entry" in unmapped.describe()
    assert "olcAuthzRegexp" in unmapped.describe()
    assert Identity("", "simple").describe() == "anonymous (simple bind)"
    assert Identity("u:umacct", "sasl_external").describe() == "u:umacct (SASL EXTERNAL over ldapi)"
