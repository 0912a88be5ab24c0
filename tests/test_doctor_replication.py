"""The providers' contextCSN compared: by ``doctor``, and by the sweep before it changes anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from command_line import umacct
from days import TODAY, days
from people import add_person, runtime_on

from umacct.directory.providers import Csn, ProviderReading
from umacct.localdir import (
    LocalDirectory,
    pair_config_dict,
    start_replicated_pair,
    wait_until_in_sync,
)
from umacct.services.lifecycle import suspend
from umacct.services.replication import compare

Pair = tuple[LocalDirectory, LocalDirectory]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """Two providers replicating each other, of this test only."""
    providers = start_replicated_pair(tmp_path / "pair")
    yield providers
    for provider in providers:
        provider.stop()


@pytest.fixture
def pair_config(pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tool's configuration listing provider 1, then provider 2."""
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(pair_config_dict(pair, tmp_path / "data")).encode("utf-8"))
    monkeypatch.setenv("UMACCT_CONFIG", str(path))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", pair[0].bind_password)
    return path


def doctor() -> tuple[int, dict[str, dict[str, object]]]:
    code, out, _ = umacct("--json", "doctor")
    return code, {row["check"]: row for row in json.loads(out)}


def write_on(directory: LocalDirectory, uid: str) -> None:
    directory.run_root(
        "ldapadd",
        ldif=f"dn: uid={uid},{directory.people_dn}\nobjectClass: inetOrgPerson\n"
        f"uid: {uid}\ncn: {uid}\nsn: {uid}\n",
    )


def stop_replication_into(directory: LocalDirectory) -> None:
    """``directory`` stops copying its peer's changes (its syncrepl is removed)."""
    directory.run_root(
        "ldapmodify",
        ldif="dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\ndelete: olcSyncrepl\n",
    )


def entry_of(directory: LocalDirectory, uid: str) -> str:
    return directory.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", directory.people_dn, f"(uid={uid})",
        "*", "+",
    )  # fmt: skip


