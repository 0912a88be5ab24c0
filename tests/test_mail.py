"""Outgoing mail: templates, composition, outbox and SMTP transports, and the queue."""

from __future__ import annotations

import dataclasses
import socket
import stat
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.clock import FixedClock
from umacct.config import (
    Config,
    DirectoryConfig,
    MailConfig,
    PathsConfig,
    ProfileConfig,
    SmtpConfig,
)
from umacct.errors import ConfigError, InvalidInputError, TemporaryError, UnavailableError
from umacct.mail.compose import available_kinds, compose
from umacct.mail.dates import english_date, english_duration, french_date, french_duration
from umacct.mail.mailer import LinkIssuer, Mailer
from umacct.mail.queue import MailQueue, QueuedMail, queue_path
from umacct.mail.smtp import SmtpTransport
from umacct.mail.transport import OutboxTransport, transport_from_config

if TYPE_CHECKING:
    from smtp_fixtures import SmtpTestServer, TlsFiles

NOW = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
CLOCK = FixedClock(NOW)
MAIL = MailConfig(from_="Comptes informatiques <comptes@umontpellier.fr>")
PERSON = {"name": "Zoé Lefèvre", "account": "zoe.lefevre@umontpellier.fr"}
LINK_PARAMS = {"link": "https://ent.example.org/activation?token=T0KEN", "link_validity_fr": "24 heures", "link_validity_en": "24 hours"}  # fmt: skip

# One value for every placeholder any built-in template uses.
ALL_PARAMS = {
    **PERSON,
    **LINK_PARAMS,
    "address": "zoe@example.net",
    "expiry_date": "2026-11-26",
    "grace_end_date": "2027-06-30",
    "purge_date": "2026-12-26",
    "changed_date": "2025-08-01",
    "extendable": "yes",
    "profile": "Vacataire d'enseignement",
    "request_id": "3f2a9c1b0d",
    "requested_date": "2026-10-27",
    "reason": "no contract renewal on file",
}


def make_config(tmp_path: Path, transport: str = "outbox") -> Config:
    return Config(
        directory=DirectoryConfig(
            urls=["ldap://127.0.0.1"],
            bind_dn="cn=admin,dc=um",
            base_dn="dc=um",
            people_dn="ou=people,dc=um",
        ),
        profiles={"staff": ProfileConfig(label="Staff", domain="umontpellier.fr", grace_months=12)},
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        mail=dataclasses.replace(MAIL, transport=transport),
    )


def plain_smtp(server: SmtpTestServer) -> SmtpConfig:
    return SmtpConfig(host=server.host, port=server.port, security="none", timeout=5)


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


# --- composition -----------------------------------------------------------------------------


def test_security_15_every_required_header_is_present() -> None:
    message = parse(
        compose("activation", "zoe@Example.NET", ALL_PARAMS, config=MAIL, clock=CLOCK).data
    )

    assert message["Date"] == "Mon, 02 Nov 2026 08:30:00 +0000"
    assert message["From"].addresses[0].addr_spec == "comptes@umontpellier.fr"
    assert message["To"] == "zoe@example.net"
    assert message["Message-ID"].endswith("@umontpellier.fr>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"


def test_message_ids_are_unique() -> None:
    ids = {
        compose("reset", "a@example.net", ALL_PARAMS, config=MAIL, clock=CLOCK).message_id
        for _ in range(20)
    }
    assert len(ids) == 20


def test_activation_body_is_french_then_english_and_explains_the_link() -> None:
    body = (
        compose("activation", "zoe@example.net", ALL_PARAMS, config=MAIL, clock=CLOCK)
        .parsed()
        .get_content()
    )

    french, english = body.index("Bonjour Zoé Lefèvre"), body.index("Hello Zoé Lefèvre")
    assert french < english
    assert body.count(LINK_PARAMS["link"]) == 2
    assert "valable 24 heures" in body
    assert "valid for 24 hours" in body
    assert body.count("1ère connexion") == 2


def test_non_ascii_subject_is_rfc2047_encoded() -> None:
    raw = compose("password_changed", "zoe@example.net", PERSON, config=MAIL, clock=CLOCK).data

    subject_line = next(line for line in raw.split(b"\n") if line.startswith(b"Subject:"))
    assert b"=?utf-8?" in subject_line
    raw.decode("ascii")  # the whole message is 7-bit
    assert (
        parse(raw)["Subject"] == "Votre mot de passe a été modifié / Your password has been changed"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "x\r\nBcc: victim@example.com",
        "x\nBcc: v@e.com",
        "x\rY",
        "x\0y",
        "x\u2028y",
        "x\x85y",
        "\x1b[31m",
    ],
)
def test_security_13_line_breaks_in_parameters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="line breaks"):
        compose(
            "activation", "zoe@example.net", {**ALL_PARAMS, "name": bad}, config=MAIL, clock=CLOCK
        )


