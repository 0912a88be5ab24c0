"""The directory adapter against a real slapd (the ``slapd`` fixture), plus its pure parts."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from umacct.config import DirectoryConfig, parse_config
from umacct.directory import connection as connection_module
from umacct.directory.adapter import Change, Directory, Entry, connect
from umacct.directory.connection import ServerAddress, parse_url
from umacct.directory.errors import AlreadyExistsError, ConflictError
from umacct.directory.escape import dn_join, filter_and, filter_eq, filter_present
from umacct.directory.results import RESULT_ERRORS, result_error
from umacct.directory.schema import parse_subschema
from umacct.directory.tls import client_context
from umacct.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    RefusedError,
    TemporaryError,
    UnavailableError,
)

GENERALIZED_TIME = "1.3.6.1.4.1.1466.115.121.1.24"
PASSWORD = "correct horse battery staple"


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(slapd: Any, tmp_path_factory: pytest.TempPathFactory) -> DirectoryConfig:
    data_dir = tmp_path_factory.mktemp("directory-data")
    return parse_config(slapd.config_dict(data_dir)).directory


@pytest.fixture
def directory(slapd: Any, settings: DirectoryConfig, directory_clean: Any) -> Iterator[Directory]:
    with connect(settings, slapd.bind_password) as opened:
        yield opened


def person(directory: Directory, people_dn: str, uid: str, **extra: list[str]) -> str:
    dn = dn_join("uid", uid, people_dn)
    attributes = {
        "objectClass": ["inetOrgPerson", "supannPerson"],
        "uid": [uid],
        "cn": [f"Person {uid}"],
        "sn": [uid],
        **extra,
    }
    directory.add(dn, attributes)
    return dn


def closed_port() -> int:
    """A local port where nothing listens (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


# --- connect, bind, failover --------------------------------------------------------------


def test_connect_and_whoami(directory: Directory, slapd: Any) -> None:
    assert directory.whoami() == f"dn:{slapd.bind_dn}"
    assert directory.url == slapd.url


def test_connect_over_ldapi(slapd: Any, settings: DirectoryConfig) -> None:
    over_socket = replace(settings, urls=[slapd.ldapi_url], tls="starttls")
    with connect(over_socket, slapd.bind_password) as opened:
        assert opened.whoami() == f"dn:{slapd.bind_dn}"


def test_failover_to_the_second_url(slapd: Any, settings: DirectoryConfig) -> None:
    dead = f"ldap://127.0.0.1:{closed_port()}/"
    with connect(replace(settings, urls=[dead, slapd.url]), slapd.bind_password) as opened:
        assert opened.url == slapd.url


def test_all_servers_dead_fails_in_bounded_time(
    settings: DirectoryConfig, silent_server: int
) -> None:
    urls = [f"ldap://127.0.0.1:{closed_port()}", f"ldap://127.0.0.1:{silent_server}"]
    dead = replace(settings, urls=urls, connect_timeout=1, receive_timeout=1)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        connect(dead, "some password")
    assert time.monotonic() - started < 5
    for url in urls:
        assert url in caught.value.message


def test_wrong_bind_password_is_a_config_error(slapd: Any, settings: DirectoryConfig) -> None:
    with pytest.raises(ConfigError, match="invalid credentials; check the password"):
        connect(settings, "not the password")


def test_malformed_bind_dn_is_a_config_error(slapd: Any, settings: DirectoryConfig) -> None:
    with pytest.raises(ConfigError, match="bind as"):
        connect(replace(settings, bind_dn="not a dn"), slapd.bind_password)


def test_empty_bind_password_refused_before_any_network_security_11(
    settings: DirectoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "open_bound", _no_network)
    with pytest.raises(ConfigError, match="empty"):
        connect(settings, "")


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("the network was used")


@pytest.mark.parametrize(
    "urls",
    [["ldap://ldap1.example.org"], ["ldap://127.0.0.1", "ldap://10.0.0.5:389"], ["ldap://[::2]"]],
)
def test_cleartext_to_remote_server_refused_security_17(
    settings: DirectoryConfig, monkeypatch: pytest.MonkeyPatch, urls: list[str]
) -> None:
    monkeypatch.setattr(connection_module, "open_bound", _no_network)
    with pytest.raises(ConfigError, match="cleartext"):
        connect(replace(settings, urls=urls, tls="none"), "password")


def test_starttls_required_but_not_offered_is_unavailable(
    slapd: Any, settings: DirectoryConfig
) -> None:
    with pytest.raises(UnavailableError, match=slapd.url):
        connect(replace(settings, tls="starttls"), slapd.bind_password)


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ldap://Ldap1.Example.org/", ServerAddress("ldap", "ldap1.example.org", 389)),
        ("ldaps://ldap1.example.org", ServerAddress("ldaps", "ldap1.example.org", 636)),
        ("ldap://127.0.0.1:3389", ServerAddress("ldap", "127.0.0.1", 3389)),
        ("ldap://[::1]:3389/", ServerAddress("ldap", "::1", 3389)),
        ("ldapi://%2Frun%2Fslapd%2Fldapi", ServerAddress("ldapi", "/run/slapd/ldapi", None)),
        ("ldapi:///", ServerAddress("ldapi", "/var/run/slapd/ldapi", None)),
    ],
)
def test_parse_url_normalises(url: str, expected: ServerAddress) -> None:
    assert parse_url(url) == expected
    assert parse_url(expected.url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://ldap1.example.org",
        "ldap://ldap1.example.org/dc=example,dc=org",
        "ldap://ldap1.example.org:99999",
        "ldap://user:pw@ldap1.example.org",
        "ldap://",
        "ldapi://relative",
    ],
)
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_url(url)


