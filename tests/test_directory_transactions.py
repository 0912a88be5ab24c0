"""Batches of adds committed as one LDAP transaction (RFC 5805), against a real slapd."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from umacct.config import DirectoryConfig, parse_config
from umacct.directory import adapter, wire
from umacct.directory.adapter import Directory, connect, transactions_offered
from umacct.directory.errors import AlreadyExistsError
from umacct.directory.escape import dn_join, filter_present
from umacct.errors import ConfigError, InvalidInputError
from umacct.localdir import LocalDirectory, start

TXN_START, TXN_END = "1.3.6.1.1.21.1", "1.3.6.1.1.21.3"
SYNC = "1.3.6.1.4.1.4203.1.9.1.1"


@pytest.fixture(scope="module")
def settings(slapd: LocalDirectory, tmp_path_factory: pytest.TempPathFactory) -> DirectoryConfig:
    """The local directory's settings, with transactions chosen (the default is off)."""
    found = parse_config(slapd.config_dict(tmp_path_factory.mktemp("data"))).directory
    return replace(found, transactions="auto")


@pytest.fixture
def directory(
    slapd: LocalDirectory, settings: DirectoryConfig, directory_clean: Any
) -> Iterator[Directory]:
    with connect(settings, slapd.bind_password) as opened:
        yield opened


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each transaction the adapter tried became (True: committed)."""
    outcomes: list[bool] = []

    def spy(link: wire.Wire, items: Sequence[wire.Item]) -> bool:
        outcomes.append(wire.commit_together(link, items))
        return outcomes[-1]

    monkeypatch.setattr(adapter, "commit_together", spy)
    return outcomes


def person(people_dn: str, uid: str, **extra: list[str]) -> wire.Item:
    attributes = {"objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [uid], "sn": ["Txn"]}
    return dn_join("uid", uid, people_dn), attributes | extra


def uids(directory: Directory, people_dn: str) -> set[str]:
    found = directory.search(people_dn, filter_present("uid"), ["uid"], scope="one")
    return {entry.first("uid") or "" for entry in found}


def test_this_slapd_offers_transactions(directory: Directory) -> None:
    assert transactions_offered(directory.root_dse())


@pytest.mark.parametrize(
    ("extensions", "controls", "offered"),
    [
        ([TXN_START, TXN_END], [], True),
        ([TXN_START], [], False),  # no End Transaction
        ([], [], False),
        ([TXN_START, TXN_END], [SYNC], False),  # a syncprov provider
    ],
)
def test_transactions_are_used_only_where_they_are_safe(
    extensions: list[str], controls: list[str], offered: bool
) -> None:
    dse = {"supportedExtension": extensions, "supportedControl": ["1.3.6.1.1.12", *controls]}
    assert transactions_offered(dse) is offered


def test_the_site_switch_takes_auto_or_off_and_defaults_to_off(
    slapd: LocalDirectory, tmp_path: Path
) -> None:
    document = slapd.config_dict(tmp_path)
    assert parse_config(document).directory.transactions == "off"
    document["directory"]["transactions"] = "auto"
    assert parse_config(document).directory.transactions == "auto"
    document["directory"]["transactions"] = "on"
    with pytest.raises(ConfigError, match=r"\[directory\] transactions: expected 'auto' or 'off'"):
        parse_config(document)


def test_a_batch_is_committed_in_one_transaction(
    directory: Directory, slapd: LocalDirectory, commits: list[bool]
) -> None:
    people = slapd.people_dn
    assert [r.error for r in directory.add_many([person(people, "first")])] == [None]
    assert commits == []  # attributes this connection never stored: no transaction yet
    results = list(directory.add_many([person(people, f"t{n}") for n in range(450)], window=200))
    assert commits == [True, True, True]  # 200 + 200 + 50
    assert [r.dn for r in results] == [person(people, f"t{n}")[0] for n in range(450)]
    assert all(r.error is None for r in results)
    assert uids(directory, people) == {"first"} | {f"t{n}" for n in range(450)}


def test_a_transaction_is_all_or_nothing(directory: Directory, slapd: LocalDirectory) -> None:
    people = slapd.people_dn
    list(directory.add_many([person(people, "seed"), person(people, "taken")]))
    batch = [person(people, "a1"), person(people, "taken"), person(people, "a2")]
    assert wire.commit_together(directory._wire, batch) is False
    assert uids(directory, people) == {"seed", "taken"}  # a1 was undone with the rest
    assert wire.commit_together(directory._wire, [person(people, "a1"), person(people, "a2")])
    assert uids(directory, people) == {"seed", "taken", "a1", "a2"}
    assert directory.whoami().startswith("dn:")  # the connection is as usable as before


def test_one_bad_entry_falls_back_and_only_its_row_fails(
    directory: Directory, slapd: LocalDirectory, commits: list[bool]
) -> None:
    people = slapd.people_dn
    list(directory.add_many([person(people, "seed"), person(people, "taken")]))
    results = list(directory.add_many([
        person(people, "b1"),
        person(people, "taken"),  # refused at commit time
        person(people, "b2"),
        person(people, "bad", sn=["x"], objectClass=["organizationalUnit"]),
        person(people, "b3"),
    ]))  # fmt: skip
    assert commits == [False]
    errors = [result.error for result in results]
    assert errors[0] is None and errors[2] is None and errors[4] is None
    assert isinstance(errors[1], AlreadyExistsError) and "uid=taken" in errors[1].message
    assert isinstance(errors[3], InvalidInputError) and "uid=bad" in errors[3].message
    assert uids(directory, people) == {"seed", "taken", "b1", "b2", "b3"}
    # One entry refused is no reason to give transactions up.
    list(directory.add_many([person(people, "c1"), person(people, "c2")]))
    assert commits == [False, True]


def test_an_entry_refused_on_arrival_abandons_the_transaction(
    directory: Directory, slapd: LocalDirectory, commits: list[bool]
) -> None:
    people = slapd.people_dn
    mail = {"mail": ["d@example.org"]}
    list(directory.add_many([person(people, "seed", **mail), person(people, "d0", **mail)]))
    results = list(directory.add_many([
        person(people, "d1", **mail),
        person(people, "d2", mail=["dé@example.org"]),  # not IA5: refused as it arrives
        ("uid=d3,ou=nowhere,dc=example,dc=org", person(people, "d3")[1]),  # at commit time
        person(people, "d4", **mail),
    ]))  # fmt: skip
    assert commits == [False]
    assert [result.error is None for result in results] == [True, False, False, True]
    assert "invalid attribute syntax" in str(results[1].error)
    assert uids(directory, people) == {"seed", "d0", "d1", "d4"}


def test_with_the_switch_off_every_add_is_pipelined(
    slapd: LocalDirectory, settings: DirectoryConfig, directory_clean: Any, commits: list[bool]
) -> None:
    with connect(replace(settings, transactions="off"), slapd.bind_password) as directory:
        people = slapd.people_dn
        list(directory.add_many([person(people, "e0"), person(people, "e1")]))
        results = list(directory.add_many([person(people, f"e{n}") for n in range(2, 30)]))
    assert commits == []
    assert all(result.error is None for result in results)


def test_a_server_that_refuses_transactions_gets_pipelined_adds(
    directory: Directory,
    slapd: LocalDirectory,
    commits: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = slapd.people_dn
    list(directory.add_many([person(people, "f0"), person(people, "f1")]))
    monkeypatch.setattr(wire, "TRANSACTION_START", "1.2.3.4.5")  # an operation slapd lacks
    first = list(directory.add_many([person(people, "f2"), person(people, "f3")]))
    second = list(directory.add_many([person(people, "f4"), person(people, "f5")]))
    assert commits == [False]  # refused once, then not tried again
    assert all(result.error is None for result in first + second)
    assert uids(directory, people) == {f"f{n}" for n in range(6)}


def test_an_aborted_transaction_never_holds_an_attribute_new_to_the_database(
    tmp_path: Path, commits: list[bool]
) -> None:
    """slapd 2.5 (back-mdb) leaves its attribute numbering wrong when it undoes a transaction
    that stored an attribute type for the first time: later entries with it cannot be read.
    The adapter puts in a transaction only attributes its connection already stored."""
    own = start(tmp_path / "ldap")
    try:
        found = parse_config(own.config_dict(tmp_path / "data")).directory
        with connect(replace(found, transactions="auto"), own.bind_password) as directory:
            people = own.people_dn
            list(directory.add_many([person(people, "g0"), person(people, "g1")]))
            phone = {"telephoneNumber": ["+33 4 67 00 00 00"]}
            # Never stored: pipelined, although this batch would fail as a transaction.
            results = list(
                directory.add_many([person(people, "g2", **phone), person(people, "g0")])
            )
            assert [result.error is None for result in results] == [True, False]
            later = list(directory.add_many([person(people, "g3", **phone), person(people, "g4")]))
            assert all(result.error is None for result in later)
            entry = directory.read(person(people, "g3")[0], ["telephoneNumber"])
            assert entry is not None and entry.get("telephoneNumber") == phone["telephoneNumber"]
        assert commits == [True]
    finally:
        own.stop()