@pytest.mark.parametrize(
    "bad", ["zoe@example.net\r\nBcc: v@e.com", "zoe@example.net\n", "zoe\0@example.net"]
)
def test_security_13_line_breaks_in_recipient_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="line breaks"):
        compose("activation", bad, ALL_PARAMS, config=MAIL, clock=CLOCK)


@pytest.mark.parametrize(
    "bad", ["", "not-an-address", "a@b@example.net", "zoe@", "<zoe@example.net>"]
)
def test_security_13_invalid_recipients_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="not valid"):
        compose("activation", bad, ALL_PARAMS, config=MAIL, clock=CLOCK)


@pytest.fixture(scope="module")
def greeting_templates(tmp_path_factory: pytest.TempPathFactory) -> MailConfig:
    folder = tmp_path_factory.mktemp("templates")
    (folder / "greeting.txt").write_text("Subject: Bonjour $name / Hello $name\n\nBonjour $name,\n")
    return dataclasses.replace(MAIL, templates_dir=str(folder))


@settings(max_examples=300)
@given(name=st.text(min_size=1, max_size=80))
def test_security_13_no_parameter_value_can_add_a_header(
    greeting_templates: MailConfig, name: str
) -> None:
    try:
        message = compose(
            "greeting", "zoe@example.net", {"name": name}, config=greeting_templates, clock=CLOCK
        )
    except InvalidInputError:
        assert any(
            (unicodedata.category(c) == "Cc" and c != "\t") or c in "\u2028\u2029" for c in name
        )
        return
    parsed = parse(message.data)
    expected = ["Date", "From", "To", "Subject", "Message-ID", "Auto-Submitted", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]  # fmt: skip
    assert sorted(parsed.keys()) == sorted(expected)
    # Folding may move whitespace around (a long word can go to its own line), nothing more.
    assert "".join(parsed["Subject"].split()) == "".join(f"Bonjour {name} / Hello {name}".split())
    assert parsed.get_content() == f"Bonjour {name},\n"


def test_missing_parameter_is_named() -> None:
    with pytest.raises(InvalidInputError, match="'link'"):
        compose("activation", "zoe@example.net", PERSON, config=MAIL, clock=CLOCK)


@pytest.mark.parametrize("kind", ["../etc/passwd", "Activation", "", "no_such_kind"])
def test_unknown_or_unsafe_kind_is_refused(kind: str) -> None:
    with pytest.raises(InvalidInputError):
        compose(kind, "zoe@example.net", ALL_PARAMS, config=MAIL, clock=CLOCK)


@pytest.mark.parametrize("kind", available_kinds())
def test_every_builtin_template_renders_in_both_languages(kind: str) -> None:
    message = compose(kind, "zoe@example.net", ALL_PARAMS, config=MAIL, clock=CLOCK).parsed()
    body = message.get_content()
    assert "$" not in body
    assert "(English version below)" in body
    assert " / " in message["Subject"]


def test_builtin_kinds_cover_the_account_life() -> None:
    assert {
        "activation", "reset", "password_changed", "confirm_recovery", "recovery_changed_old",
        "forwarding_set", "confirm_forwarding", "expiry_warning", "expired", "suspended",
        "reminder_stale_password", "reminder_missing_recovery",
    } <= set(available_kinds())  # fmt: skip


