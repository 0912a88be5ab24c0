"""``umacct doctor``: the state backend and branch, the identity the server mapped, the TLS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from command_line import umacct
from people import rewrite_config

from umacct.localdir import LocalDirectory, start


def checks(output: str) -> dict[str, dict[str, object]]:
    return {row["check"]: row for row in json.loads(output)}


def doctor(*args: str) -> tuple[int, dict[str, dict[str, object]], str]:
    code, out, err = umacct("--json", "doctor", *args)
    return code, checks(out), err


def branch_listing(directory: LocalDirectory) -> list[str]:
    """Every DN of the state branch, as the directory manager sees them."""
    listing = directory.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", directory.state_dn, "1.1"
    )
    return sorted(line for line in listing.splitlines() if line.startswith("dn:"))


def set_branch_rule(directory: LocalDirectory, rule: str) -> None:
    """Replace the ACL rule {1} (the state branch's) on ``directory``."""
    directory.run_root(
        "ldapmodify",
        ldif="dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
        "delete: olcAccess\nolcAccess: {1}\n-\n"
        f"add: olcAccess\nolcAccess: {{1}}{rule}\n",
    )


TOOL_ONLY = 'to dn.subtree="{state}" by dn.exact="{tool}" write by * none'


@pytest.fixture(scope="module")
def own_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    """A directory of this module's own, whose ACL the tests change (and put back)."""
    directory = start(tmp_path_factory.mktemp("doctor-state"))
    yield directory
    directory.stop()


@pytest.fixture
def own_config(
    own_slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A configuration of ``own_slapd`` with the state in its branch; its ACL put back after."""
    document = own_slapd.config_dict(tmp_path / "data")
    document["directory"]["state_dn"] = own_slapd.state_dn
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    monkeypatch.setenv("UMACCT_CONFIG", str(path))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", own_slapd.bind_password)
    yield path
    set_branch_rule(own_slapd, TOOL_ONLY.format(state=own_slapd.state_dn, tool=own_slapd.bind_dn))


# --- the state backend and its branch ------------------------------------------------------


@pytest.mark.usefixtures("config_path")
def test_with_sqlite_the_check_says_which_backend_and_where_and_passes() -> None:
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    backend = rows["state backend"]
    assert backend["status"] == "ok"
    assert str(backend["detail"]).startswith("sqlite: ")
    assert "state.db, this host only" in str(backend["detail"])
    # The local directory's branch holds no record of another host (tests/test_doctor_gaps.py).
    assert [name for name in rows if name.startswith("state branch")] == ["state branch"]
    assert str(rows["state branch"]["detail"]).startswith("an empty state branch exists at ")


def test_the_branch_is_read_by_the_tool_only_and_the_write_probe_leaves_nothing(
    config_path: Path, slapd: LocalDirectory
) -> None:
    rewrite_config(config_path, directory={"state_dn": slapd.state_dn})
    before = branch_listing(slapd)
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    assert rows["state backend"]["detail"] == (
        f"directory: {slapd.state_dn}, shared by every host configured with it"
    )
    assert rows["state branch"]["status"] == "ok"
    assert "tokens, notices, purged, saved, locks" in str(rows["state branch"]["detail"])
    anonymous = rows["state branch: anonymous"]
    assert anonymous["status"] == "ok"
    assert anonymous["detail"] == f"an anonymous session reads nothing of it on {slapd.url}"
    assert rows["state branch: write"]["status"] == "skip"

    code, rows, err = doctor("--write-test")
    assert code == 0, (rows, err)
    write = rows["state branch: write"]
    assert write["status"] == "ok", write
    assert write["detail"] == f"added and deleted a probe entry under {slapd.state_dn}"
    assert branch_listing(slapd) == before  # nothing left behind


def test_sec39_a_branch_anonymous_sessions_read_fails_with_the_acl_to_add(
    own_slapd: LocalDirectory, own_config: Path
) -> None:
    set_branch_rule(
        own_slapd, f'to dn.subtree="{own_slapd.state_dn}" by dn.exact="{own_slapd.bind_dn}" '
        "write by * read",
    )  # fmt: skip
    code, rows, _ = doctor()
    assert code == 1
    row = rows["state branch: anonymous"]
    assert row["status"] == "FAIL"
    assert f"{own_slapd.url} shows 8 ({own_slapd.state_dn})" in str(row["detail"])
    fix = str(row["fix"])
    assert "docs/state.md" in fix and f'to dn.subtree="{own_slapd.state_dn}"' in fix
    assert "by * none" in fix
    assert [name for name, r in rows.items() if r["status"] == "FAIL"] == [
        "state branch: anonymous"
    ]


def test_a_branch_the_tool_may_not_write_fails_the_write_test_and_keeps_nothing(
    own_slapd: LocalDirectory, own_config: Path
) -> None:
    set_branch_rule(
        own_slapd, f'to dn.subtree="{own_slapd.state_dn}" by dn.exact="{own_slapd.bind_dn}" '
        "read by * none",
    )  # fmt: skip
    before = branch_listing(own_slapd)
    code, rows, _ = doctor("--write-test")
    assert code == 1
    row = rows["state branch: write"]
    assert row["status"] == "FAIL"
    assert "insufficient access" in str(row["detail"])
    assert "docs/state.md" in str(row["fix"])
    assert rows["state branch"]["status"] == "ok"  # reading it still works
    assert branch_listing(own_slapd) == before


def test_a_missing_branch_says_to_run_state_init(
    own_slapd: LocalDirectory, own_config: Path
) -> None:
    elsewhere = own_slapd.state_dn.replace("ou=umacct,", "ou=elsewhere,")
    rewrite_config(own_config, directory={"state_dn": elsewhere})
    code, rows, _ = doctor()
    assert code == 1
    row = rows["state branch"]
    assert row["status"] == "FAIL"
    assert f"{elsewhere} does not exist" in str(row["detail"])
    assert "umacct state init" in str(row["fix"])
    # Still on state.db while a migration is prepared: a warning, not a failure.
    rewrite_config(own_config, state={"backend": "sqlite"})
    code, rows, _ = doctor()
    assert code == 0
    assert rows["state branch"]["status"] == "WARN"
    assert "umacct state migrate" in str(rows["state backend"]["detail"])


# --- the identity the server mapped, and the TLS --------------------------------------------


@pytest.mark.usefixtures("config_path")
def test_a_simple_bind_shows_the_dn_the_server_mapped_and_no_tls(slapd: LocalDirectory) -> None:
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    bind = rows["bind"]
    assert bind["detail"] == f"the server maps this connection to dn:{slapd.bind_dn} (simple bind)"
    assert bind["data"] == {
        "authzid": f"dn:{slapd.bind_dn}",
        "dn": slapd.bind_dn,
        "method": "simple",
    }
    connection = rows["connection"]
    assert connection["detail"] == f"{slapd.url} (no TLS: cleartext, allowed on loopback only)"
    assert connection["data"] == {"url": slapd.url, "tls": "no TLS"}
    assert rows["replication"]["detail"] == "one server in [directory] urls: nothing to compare"


def test_sec42_doctor_over_sasl_external_looks_up_no_password_and_shows_the_mapped_dn(
    config_path: Path, slapd: LocalDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite_config(
        config_path, directory={"bind_method": "sasl_external", "urls": [slapd.ldapi_url]}
    )
    monkeypatch.delenv("UMACCT_BIND_PASSWORD", raising=False)
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    assert rows["bind password"]["detail"] == "none needed: SASL EXTERNAL over ldapi"
    bind = rows["bind"]
    # The local directory maps this OS user to its manager (olcAuthzRegexp).
    assert bind["detail"] == (
        f"the server maps this connection to dn:{slapd.root_dn} (SASL EXTERNAL over ldapi)"
    )
    assert bind["data"] == {"authzid": f"dn:{slapd.root_dn}", "dn": slapd.root_dn,
                            "method": "sasl_external"}  # fmt: skip
    assert rows["connection"]["data"] == {"url": slapd.ldapi_url, "tls": "ldapi"}
    assert "ldapi: the local socket, no TLS needed" in str(rows["connection"]["detail"])


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDirectory]:
    directory = start(tmp_path_factory.mktemp("doctor-tls"), tls=True)
    yield directory
    directory.stop()


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_sec17_the_connection_shows_the_negotiated_tls_version(
    tls_slapd: LocalDirectory, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(tls_slapd.config_dict(tmp_path / "data", mode)).encode())  # type: ignore[arg-type]
    monkeypatch.setenv("UMACCT_CONFIG", str(path))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", tls_slapd.bind_password)
    code, rows, err = doctor()
    assert code == 0, (rows, err)
    connection = rows["connection"]
    data = connection["data"]
    assert isinstance(data, dict)
    assert data["tls"] in ("TLSv1.2", "TLSv1.3")
    assert str(connection["detail"]).endswith(f"(TLS, certificate verified: {data['tls']})")
    assert rows["bind"]["detail"] == (
        f"the server maps this connection to dn:{tls_slapd.bind_dn} (simple bind)"
    )
