"""``umacct doctor``: a host left on state.db beside a shared state branch; a refused bind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w
from command_line import umacct
from people import rewrite_config

from umacct.config import parse_config
from umacct.directory import connect
from umacct.localdir import LocalDirectory, start
from umacct.state.branch import BRANCH_DESCRIPTION
from umacct.state.directory_store import DirectoryStore
from umacct.store import PurgeRecord


@pytest.fixture(scope="module")
def shared_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    """A directory of this module's own: its state branch gets a purge recorded."""
    directory = start(tmp_path_factory.mktemp("doctor-gaps"))
    yield directory
    directory.stop()


@pytest.fixture
def sqlite_host(
    shared_slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A host of ``shared_slapd`` configured without ``state_dn``: its state is state.db."""
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(shared_slapd.config_dict(tmp_path / "data")).encode("utf-8"))
    monkeypatch.setenv("UMACCT_CONFIG", str(path))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", shared_slapd.bind_password)
    return path


def doctor() -> tuple[int, dict[str, dict[str, object]], str]:
    code, out, err = umacct("--json", "doctor")
    return code, {row["check"]: row for row in json.loads(out)}, err


def record_purge_in_branch(directory: LocalDirectory, account: str) -> None:
    """What host B (state in the directory) records when it purges ``account``."""
    settings = parse_config(directory.config_dict(Path("unused"))).directory
    with connect(settings, directory.bind_password) as bound:
        dn = f"uid={account},{directory.people_dn}"
        purge = PurgeRecord(account, account, dn, Path("/nowhere/theo.ldif"), datetime.now(UTC))
        DirectoryStore(bound, directory.state_dn).record_purge(purge)


def test_a_host_on_state_db_beside_a_populated_branch_fails_with_the_setting_to_add(
    shared_slapd: LocalDirectory, sqlite_host: Path
) -> None:
    state_dn = shared_slapd.state_dn
    # Made by 'state init' but holding no record: nothing this host misses yet.
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    row = rows["state branch"]
    assert row["status"] == "ok"
    assert row["detail"] == (
        f"an empty state branch exists at {state_dn} (no record yet); this host keeps its "
        "state in state.db"
    )
    assert f'state_dn = "{state_dn}"' in str(row["fix"])

    record_purge_in_branch(shared_slapd, "theo.bonnet")
    code, rows, err = doctor()
    assert code == 1, (rows, err)
    row = rows["state branch"]
    assert row["status"] == "FAIL"
    assert row["detail"] == (
        f"a shared state branch exists at {state_dn}: this host keeps its state in state.db "
        "and does not see the other hosts' purged identifiers and links"
    )
    assert str(row["fix"]).startswith(
        f'set [directory] state_dn = "{state_dn}" (and [state] backend = "directory")'
    )
    assert row["data"] == {"state_dn": state_dn}
    assert [name for name, r in rows.items() if r["status"] == "FAIL"] == ["state branch"]

    # Configured as the fix says: the branch is this host's state, checked as such.
    rewrite_config(sqlite_host, directory={"state_dn": state_dn}, state={"backend": "directory"})
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    assert rows["state branch"]["status"] == "ok"
    assert str(rows["state backend"]["detail"]).startswith(f"directory: {state_dn}")


def test_a_wrong_password_from_the_environment_gets_its_own_fix(
    config_path: Path, slapd: LocalDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", "Wrong")
    code, rows, _ = doctor()
    assert code == 1
    assert rows["bind password"]["detail"] == "found ($UMACCT_BIND_PASSWORD)"
    row = rows["connection"]
    assert row["status"] == "FAIL"
    assert f"bind as {slapd.bind_dn} refused: invalid credentials" in str(row["detail"])
    fix = str(row["fix"])
    assert fix == (
        "the password came from $UMACCT_BIND_PASSWORD: correct $UMACCT_BIND_PASSWORD, or unset "
        f"it and run 'umacct secret set directory'; and check [directory] bind_dn = "
        f"{slapd.bind_dn}"
    )
    assert "TLS" not in fix and "urls" not in fix


def test_a_wrong_password_in_the_password_file_names_the_file(
    config_path: Path, slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UMACCT_BIND_PASSWORD")
    secret = tmp_path / "bind-password"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("Wrong\n")
    rewrite_config(config_path, directory={"bind_password_file": str(secret)})
    code, rows, _ = doctor()
    assert code == 1
    assert rows["bind password"]["detail"] == f"found (file {secret})"
    fix = str(rows["connection"]["fix"])
    assert fix.startswith(
        f"the password came from file {secret}: write the right one into {secret} (mode 0600)"
    )
    assert fix.endswith(f"check [directory] bind_dn = {slapd.bind_dn}")


def test_a_server_that_is_not_there_keeps_the_connection_fix(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite_config(config_path, directory={"urls": ["ldap://127.0.0.1:1"]})
    code, rows, _ = doctor()
    assert code == 1
    assert "check [directory] urls" in str(rows["connection"]["fix"])


def test_a_branch_one_level_under_the_base_is_found_too(
    shared_slapd: LocalDirectory, sqlite_host: Path
) -> None:
    branch = f"ou=state,{shared_slapd.base_dn}"
    shared_slapd.run_root(
        "ldapadd",
        ldif=f"dn: {branch}\nobjectClass: organizationalUnit\nou: state\n"
        f"description: {BRANCH_DESCRIPTION}\n\n"
        f"dn: ou=tokens,{branch}\nobjectClass: organizationalUnit\nou: tokens\n\n"
        f"dn: cn=0a1b,ou=tokens,{branch}\nobjectClass: applicationProcess\ncn: 0a1b\n"
        "description: pending\n",
    )
    try:
        code, out, _ = umacct("--json", "doctor")
    finally:
        shared_slapd.run_root("ldapdelete", "-r", branch)
    assert code == 1
    # One row per branch seen: this one, and the one under ou=system.
    rows = [row for row in json.loads(out) if row["check"] == "state branch"]
    assert len(rows) == 2
    assert rows[0]["status"] == "FAIL" and rows[0]["data"] == {"state_dn": branch}
    assert f"a shared state branch exists at {branch}:" in rows[0]["detail"]