@pytest.mark.parametrize(("extendable", "shown"), [("yes", True), ("no", False)])
def test_expiry_warning_gives_dates_and_extension_only_when_allowed(
    extendable: str, shown: bool
) -> None:
    params = {**PERSON, **LINK_PARAMS, "expiry_date": "2026-11-26", "extendable": extendable}
    body = (
        compose("expiry_warning", "zoe@example.net", params, config=MAIL, clock=CLOCK)
        .parsed()
        .get_content()
    )

    assert "Le 26 novembre 2026, vous ne pourrez plus" in body
    assert "On 26 November 2026 you will no longer" in body
    assert ("Gérer votre demande de prolongation de compte informatique" in body) is shown
    assert ("« Gestion de compte »" in body) is shown
    assert "[[" not in body


def test_flags_must_be_yes_or_no() -> None:
    params = {**PERSON, "expiry_date": "2026-11-26", "extendable": "true"}
    with pytest.raises(InvalidInputError, match="yes or no"):
        compose("expiry_warning", "zoe@example.net", params, config=MAIL, clock=CLOCK)


def test_date_parameters_must_be_iso_dates() -> None:
    params = {**PERSON, "expiry_date": "26/11/2026", "extendable": "no"}
    with pytest.raises(InvalidInputError, match="YYYY-MM-DD"):
        compose("expiry_warning", "zoe@example.net", params, config=MAIL, clock=CLOCK)


def test_dates_in_french_and_english() -> None:
    assert french_date(date(2026, 11, 26)) == "26 novembre 2026"
    assert english_date(date(2026, 11, 26)) == "26 November 2026"
    assert french_date(date(2027, 8, 1)) == "1er août 2027"
    assert french_date(date(2027, 2, 2)) == "2 février 2027"


@given(st.dates())
def test_english_dates_match_the_c_locale(day: date) -> None:
    assert english_date(day) == f"{day.day} {day.strftime('%B')} {day.year}"


@pytest.mark.parametrize(
    ("seconds", "french", "english"),
    [(86400, "24 heures", "24 hours"), (3600, "1 heure", "1 hour"), (1800, "30 minutes", "30 minutes"), (60, "1 minute", "1 minute")],
)  # fmt: skip
def test_link_lifetimes_in_words(seconds: int, french: str, english: str) -> None:
    assert (french_duration(seconds), english_duration(seconds)) == (french, english)


def test_site_template_overrides_the_builtin_one_and_adds_kinds(tmp_path: Path) -> None:
    (tmp_path / "activation.txt").write_text(
        "Subject: Bienvenue à l'UM / Welcome\n\nCoucou $name : $link\n", encoding="utf-8"
    )
    (tmp_path / "badge.txt").write_text(
        "Subject: Badge\n\nVotre badge est prêt, $name.\n", encoding="utf-8"
    )
    site = dataclasses.replace(MAIL, templates_dir=str(tmp_path))

    activation = compose(
        "activation", "zoe@example.net", ALL_PARAMS, config=site, clock=CLOCK
    ).parsed()
    assert activation["Subject"] == "Bienvenue à l'UM / Welcome"
    assert activation.get_content() == f"Coucou Zoé Lefèvre : {LINK_PARAMS['link']}\n"
    assert (
        "Votre badge est prêt"
        in compose("badge", "zoe@example.net", PERSON, config=site, clock=CLOCK)
        .parsed()
        .get_content()
    )
    # kinds the site does not override still come from the tool
    assert (
        "Bonjour"
        in compose("suspended", "zoe@example.net", PERSON, config=site, clock=CLOCK)
        .parsed()
        .get_content()
    )
    assert "badge" in available_kinds(str(tmp_path))


@pytest.mark.parametrize(
    "text",
    ["no subject line\n\nbody\n", "Subject: x\nnot blank\nbody\n", "Subject: x\n\n[[extendable]]\nbody\n", "Subject: x\n\n${name\n"],
)  # fmt: skip
def test_broken_site_template_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "reset.txt").write_text(text, encoding="utf-8")
    site = dataclasses.replace(MAIL, templates_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"reset\.txt"):
        compose("reset", "zoe@example.net", ALL_PARAMS, config=site, clock=CLOCK)


