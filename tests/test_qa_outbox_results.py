"""QA (issue 17): with the outbox transport, JSON results say the mail was not sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY
from people import add_person

from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")

OUTBOX = "written to the outbox (not sent)"


def _json(*args: str) -> dict[str, object]:
    code, out, err = umacct("--json", *args)
    assert code == 0, (args, out, err)
    document: dict[str, object] = json.loads(out)
    return document


def test_link_results_say_outbox_in_json_and_text(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    waiting = add_person(runtime, "rose.marin", awaiting_activation=True)
    active = add_person(
        runtime, "paul.marin", extra={runtime.config.attributes.recovery_mail: ["p@example.org"]}
    )
    for args in (
        ("activate", waiting.identifier),
        ("reset", active.identifier),
        ("set-recovery", active.identifier, "paul.new@example.org"),
    ):
        document = _json(*args)
        assert document["sent"] is False, (args, document)
        assert document["delivery"] == "outbox", (args, document)
        assert OUTBOX in str(document["message"]), (args, document)
        assert "sent to" not in str(document["message"])
        code, out, _ = umacct(*args)
        assert code == 0 and OUTBOX in out, (args, out)
