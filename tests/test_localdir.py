"""The local directory: the launcher, the generated population and the server's rules."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import ldap3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.config import load_config, parse_config
from umacct.errors import InvalidInputError, RefusedError, UnavailableError
from umacct.ldif import entries_to_ldif
from umacct.localdir import (
    PROFILES,
    LocalDirectory,
    attach,
    generate_people,
    sample_password,
    start,
)
from umacct.localdir.slapd import _wait_until_gone

STATE_PATTERN = re.compile(r"^\{([^}]+)\}([^:]+):([^:]*):([^:]*):([^:]*)$")
UID_PATTERN = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+?[0-9]*$")
PASSWORD = "Correct-horse-battery-9"
REFERENCE_DAY = date(2026, 3, 15)  # the population is drawn around this day (a seed, not today)


def process_gone(pid: int) -> bool:
    """True when no process has this pid, or only an unreaped zombie is left of it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    return state == "Z"


def connect(
    directory: LocalDirectory, dn: str | None = None, password: str | None = None
) -> ldap3.Connection:
    """A connection over the loopback URL, bound as ``dn`` (the service account by default)."""
    server = ldap3.Server(directory.url, get_info=ldap3.NONE, connect_timeout=5)
    if dn is None:
        dn, password = directory.bind_dn, directory.bind_password
    return ldap3.Connection(server, dn, password, receive_timeout=10)


def can_bind(directory: LocalDirectory, dn: str, password: str) -> bool:
    connection = connect(directory, dn, password)
    try:
        return bool(connection.bind())
    finally:
        connection.unbind()


@pytest.fixture
def service(directory_clean: LocalDirectory) -> Iterator[ldap3.Connection]:
    """The service account, bound, on the emptied-after-use session directory."""
    connection = connect(directory_clean)
    assert connection.bind(), connection.result
    yield connection
    connection.unbind()


def add_person(connection: ldap3.Connection, people_dn: str, uid: str, **extra: str) -> str:
    """Add a minimal SUPANN person with a password set through Password Modify; return its DN."""
    dn = f"uid={uid},{people_dn}"
    attributes = {"uid": uid, "cn": uid, "sn": uid, "mail": f"{uid}@umontpellier.fr", **extra}
    assert connection.add(dn, ["inetOrgPerson", "eduPerson", "supannPerson"], attributes), (
        connection.result
    )
    assert connection.extend.standard.modify_password(dn, new_password=PASSWORD), connection.result
    return dn


def replace(connection: ldap3.Connection, dn: str, **changes: str) -> dict[str, object]:
    connection.modify(
        dn, {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in changes.items()}
    )
    return dict(connection.result)


# --- the launcher -------------------------------------------------------------------------


def test_start_and_stop_leave_no_process(tmp_path: Path) -> None:
    directory = start(tmp_path / "dir")
    assert directory.is_running()
    os.kill(directory.pid, 0)
    whoami = directory.run_root("ldapwhoami")
    assert whoami.strip() == f"dn:{directory.root_dn}"
    directory.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(directory.pid, 0)
    directory.stop()  # idempotent
    assert (tmp_path / "dir" / "slapd.d").is_dir()


def test_two_instances_run_at_once(tmp_path: Path) -> None:
    with start(tmp_path / "one") as one, start(tmp_path / "two") as two:
        assert one.port != two.port
        for directory in (one, two):
            connection = connect(directory)
            assert connection.bind()
            assert connection.extend.standard.who_am_i() == f"dn:{directory.bind_dn}"
            connection.unbind()
    assert process_gone(one.pid)
    assert process_gone(two.pid)


def test_detached_instance_is_stopped_from_its_folder(tmp_path: Path) -> None:
    started = start(tmp_path / "dir", detach=True)
    attached = attach(tmp_path / "dir")
    assert (attached.port, attached.bind_password, attached.pid) == (
        started.port, started.bind_password, started.pid,
    )  # fmt: skip
    assert attached.is_running()
    attached.stop()
    assert process_gone(started.pid)
    assert not attached.is_running()
    attached.stop()


def test_state_file_is_private_to_its_owner(tmp_path: Path) -> None:
    with start(tmp_path / "dir"):
        mode = stat.S_IMODE((tmp_path / "dir" / "state.json").stat().st_mode)
    assert mode == 0o600


def test_a_second_start_in_a_running_folder_is_refused(tmp_path: Path) -> None:
    with start(tmp_path / "dir"), pytest.raises(RefusedError, match="already running"):
        start(tmp_path / "dir")