def test_bad_from_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[mail\] from"):
        compose(
            "reset", "zoe@example.net", ALL_PARAMS, config=MailConfig(from_="nobody"), clock=CLOCK
        )


# --- outbox ----------------------------------------------------------------------------------


def test_outbox_writes_private_parseable_files_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "outbox"
    with OutboxTransport(folder, clock=CLOCK) as outbox:
        for number in range(12):
            params = {**ALL_PARAMS, "name": f"Person {number}"}
            outbox.send(
                compose("activation", f"p{number}@example.net", params, config=MAIL, clock=CLOCK)
            )

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(folder.iterdir())
    assert [path.suffix for path in files] == [".eml"] * 12
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
    recipients = [parse(path.read_bytes())["To"] for path in files]
    assert recipients == [f"p{number}@example.net" for number in range(12)]
    assert files[0].name.startswith("20261102T083000")


def test_outbox_in_an_unwritable_place_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UnavailableError, match="outbox"):
        OutboxTransport(blocker / "outbox").send(
            compose("suspended", "a@example.net", PERSON, config=MAIL, clock=CLOCK)
        )


# --- SMTP ------------------------------------------------------------------------------------


def test_smtp_delivers_to_the_loopback_server(smtp_server: SmtpTestServer) -> None:
    message = compose("activation", "zoe@example.net", ALL_PARAMS, config=MAIL, clock=CLOCK)
    with SmtpTransport(plain_smtp(smtp_server), None) as transport:
        transport.send(message)

    [received] = smtp_server.received
    assert received.rcpt_tos == ["zoe@example.net"]
    assert received.mail_from == "comptes@umontpellier.fr"
    assert received.message["Message-ID"] == message.message_id
    assert "Bonjour Zoé Lefèvre" in received.message.get_content()


def test_smtp_reuses_one_connection_for_many_messages(smtp_server: SmtpTestServer) -> None:
    with SmtpTransport(plain_smtp(smtp_server), None) as transport:
        for number in range(40):
            transport.send(
                compose("suspended", f"p{number}@example.net", PERSON, config=MAIL, clock=CLOCK)
            )

    assert len(smtp_server.received) == 40
    assert smtp_server.connections == 1
    assert transport.connections_opened == 1


def test_smtp_reconnects_once_when_the_server_dropped_the_connection(
    smtp_server: SmtpTestServer,
) -> None:
    with SmtpTransport(plain_smtp(smtp_server), None) as transport:
        transport.send(compose("suspended", "a@example.net", PERSON, config=MAIL, clock=CLOCK))
        smtp_server.stop()
        smtp_server.start()
        transport.send(compose("suspended", "b@example.net", PERSON, config=MAIL, clock=CLOCK))

    assert [mail.rcpt_tos for mail in smtp_server.received] == [
        ["a@example.net"],
        ["b@example.net"],
    ]
    assert transport.connections_opened == 2


def test_smtp_down_is_unavailable_with_host_and_port(smtp_server: SmtpTestServer) -> None:
    smtp_server.stop()
    transport = SmtpTransport(plain_smtp(smtp_server), None)
    with pytest.raises(UnavailableError, match=f"127.0.0.1:{smtp_server.port}.*refused"):
        transport.send(compose("suspended", "a@example.net", PERSON, config=MAIL, clock=CLOCK))


@pytest.mark.parametrize(
    "host", ["smtp.example.org", "192.0.2.10", "::ffff:10.0.0.1", "localhost.example.org"]
)
def test_security_15_cleartext_to_a_remote_relay_is_refused_before_connecting(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: attempts.append(args))
    with pytest.raises(ConfigError, match="in clear"):
        SmtpTransport(SmtpConfig(host=host, port=25, security="none"), None)
    assert attempts == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"])
def test_cleartext_to_loopback_is_allowed(host: str) -> None:
    SmtpTransport(SmtpConfig(host=host, port=25, security="none"), None)


def test_a_username_without_password_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="UMACCT_SMTP_PASSWORD"):
        SmtpTransport(SmtpConfig(host="smtp.example.org", username="umacct"), None)


