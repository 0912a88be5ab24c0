"""``umacct state init`` and ``migrate``, the ``[state]`` configuration, the branch's ACL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from command_line import umacct
from days import TODAY, month_end
from helpers import minimal_config
from people import NEW_PASSWORD, add_person, outbox_mails
from test_state_hosts import link_token
from test_state_support import (
    Host,
    branch,
    drop_branch,
    host_config,
    new_branch,
    on_host,
    two_hosts,
)

from umacct.config import parse_config, state_backend
from umacct.datadir import STATE_FILE
from umacct.errors import ConfigError
from umacct.localdir import LocalDirectory
from umacct.services.credentials import reset_with_token, send_reset
from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime
from umacct.state.directory_store import DirectoryStore
from umacct.store import SQLiteStore

__all__ = ["branch", "on_host", "two_hosts"]

OnHost = Callable[[Host, date], Runtime]
TODAY_NOON = datetime.combine(TODAY, time(12), tzinfo=UTC)


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    return path


# --- configuration ----------------------------------------------------------------------------


def test_the_backend_is_sqlite_unless_a_state_branch_is_set() -> None:
    plain = minimal_config()
    assert state_backend(parse_config(plain)) == "sqlite"
    plain["directory"]["state_dn"] = "ou=umacct,ou=system," + plain["directory"]["base_dn"]
    assert state_backend(parse_config(plain)) == "directory"
    plain["state"] = {"backend": "sqlite"}
    assert state_backend(parse_config(plain)) == "sqlite"


@pytest.mark.parametrize(
    ("directory", "state", "message"),
    [
        ({}, {"backend": "ldap"}, "[state] backend: expected 'directory' or 'sqlite'"),
        ({}, {"backend": "directory"}, "[state] backend: 'directory' needs [directory] state_dn"),
        ({}, {"backend": 3}, "[state] backend: expected a string"),
        ({"state_dn": "ou=umacct,dc=elsewhere,dc=org"}, {}, "[directory] state_dn: expected a branch ou=..."),
        ({"state_dn": "cn=umacct,ou=system,{base}"}, {}, "[directory] state_dn: expected a branch ou=..."),
        ({"state_dn": "{base}"}, {}, "[directory] state_dn: expected a branch ou=..."),
        ({"state_dn": "ou=state,{people}"}, {}, "[directory] state_dn: expected a branch outside people_dn"),
        ({"state_dn": "{people}"}, {}, "[directory] state_dn: expected a branch outside people_dn"),
        ({}, {"colour": "x"}, "[state] colour: unknown key"),
    ],
)  # fmt: skip
def test_bad_state_settings_exit_78_with_one_line(
    tmp_path: Path, directory: dict[str, Any], state: dict[str, Any], message: str
) -> None:
    document = minimal_config()
    names = {"base": document["directory"]["base_dn"], "people": document["directory"]["people_dn"]}
    document["directory"].update({k: v.format(**names) for k, v in directory.items()})
    document["state"] = state
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert message in caught.value.message
    code, _, err = umacct("--config", str(write(tmp_path / "c.toml", document)), "config", "check")
    assert code == 78 and message in err and len(err.strip().splitlines()) == 1


def test_the_example_configuration_documents_the_state() -> None:
    text = (Path(__file__).parent.parent / "config.example.toml").read_text("utf-8")
    assert "# state_dn = " in text and "[state]" in text and "# backend = " in text


def test_the_runtime_picks_the_backend(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    document = host_config(slapd, tmp_path / "data", f"ou=unused,{slapd.state_dn}")
    runtime = Runtime(parse_config(document))
    try:
        assert isinstance(runtime.store, DirectoryStore)
    finally:
        runtime.close()
    document["state"] = {"backend": "sqlite"}
    runtime = Runtime(parse_config(document))
    try:
        assert isinstance(runtime.store, SQLiteStore)
    finally:
        runtime.close()


# --- state init -------------------------------------------------------------------------------


def test_state_init_makes_the_branch_once(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dn = new_branch(slapd)
    config = write(tmp_path / "c.toml", host_config(slapd, tmp_path / "data", state_dn))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    try:
        code, out, err = umacct("--config", str(config), "state", "init")
        assert code == 0, err
        assert out.splitlines()[0] == f"created {state_dn}"
        assert len(out.splitlines()) == 8 and "8 entries created, 0 already there" in err
        code, out, err = umacct("--config", str(config), "--json", "state", "init")
        assert code == 0, err
        report = json.loads(out)
        assert report["created"] == [] and len(report["existing"]) == 8
    finally:
        drop_branch(slapd, state_dn)


def test_state_init_without_a_branch_configured_exits_78(config_path: Path) -> None:
    code, _, err = umacct("state", "init")
    assert code == 78 and "[directory] state_dn" in err


def test_state_init_where_the_tool_may_not_write_exits_77_naming_the_acl(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = f"ou=elsewhere,ou=system,{slapd.base_dn}"  # no ACL gives the tool ou=system
    config = write(tmp_path / "c.toml", host_config(slapd, tmp_path / "data", outside))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    code, _, err = umacct("--config", str(config), "state", "init")
    assert code == 77 and "docs/state.md" in err, err


def test_state_init_below_a_missing_entry_exits_78(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    below = f"ou=state,ou=nowhere,{slapd.state_dn}"
    config = write(tmp_path / "c.toml", host_config(slapd, tmp_path / "data", below))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    code, _, err = umacct("--config", str(config), "state", "init")
    assert code == 78 and "does not exist" in err, err


@pytest.mark.usefixtures("directory_clean")
def test_a_command_on_a_missing_branch_exits_78_and_changes_nothing(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = new_branch(slapd)
    config = write(tmp_path / "c.toml", host_config(slapd, tmp_path / "data", missing))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    runtime = Runtime(parse_config(host_config(slapd, tmp_path / "data", missing)))
    try:
        person = add_person(
            runtime, "no.branch", profile="titulaire", end_of_activity=month_end(-1)
        )
        before = runtime.directory.read(person.dn, ["*"])
        code, _, err = umacct("--config", str(config), "sweep")
        assert code == 78 and "umacct state init" in err, err
        assert runtime.directory.read(person.dn, ["*"]) == before
        assert not (tmp_path / "data" / "outbox").exists()
    finally:
        runtime.close()


# --- the ACL of the local directory ---------------------------------------------------------------


@pytest.mark.usefixtures("directory_clean")
def test_sec39_only_the_tools_dn_reads_the_state_branch(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    runtime = Runtime(parse_config(slapd.config_dict(tmp_path / "data")))
    try:
        person = add_person(runtime, "curious.person", profile="titulaire")
        units = list(runtime.directory.search(slapd.state_dn, "(objectClass=*)", [], scope="one"))
        assert len(units) >= 5  # the local directory made the branch and its units
    finally:
        runtime.close()
    for credentials in (["-x"], ["-x", "-D", person.dn, "-w", person.password]):
        found = subprocess.run(
            ["ldapsearch", *credentials, "-H", slapd.url, "-LLL", "-b", slapd.state_dn, "dn"],
            capture_output=True, text=True, env=slapd.ldif_env(), check=False,
        )  # fmt: skip
        assert found.returncode == 32 and "dn:" not in found.stdout, credentials
        added = subprocess.run(
            ["ldapadd", *credentials, "-H", slapd.url],
            input=f"dn: cn=x,ou=locks,{slapd.state_dn}\nobjectClass: applicationProcess\ncn: x\n",
            capture_output=True, text=True, env=slapd.ldif_env(), check=False,
        )  # fmt: skip
        assert added.returncode != 0, credentials


def test_sec02_sec39_the_directory_never_holds_a_token(
    two_hosts: tuple[Host, Host], on_host: OnHost, slapd: LocalDirectory, branch: str
) -> None:
    a, _ = two_hosts
    runtime = on_host(a, TODAY)
    person = add_person(runtime, "hash.only", profile="titulaire")
    send_reset(runtime, person.identifier)
    token = link_token(runtime, "reset")
    everything = slapd.run_root("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", branch, "*", "+")
    assert token not in everything
    assert runtime.tokens.pending(person.identifier)
    slapd.clear_people()


# --- state migrate ----------------------------------------------------------------------------


def sqlite_host(host: Host) -> None:
    """The host as it ran before: its state in state.db."""
    text = host.config_path.read_text().replace('backend = "directory"', 'backend = "sqlite"')
    host.config_path.write_text(text)


def directory_host(host: Host) -> None:
    """The host after migration: its state in the directory."""
    text = host.config_path.read_text().replace('backend = "sqlite"', 'backend = "directory"')
    host.config_path.write_text(text)


@pytest.mark.usefixtures("directory_clean")
def test_migrate_moves_a_state_db_once_and_its_links_keep_working(
    two_hosts: tuple[Host, Host], on_host: OnHost
) -> None:
    a, b = two_hosts
    sqlite_host(a)
    before = on_host(a, TODAY)
    person = add_person(before, "moved.link", profile="titulaire")
    send_reset(before, person.identifier)
    token = link_token(before, "reset")
    [pending] = before.tokens.pending(person.identifier)
    gone = add_person(before, "ines.roux", profile="autre_personnel", end_of_activity=month_end(-6))
    suspend(before, gone.identifier, reason="left", notice=False)
    purge(before, gone.identifier)
    rows = {table: len(found) for table, found in before.store.dump().items()}
    before.close()
    config = str(a.config_path)
    code, out, err = umacct("--config", config, "--json", "state", "migrate", "--dry-run")
    assert code == 0, err
    planned = {kind["kind"]: kind for kind in json.loads(out)["kinds"]}
    assert planned["tokens"]["added"] == rows["tokens"] >= 1
    assert planned["purged"]["added"] == rows["purged"] == 1
    assert planned["notices"]["added"] == rows["notices"]
    assert planned["saved"]["added"] == rows["saved_values"]
    on_b = on_host(b, TODAY)
    assert on_b.store.find_purge("ines.roux") is None  # a dry run wrote nothing
    code, out, err = umacct("--config", config, "state", "migrate")
    assert code == 0, err
    assert f"tokens: {rows['tokens']} in the file, added {rows['tokens']}, 0 already there" in out
    code, out, err = umacct("--config", config, "state", "migrate")  # once: again adds nothing
    assert code == 0 and "added 0" in out and ", added 1" not in out, out
    assert (a.data_dir / STATE_FILE).exists()  # left for the administrator
    assert on_b.store.find_purge("ines.roux") is not None
    assert [t.token_id for t in on_b.tokens.pending(person.identifier)] == [pending.token_id]
    reset_with_token(on_b, token, NEW_PASSWORD)  # mailed before, redeemed on the web host
    directory_host(a)
    after = on_host(a, TODAY)
    assert after.tokens.pending(person.identifier) == []
    assert len(outbox_mails(after)) >= 1


def test_migrate_warns_of_a_purged_identifier_handed_out_again_meanwhile(
    two_hosts: tuple[Host, Host], on_host: OnHost
) -> None:
    a, b = two_hosts
    sqlite_host(a)
    before = on_host(a, TODAY)
    gone = add_person(
        before, "ines.saidi", profile="autre_personnel", end_of_activity=month_end(-6)
    )
    suspend(before, gone.identifier, reason="left", notice=False)
    purge(before, gone.identifier)
    before.close()
    add_person(on_host(b, TODAY), "ines.saidi", profile="autre_personnel")  # B did not know
    config = str(a.config_path)
    for dry in (["--dry-run"], []):
        code, out, err = umacct("--config", config, "state", "migrate", *dry)
        assert code == 0, err
        assert f"warning: {gone.identifier}: purged on this host, but a live account" in err
    code, out, err = umacct("--config", config, "--json", "state", "migrate", "--dry-run")
    assert json.loads(out)["reused"] == [gone.identifier]


def test_migrate_without_a_state_db_does_nothing(
    two_hosts: tuple[Host, Host],
) -> None:
    a, _ = two_hosts
    code, _, err = umacct("--config", str(a.config_path), "state", "migrate")
    assert code == 0 and "nothing to migrate" in err, err
    assert not (a.data_dir / STATE_FILE).exists()


def test_migrating_two_hosts_files_keeps_both(
    two_hosts: tuple[Host, Host], on_host: OnHost
) -> None:
    a, b = two_hosts
    for host in (a, b):
        sqlite_host(host)
    day = TODAY
    for host, key in ((a, "from-a"), (b, "from-b")):
        runtime = on_host(host, day)
        runtime.store.record_notice("x@x.org", "reminder", key, runtime.clock.now())
        runtime.store.record_notice("x@x.org", "reminder", "both", runtime.clock.now())
        runtime.close()
    for host in (a, b):
        code, out, err = umacct("--config", str(host.config_path), "state", "migrate")
        assert code == 0, err
    assert "notices: 2 in the file, added 1, 1 already there" in out
    directory_host(a)
    runtime = on_host(a, day)
    for key in ("from-a", "from-b", "both"):
        assert runtime.store.has_notice("x@x.org", "reminder", key)
    assert runtime.store.last_notice("x@x.org", "reminder") == runtime.clock.now()


def test_sec39_a_branch_the_tool_may_not_write_is_refused_naming_the_acl(
    slapd: LocalDirectory,
) -> None:
    from test_state_support import bound

    from umacct.errors import RefusedError
    from umacct.state.branch import branch_entries

    outside = f"ou=noacl,ou=system,{slapd.base_dn}"  # made by the manager, no ACL for the tool
    ldif = "".join(
        f"dn: {dn}\n" + "".join(f"{k}: {v}\n" for k, values in attrs.items() for v in values) + "\n"
        for dn, attrs in branch_entries(outside)
    )
    slapd.run_root("ldapadd", ldif=ldif)
    try:
        with bound(slapd)() as directory:
            store = DirectoryStore(directory, outside)
            with pytest.raises(RefusedError, match=r"docs/state\.md") as caught:
                store.record_notice("a@x.org", "k", "k", TODAY_NOON)
            assert caught.value.exit_code == 77 and outside in caught.value.message
    finally:
        drop_branch(slapd, outside)