def test_restart_in_a_stopped_folder_builds_a_fresh_directory(tmp_path: Path) -> None:
    with start(tmp_path / "dir", population=5):
        pass
    with start(tmp_path / "dir") as again:
        listing = again.run_root("ldapsearch", "-LLL", "-b", again.people_dn, "-s", "one", "1.1")
    assert listing.strip() == ""


def people_uids(directory: LocalDirectory) -> list[str]:
    listing = directory.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", directory.people_dn, "-s", "one", "uid"
    )
    return sorted(
        line.removeprefix("uid: ") for line in listing.splitlines() if line.startswith("uid:")
    )


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_restart_keeps_every_entry_the_port_and_the_password(tmp_path: Path, how: str) -> None:
    with start(tmp_path / "dir", population=3) as directory:
        connection = connect(directory)
        assert connection.bind()
        add_person(connection, directory.people_dn, "written.over.ldap")
        connection.unbind()
        before, old_pid, port = people_uids(directory), directory.pid, directory.port
        getattr(directory, how)()
        assert process_gone(old_pid)
        directory.restart()
        assert (directory.port, people_uids(directory)) == (port, before)
        assert directory.pid != old_pid
        assert can_bind(directory, f"uid=written.over.ldap,{directory.people_dn}", PASSWORD)
        assert attach(tmp_path / "dir").pid == directory.pid
    assert process_gone(directory.pid)


def test_ports_are_below_the_ephemeral_range_so_no_client_takes_them_during_a_restart(
    tmp_path: Path,
) -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    with start(tmp_path / "dir", tls=True) as directory:
        assert directory.port < low
        assert directory.tls_port is not None and directory.tls_port < low


def test_restart_of_a_running_server_stops_it_first(tmp_path: Path) -> None:
    with start(tmp_path / "dir", population=2) as directory:
        old_pid = directory.pid
        directory.restart()
        assert process_gone(old_pid)
        assert len(people_uids(directory)) == 2


def test_a_detached_instance_killed_is_restarted_from_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / ("x" * 60) / ("y" * 60)  # socket folder outside the instance folder
    start(folder, population=2, detach=True)
    attached = attach(folder)
    try:
        attached.kill()
        attached.kill()  # idempotent
        assert not attached.is_running()
        attached.restart()
        assert attach(folder).is_running()
        assert len(people_uids(attached)) == 2
    finally:
        attached.stop()
    assert not attached.is_running()


def test_a_killed_process_is_waited_for_until_it_has_exited() -> None:
    """The wait follows the pid: an exiting slapd loses its command line before its port, and
    a restart that only looked at the command line found the port still taken."""
    process = subprocess.Popen(["sleep", "30"])
    killer = threading.Timer(0.3, process.kill)
    killer.start()
    try:
        started = time.monotonic()
        _wait_until_gone(process.pid)
        assert time.monotonic() - started >= 0.25
        assert process.wait(5) is not None
    finally:
        killer.cancel()
        process.kill()
        process.wait()


def test_a_long_folder_gets_a_short_socket_path(tmp_path: Path) -> None:
    folder = tmp_path / ("x" * 60) / ("y" * 60)
    with start(folder) as directory:
        assert len(str(directory.socket_path)) < 100
        assert directory.run_root("ldapwhoami").strip() == f"dn:{directory.root_dn}"
        socket_dir = directory.socket_path.parent
    assert not socket_dir.exists()


def test_a_taken_port_is_reported_with_slapd_own_words(tmp_path: Path) -> None:
    with (
        start(tmp_path / "first") as first,
        pytest.raises(UnavailableError, match="Address already in use"),
    ):
        start(tmp_path / "second", port=first.port)


def test_a_base_dn_that_is_not_dc_or_o_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="base DN"):
        start(tmp_path / "dir", base_dn="ou=people")


def test_another_base_dn_is_used_everywhere(tmp_path: Path) -> None:
    with start(tmp_path / "dir", base_dn="dc=univ,dc=test", population=3) as directory:
        assert directory.people_dn == "ou=people,dc=univ,dc=test"
        connection = connect(directory)
        assert connection.bind()
        connection.search(directory.people_dn, "(uid=*)", attributes=["uid"])
        assert len(connection.entries) == 3
        connection.unbind()


def test_config_dict_is_a_valid_configuration(slapd: LocalDirectory, tmp_path: Path) -> None:
    config = parse_config(slapd.config_dict(tmp_path / "data"))
    assert config.directory.urls == [slapd.url]
    assert config.directory.tls == "none"
    assert set(config.profiles) == set(PROFILES)
    assert config.profiles["titulaire"] == PROFILES["titulaire"]