@pytest.mark.parametrize(
    ("url", "local"),
    [("ldap://127.0.0.2", True), ("ldap://[::1]", True), ("ldap://localhost", True),
     ("ldapi:///", True), ("ldap://192.168.1.1", False), ("ldap://ldap.example.org", False)],
)  # fmt: skip
def test_loopback_detection(url: str, local: bool) -> None:
    assert parse_url(url).is_local is local


# --- TLS (a bare TLS listener is enough: the handshake fails before any LDAP) --------------


def make_certificate(folder: Path, name: str, san: str) -> Path:
    """A self-signed certificate and key for ``name``, in one PEM file."""
    pem = folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
         "-keyout", str(pem), "-out", str(pem)],
        check=True, capture_output=True,
    )  # fmt: skip
    return pem


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    return {
        "loopback": make_certificate(folder, "loopback", "IP:127.0.0.1"),
        "other": make_certificate(folder, "other", "DNS:other.example"),
    }


def tls_listener(pem: Path) -> tuple[int, threading.Thread]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def serve() -> None:
        with listener:
            try:
                conn, _ = listener.accept()
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return int(listener.getsockname()[1]), thread


@pytest.mark.parametrize(
    ("served", "trusted", "message"),
    [
        ("loopback", "other", "certificate of 127.0.0.1 not trusted"),
        ("other", "other", "host name mismatch"),
    ],
)
def test_ldaps_certificate_checked_security_17(
    settings: DirectoryConfig,
    certificates: dict[str, Path],
    served: str,
    trusted: str,
    message: str,
) -> None:
    port, thread = tls_listener(certificates[served])
    secured = replace(
        settings,
        urls=[f"ldaps://127.0.0.1:{port}"],
        tls="none",  # ldaps:// wins over the tls setting
        ca_file=str(certificates[trusted]),
        connect_timeout=3,
    )
    with pytest.raises(UnavailableError, match=message):
        connect(secured, "password")
    thread.join(5)


def test_ldaps_trusted_certificate_passes_the_handshake(
    settings: DirectoryConfig, certificates: dict[str, Path]
) -> None:
    port, thread = tls_listener(certificates["loopback"])
    secured = replace(
        settings,
        urls=[f"ldaps://127.0.0.1:{port}"],
        ca_file=str(certificates["loopback"]),
        connect_timeout=3,
    )
    with pytest.raises(UnavailableError) as caught:  # the listener hangs up after the handshake
        connect(secured, "password")
    assert "certificate" not in caught.value.message
    assert "mismatch" not in caught.value.message
    thread.join(5)


def test_missing_ca_file_is_a_config_error(settings: DirectoryConfig, tmp_path: Path) -> None:
    secured = replace(settings, urls=["ldaps://127.0.0.1:1"], ca_file=str(tmp_path / "none.pem"))
    with pytest.raises(ConfigError, match="ca_file"):
        connect(secured, "password")


def test_tls_context_refuses_old_protocols() -> None:
    context = client_context(None)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


# --- reads and writes ---------------------------------------------------------------------


def test_add_read_modify_delete(directory: Directory, slapd: Any) -> None:
    dn = person(directory, slapd.people_dn, "jdoe", mail=["jdoe@example.org"])
    entry = directory.read(dn, ["uid", "Mail", "cn"])
    assert entry is not None
    assert entry.first("UID") == "jdoe"
    assert entry.get("mail") == ["jdoe@example.org"]
    directory.modify(
        dn,
        [
            Change("add", "mail", ("j.doe@example.org",)),
            Change("delete", "mail", ("jdoe@example.org",)),
            Change("replace", "supannEmpDateFin", ("20250131000000Z",)),
        ],
    )
    entry = directory.read(dn, ["mail", "supannEmpDateFin"])
    assert entry is not None
    assert entry.get("mail") == ["j.doe@example.org"]
    assert entry.first("supannempdatefin") == "20250131000000Z"
    directory.modify(dn, [Change("delete", "supannEmpDateFin")])
    entry = directory.read(dn, ["supannEmpDateFin"])
    assert entry is not None and entry.get("supannEmpDateFin") == []
    directory.delete(dn)
    assert directory.read(dn, ["uid"]) is None


