"""Two hosts on the replicated pair of the local directory: the state fails over with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import tomli_w
from days import TODAY, month_end, months
from people import NEW_PASSWORD, add_person, mail_text, outbox_mails
from test_state_support import Host

from umacct.errors import InvalidInputError
from umacct.localdir import (
    LocalDirectory,
    pair_config_dict,
    start_replicated_pair,
    wait_until_in_sync,
)
from umacct.services.create import create_person
from umacct.services.create_input import new_person
from umacct.services.credentials import reset_with_token, send_reset
from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime

Pair = tuple[LocalDirectory, LocalDirectory]
RESET_LINK = re.compile(r"https://ent\.example\.org/reset\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    """Two providers replicating each other, of this test only (the first is killed)."""
    providers = start_replicated_pair(tmp_path / "pair")
    yield providers
    for provider in providers:
        provider.stop()


def hosts_on(pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Host, Host]:
    """Hosts A and B, both listing provider 1 then provider 2, one state branch."""
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", pair[0].bind_password)
    made = []
    for name in ("a", "b"):
        document = pair_config_dict(pair, tmp_path / f"data-{name}")
        document["directory"]["state_dn"] = pair[0].state_dn
        path = tmp_path / f"{name}.toml"
        path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
        made.append(Host(name, path, tmp_path / f"data-{name}"))
    return made[0], made[1]


def opened(host: Host, day: date, runtimes: list[Runtime]) -> Runtime:
    runtime = host.runtime(day)
    runtimes.append(runtime)
    return runtime


def test_sec40_links_and_tombstones_survive_the_loss_of_the_first_provider(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = hosts_on(pair, tmp_path, monkeypatch)
    runtimes: list[Runtime] = []
    try:
        on_a = opened(a, TODAY, runtimes)
        person = add_person(on_a, "fail.over", profile="titulaire")
        send_reset(on_a, person.identifier)
        found = RESET_LINK.search(mail_text(outbox_mails(on_a)[-1]))
        assert found is not None
        gone = add_person(
            on_a, "ines.roux", profile="autre_personnel", end_of_activity=month_end(-6)
        )
        suspend(on_a, gone.identifier, reason="left", notice=False)
        purge(on_a, gone.identifier)
        assert on_a.directory_url == pair[0].url
        wait_until_in_sync(pair)
        pair[0].kill()  # provider 1 is lost: both hosts fail over to provider 2

        on_b = opened(b, TODAY, runtimes)
        reset_with_token(on_b, found.group(1), NEW_PASSWORD)
        assert on_b.directory_url == pair[1].url
        again = opened(a, TODAY, runtimes)
        with pytest.raises(InvalidInputError, match="not valid"):
            reset_with_token(again, found.group(1), NEW_PASSWORD)
        comer = new_person(
            on_b.config, given_name="Inès", surname="Roux", profile="vacataire",
            personal_email="ines.roux@example.net", end_of_activity=months(4),
        )  # fmt: skip
        assert create_person(on_b, comer).uid == "ines.roux2"

        pair[0].restart()  # provider 1 comes back and catches up: the link is used there too
        wait_until_in_sync(pair)
        for runtime in runtimes:
            runtime.close()
        back = opened(a, TODAY, runtimes)
        assert back.tokens.pending(person.identifier) == []
        assert back.directory_url == pair[0].url
    finally:
        for runtime in runtimes:
            runtime.close()
