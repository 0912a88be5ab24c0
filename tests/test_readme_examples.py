"""The README's examples run as written, on the demo population (``localdir --population 300``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
TOOL = [sys.executable, "-m", "umacct"]


def _blocks_introduced_as_runnable() -> list[list[str]]:
    """The ``sh`` blocks the README says "run as written on the demo population"."""
    text = README.read_text("utf-8")
    blocks = []
    for match in re.finditer(
        r"run as written on the demo population.*?```sh\n(.*?)```", text, re.S
    ):
        lines = [line.split("  #")[0].strip() for line in match.group(1).splitlines()]
        blocks.append([line for line in lines if line.startswith("umacct ")])
    return blocks


@pytest.fixture
def demo_directory(tmp_path: Path) -> Iterator[dict[str, str]]:
    folder = tmp_path / "demo"
    started = subprocess.run(
        [*TOOL, "localdir", "start", "--dir", str(folder), "--population", "300"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    env = {
        **os.environ,
        "UMACCT_CONFIG": str(folder / "config.toml"),
        "UMACCT_BIND_PASSWORD": (folder / "bind-password").read_text("utf-8").strip(),
    }
    try:
        yield env
    finally:
        subprocess.run([*TOOL, "localdir", "stop", "--dir", str(folder)], env=env, check=False)


def test_the_readme_says_which_examples_run_as_written() -> None:
    blocks = _blocks_introduced_as_runnable()
    assert blocks and all(blocks), blocks
    assert not any("ACCOUNT" in line for block in blocks for line in block)


def test_the_departure_examples_run_as_written(demo_directory: dict[str, str]) -> None:
    for block in _blocks_introduced_as_runnable():
        for line in block:
            ran = subprocess.run(
                [*TOOL, *shlex.split(line)[1:]],
                env=demo_directory, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert ran.returncode == 0, f"{line}: exit {ran.returncode}: {ran.stderr}"
