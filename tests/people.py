"""Putting people in the test directory and looking at them, for the service and CLI tests."""

from __future__ import annotations

import email.policy
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from days import PARIS, clock_on
from smtp_fixtures import SmtpTestServer

from umacct.config import Config, load_config
from umacct.directory import Entry
from umacct.directory.escape import dn_join
from umacct.policy import active_states, created_states, format_state_date, to_supann_date
from umacct.services.runtime import Runtime

STATE_REGEX = r"^\{([^}]+)\}([^:]+):([^:]*):([^:]*):([^:]*)$"


def runtime_on(config: Config | Path, day: date, hour: int = 9) -> Runtime:
    """A runtime whose clock says ``day`` at ``hour`` (Paris time)."""
    loaded = config if isinstance(config, Config) else load_config(config)
    return Runtime(loaded, clock=clock_on(day, hour))


@pytest.fixture
def on(config_path: Path) -> Iterator[Callable[[date], Runtime]]:
    """Make runtimes for given days (closed after the test)."""
    made: list[Runtime] = []

    def make(day: date) -> Runtime:
        runtime = runtime_on(config_path, day)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


def generalized(day: date) -> str:
    """An end of activity as the tool writes it (SUPANN: the date at ``000000Z``).

    Tests that compare a date attribute the tool wrote use this, never a literal, so that
    the one convention is changed in one place.
    """
    return to_supann_date(day)


def legacy_generalized(day: date) -> str:
    """An end of activity as older tools wrote it: local midnight, in UTC."""
    return (datetime.combine(day, time(), tzinfo=PARIS)).astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


@dataclass(frozen=True)
class Person:
    """A person added by a test."""

    uid: str
    identifier: str
    dn: str
    password: str


def add_person(
    runtime: Runtime,
    uid: str,
    *,
    profile: str = "vacataire",
    end_of_activity: date | None = None,
    since: date = date(2025, 9, 1),
    awaiting_activation: bool = False,
    extra: dict[str, list[str]] | None = None,
    state_values: list[str] | None = None,
) -> Person:
    """Add an active person (or one awaiting activation) with a password they can bind with."""
    config = runtime.config
    settings = config.profiles[profile]
    identifier = f"{uid}@{settings.domain}"
    dn = dn_join("uid", uid, config.directory.people_dn)
    states = created_states(since) if awaiting_activation else active_states(since)
    attributes: dict[str, list[str]] = {
        "objectClass": ["inetOrgPerson", "eduPerson", "supannPerson"],
        "uid": [uid],
        "mail": [identifier],
        "cn": [uid.replace(".", " ").title()],
        "sn": [uid.split(".")[-1].title()],
        "givenName": [uid.split(".")[0].title()],
        config.directory.profile_attribute: [profile],
        config.attributes.affiliation: list(settings.affiliations),
        config.attributes.primary_affiliation: list(settings.affiliations[:1]),
        config.attributes.personal_mail: [f"{uid}@example.net"],
        config.attributes.state_date: state_values
        if state_values is not None
        else [s.format() for s in states],
        config.attributes.state: [s.short().format() for s in states]
        if state_values is None
        else [],
    }
    attributes = {name: values for name, values in attributes.items() if values}
    if end_of_activity is not None:
        attributes[settings.end_date_attribute] = [generalized(end_of_activity)]
    attributes.update(extra or {})
    runtime.directory.add(dn, attributes)
    password = f"Correct-Horse-{uid}-42"
    runtime.directory.password_modify(dn, password)
    return Person(uid, identifier, dn, password)


def read(runtime: Runtime, person: Person) -> Entry:
    """The person's entry with every attribute the tests look at."""
    entry = runtime.directory.read(person.dn, ["*", "pwdEndTime", "pwdChangedTime"])
    assert entry is not None, f"{person.dn} is gone"
    return entry


def compte(entry: Entry) -> str:
    """The COMPTE value of supannRessourceEtatDate."""
    return next(v for v in entry.get("supannRessourceEtatDate") if v.startswith("{COMPTE}"))


def state_date(day: date) -> str:
    """YYYYMMDD."""
    return format_state_date(day)


def day_after(day: date) -> date:
    """The next day."""
    return day + timedelta(days=1)


# --- mail through a real SMTP server on loopback ----------------------------------------

NEW_PASSWORD = "velvet otter climbs 7 ladders"
OTHER_PASSWORD = "quiet harbour lamps at dawn 93"
LINK = re.compile(r"https://ent\.example\.org/(activation|reset|confirm)\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
def mail_relay(config_path: Path, smtp_server: SmtpTestServer) -> SmtpTestServer:
    """The test configuration switched to the loopback SMTP server (plain: loopback only)."""
    document = tomllib.loads(config_path.read_text(encoding="utf-8"))
    document["mail"] = {
        "transport": "smtp",
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "security": "none", "timeout": 5},
    }  # fmt: skip
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    return smtp_server


def last_mail_to(server: SmtpTestServer, address: str) -> tuple[str, str]:
    """Subject and body of the last message delivered to ``address``."""
    for mail in reversed(server.received):
        if address in mail.rcpt_tos:
            body = mail.message.get_body(("plain",))
            assert body is not None
            return str(mail.message["Subject"]), str(body.get_content())
    raise AssertionError(f"no mail to {address}")


def token_in_mail(server: SmtpTestServer, address: str, purpose: str) -> str:
    """The token of the link in the last message to ``address``."""
    _, body = last_mail_to(server, address)
    found = LINK.search(body)
    assert found is not None, body
    assert found.group(1) == purpose
    return found.group(2)


def snapshot(runtime: Runtime, person: Person) -> tuple[Any, ...]:
    """Everything a refused command must leave as it was: entry, links, queue, audit."""
    return (
        read(runtime, person),
        runtime.tokens.pending(person.identifier),
        runtime.mailer.pending(),
        len(runtime.audit.read()),
    )


def outbox_mails(runtime: Runtime) -> list[EmailMessage]:
    """Messages the outbox transport wrote, oldest first."""
    folder = runtime.config.outbox_dir
    files = sorted(folder.glob("*.eml")) if folder.exists() else []
    parser = BytesParser(policy=email.policy.default)
    return [parser.parsebytes(path.read_bytes()) for path in files]


def mail_text(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def rewrite_config(config_path: Path, **tables: dict[str, Any]) -> None:
    """Merge ``tables`` into the test configuration file (key by key within each table)."""
    document = tomllib.loads(config_path.read_text(encoding="utf-8"))
    for name, values in tables.items():
        document.setdefault(name, {}).update(values)
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