def test_values_with_special_characters_round_trip(directory: Directory, slapd: Any) -> None:
    uid = " a,b+c\\d#é "
    dn = person(directory, slapd.people_dn, uid)
    found = list(directory.search(slapd.people_dn, filter_eq("uid", uid), ["uid"]))
    assert [entry.first("uid") for entry in found] == [uid]
    assert directory.read(dn, ["uid"]) is not None


def test_paged_search_streams_every_entry(directory: Directory, slapd: Any) -> None:
    uids = {f"p{i}" for i in range(7)}
    for uid in uids:
        person(directory, slapd.people_dn, uid)
    found = directory.search(slapd.people_dn, filter_present("uid"), ["uid"], page_size=2)
    assert {entry.first("uid") for entry in found} == uids
    one_level = directory.search(slapd.people_dn, "(objectClass=*)", [], scope="one")
    assert sum(1 for _ in one_level) == 7


def test_size_limit_raises_instead_of_truncating(directory: Directory, slapd: Any) -> None:
    for i in range(7):
        person(directory, slapd.people_dn, f"s{i}")
    for page_size in (2, 0):
        received: list[Entry] = []
        with pytest.raises(TemporaryError, match="size limit"):
            for entry in directory.search(
                slapd.people_dn, filter_present("uid"), ["uid"], page_size=page_size, size_limit=3
            ):
                received.append(entry)
        assert len(received) <= 3


def test_filter_injection_finds_nothing_security_16(directory: Directory, slapd: Any) -> None:
    person(directory, slapd.people_dn, "victim")
    for hostile in ("*", "*)(uid=*", "victim)(|(uid=*", "\\2a"):
        assert list(directory.search(slapd.people_dn, filter_eq("uid", hostile), ["uid"])) == []
    assert len(list(directory.search(slapd.people_dn, filter_eq("uid", "victim"), ["uid"]))) == 1


def test_binary_values_are_kept_apart(directory: Directory, slapd: Any) -> None:
    dn = person(directory, slapd.people_dn, "photo")
    photo = "/9j/4AAQ"  # base64 of a JPEG header, not UTF-8
    slapd.run_root(
        "ldapmodify", ldif=f"dn: {dn}\nchangetype: modify\nadd: jpegPhoto\njpegPhoto:: {photo}\n"
    )
    entry = directory.read(dn, ["uid", "jpegPhoto"])
    assert entry is not None
    assert entry.get("jpegPhoto") == []
    assert entry.binary == {"jpegphoto": [b"\xff\xd8\xff\xe0\x00\x10"]}
    assert entry.first("uid") == "photo"


# --- passwords ----------------------------------------------------------------------------


def test_password_modify_then_check_password_security_12(directory: Directory, slapd: Any) -> None:
    dn = person(directory, slapd.people_dn, "pw")
    directory.password_modify(dn, PASSWORD)
    assert directory.check_password(dn, PASSWORD) is True
    assert directory.check_password(dn, PASSWORD + "x") is False
    assert directory.check_password(dn_join("uid", "nobody", slapd.people_dn), PASSWORD) is False


def test_password_is_stored_hashed_by_the_server_security_12(
    directory: Directory, slapd: Any
) -> None:
    dn = person(directory, slapd.people_dn, "hashed")
    directory.password_modify(dn, PASSWORD)
    stored = slapd.run_root("ldapsearch", "-LLL", "-b", dn, "-s", "base", "userPassword")
    assert PASSWORD not in stored
    assert "userPassword::" in stored


