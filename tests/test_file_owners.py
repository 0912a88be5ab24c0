"""Files and their owners (security requirement 31): who may write what the tool trusts.

The tests run as root: "another user" is ``nobody`` (uid 65534), given files with ``chown``.
Files the tool reads may be links, and the file a link leads to is what is checked; files the
tool writes are never reached through a link, and a link planted there leaves its target as
it was.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from command_line import umacct
from days import TODAY
from helpers import minimal_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import add_person, read

from umacct.audit import AuditLog
from umacct.clock import SystemClock
from umacct.config import load_config
from umacct.datadir import (
    QUEUE_FILE,
    STATE_FILE,
    ensure_private_dir,
    find_read_problem,
    open_private_file,
)
from umacct.errors import ConfigError, ExitCode
from umacct.mail.queue import MailQueue
from umacct.mail.transport import OutboxTransport
from umacct.services.runtime import Runtime
from umacct.store import SQLiteStore

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")


def write_config(path: Path, mode: int = 0o600, **tables: Any) -> Path:
    document = minimal_config()
    for table, values in tables.items():
        document.setdefault(table, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    os.chmod(path, mode)
    return path


def refusal(*args: str) -> str:
    """Run the CLI; it must refuse with exit 78 and one line on stderr, which is returned."""
    code, out, err = umacct(*args)
    assert code == ExitCode.CONFIG_ERROR, (code, out, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    return err


def untouched(path: Path) -> tuple[bytes, int, int, int]:
    info = path.stat()
    return path.read_bytes(), info.st_mode, info.st_uid, info.st_mtime_ns


# --- files the tool reads -------------------------------------------------------------------


def test_sec31_a_config_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", 0o644)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="owned by nobody, not by root"):
        load_config(path)
    err = refusal("--config", str(path), "config", "check")
    assert str(path) in err
    assert f"chown root {path}" in err


@pytest.mark.parametrize(
    ("mode", "fix"), [(0o664, "chmod g-w"), (0o646, "chmod o-w"), (0o666, "chmod o-w,g-w")]
)
def test_sec31_a_config_writable_by_its_group_or_anyone_is_refused(
    tmp_path: Path, mode: int, fix: str
) -> None:
    path = write_config(tmp_path / "config.toml", mode)
    err = refusal("--config", str(path), "config", "check")
    assert f"{fix} {path}" in err


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.integers(0, 0o7777))
def test_sec31_a_config_is_refused_exactly_when_others_may_write_it(
    tmp_path: Path, mode: int
) -> None:
    path = write_config(tmp_path / "config.toml", mode)
    try:
        if mode & 0o022:
            with pytest.raises(ConfigError, match="writable by"):
                load_config(path)
        else:
            assert load_config(path).source == path
    finally:
        os.chmod(path, 0o600)


@pytest.mark.parametrize(
    ("folder_mode", "owner", "words"),
    [
        (0o775, 0, "a parent folder is writable by the group"),
        (0o757, 0, "a parent folder is writable by every user"),
        (0o755, NOBODY, "is owned by nobody, who could replace it"),
    ],
)
def test_sec31_the_folders_above_the_config_are_checked(
    tmp_path: Path, folder_mode: int, owner: int, words: str
) -> None:
    grandparent = tmp_path / "etc"
    path = write_config(grandparent / "umacct" / "config.toml")
    os.chmod(grandparent, folder_mode)
    os.chown(grandparent, owner, 0)
    with pytest.raises(ConfigError, match=words):
        load_config(path)
    err = refusal("--config", str(path), "config", "check")
    assert str(grandparent) in err
    os.chmod(grandparent, folder_mode | stat.S_ISVTX)
    os.chown(grandparent, 0, 0)
    assert load_config(path).source == path  # sticky, as /tmp: others cannot replace it


def test_sec31_a_linked_config_is_judged_by_where_the_link_leads(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    target = write_config(shared / "config.toml")
    link = tmp_path / "safe" / "config.toml"
    link.parent.mkdir()
    link.symlink_to(target)
    assert load_config(link).profiles
    os.chmod(shared, 0o777)  # anyone could now swap the file the link leads to
    err = refusal("--config", str(link), "config", "check")
    assert str(shared) in err
    os.chmod(shared, 0o755)
    os.chown(target, NOBODY, NOBODY)
    assert f"chown root {target}" in refusal("--config", str(link), "config", "check")


def test_sec31_every_hop_of_a_chain_of_links_is_checked(tmp_path: Path) -> None:
    target = write_config(tmp_path / "real" / "config.toml")
    middle = tmp_path / "open" / "hop.toml"
    middle.parent.mkdir()
    middle.symlink_to(target)
    first = tmp_path / "config.toml"
    first.symlink_to(middle)
    assert load_config(first).profiles
    os.chmod(middle.parent, 0o777)  # anyone could replace the middle link
    with pytest.raises(ConfigError, match=re.escape(f"writable by every user ({middle.parent}")):
        load_config(first)


def test_sec31_the_system_ca_links_of_debian_are_accepted() -> None:
    links = sorted(p for p in Path("/etc/ssl/certs").glob("*.0") if p.is_symlink())
    if not links:
        pytest.skip("no hashed CA links in /etc/ssl/certs")
    # <hash>.0 -> Name.pem -> /usr/share/ca-certificates/...: two links, all owned by root.
    assert find_read_problem(links[0], "x") is None


@pytest.mark.parametrize("change", ["group-writable", "owned by nobody", "link to an open folder"])
def test_sec31_a_ca_file_others_may_rewrite_is_refused(tmp_path: Path, change: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    configured = ca
    if change == "group-writable":
        os.chmod(ca, 0o664)
    elif change == "owned by nobody":
        os.chown(ca, NOBODY, NOBODY)
    else:
        (tmp_path / "open").mkdir(mode=0o777)
        os.chmod(tmp_path / "open", 0o777)
        moved = ca.rename(tmp_path / "open" / "ca.pem")
        configured = tmp_path / "ca-link.pem"
        configured.symlink_to(moved)
    path = write_config(tmp_path / "config.toml", directory={"ca_file": str(configured)})
    err = refusal("--config", str(path), "config", "check")
    assert "[directory] ca_file" in err and str(configured) in err


def test_sec31_templates_others_may_rewrite_are_refused(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    template = templates / "activation.txt"
    template.write_text("Subject: Bienvenue\n\nBonjour\n")
    path = write_config(tmp_path / "config.toml", mail={"templates_dir": str(templates)})
    assert load_config(path).mail.templates_dir == str(templates)
    os.chown(template, NOBODY, NOBODY)
    assert f"chown root {template}" in refusal("--config", str(path), "config", "check")
    os.chown(template, 0, 0)
    os.chmod(templates, 0o775)
    assert f"chmod g-w {templates}" in refusal("--config", str(path), "config", "check")
    os.chmod(templates, 0o755)
    elsewhere = tmp_path / "open"
    elsewhere.mkdir()
    os.chmod(elsewhere, 0o777)
    (elsewhere / "reset.txt").write_text("Subject: x\n\nx\n")
    (templates / "reset.txt").symlink_to(elsewhere / "reset.txt")
    assert str(elsewhere) in refusal("--config", str(path), "config", "check")


def test_sec31_a_missing_templates_folder_in_an_open_folder_is_refused(tmp_path: Path) -> None:
    """Whoever may write the folder above could create it, templates and all."""
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    templates = open_folder / "templates"
    path = write_config(tmp_path / "config.toml", mail={"templates_dir": str(templates)})
    assert str(open_folder) in refusal("--config", str(path), "config", "check")


# --- files the tool writes ------------------------------------------------------------------


def test_sec31_open_private_file_never_follows_a_link(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me")
    before = untouched(target)
    for name, points_to in (("planted", target), ("dangling", tmp_path / "made-by-it")):
        link = tmp_path / name
        link.symlink_to(points_to)
        with pytest.raises(ConfigError, match="is a symbolic link") as caught:
            open_private_file(link, "audit log", os.O_RDWR | os.O_APPEND)
        assert caught.value.exit_code == ExitCode.CONFIG_ERROR
    assert untouched(target) == before
    assert not (tmp_path / "made-by-it").exists()


def test_sec31_the_audit_log_is_not_read_through_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    AuditLog(elsewhere, SystemClock()).append("create", "forged@univ.example", {})
    link = tmp_path / "audit.jsonl"
    link.symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        AuditLog(link, SystemClock()).read()


def test_sec31_a_file_of_someone_else_is_refused_not_chmodded(tmp_path: Path) -> None:
    theirs = tmp_path / "audit.jsonl"
    theirs.write_text("")
    os.chmod(theirs, 0o644)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="owned by nobody"):
        open_private_file(theirs, "audit log")
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o644
    mine = tmp_path / "mine"
    mine.write_text("")
    os.chmod(mine, 0o644)
    os.close(open_private_file(mine, "state store"))
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600  # read access of others taken away
    os.chmod(mine, 0o620)
    with pytest.raises(ConfigError, match=re.escape(f"chmod g-w {mine}")):
        open_private_file(mine, "state store")


@pytest.mark.parametrize("problem", ["link", "nobody", "group-writable", "world-writable"])
def test_sec31_a_data_dir_others_could_write_is_refused(tmp_path: Path, problem: str) -> None:
    data = tmp_path / "data"
    if problem == "link":
        (tmp_path / "real").mkdir(mode=0o700)
        data.symlink_to(tmp_path / "real")
    else:
        data.mkdir(mode=0o700)
        if problem == "nobody":
            os.chown(data, NOBODY, NOBODY)
        else:
            os.chmod(data, 0o770 if problem == "group-writable" else 0o1777)
    for opening in (
        lambda: SQLiteStore(data),
        lambda: MailQueue(data / QUEUE_FILE),
        lambda: AuditLog(data / "audit.jsonl", SystemClock()).ensure_writable(),
    ):
        with pytest.raises(ConfigError) as caught:
            opening()
        assert str(data) in caught.value.message
    assert not any(p.name in (STATE_FILE, QUEUE_FILE, "audit.jsonl") for p in data.iterdir())


@pytest.mark.parametrize("name", [STATE_FILE, f"{STATE_FILE}-wal", QUEUE_FILE, "audit.jsonl"])
def test_sec31_a_data_file_of_someone_else_is_refused(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    ensure_private_dir(data)
    planted = data / name
    planted.write_bytes(b"")
    os.chown(planted, NOBODY, NOBODY)
    with pytest.raises(
        ConfigError, match=rf"owned by nobody.*chown root {re.escape(str(planted))}"
    ):
        ensure_private_dir(data)
    os.chown(planted, 0, 0)
    os.chmod(planted, 0o660)
    with pytest.raises(ConfigError, match=re.escape(f"chmod g-w {planted}")):
        ensure_private_dir(data)


def test_sec31_a_link_as_outbox_is_refused_and_nothing_is_written_there(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outbox = tmp_path / "outbox"
    outbox.symlink_to(elsewhere)
    with pytest.raises(ConfigError, match=r"outbox .*is a symbolic link"):
        OutboxTransport(outbox)._ensure_folder()
    assert list(elsewhere.iterdir()) == []


# --- through the command line, against the directory ----------------------------------------


@pytest.fixture
def suspended_later(
    on: Callable[[date], Runtime], config_path: Path, directory_clean: object
) -> tuple[Runtime, Any]:
    """A person the test will try to suspend, and a data dir that exists already."""
    runtime = on(TODAY)
    person = add_person(runtime, "owners.one", profile="vacataire")
    data = Path(runtime.config.paths.data_dir)
    ensure_private_dir(data)
    return runtime, person


@pytest.mark.parametrize("name", ["audit.jsonl", STATE_FILE, QUEUE_FILE])
def test_sec31_a_link_planted_in_the_data_dir_stops_the_command_and_spares_its_target(
    suspended_later: tuple[Runtime, Any], tmp_path: Path, name: str
) -> None:
    runtime, person = suspended_later
    data = Path(runtime.config.paths.data_dir)
    target = tmp_path / "precious.txt"
    target.write_text("root:x:0:0::/root:/bin/bash\n")
    os.chmod(target, 0o644)
    before_target, before_entry = untouched(target), read(runtime, person)
    (data / name).symlink_to(target)
    err = refusal("suspend", person.identifier, "--reason", "left")
    assert str(data / name) in err and "symbolic link" in err
    assert untouched(target) == before_target
    assert read(runtime, person) == before_entry


def test_sec31_doctor_reports_each_file_check(config_path: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o700, exist_ok=True)  # doctor writes nothing by itself
    code, out, err = umacct("--json", "doctor")
    assert code == 0, err
    rows = {row["check"]: row for row in json.loads(out)}
    for name in (
        "configuration file",
        "CA file",
        "templates",
        "data dir",
        "state store",
        "mail queue",
        "audit log",
    ):
        assert rows[name]["status"] == "ok", rows[name]
    queue = tmp_path / "data" / QUEUE_FILE
    queue.write_bytes(b"")
    os.chown(queue, NOBODY, NOBODY)
    code, out, _ = umacct("--json", "doctor")
    assert code == 1
    rows = {row["check"]: row for row in json.loads(out)}
    assert rows["mail queue"]["status"] == "FAIL"
    assert rows["mail queue"]["fix"] == f"chown root {queue}"
