"""The command line binds with SASL EXTERNAL over ldapi with no password anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY
from people import add_person, rewrite_config

from umacct.localdir import LocalDirectory
from umacct.services.runtime import Runtime


@pytest.mark.usefixtures("directory_clean")
def test_sec42_the_cli_binds_over_ldapi_with_sasl_external_and_no_password(
    on: Callable[[date], Runtime],
    config_path: Path,
    slapd: LocalDirectory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = add_person(on(TODAY), "sasl.person")
    rewrite_config(
        config_path, directory={"bind_method": "sasl_external", "urls": [slapd.ldapi_url]}
    )
    monkeypatch.delenv("UMACCT_BIND_PASSWORD", raising=False)
    code, out, err = umacct("--json", "show", person.identifier)
    assert code == 0, err
    assert json.loads(out)["account"] == person.identifier