def test_config_path_fixture_selects_the_session_directory(
    config_path: Path, slapd: LocalDirectory
) -> None:
    assert os.environ["UMACCT_CONFIG"] == str(config_path)
    assert os.environ["UMACCT_BIND_PASSWORD"] == slapd.bind_password
    assert load_config().directory.bind_dn == slapd.bind_dn


def test_the_environment_is_clean() -> None:
    assert "NO_COLOR" not in os.environ
    assert "UMACCT_CONFIG" not in os.environ
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyrings.alt.file.PlaintextKeyring"
    assert os.environ["XDG_CONFIG_HOME"] != str(Path.home() / ".config")


def test_start_with_20000_people_is_complete(tmp_path: Path) -> None:
    # How long it takes is the bench's (target 2 starts such directories), not a test's.
    with start(tmp_path / "dir", population=20_000, seed=7) as directory:
        count = directory.run_root(
            "ldapsearch", "-LLL", "-b", directory.people_dn, "-s", "one", "1.1"
        ).count("dn:")
    assert count == 20_000


def test_range_filter_on_end_dates_matches_the_generated_population(tmp_path: Path) -> None:
    people = generate_people(2000, seed=3, today=REFERENCE_DAY)
    limit = "20260101000000Z"
    expected = {p.first("uid") for p in people if (p.first("supannEmpDateFin") or "9") <= limit}
    with start(tmp_path / "dir", population=2000, seed=3, today=REFERENCE_DAY) as directory:
        connection = connect(directory)
        assert connection.bind()
        connection.search(directory.people_dn, f"(supannEmpDateFin<={limit})", attributes=["uid"])
        found = {entry.uid.value for entry in connection.entries}
        connection.unbind()
    assert expected
    assert found == expected


def test_an_instance_without_supann_has_no_supann_schema(tmp_path: Path) -> None:
    with start(tmp_path / "dir", supann_schema=False, population=20) as directory:
        schema = directory.run_root(
            "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", "cn=Subschema", "-s", "base",
            "objectClasses", "attributeTypes",
        )  # fmt: skip
        people = directory.run_root("ldapsearch", "-LLL", "-b", directory.people_dn, "uid")
    assert "NAME 'supannPerson'" not in schema
    assert "supannEmpDateFin" not in schema
    assert "NAME 'eduPerson'" in schema
    assert people.count("uid:") == 20


def test_the_supann_schema_has_ordering_on_end_dates(slapd: LocalDirectory) -> None:
    schema = slapd.run_root(
        "ldapsearch",
        "-LLL",
        "-o",
        "ldif-wrap=no",
        "-b",
        "cn=Subschema",
        "-s",
        "base",
        "attributeTypes",
    )
    for name in ("supannEmpDateFin", "supannEtuDateFin", "supannExtDateFin"):
        line = next(line for line in schema.splitlines() if f"NAME '{name}'" in line)
        assert "ORDERING generalizedTimeOrderingMatch" in line
        assert "SINGLE-VALUE" in line


# --- the server's rules -------------------------------------------------------------------