def test_security_15_starttls_delivers_with_a_trusted_certificate(
    smtp_starttls_server: SmtpTestServer, smtp_tls_files: TlsFiles
) -> None:
    config = SmtpConfig(
        host="127.0.0.1", port=smtp_starttls_server.port, security="starttls", timeout=5
    )
    with SmtpTransport(config, None, ssl_context=smtp_tls_files.client_context()) as transport:
        transport.send(compose("suspended", "a@example.net", PERSON, config=MAIL, clock=CLOCK))
    assert len(smtp_starttls_server.received) == 1


def test_security_15_implicit_tls_delivers_with_a_trusted_certificate(
    smtp_implicit_tls_server: SmtpTestServer, smtp_tls_files: TlsFiles
) -> None:
    config = SmtpConfig(
        host="127.0.0.1", port=smtp_implicit_tls_server.port, security="tls", timeout=5
    )
    with SmtpTransport(config, None, ssl_context=smtp_tls_files.client_context()) as transport:
        transport.send(compose("suspended", "a@example.net", PERSON, config=MAIL, clock=CLOCK))
    assert len(smtp_implicit_tls_server.received) == 1


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_security_15_an_untrusted_certificate_is_refused(
    security: str, smtp_starttls_server: SmtpTestServer, smtp_implicit_tls_server: SmtpTestServer
) -> None:
    server = smtp_starttls_server if security == "starttls" else smtp_implicit_tls_server
    transport = SmtpTransport(
        SmtpConfig(host="127.0.0.1", port=server.port, security=security, timeout=5), None
    )
    with pytest.raises(UnavailableError, match=r"TLS failed.*certificate"):
        transport.send(compose("suspended", "a@example.net", PERSON, config=MAIL, clock=CLOCK))
    assert server.received == []


def test_transport_from_config(tmp_path: Path) -> None:
    outbox = transport_from_config(make_config(tmp_path), None)
    assert isinstance(outbox, OutboxTransport)
    assert outbox.folder == tmp_path / "data" / "outbox"
    smtp = transport_from_config(make_config(tmp_path, transport="smtp"), None)
    assert isinstance(smtp, SmtpTransport)


# --- queue and mailer ------------------------------------------------------------------------


def fresh_link_issuer(issued: list[str]) -> LinkIssuer:
    def issue(account: str, purpose: str, params: Mapping[str, str]) -> str:
        token = f"FRESH{len(issued)}{purpose}"
        issued.append(token)
        return f"https://ent.example.org/{purpose}?token={token}"

    return issue


def test_smtp_down_queues_then_flush_delivers_each_once(
    tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    config = make_config(tmp_path)
    smtp_server.stop()
    with (
        MailQueue(queue_path(config)) as queue,
        SmtpTransport(plain_smtp(smtp_server), None) as transport,
    ):
        mailer = Mailer(config, transport, queue, CLOCK)
        results = [
            mailer.send(f"p{n}@um.fr", "suspended", f"p{n}@example.net", PERSON) for n in range(5)
        ]
        assert [result.sent for result in results] == [False] * 5
        assert all(result.error and "refused" in result.error for result in results)
        assert [mail.account for mail in mailer.pending()] == [f"p{n}@um.fr" for n in range(5)]
        assert [mail.account for mail in mailer.pending("p3@um.fr")] == ["p3@um.fr"]

    smtp_server.start()
    issued: list[str] = []
    with (
        MailQueue(queue_path(config)) as queue,
        SmtpTransport(plain_smtp(smtp_server), None) as transport,
    ):
        mailer = Mailer(config, transport, queue, CLOCK)
        first = mailer.flush(fresh_link_issuer(issued), limit=3)
        second = mailer.flush(fresh_link_issuer(issued))
        third = mailer.flush(fresh_link_issuer(issued))

    assert (first.sent, first.remaining, first.stopped) == (3, 2, None)
    assert (second.sent, second.remaining) == (2, 0)
    assert (third.sent, third.remaining) == (0, 0)
    assert sorted(mail.rcpt_tos[0] for mail in smtp_server.received) == [
        f"p{n}@example.net" for n in range(5)
    ]
    assert issued == []


class CountingDeadTransport(OutboxTransport):
    """Counts attempts and fails every one, as an unreachable relay would."""

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, message: EmailMessage) -> None:
        self.attempts += 1
        raise UnavailableError("SMTP relay 192.0.2.1:587: cannot connect: timed out")


