"""A sweep whose due accounts span several pages reads them all, whatever each step searches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import tomli_w
from days import TODAY
from people import add_person, runtime_on

from umacct.localdir import LocalDirectory
from umacct.services import sweep as sweep_module
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")

PEOPLE = 12


@pytest.fixture
def small_pages(
    slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[date], Runtime]]:
    """Runtimes whose searches ask for pages of 5 entries."""
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    settings = slapd.config_dict(tmp_path / "data")
    settings["directory"]["page_size"] = 5
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(settings).encode("utf-8"))
    made: list[Runtime] = []

    def make(day: date) -> Runtime:
        made.append(runtime_on(path, day))
        return made[-1]

    yield make
    for runtime in made:
        runtime.close()


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_a_wave_of_several_pages_is_swept_whole(
    small_pages: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    runtime = small_pages(TODAY)
    for number in range(PEOPLE):
        add_person(runtime, f"wave.p{number}", end_of_activity=TODAY - timedelta(days=3))
    monkeypatch.setattr(sweep_module, "KEPT_DUE", 3)  # read as it is swept, page by page
    summary = SweepSummary(runtime.today(), dry_run=dry_run)
    done = list(sweep(runtime, summary, max_changes=PEOPLE))
    assert summary.errors == []
    assert len(done) == PEOPLE