def audit_records(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- comparing readings (no server) ----------------------------------------------------------


def reading(url: str, *csns: str) -> ProviderReading:
    parsed = [Csn.parse(text) for text in csns]
    return ProviderReading(url, tuple(c for c in parsed if c is not None), "dc=x", "no TLS")


def test_the_lag_is_measured_per_server_id_and_a_missing_one_is_named() -> None:
    a = "20260102030405.500000Z#000000#001#000000"
    b = "20260102030400.000000Z#000000#001#000000"
    c = "20260102030000.000000Z#000000#002#000000"
    report = compare([reading("ldap://one", a, c), reading("ldap://two", b, c)])
    assert not report.agree
    assert report.words() == (
        f"ldap://two is 5.5 s behind ldap://one (server ID 001: {b} against {a})"
    )
    report = compare([reading("ldap://one", a), reading("ldap://two", c)])
    assert report.words() == (
        f"ldap://two has none of the changes ldap://one holds from server ID 001 (up to {a}); "
        f"ldap://one has none of the changes ldap://two holds from server ID 002 (up to {c})"
    )
    assert compare([reading("ldap://one", a, c), reading("ldap://two", c, a)]).agree
    assert Csn.parse("not a csn") is None
    assert Csn.parse("2026#0#1#0") is None


# --- doctor ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("pair_config")
def test_doctor_says_the_providers_agree(pair: Pair) -> None:
    write_on(pair[0], "written.first")
    wait_until_in_sync(pair)
    code, rows = doctor()
    assert code == 0, rows
    row = rows["replication"]
    assert row["status"] == "ok"
    assert str(row["detail"]).startswith("2 providers agree (contextCSN ")
    data = row["data"]
    assert isinstance(data, dict)
    providers = data["providers"]
    assert [p["url"] for p in providers] == [pair[0].url, pair[1].url]
    assert providers[0]["contextCSN"] == providers[1]["contextCSN"] != []
    assert {p["tls"] for p in providers} == {"no TLS"}


@pytest.mark.usefixtures("pair_config")
def test_doctor_fails_naming_the_providers_and_how_far_apart(pair: Pair) -> None:
    first, second = pair
    write_on(first, "before.the.stop")
    wait_until_in_sync(pair)
    stop_replication_into(second)
    write_on(first, "only.on.first")
    code, rows = doctor()
    assert code == 1
    row = rows["replication"]
    assert row["status"] == "FAIL"
    detail = str(row["detail"])
    assert detail.startswith(f"the providers disagree: {second.url} is ")
    assert f" s behind {first.url} (server ID 001: " in detail
    assert "the sweep refuses to run meanwhile" in str(row["fix"])


@pytest.mark.usefixtures("pair_config")
def test_an_unreachable_provider_is_a_warning(pair: Pair) -> None:
    pair[1].kill()
    code, rows = doctor()
    assert code == 0, rows
    row = rows["replication"]
    assert row["status"] == "WARN"
    assert f"{pair[1].url} not reached: cannot connect" in str(row["detail"])


# --- the sweep ------------------------------------------------------------------------------


def test_the_sweep_changes_nothing_while_the_providers_disagree(
    pair: Pair, pair_config: Path, tmp_path: Path
) -> None:
    first, second = pair
    runtime = runtime_on(pair_config, TODAY)
    try:
        person = add_person(runtime, "due.person", end_of_activity=days(-1))
    finally:
        runtime.close()
    wait_until_in_sync(pair)
    stop_replication_into(second)
    write_on(first, "only.on.first")
    before = entry_of(first, person.uid)

    code, out, err = umacct("sweep")
    assert code == 75, err
    assert out == ""
    assert err.strip().count("\n") == 0
    assert "the directory's providers disagree" in err and "--ignore-replication-lag" in err
    assert entry_of(first, person.uid) == before
    assert audit_records(tmp_path / "data") == []

    code, out, err = umacct("sweep", "--dry-run")  # a dry run changes nothing: not refused
    assert code == 0, err

    code, out, err = umacct("sweep", "--ignore-replication-lag")
    assert code == 0, err
    assert out.startswith(f"{person.identifier}\t")
    records = audit_records(tmp_path / "data")
    ignored = [r for r in records if r["result"] == "replication lag ignored"]
    assert len(ignored) == 1
    details = ignored[0]["details"]
    assert isinstance(details, dict)
    assert f"{second.url} is " in str(details["providers"])
    assert details["option"] == "--ignore-replication-lag"


def test_the_sweep_runs_with_a_provider_down(pair: Pair, pair_config: Path) -> None:
    runtime = runtime_on(pair_config, TODAY)
    try:
        person = add_person(runtime, "due.person", end_of_activity=days(-1))
    finally:
        runtime.close()
    wait_until_in_sync(pair)
    pair[1].kill()  # failover is not lag: the run goes on with the provider it reached
    code, out, err = umacct("sweep")
    assert code == 0, err
    assert out.startswith(f"{person.identifier}\t")


def test_purge_expired_deletes_nothing_while_the_providers_disagree(
    pair: Pair, pair_config: Path, tmp_path: Path
) -> None:
    """A restore, an unsuspension or an extension on the other provider may not be here yet."""
    runtime = runtime_on(pair_config, TODAY)
    try:
        gone = add_person(
            runtime, "gone.person", profile="autre_personnel", end_of_activity=days(-700)
        )
        suspend(runtime, gone.identifier, reason="left", notice=False)
    finally:
        runtime.close()
    wait_until_in_sync(pair)
    first, second = pair
    stop_replication_into(second)
    write_on(first, "only.on.first")
    before = entry_of(first, gone.uid)
    records = len(audit_records(tmp_path / "data"))

    code, out, err = umacct("purge", "--expired", "--yes", "--reason", "old")
    assert (code, out) == (75, ""), err
    code, out, err = umacct("suspend", "--due")
    assert (code, out) == (75, ""), err
    assert "the directory's providers disagree" in err and "--ignore-replication-lag" in err
    assert entry_of(first, gone.uid) == before
    assert len(audit_records(tmp_path / "data")) == records

    code, out, err = umacct("purge", "--expired", "--dry-run")
    assert code == 0 and gone.identifier in out, err

    code, out, err = umacct(
        "purge", "--expired", "--yes", "--reason", "old", "--ignore-replication-lag"
    )
    assert code == 0 and gone.identifier in out, err
    assert entry_of(first, gone.uid) == ""
    ignored = [
        r for r in audit_records(tmp_path / "data") if r["result"] == "replication lag ignored"
    ]
    assert [r["command"] for r in ignored] == ["purge"]