def test_after_one_relay_failure_the_rest_of_the_run_is_queued_directly(tmp_path: Path) -> None:
    transport = CountingDeadTransport()
    with MailQueue(tmp_path / "q.db") as queue:
        mailer = Mailer(make_config(tmp_path), transport, queue, CLOCK)
        results = [
            mailer.send("a@um.fr", "suspended", f"p{n}@example.net", PERSON) for n in range(100)
        ]
        report = mailer.flush(fresh_link_issuer([]))

    assert transport.attempts == 1
    assert [result.queued_id for result in results] == list(range(1, 101))
    assert mailer.relay_failure is not None and "timed out" in mailer.relay_failure
    assert (report.sent, report.remaining) == (0, 100)
    assert report.stopped == mailer.relay_failure


def test_security_2_queued_activation_gets_a_fresh_link_and_the_queue_never_holds_a_token(
    tmp_path: Path, smtp_server: SmtpTestServer
) -> None:
    config = make_config(tmp_path)
    old_token = "OLDTOKENb64url_9f8e7d6c5b4a"
    smtp_server.stop()
    with (
        MailQueue(queue_path(config)) as queue,
        SmtpTransport(plain_smtp(smtp_server), None) as transport,
    ):
        result = Mailer(config, transport, queue, CLOCK).send(
            "zoe.lefevre@um.fr", "activation", "zoe@example.net", PERSON,
            link=f"https://ent.example.org/activation?token={old_token}", link_purpose="activation",
        )  # fmt: skip
        [queued] = queue.pending()
    assert not result.sent
    assert queued.link_purpose == "activation"
    assert "link" not in queued.params

    smtp_server.start()
    issued: list[tuple[str, str]] = []

    def issuer(mail: QueuedMail) -> str:
        assert mail.link_purpose is not None
        issued.append((mail.account, mail.link_purpose))
        return "https://ent.example.org/activation?token=NEWTOKEN42"

    with (
        MailQueue(queue_path(config)) as queue,
        SmtpTransport(plain_smtp(smtp_server), None) as transport,
    ):
        report = Mailer(config, transport, queue, CLOCK).flush(issuer)

    assert report.sent == 1
    assert issued == [("zoe.lefevre@um.fr", "activation")]
    body = smtp_server.received[0].message.get_content()
    assert "token=NEWTOKEN42" in body
    assert old_token not in body
    assert "valable 24 heures" in body
    for stored in queue_path(config).parent.iterdir():
        content = stored.read_bytes()
        assert old_token.encode() not in content
        assert b"NEWTOKEN42" not in content


