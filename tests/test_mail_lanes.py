"""A batch's mail over several SMTP connections at once ([mail.smtp] connections)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from smtp_fixtures import LOOPBACK, RecordingHandler, free_port

from umacct.clock import FixedClock
from umacct.config import (
    Config,
    DirectoryConfig,
    MailConfig,
    PathsConfig,
    ProfileConfig,
    SmtpConfig,
    parse_config,
)
from umacct.errors import ConfigError
from umacct.mail.compose import compose
from umacct.mail.mailer import Mailer, SendResult
from umacct.mail.queue import MailQueue
from umacct.mail.sender import MailRequest
from umacct.mail.smtp import SmtpTransport

CLOCK = FixedClock(datetime(2026, 11, 26, 9, 15, tzinfo=UTC))
MAIL = MailConfig(from_="Comptes informatiques <comptes@umontpellier.fr>", transport="smtp")
PEOPLE = 12
KINDS = ("suspended", "account_locked", "password_changed")


class LaneHandler(RecordingHandler):
    """Records, offers PIPELINING, counts connections open at once, drops chosen messages."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit
        self.open_now = 0
        self.most_open = 0
        self.refused_connections = 0
        self.drop: dict[str, int] = {}
        """Recipient -> how many more times its DATA drops the connection unanswered."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        [recipient] = envelope.rcpt_tos
        if self.drop.get(recipient, 0) > 0:
            self.drop[recipient] -= 1
            server.transport.abort()  # gone before the answer: the message was not taken
            return "421 gone"
        await asyncio.sleep(0.002)  # a relay's own work: the connections overlap
        return await super().handle_DATA(server, session, envelope)


class LimitedSMTP(SMTP):
    """Greets with 421 beyond the handler's limit of connections at once (a relay's limit)."""

    def connection_made(self, transport: Any) -> None:
        handler: LaneHandler = self.event_handler
        if handler.limit is not None and handler.open_now >= handler.limit:
            handler.refused_connections += 1
            transport.write(b"421 4.7.0 too many connections from your host\r\n")
            transport.close()
            return
        handler.open_now += 1
        handler.most_open = max(handler.most_open, handler.open_now)
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if getattr(self, "_counted", False):
            self.event_handler.open_now -= 1
            super().connection_lost(error)


class LimitedController(Controller):
    def factory(self) -> SMTP:
        return LimitedSMTP(self.handler, **self.SMTP_kwargs)


@dataclasses.dataclass
class Relay:
    handler: LaneHandler
    port: int

    @property
    def peers(self) -> set[tuple[str, int]]:
        return {mail.peer for mail in self.handler.received}

    def config(self, connections: int) -> SmtpConfig:
        return SmtpConfig(
            host=LOOPBACK, port=self.port, security="none", timeout=5, connections=connections
        )


def start_relay(limit: int | None = None) -> tuple[Relay, Controller]:
    handler = LaneHandler(limit)
    controller = LimitedController(handler, hostname=LOOPBACK, port=free_port())
    controller.start()
    return Relay(handler, controller.port), controller


@pytest.fixture
def relay() -> Iterator[Relay]:
    server, controller = start_relay()
    yield server
    controller.stop()


@pytest.fixture
def limited_relay() -> Iterator[Relay]:
    server, controller = start_relay(limit=2)
    yield server
    controller.stop()


def make_config(tmp_path: Path) -> Config:
    return Config(
        directory=DirectoryConfig(
            urls=["ldap://127.0.0.1"], bind_dn="cn=admin,dc=um", base_dn="dc=um",
            people_dn="ou=people,dc=um",
        ),
        profiles={"staff": ProfileConfig(label="Staff", domain="umontpellier.fr", grace_months=12)},
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        mail=MAIL,
    )  # fmt: skip


def requests() -> list[MailRequest]:
    """Three messages a person, in order, the people interleaved."""
    return [
        MailRequest(f"p{n}@um.fr", kind, f"p{n}@example.net",
                    {"name": f"P{n}", "account": f"p{n}@um.fr"})
        for kind in KINDS
        for n in range(PEOPLE)
    ]  # fmt: skip


def send_batch(
    tmp_path: Path, config: SmtpConfig, batch: list[MailRequest]
) -> tuple[list[SendResult], list[str], SmtpTransport]:
    with (
        SmtpTransport(config, None) as transport,
        MailQueue(tmp_path / "q.db") as queue,
    ):
        results = Mailer(make_config(tmp_path), transport, queue, CLOCK).start(batch).results()
        queued = [mail.recipient for mail in queue.pending()]
    return results, queued, transport


def test_a_batch_goes_over_several_connections_each_message_once_in_each_persons_order(
    tmp_path: Path, relay: Relay
) -> None:
    batch = requests()
    results, queued, transport = send_batch(tmp_path, relay.config(4), batch)

    assert all(result.sent and result.delivery == "smtp" for result in results)
    assert queued == []
    received = relay.handler.received
    assert len(received) == len(batch)
    assert len({mail.message["Message-ID"] for mail in received}) == len(batch)
    # One result a request, in the order of the requests.
    sent = {mail.message["Message-ID"]: mail.rcpt_tos[0] for mail in received}
    assert [sent[str(result.message_id)] for result in results] == [r.to for r in batch]
    # Four connections at once, each reused for many messages.
    assert len(relay.peers) == 4
    assert relay.handler.most_open == 4
    assert transport.connections_opened == 1
    # Each person's messages all went over one connection, in the order given.
    for n in range(PEOPLE):
        own = [mail for mail in received if mail.rcpt_tos == [f"p{n}@example.net"]]
        assert len({mail.peer for mail in own}) == 1
        assert [str(mail.message["Subject"]) for mail in own] == [subject(k) for k in KINDS]


def test_one_connection_sends_in_the_order_given_over_one_connection(
    tmp_path: Path, relay: Relay
) -> None:
    batch = requests()
    results, queued, _ = send_batch(tmp_path, relay.config(1), batch)

    assert all(result.sent for result in results) and queued == []
    assert [mail.rcpt_tos[0] for mail in relay.handler.received] == [r.to for r in batch]
    assert len(relay.peers) == 1


def test_a_connection_dropped_mid_batch_costs_that_message_one_retry_and_nothing_twice(
    tmp_path: Path, relay: Relay
) -> None:
    batch = requests()
    relay.handler.drop["p5@example.net"] = 1  # its first message's connection drops once
    results, queued, _ = send_batch(tmp_path, relay.config(4), batch)

    assert all(result.sent for result in results) and queued == []
    received = [mail.message["Message-ID"] for mail in relay.handler.received]
    assert sorted(received) == sorted(result.message_id for result in results)
    assert len(relay.peers) == 5  # the dropped connection was opened again


def test_a_connection_that_keeps_dropping_queues_that_message_and_sends_nothing_twice(
    tmp_path: Path, relay: Relay
) -> None:
    batch = requests()
    relay.handler.drop["p5@example.net"] = 2  # dropped again after the one retry
    results, queued, _ = send_batch(tmp_path, relay.config(4), batch)

    by_request = dict(zip([(r.to, r.kind) for r in batch], results, strict=True))
    failed = by_request[("p5@example.net", KINDS[0])]
    assert not failed.sent and failed.queued_id is not None
    assert "SMTP relay" in (failed.error or "")
    received_ids = [mail.message["Message-ID"] for mail in relay.handler.received]
    assert len(received_ids) == len(set(received_ids))
    sent_ids = {result.message_id for result in results if result.sent}
    assert set(received_ids) == sent_ids
    # Every message is either at the relay or queued for 'umacct mail flush', never both.
    assert sum(result.sent for result in results) + len(queued) == len(batch)
    assert all(result.queued_id is not None for result in results if not result.sent)
    # The person whose message failed has none of their later ones sent before it.
    p5 = [r for r, result in zip(batch, results, strict=True) if r.to == "p5@example.net"]
    assert not any(by_request[(r.to, r.kind)].sent for r in p5)


def test_a_relay_limit_on_connections_is_respected_and_every_message_goes_once(
    tmp_path: Path, limited_relay: Relay
) -> None:
    batch = requests()
    results, queued, _ = send_batch(tmp_path, limited_relay.config(4), batch)

    assert all(result.sent for result in results) and queued == []
    received = limited_relay.handler.received
    assert len(received) == len(batch)
    assert len({mail.message["Message-ID"] for mail in received}) == len(batch)
    assert limited_relay.handler.most_open <= 2
    assert limited_relay.handler.refused_connections >= 1
    for n in range(PEOPLE):
        own = [str(mail.message["Subject"]) for mail in received
               if mail.rcpt_tos == [f"p{n}@example.net"]]  # fmt: skip
        assert own == [subject(kind) for kind in KINDS]


def subject(kind: str) -> str:
    """The subject of a message of this kind, as the relay parses it."""
    message = compose(
        kind, "p@example.net", {"name": "P", "account": "p"}, config=MAIL, clock=CLOCK
    )
    parsed = BytesParser(policy=policy.default).parsebytes(message.data)
    return str(parsed["Subject"])


@pytest.mark.parametrize("value", [0, -1, 17])
def test_connections_out_of_range_is_a_one_line_config_error(value: int) -> None:
    with pytest.raises(ConfigError, match=r"connections.*expected 1 to 16"):
        parse_config(
            {
                "directory": {"urls": ["ldap://127.0.0.1"], "bind_dn": "cn=a,dc=um",
                              "base_dn": "dc=um", "people_dn": "ou=people,dc=um"},
                "profiles": {"staff": {"label": "Staff", "domain": "um.fr", "grace_months": 12}},
                "mail": {"smtp": {"connections": value}},
            }
        )  # fmt: skip


def test_the_example_config_says_four_connections() -> None:
    text = (Path(__file__).parent.parent / "config.example.toml").read_text()
    assert "\nconnections = 4\n" in text
    assert SmtpConfig().connections == 4
