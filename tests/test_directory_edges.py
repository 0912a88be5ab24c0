"""Protocol edges: referrals, a message too large, searches stopped early, paging ignored."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from directory_fakes import PASSWORD, FakeServer, Peer, entry, result

from umacct.config import DirectoryConfig, parse_config
from umacct.directory import Change, Directory, Entry, ber, connect, wire
from umacct.directory import connection as connection_module
from umacct.directory.escape import dn_join, filter_present
from umacct.errors import ConfigError, UnavailableError
from umacct.localdir import LocalDirectory, start

PAGED = "1.2.840.113556.1.4.319"


@pytest.fixture(scope="module")
def settings(slapd: LocalDirectory, tmp_path_factory: pytest.TempPathFactory) -> DirectoryConfig:
    return parse_config(slapd.config_dict(tmp_path_factory.mktemp("edges"))).directory


# --- referrals (a directory of their own: referral entries need ManageDsaIT to go) --------


def _unit(dn: str) -> str:
    return f"dn: {dn}\nobjectClass: organizationalUnit\nou: {dn.split(',')[0][3:]}\n\n"


def _referral(dn: str, url: str) -> str:
    name = dn.split(",")[0][3:]
    return (
        f"dn: {dn}\nobjectClass: referral\nobjectClass: extensibleObject\nou: {name}\n"
        f"ref: {url}\n\n"
    )


def _person(dn: str) -> str:
    uid = dn.split(",")[0][4:]
    return f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\n"


@pytest.fixture(scope="module")
def referring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    """ou=branch holds uid=near and a referral to ou=moved (which holds uid=far) on itself;
    ou=hops refers to ou=hop, itself a referral; ou=outside refers to a remote server."""
    directory = start(tmp_path_factory.mktemp("referrals"))
    people = directory.people_dn
    here = f"ldap://127.0.0.1:{directory.port}"
    directory.run_root("ldapadd", ldif="".join([
        _unit(f"ou=branch,{people}"), _person(f"uid=near,ou=branch,{people}"),
        _unit(f"ou=moved,{people}"), _person(f"uid=far,ou=moved,{people}"),
        _referral(f"ou=far,ou=branch,{people}", f"{here}/ou=moved,{people}"),
        _unit(f"ou=hops,{people}"),
        _referral(f"ou=again,ou=hops,{people}", f"{here}/ou=hop,{people}"),
        _referral(f"ou=hop,{people}", f"{here}/ou=moved,{people}"),
        _unit(f"ou=outside,{people}"),
        _referral(f"ou=x,ou=outside,{people}", "ldap://192.0.2.7/ou=x,dc=example,dc=org"),
    ]))  # fmt: skip
    yield directory
    directory.stop()


def referring_settings(directory: LocalDirectory, tmp_path: Path, **keys: Any) -> DirectoryConfig:
    return replace(parse_config(directory.config_dict(tmp_path)).directory, **keys)


def uids(entries: Iterator[Entry]) -> list[str]:
    return sorted(entry.first("uid") or "" for entry in entries)


def test_sec43_a_continuation_reference_is_an_error_naming_the_url_after_the_local_entries(
    referring: LocalDirectory, tmp_path: Path
) -> None:
    people = referring.people_dn
    received: list[Entry] = []
    with (
        connect(referring_settings(referring, tmp_path), referring.bind_password) as directory,
        pytest.raises(ConfigError) as refused,
    ):
        for found in directory.search(f"ou=branch,{people}", filter_present("uid"), ["uid"]):
            received.append(found)
    assert [entry.first("uid") for entry in received] == ["near"]
    message = refused.value.message
    assert f"ldap://127.0.0.1:{referring.port}/ou=moved,{people}" in message
    assert "follow_referrals = true" in message
    assert "\n" not in message


def test_a_followed_continuation_reference_finds_the_entries_held_elsewhere(
    referring: LocalDirectory, tmp_path: Path
) -> None:
    chosen = referring_settings(referring, tmp_path, follow_referrals=True)
    with connect(chosen, referring.bind_password) as directory:
        branch = f"ou=branch,{referring.people_dn}"
        assert uids(directory.search(branch, filter_present("uid"), ["uid"])) == ["far", "near"]
        assert uids(directory.search(branch, filter_present("uid"), ["uid"], page_size=1)) == [
            "far",
            "near",
        ]


def test_sec43_a_referral_result_is_reported_or_followed_for_reads_and_writes(
    referring: LocalDirectory, tmp_path: Path
) -> None:
    people = referring.people_dn
    through = f"uid=far,ou=far,ou=branch,{people}"  # under the referral entry
    with connect(referring_settings(referring, tmp_path), referring.bind_password) as directory:
        with pytest.raises(
            ConfigError, match=r"refers to another server: ldap://.*follow_referrals"
        ):
            directory.read(through, ["uid"])
        with pytest.raises(ConfigError, match=f"ldap://127.0.0.1:{referring.port}/"):
            directory.modify(through, [Change("replace", "cn", ("changed",))])
    chosen = referring_settings(referring, tmp_path, follow_referrals=True)
    with connect(chosen, referring.bind_password) as directory:
        found = directory.read(through, ["uid"])
        assert found is not None and found.dn == f"uid=far,ou=moved,{people}"
        directory.modify(through, [Change("replace", "cn", ("changed",))])
        moved = directory.read(f"uid=far,ou=moved,{people}", ["cn"])
        assert moved is not None and moved.get("cn") == ["changed"]


def test_sec43_a_referral_is_followed_once_only(referring: LocalDirectory, tmp_path: Path) -> None:
    chosen = referring_settings(referring, tmp_path, follow_referrals=True)
    with (
        connect(chosen, referring.bind_password) as directory,
        pytest.raises(ConfigError, match="followed once only"),
    ):
        list(directory.search(f"ou=hops,{referring.people_dn}", filter_present("uid"), ["uid"]))


def test_sec17_sec43_a_referral_to_a_remote_server_in_cleartext_is_not_followed(
    referring: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = referring_settings(referring, tmp_path, follow_referrals=True)
    with connect(chosen, referring.bind_password) as directory:
        monkeypatch.setattr(connection_module, "_open_socket", _no_network)
        with pytest.raises(ConfigError, match=r"ldap://192\.0\.2\.7.*cleartext is allowed only"):
            list(directory.search(f"ou=outside,{referring.people_dn}", "(uid=*)", ["uid"]))


def _no_network(*_: object) -> None:
    raise AssertionError("a connection was attempted")


# --- searches stopped early (the real slapd) ------------------------------------------------


@pytest.fixture
def directory(
    slapd: LocalDirectory, settings: DirectoryConfig, directory_clean: LocalDirectory
) -> Iterator[Directory]:
    with connect(settings, slapd.bind_password) as opened:
        yield opened


def _spy_sends(monkeypatch: pytest.MonkeyPatch) -> list[ber.Message]:
    sent: list[ber.Message] = []
    real_send = wire.Wire.send

    def spy(link: wire.Wire, operation: str, target: str, data: bytes) -> None:
        buffer = bytearray(data)
        sent.extend(ber.decode_message(raw) for raw in ber.split_messages(buffer))
        real_send(link, operation, target, data)

    monkeypatch.setattr(wire.Wire, "send", spy)
    real_abandon = wire.Wire.abandon

    def spy_abandon(link: wire.Wire, message_id: int) -> None:
        sent.append(ber.decode_message(ber.message(0, ber.abandon_request(message_id))))
        real_abandon(link, message_id)

    monkeypatch.setattr(wire.Wire, "abandon", spy_abandon)
    return sent


def test_a_paged_search_stopped_early_is_abandoned_and_the_connection_stays_usable(
    directory: Directory, slapd: LocalDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(7):
        uid = f"early{number}"
        directory.add(
            dn_join("uid", uid, slapd.people_dn),
            {"objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [uid], "sn": [uid]},
        )
    sent = _spy_sends(monkeypatch)
    found = directory.search(slapd.people_dn, filter_present("uid"), ["uid"], page_size=2)
    taken = [next(found) for _ in range(3)]  # the middle of the second page
    found.close()
    assert len(taken) == 3
    abandons = [message for message in sent if message.tag == ber.ABANDON_REQUEST]
    assert len(abandons) == 1
    searches = [message for message in sent if message.tag == ber.SEARCH_REQUEST]
    abandoned = int.from_bytes(abandons[0].raw[abandons[0].start : abandons[0].end], "big")
    assert abandoned == searches[-1].message_id
    assert directory._wire._queues == {}  # nothing kept for it
    # The same connection serves the next requests, whatever slapd still sent.
    again = directory.search(slapd.people_dn, filter_present("uid"), ["uid"], page_size=2)
    assert len(uids(again)) == 7
    directory.modify(taken[0].dn, [Change("replace", "cn", ("still here",))])


def test_a_modify_while_a_search_streams_gets_its_own_answer(
    directory: Directory, slapd: LocalDirectory
) -> None:
    for number in range(5):
        uid = f"both{number}"
        directory.add(
            dn_join("uid", uid, slapd.people_dn),
            {"objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [uid], "sn": [uid]},
        )
    seen = []
    for found in directory.search(slapd.people_dn, filter_present("uid"), ["uid"], page_size=2):
        directory.modify(found.dn, [Change("replace", "cn", ("seen",))])
        seen.append(found.first("uid"))
    assert len(seen) == 5
    everyone = directory.search(slapd.people_dn, filter_present("uid"), ["cn"])
    assert {entry.first("cn") for entry in everyone} == {"seen"}


# --- odd servers (a scripted one on loopback) -----------------------------------------------


def test_sec44_a_message_over_the_size_cap_closes_the_connection_before_its_body(
    settings: DirectoryConfig,
) -> None:
    def huge_answer(peer: Peer) -> None:
        peer.accept_bind()
        search = peer.request()
        announced = 2**27  # 128 MiB, over the 64 MiB cap
        header = bytes((0x30, 0x84)) + announced.to_bytes(4, "big")
        peer.sock.sendall(header + ber.tlv(ber.INTEGER, bytes((search.message_id,)))[:64])
        assert peer.closed_by_the_tool()

    server = FakeServer(huge_answer)
    with (
        connect(server.settings(settings), PASSWORD) as directory,
        pytest.raises(UnavailableError, match=r"134217734 bytes, over the limit of 67108864"),
    ):
        list(directory.search("dc=example,dc=org", "(uid=*)", ["uid"]))
    server.finish()


def test_sec44_a_server_that_ignores_paging_is_streamed_entry_by_entry(
    settings: DirectoryConfig,
) -> None:
    first_seen = threading.Event()

    def ignores_paging(peer: Peer) -> None:
        peer.accept_bind()
        search = peer.request()
        peer.send(search.message_id, entry("uid=e0,dc=example,dc=org", uid="e0"))
        # The rest only once the tool has handed the first entry over: a client that
        # waited for the whole answer (or a page of it) would never get there.
        assert first_seen.wait(5), "the first entry was not handed over before the last came"
        for number in range(1, 1000):
            peer.send(search.message_id, entry(f"uid=e{number},dc=example,dc=org", uid="x"))
        peer.send(search.message_id, result(ber.SEARCH_DONE))  # no paging control back

    server = FakeServer(ignores_paging)
    count = 0
    with connect(server.settings(settings), PASSWORD) as directory:
        for _ in directory.search("dc=example,dc=org", "(uid=*)", ["uid"], page_size=10):
            first_seen.set()
            count += 1
    server.finish()
    assert count == 1000
    assert server.peer is not None
    search = next(m for m in server.peer.received if m.tag == ber.SEARCH_REQUEST)
    assert PAGED.encode() in search.raw  # it was asked for pages


def test_a_search_stopped_early_on_a_server_ignoring_paging_drops_what_still_comes(
    settings: DirectoryConfig,
) -> None:
    def keeps_sending(peer: Peer) -> None:
        peer.accept_bind()
        search = peer.request()
        for number in range(3):
            peer.send(search.message_id, entry(f"uid=s{number},dc=example,dc=org", uid="s"))
        abandon = peer.request()
        assert abandon.tag == ber.ABANDON_REQUEST
        # Sent before the server acted on the abandon: the tool must drop them.
        for number in range(3, 6):
            peer.send(search.message_id, entry(f"uid=s{number},dc=example,dc=org", uid="s"))
        peer.send(search.message_id, result(ber.SEARCH_DONE))
        who = peer.request()
        assert who.tag == ber.EXTENDED_REQUEST
        peer.send(who.message_id, result(ber.EXTENDED_RESPONSE, extra=ber.tlv(0x8B, b"dn:x")))

    server = FakeServer(keeps_sending)
    with connect(server.settings(settings), PASSWORD) as directory:
        found = directory.search("dc=example,dc=org", "(uid=*)", ["uid"], page_size=0)
        assert next(found).dn == "uid=s0,dc=example,dc=org"
        found.close()
        assert directory.whoami() == "dn:x"
    server.finish()


def test_sec44_answers_piling_up_behind_an_awaited_one_are_capped(
    settings: DirectoryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "MAX_BACKLOG_BYTES", 50_000)

    def floods(peer: Peer) -> None:
        peer.accept_bind()
        search = peer.request()
        peer.send(search.message_id, entry("uid=f0,dc=example,dc=org", uid="f"))
        modify = peer.request()
        assert modify.tag == ber.MODIFY_REQUEST
        with contextlib.suppress(OSError):  # the tool hangs up midway
            for number in range(1, 5000):  # the whole directory, paging ignored
                peer.send(search.message_id, entry(f"uid=f{number},dc=example,dc=org", uid="f"))
            peer.send(modify.message_id, result(ber.MODIFY_RESPONSE))

    server = FakeServer(floods)
    with connect(server.settings(settings), PASSWORD) as directory:
        found = directory.search("dc=example,dc=org", "(uid=*)", ["uid"])
        first = next(found)
        with pytest.raises(UnavailableError, match="does the server ignore the paging control"):
            directory.modify(first.dn, [Change("replace", "cn", ("x",))])
        found.close()
    server.finish()