def test_queue_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mailqueue.db"
    with MailQueue(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_opening_an_existing_queue_writes_nothing(tmp_path: Path) -> None:
    """``show`` reads the queue: each opening used to rewrite its version (a synced write)."""
    path = tmp_path / "mailqueue.db"
    with MailQueue(path) as queue:
        queue.add(account="a@um.fr", recipient="a@example.net", kind="suspended", params={},
                  link_purpose=None, now=NOW)  # fmt: skip
    written = path.read_bytes()[24:28]  # SQLite's file change counter
    with MailQueue(path) as queue:
        assert len(queue.pending(account="a@um.fr")) == 1
    assert path.read_bytes()[24:28] == written


def test_link_must_come_with_its_purpose_and_never_as_a_parameter(tmp_path: Path) -> None:
    with MailQueue(tmp_path / "q.db") as queue:
        mailer = Mailer(make_config(tmp_path), OutboxTransport(tmp_path / "out"), queue, CLOCK)
        with pytest.raises(InvalidInputError, match="reserved"):
            mailer.send(
                "a@um.fr", "activation", "a@example.net", {**PERSON, "link": "https://x/?token=1"}
            )
        with pytest.raises(InvalidInputError, match="purpose"):
            mailer.send("a@um.fr", "activation", "a@example.net", PERSON, link="https://x/?token=1")
        with pytest.raises(InvalidInputError, match="expected one of"):
            mailer.send(
                "a@um.fr",
                "activation",
                "a@example.net",
                PERSON,
                link="https://x/",
                link_purpose="login",
            )
        assert queue.pending() == []


def test_invalid_input_is_raised_not_queued(tmp_path: Path) -> None:
    with MailQueue(tmp_path / "q.db") as queue:
        mailer = Mailer(make_config(tmp_path), CountingDeadTransport(), queue, CLOCK)
        with pytest.raises(InvalidInputError):
            mailer.send("a@um.fr", "suspended", "not an address", PERSON)
        assert queue.pending() == []


def test_sent_mail_uses_the_configured_reset_lifetime(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with MailQueue(tmp_path / "q.db") as queue:
        result = Mailer(config, OutboxTransport(tmp_path / "out"), queue, CLOCK).send(
            "a@um.fr",
            "reset",
            "a@example.net",
            PERSON,
            link="https://ent.example.org/reset?token=x",
            link_purpose="reset",
        )
    assert result.sent and result.message_id
    [eml] = (tmp_path / "out").iterdir()
    body = parse(eml.read_bytes()).get_content()
    assert "valable 1 heure" in body and "valid for 1 hour" in body


def test_a_message_failing_on_its_own_is_recorded_and_the_flush_goes_on(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with MailQueue(tmp_path / "q.db") as queue:
        queue.add(
            account="a@um.fr",
            recipient="a@example.net",
            kind="gone_kind",
            params=PERSON,
            link_purpose=None,
            now=NOW,
        )
        queue.add(
            account="b@um.fr",
            recipient="b@example.net",
            kind="suspended",
            params=PERSON,
            link_purpose=None,
            now=NOW,
        )
        report = Mailer(config, OutboxTransport(tmp_path / "out"), queue, CLOCK).flush(
            fresh_link_issuer([])
        )
        [left] = queue.pending()

    assert (report.sent, report.remaining) == (1, 1)
    assert [(failure.id, failure.kind) for failure in report.failures] == [(1, "gone_kind")]
    assert (left.attempts, left.last_error) == (1, "no mail template for kind 'gone_kind'")


def test_two_flushes_never_run_at_once(tmp_path: Path) -> None:
    with MailQueue(tmp_path / "q.db") as queue, queue.flush_lock():
        mailer = Mailer(
            make_config(tmp_path),
            OutboxTransport(tmp_path / "out"),
            MailQueue(tmp_path / "q.db"),
            CLOCK,
        )
        with pytest.raises(TemporaryError, match="another"):
            mailer.flush(fresh_link_issuer([]))


def test_discard_removes_only_unsent_mail(tmp_path: Path) -> None:
    with MailQueue(tmp_path / "q.db") as queue:
        first = queue.add(
            account="a",
            recipient="a@example.net",
            kind="suspended",
            params={},
            link_purpose=None,
            now=NOW,
        )
        second = queue.add(
            account="b",
            recipient="b@example.net",
            kind="suspended",
            params={},
            link_purpose=None,
            now=NOW,
        )
        queue.mark_sent(second, NOW)
        assert queue.discard(first)
        assert not queue.discard(second)
        assert queue.count_pending() == 0


def test_reading_the_queue_loads_neither_composition_nor_smtp() -> None:
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, umacct.mail.queue; print(sorted(set(sys.modules) & {'smtplib', 'email_validator', 'umacct.mail.compose'}))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert loaded == "[]"


def test_the_outbox_and_a_plain_directory_connection_load_neither_smtplib_nor_our_tls() -> None:
    """A run that writes to the outbox over ldap:// or ldapi:// never needs them."""
    import subprocess
    import sys

    probe = (
        "import sys, umacct.mail.transport, umacct.directory.connection, umacct.services.sweep\n"
        "print(sorted(m for m in ('smtplib', 'umacct.mail.smtp', 'umacct.directory.tls')"
        " if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"