def test_service_account_adds_modifies_and_deletes_people(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    dn = add_person(service, slapd.people_dn, "ana.lefevre")
    assert replace(service, dn, supannMailPerso="ana@example.net")["result"] == 0
    assert (
        replace(service, dn, supannRessourceEtatDate="{COMPTE}A:SupannActif:20260101:")["result"]
        == 0
    )
    assert service.delete(dn), service.result


def test_service_account_cannot_write_outside_people(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    result = replace(service, f"ou=system,{slapd.base_dn}", description="changed")
    assert result["description"] == "insufficientAccessRights"


def test_service_account_cannot_read_password_hashes(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    dn = add_person(service, slapd.people_dn, "hash.reader")
    service.search(dn, "(userPassword=*)", ldap3.BASE, attributes=["userPassword"])
    assert len(service.entries) == 1  # presence can be tested...
    assert service.response[0]["raw_attributes"].get("userPassword") in (None, [])  # ...not read


def test_passwords_are_stored_hashed_by_the_server(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    """security.md 12: Password Modify, and even a plain modify, store a hash."""
    dn = add_person(service, slapd.people_dn, "hashed.one")
    replace(service, f"uid=hashed.one,{slapd.people_dn}", userPassword="Plain-text-password-1")
    stored = slapd.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", dn, "-s", "base", "userPassword"
    )
    assert "Plain-text-password-1" not in stored
    assert can_bind(slapd, dn, "Plain-text-password-1")


def test_anonymous_can_only_authenticate(slapd: LocalDirectory, service: ldap3.Connection) -> None:
    add_person(service, slapd.people_dn, "anon.target")
    anonymous = connect(slapd, "", "")
    assert anonymous.bind()
    anonymous.search(slapd.base_dn, "(objectClass=*)", attributes=["*"])
    assert anonymous.entries == []
    anonymous.unbind()


def test_a_person_binds_and_changes_their_own_password(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    dn = add_person(service, slapd.people_dn, "self.service")
    person = connect(slapd, dn, PASSWORD)
    assert person.bind()
    assert person.extend.standard.modify_password(
        old_password=PASSWORD, new_password="New-password-22"
    )
    person.unbind()
    assert can_bind(slapd, dn, "New-password-22")
    assert not can_bind(slapd, dn, PASSWORD)


def test_a_person_cannot_change_someone_else(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    mine = add_person(service, slapd.people_dn, "first.person")
    other = add_person(service, slapd.people_dn, "second.person")
    person = connect(slapd, mine, PASSWORD)
    assert person.bind()
    assert replace(person, other, description="hacked")["description"] == "insufficientAccessRights"
    person.unbind()


def test_bind_fails_once_pwd_end_time_is_past(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    dn = add_person(service, slapd.people_dn, "end.time")
    assert can_bind(slapd, dn, PASSWORD)
    assert replace(service, dn, pwdEndTime="29990101000000Z")["result"] == 0
    assert can_bind(slapd, dn, PASSWORD)
    assert replace(service, dn, pwdEndTime="20000101000000Z")["result"] == 0
    assert not can_bind(slapd, dn, PASSWORD)
    assert service.modify(dn, {"pwdEndTime": [(ldap3.MODIFY_DELETE, [])]}), service.result
    assert can_bind(slapd, dn, PASSWORD)


def test_bind_fails_before_pwd_start_time(service: ldap3.Connection, slapd: LocalDirectory) -> None:
    dn = add_person(service, slapd.people_dn, "start.time")
    assert replace(service, dn, pwdStartTime="29990101000000Z")["result"] == 0
    assert not can_bind(slapd, dn, PASSWORD)
    assert replace(service, dn, pwdStartTime="20000101000000Z")["result"] == 0
    assert can_bind(slapd, dn, PASSWORD)


def test_service_account_locks_and_unlocks(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    dn = add_person(service, slapd.people_dn, "locked.out")
    # 000001010000Z: locked until an administrator removes the attribute.
    assert replace(service, dn, pwdAccountLockedTime="000001010000Z")["result"] == 0
    assert not can_bind(slapd, dn, PASSWORD)
    assert service.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]}), service.result
    assert can_bind(slapd, dn, PASSWORD)


def test_end_times_are_searchable_by_range(
    service: ldap3.Connection, slapd: LocalDirectory
) -> None:
    add_person(
        service,
        slapd.people_dn,
        "gone.early",
        supannEmpDateFin="20250101000000Z",
        pwdEndTime="20250101000000Z",
    )
    add_person(service, slapd.people_dn, "stays.late", supannEmpDateFin="20270101000000Z")
    for attribute in ("supannEmpDateFin", "pwdEndTime"):
        service.search(slapd.people_dn, f"({attribute}<=20260101000000Z)", attributes=["uid"])
        assert [entry.uid.value for entry in service.entries] == ["gone.early"]


def test_successful_binds_are_recorded(service: ldap3.Connection, slapd: LocalDirectory) -> None:
    dn = add_person(service, slapd.people_dn, "last.bind")
    assert can_bind(slapd, dn, PASSWORD)
    service.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdLastSuccess"])
    assert service.entries[0].pwdLastSuccess.value is not None


def test_directory_clean_empties_people(directory_clean: LocalDirectory) -> None:
    # The previous tests added people through the same session directory.
    listing = directory_clean.run_root(
        "ldapsearch", "-LLL", "-b", directory_clean.people_dn, "-s", "one", "1.1"
    )
    assert listing.strip() == ""


def test_generated_people_bind_with_their_sample_password(tmp_path: Path) -> None:
    with start(tmp_path / "dir", population=40, seed=5) as directory:
        people = generate_people(40, seed=5, people_dn=directory.people_dn)
        active = [p for p in people if "userPassword" in p.attributes]
        waiting = [p for p in people if "userPassword" not in p.attributes]
        assert active
        assert can_bind(directory, active[0].dn, sample_password(active[0].first("uid") or ""))
        if waiting:
            assert not can_bind(
                directory, waiting[0].dn, sample_password(waiting[0].first("uid") or "")
            )


# --- the population -----------------------------------------------------------------------


def test_population_size_and_spread() -> None:
    people = generate_people(5000, seed=11, today=REFERENCE_DAY)
    assert len(people) == 5000
    profiles = Counter(p.first("supannCodePopulation") for p in people)
    assert set(profiles) == set(PROFILES)
    assert profiles["etudiant"] > 0.6 * len(people)
    waiting = [p for p in people if p.first("supannRessourceEtat") == "{COMPTE}I:SupannCree"]
    assert 0 < len(waiting) < 0.1 * len(people)
    assert all("userPassword" not in p.attributes for p in waiting)
    ended = [
        p
        for p in people
        if PROFILES[p.first("supannCodePopulation") or ""].end_date_attribute in p.attributes
    ]
    assert 0.4 * len(people) < len(ended) < 0.8 * len(people)


def test_population_names_are_varied() -> None:
    people = generate_people(3000, seed=2, today=REFERENCE_DAY)
    names = [f"{p.first('givenName')} {p.first('sn')}" for p in people]
    assert any("'" in name for name in names)
    assert any("-" in (p.first("givenName") or "") for p in people)
    assert any("-" in (p.first("sn") or "") for p in people)
    assert any((p.first("sn") or "").startswith(("de ", "du ", "Le ", "La ")) for p in people)
    assert any(char in "".join(names) for char in "æœÆŒ")
    assert any(char in "".join(names) for char in "éèêëïç")
    uids = [p.first("uid") or "" for p in people]
    assert len(set(uids)) == len(uids)
    assert any(re.search(r"[0-9]$", uid) for uid in uids)
    assert any(uid.endswith("2") and uid[:-1] in uids for uid in uids)


def test_population_values_follow_the_formats() -> None:
    for person in generate_people(500, seed=4, today=REFERENCE_DAY):
        attributes = person.attributes
        profile = PROFILES[person.first("supannCodePopulation") or ""]
        uid = person.first("uid") or ""
        assert person.dn == f"uid={uid},ou=people,dc=example,dc=org"
        assert attributes["mail"] == [f"{uid}@{profile.domain}"]
        held = [PROFILES[key] for key in attributes["supannCodePopulation"]]
        assert attributes["eduPersonAffiliation"] == list(
            dict.fromkeys(a for p in held for a in p.affiliations)
        )
        assert all(p.external_id_attribute in attributes for p in held)
        assert all(STATE_PATTERN.match(value) for value in attributes["supannRessourceEtatDate"])
        end = person.first(profile.end_date_attribute)
        assert end is None or re.fullmatch(r"\d{8}000000Z", end)
        assert (person.first("supannMailPerso") or "").rpartition("@")[2].startswith("example.")


def test_the_population_holds_doctoral_students_who_teach() -> None:
    people = generate_people(500, seed=4, today=REFERENCE_DAY)
    both = [p for p in people if p.attributes["supannCodePopulation"] == ["etudiant", "vacataire"]]
    assert both
    assert all("teacher" in p.attributes["eduPersonAffiliation"] for p in both)


def test_population_without_supann_is_plain_inetorgperson() -> None:
    for person in generate_people(50, seed=1, supann=False):
        assert person.attributes["objectClass"] == ["inetOrgPerson"]
        assert not any(name.startswith(("supann", "eduPerson")) for name in person.attributes)


@settings(max_examples=30, deadline=None)
@given(count=st.integers(0, 300), seed=st.integers(0, 2**32))
def test_population_is_deterministic_with_valid_identifiers(count: int, seed: int) -> None:
    first = generate_people(count, seed, today=REFERENCE_DAY)
    assert entries_to_ldif(first) == entries_to_ldif(
        generate_people(count, seed, today=REFERENCE_DAY)
    )
    uids = [p.first("uid") or "" for p in first]
    assert len(set(uids)) == count
    assert all(UID_PATTERN.match(uid) for uid in uids)


def test_slapadd_accepts_the_generated_ldif(tmp_path: Path) -> None:
    # Non-ASCII names are base64-encoded; slapd gives them back as UTF-8.
    with start(tmp_path / "dir", population=300, seed=9) as directory:
        listing = subprocess.run(
            ["ldapsearch", *directory.root_args(), "-LLL", "-o", "ldif-wrap=no", "-t", "-b", directory.people_dn, "(sn=*'*)", "sn"],
            capture_output=True, text=True, env=directory.ldif_env(), check=True,
        ).stdout  # fmt: skip
    assert "sn: " in listing or "sn:: " in listing