def test_empty_password_refused_before_any_bind_security_11(
    directory: Directory, slapd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dn = person(directory, slapd.people_dn, "empty")
    monkeypatch.setattr(connection_module, "_open_socket", _no_network)
    with pytest.raises(InvalidInputError, match="empty"):
        directory.check_password(dn, "")
    with pytest.raises(InvalidInputError, match="empty"):
        directory.password_modify(dn, "")


# --- concurrency, schema, errors ----------------------------------------------------------


def test_assertion_control_detects_a_concurrent_change(directory: Directory, slapd: Any) -> None:
    dn = person(directory, slapd.people_dn, "cas", supannRessourceEtat=["{COMPTE}A:SupannActif"])
    before = filter_eq("supannRessourceEtat", "{COMPTE}A:SupannActif")
    directory.modify(dn, [Change("replace", "cn", ("Renamed",))], assertion=before)
    directory.modify(
        dn, [Change("replace", "supannRessourceEtat", ("{COMPTE}S:SupannVerrouille",))]
    )
    with pytest.raises(ConflictError, match="changed meanwhile"):
        directory.modify(dn, [Change("replace", "cn", ("Again",))], assertion=before)
    with pytest.raises(ConflictError):
        directory.delete(dn, assertion=filter_and(before, filter_present("uid")))
    entry = directory.read(dn, ["cn"])
    assert entry is not None and entry.get("cn") == ["Renamed"]


def test_subschema(directory: Directory) -> None:
    schema = directory.subschema()
    assert schema.has_object_class("supannPerson")
    assert schema.has_attribute("SUPANNEMPDATEFIN")
    assert schema.syntaxes["supannempdatefin"] == GENERALIZED_TIME
    assert directory.subschema() is schema


def test_root_dse_lists_the_assertion_control(directory: Directory) -> None:
    dse = directory.root_dse()
    assert "1.3.6.1.1.12" in dse["supportedControl"]
    assert "1.3.6.1.4.1.4203.1.11.1" in dse["supportedExtension"]


def test_error_mapping(directory: Directory, slapd: Any) -> None:
    dn = person(directory, slapd.people_dn, "err")
    missing = dn_join("uid", "missing", slapd.people_dn)
    with pytest.raises(NotFoundError, match="uid=missing"):
        directory.modify(missing, [Change("replace", "cn", ("x",))])
    with pytest.raises(NotFoundError):
        directory.delete(missing)
    with pytest.raises(AlreadyExistsError, match="uid=err"):
        person(directory, slapd.people_dn, "err")
    with pytest.raises(InvalidInputError, match="invalid attribute syntax"):
        directory.modify(dn, [Change("replace", "supannEmpDateFin", ("not a date",))])
    with pytest.raises(InvalidInputError, match="undefined attribute type"):
        directory.modify(dn, [Change("replace", "noSuchAttribute", ("x",))])
    with pytest.raises(InvalidInputError, match="object class violation"):
        directory.modify(dn, [Change("delete", "sn")])
    with pytest.raises(NotFoundError):
        list(directory.search(missing, "(objectClass=*)", ["uid"]))


def test_connection_lost_between_pages(directory: Directory, slapd: Any) -> None:
    for i in range(5):
        person(directory, slapd.people_dn, f"lost{i}")
    found = directory.search(slapd.people_dn, filter_present("uid"), ["uid"], page_size=2)
    next(found)
    directory._wire._socket.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    with pytest.raises(UnavailableError, match=r"connection to .* lost"):
        list(found)


# --- pure parts ---------------------------------------------------------------------------


def test_entry_accessors_are_case_insensitive() -> None:
    entry = Entry("uid=a,dc=ex", {"mail": ["a@ex.org", "b@ex.org"]})
    assert entry.get("MAIL") == ["a@ex.org", "b@ex.org"]
    assert entry.first("Mail") == "a@ex.org"
    assert entry.get("cn") == []
    assert entry.first("cn") is None


def test_every_required_result_code_is_mapped() -> None:
    expected = {
        32: NotFoundError, 50: RefusedError, 51: TemporaryError, 52: UnavailableError,
        53: RefusedError, 3: TemporaryError, 11: TemporaryError, 19: InvalidInputError,
        21: InvalidInputError, 65: InvalidInputError, 17: InvalidInputError,
        64: InvalidInputError, 68: AlreadyExistsError, 122: ConflictError,
    }  # fmt: skip
    for code, error_class in expected.items():
        assert RESULT_ERRORS[code][0] is error_class
    error = result_error("modify", "uid=x,dc=ex", {"result": 19, "message": "too short"})
    assert error.message == "modify uid=x,dc=ex: constraint violation (LDAP 19): too short"


def test_subschema_parser_follows_superiors() -> None:
    schema = parse_subschema(
        [
            "( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' ) "
            "EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )",
            "( 1.3.6.1.4.1.7135.1.2.1.34 NAME 'supannAutreMail' DESC 'a (b) c' SUP mail )",
            "( 1.2.3.4 NAME 'orphan' SUP unknown SINGLE-VALUE )",
        ],
        ["( 1.3.6.1.4.1.7135.1.2.2.1 NAME 'supannPerson' SUP top AUXILIARY MAY ( a $ b ) )"],
    )
    assert schema.attribute_types == {"mail", "rfc822mailbox", "supannautremail", "orphan"}
    assert schema.object_classes == {"supannperson"}
    assert schema.syntaxes == {
        "mail": "1.3.6.1.4.1.1466.115.121.1.26",
        "rfc822mailbox": "1.3.6.1.4.1.1466.115.121.1.26",
        "supannautremail": "1.3.6.1.4.1.1466.115.121.1.26",
    }
