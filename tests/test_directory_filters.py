"""The lifecycle's directory filters live in one module that the sweep and the purge both use."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from days import TODAY

from umacct.config import Config, parse_config
from umacct.directory import ber
from umacct.due_filters import grace_filter, purge_filter, reactivation_filter, suspension_filter
from umacct.localdir import LocalDirectory

SERVICES = Path(__file__).resolve().parent.parent / "umacct" / "services"


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_the_purge_does_not_import_the_sweep() -> None:
    assert "umacct.services.sweep" not in imported(SERVICES / "purge.py")
    assert "umacct.due_filters" in imported(SERVICES / "purge.py")
    assert "umacct.due_filters" in imported(SERVICES / "sweep.py")


@pytest.fixture(scope="module")
def config(slapd: LocalDirectory, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return parse_config(slapd.config_dict(tmp_path_factory.mktemp("filters")))


@pytest.mark.parametrize(
    "build", [suspension_filter, grace_filter, purge_filter, reactivation_filter]
)
def test_each_filter_takes_the_configuration_and_the_day(config: Config, build: object) -> None:
    text = build(config, TODAY)  # type: ignore[operator]
    assert ber.encode_filter(text)  # well formed, as the directory will receive it
    assert config.attributes.state_date in text


def test_the_purge_filter_bounds_the_expiry_by_the_purge_delay(config: Config) -> None:
    text = purge_filter(config, TODAY)
    assert "{COMPTE}I:SupannExpire:" in text and "{COMPTE}I:SupannSupprCompte:" in text
    assert "pwdEndTime<=" in text
