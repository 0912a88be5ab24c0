"""A sweep whose due accounts span several pages reads them all, whatever each step searches.

slapd keeps one paged search per connection: a paged search made while another is read
would make that one's next page fail (docs/directory.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
import tomli_w
from days import TODAY
from people import add_person

from umacct.services import sweep as sweep_module
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")

PEOPLE = 12


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_a_wave_of_several_pages_is_swept_whole(
    config_path: Path,
    on: Callable[[date], Runtime],
    monkeypatch: pytest.MonkeyPatch,
    dry_run: bool,
) -> None:
    document = tomllib.loads(config_path.read_text())
    document["directory"]["page_size"] = 5
    config_path.write_text(tomli_w.dumps(document))
    runtime = on(TODAY)
    assert runtime.config.directory.page_size == 5
    for number in range(PEOPLE):
        add_person(runtime, f"wave.p{number}", end_of_activity=TODAY - timedelta(days=3))
    monkeypatch.setattr(sweep_module, "KEPT_DUE", 3)  # read as it is swept, page by page
    summary = SweepSummary(runtime.today(), dry_run=dry_run)
    done = list(sweep(runtime, summary, max_changes=PEOPLE))
    assert summary.errors == []
    assert len(done) == PEOPLE
