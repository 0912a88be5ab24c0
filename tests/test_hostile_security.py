"""Security requirements with no test elsewhere, and the check that each one has a test."""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import tomli_w
from command_line import umacct
from days import TODAY
from helpers import minimal_config
from people import add_person

from umacct.config import load_config, parse_config
from umacct.errors import ConfigError
from umacct.services.runtime import Runtime

TESTS = Path(__file__).parent
REQUIREMENTS = [*range(1, 45), *range(50, 64)]
EXPIRED_LONG_AGO = ["{COMPTE}I:SupannExpire:20250101:", "{MAIL}I:SupannExpire:20250101:"]


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI on the test's clock (today); exit code, stdout, stderr."""
    return umacct(*args, catch_exceptions=False)


def write_config(path: Path, mode: int) -> Path:
    """A valid configuration file with the given permissions."""
    path.write_bytes(tomli_w.dumps(minimal_config()).encode("utf-8"))
    os.chmod(path, mode)
    return path


def test_sec18_a_config_file_writable_by_everyone_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", 0o666)
    with pytest.raises(ConfigError, match="writable by every user"):
        load_config(path)
    code, out, err = cli("--config", str(path), "config", "check")
    assert code == 78
    assert "chmod o-w" in err
    assert out == ""


def test_sec18_a_config_file_in_a_folder_anyone_may_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    path = write_config(folder / "config.toml", 0o644)
    os.chmod(folder, 0o777)
    with pytest.raises(ConfigError, match="folder is writable by every user"):
        load_config(path)
    os.chmod(folder, 0o1777)  # sticky, as /tmp: others cannot replace the file
    assert load_config(path).source == path


def test_sec18_a_private_or_readable_config_is_accepted(tmp_path: Path) -> None:
    for mode in (0o600, 0o640, 0o644):
        assert load_config(write_config(tmp_path / f"c{mode:o}.toml", mode)).profiles


@pytest.mark.parametrize(
    ("table", "key"),
    [("directory", "bind_password"), ("mail.smtp", "password"), ("", "api_token")],
)
def test_sec18_a_secret_in_the_config_file_is_refused(table: str, key: str) -> None:
    document = minimal_config()
    target = document
    for part in filter(None, table.split(".")):
        target = target.setdefault(part, {})
    target[key] = "hunter2hunter2"
    with pytest.raises(ConfigError, match="secrets do not belong") as raised:
        parse_config(document)
    assert "hunter2" not in raised.value.message


@pytest.mark.parametrize(
    "link",
    [
        "http://ent.example.org/activation?token={token}",
        "https://ent.example.org/activation",
        "javascript:alert(1)//{token}",
    ],
)
def test_sec05_links_come_only_from_a_configured_https_base(link: str) -> None:
    document = minimal_config()
    document["links"] = {"activation": link}
    with pytest.raises(ConfigError, match="https://"):
        parse_config(document)


@pytest.mark.usefixtures("directory_clean")
def test_sec19_bulk_purge_asks_refuses_without_a_terminal_and_is_capped(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    people = [
        add_person(
            runtime,
            f"old.person{n}",
            state_values=EXPIRED_LONG_AGO,
            extra={"pwdEndTime": ["20250101000000Z"]},
        )
        for n in range(3)
    ]
    code, out, _ = cli("--json", "purge", "--expired", "--dry-run")
    assert code == 0
    assert len(json.loads(out)) == len(people)
    code, _, err = cli("purge", "--expired", "--reason", "cleanup")
    assert code == 77, err
    assert all(runtime.directory.read(person.dn, ["uid"]) is not None for person in people)
    code, _, err = cli("purge", "--expired", "--yes", "--limit", "2", "--reason", "cleanup")
    assert code == 0, err
    remaining = [p for p in people if runtime.directory.read(p.dn, ["uid"]) is not None]
    assert len(remaining) == 1


def _test_names() -> list[str]:
    names: list[str] = []
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        names += [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        ]
    return names


def requirement_numbers(name: str) -> set[int]:
    """The requirement numbers a test name claims: ``test_sec13_sec16_...`` -> {13, 16}.

    ``test_security_15_...`` (the spelling of the mail tests) counts too.
    """
    head = re.match(r"test_((?:sec(?:urity_)?\d+_?)+)", name)
    if head is None:
        return set()
    return {int(number) for number in re.findall(r"\d+", head.group(1))}


def test_sec_every_requirement_has_at_least_one_test() -> None:
    covered: set[int] = set()
    for name in _test_names():
        covered |= requirement_numbers(name)
    missing = [number for number in REQUIREMENTS if number not in covered]
    assert not missing, f"security requirements without a test_secNN_ test: {missing}"


def test_sec_requirement_numbers_are_read_from_test_names() -> None:
    assert requirement_numbers("test_sec13_sec16_bad_input") == {13, 16}
    assert requirement_numbers("test_security_15_headers") == {15}
    assert requirement_numbers("test_sec1_sec5_link") == {1, 5}
    assert requirement_numbers("test_second_thing") == set()
