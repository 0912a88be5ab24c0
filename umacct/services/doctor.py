"""``doctor``: check, one by one, everything the tool needs, and say how to fix what fails."""

from __future__ import annotations

import os
import secrets as pysecrets
import smtplib
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from umacct.config import WHY_MAIL, WHY_SERVER, Config, state_backend
from umacct.datadir import (
    QUEUE_FILE,
    STATE_FILE,
    FileProblem,
    ensure_private_dir,
    find_read_folder_problem,
    find_read_problem,
    find_written_problem,
)
from umacct.errors import BindRefusedError, UmacctError
from umacct.secrets import Prompt, SecretKind, find_secret

if TYPE_CHECKING:
    from umacct.directory import Directory

PPOLICY_CONTROL = "1.3.6.1.4.1.42.2.27.8.5.1"
PPOLICY_ATTRIBUTES = ("pwdEndTime", "pwdChangedTime", "pwdAccountLockedTime")
OBJECT_CLASSES = ("inetOrgPerson", "eduPerson", "supannPerson")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    level: str = ""
    """``warn``: passes but needs a look; ``skip``: not run (doctor writes only when asked)."""
    data: Mapping[str, object] = field(default_factory=dict)
    """What the check found, for ``--json`` (the server's URL and TLS, the bind's identity...)."""

    @property
    def status(self) -> str:
        """``ok``, ``WARN``, ``skip`` or ``FAIL``."""
        if not self.ok:
            return "FAIL"
        return {"warn": "WARN", "skip": "skip"}.get(self.level, "ok")


@dataclass(frozen=True)
class DoctorReport:
    """All checks, in the order they ran."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(check.ok for check in self.checks)


def required_attributes(config: Config) -> list[str]:
    """Every attribute name the configuration makes the tool read or write."""
    names = [config.directory.profile_attribute, *vars(config.attributes).values()]
    for profile in config.profiles.values():
        names += [profile.end_date_attribute, profile.external_id_attribute]
    names += config.staff.editable_attributes
    if config.antispam is not None:
        names.append(config.antispam.attribute)
    unique: dict[str, str] = {}
    for name in names:
        unique.setdefault(name.lower(), name)
    return list(unique.values())


def run_doctor(
    config: Config, prompt: Prompt | None = None, *, write_test: bool = False
) -> DoctorReport:
    """Run every check against the configured directory, data dir and mail transport.

    It writes nothing (no probe entry, no folder made) unless ``write_test``.
    """
    return DoctorReport(list(_checks(config, prompt, write_test)))


def _checks(config: Config, prompt: Prompt | None, write_test: bool) -> Iterator[Check]:
    from umacct.services import doctor_directory as more

    yield Check("configuration", True, f"{config.source} is valid")
    yield from _local_checks(config, write_test)
    yield more.state_backend_check(config)
    from umacct.directory import connect, needs_password

    password: str | None = None
    source = "none: SASL EXTERNAL"
    if needs_password(config.directory):
        try:
            found = find_secret(SecretKind.DIRECTORY, config, prompt)
        except UmacctError as error:
            yield Check("bind password", False, error.message, "umacct secret set directory")
            return
        yield Check("bind password", True, f"found ({found.source})")
        password, source = found.value, found.source
    else:
        yield Check("bind password", True, "none needed: SASL EXTERNAL over ldapi")
    try:
        directory = connect(config.directory, password)
    except BindRefusedError as error:
        yield Check("connection", False, error.message, bind_refused_fix(config, source))
        return
    except UmacctError as error:
        yield Check("connection", False, error.message, _connection_fix(config))
        return
    with directory:
        yield more.connection_check(directory)
        yield _guard("bind", lambda: more.identity_check(directory, config))
        if write_test:
            yield _guard("write access", lambda: _write_check(directory, config))
        else:
            yield Check(
                "write access",
                True,
                "not tested: 'umacct doctor --write-test' adds and deletes a probe entry",
                level="skip",
            )
        yield from _schema_checks(directory, config)
        yield from _guarded("state branch", more.state_branch_checks(directory, config, write_test))
    yield _guard("replication", lambda: more.replication_check(config, password))


def _guard(name: str, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except UmacctError as error:
        return Check(name, False, error.message)


def _guarded(name: str, checks: Iterator[Check]) -> Iterator[Check]:
    try:
        yield from checks
    except UmacctError as error:
        yield Check(name, False, error.message)


def _connection_fix(config: Config) -> str:
    return (
        "check [directory] urls, that the server runs and is reachable, and the TLS settings "
        f"(tls = {config.directory.tls!r}, ca_file)"
    )


def bind_refused_fix(config: Config, source: str) -> str:
    """What to correct when the server refuses the bind: the password where doctor found it."""
    settings = config.directory
    if source == "none: SASL EXTERNAL":
        return (
            "map the tool's OS user to an entry with an olcAuthzRegexp rule (docs/directory.md), "
            'or use bind_method = "simple"'
        )
    store = "'umacct secret set directory'"
    if source.startswith("file "):
        action = f"write the right one into {source.removeprefix('file ')} (mode 0600)"
    elif source.startswith("systemd credential "):
        credential = source.rsplit(maxsplit=1)[-1]
        action = f"update the file the unit's LoadCredential= gives as {credential}"
    elif source.startswith("$"):
        action = f"correct {source}, or unset it and run {store}"
    elif source == "keyring":
        action = f"store the right one with {store} (keyring service 'umacct', user the bind DN)"
    else:
        action = f"type it again, or store it with {store}"
    return (
        f"the password came from {source}: {action}; and check [directory] bind_dn = "
        f"{settings.bind_dn}"
    )


def _write_check(directory: Directory, config: Config) -> Check:
    from umacct.directory.escape import dn_join
    from umacct.services.doctor_directory import probe_check

    name = f"umacct-doctor-{pysecrets.token_hex(4)}"
    probe = dn_join("cn", name, config.directory.people_dn)
    attributes = {"objectClass": ["organizationalRole"], "cn": [name]}
    where = config.directory.people_dn
    fix = "the tool's DN needs write access to the people branch"
    return probe_check("write access", directory, probe, attributes, where, fix)


def _schema_checks(directory: Directory, config: Config) -> Iterator[Check]:
    try:
        schema = directory.subschema()
    except UmacctError as error:
        yield Check("schema", False, f"cannot read the subschema: {error.message}")
        return
    missing = [a for a in required_attributes(config) if a.lower() not in schema.attribute_types]
    yield Check(
        "schema: attributes",
        not missing,
        f"missing: {', '.join(missing)}" if missing else "every configured attribute is defined",
        "load the SUPANN and eduPerson schemas on the server, or point [attributes] at the site's names"
        if missing
        else "",
    )
    missing_classes = [c for c in OBJECT_CLASSES if c.lower() not in schema.object_classes]
    yield Check(
        "schema: object classes",
        not missing_classes,
        f"missing: {', '.join(missing_classes)}" if missing_classes else ", ".join(OBJECT_CLASSES),
        "load the SUPANN and eduPerson schemas on the server" if missing_classes else "",
    )
    dse = {name.lower(): values for name, values in directory.root_dse().items()}
    controls = dse.get("supportedcontrol", [])
    ppolicy_attributes = [a for a in PPOLICY_ATTRIBUTES if a.lower() not in schema.attribute_types]
    ppolicy_ok = PPOLICY_CONTROL in controls and not ppolicy_attributes
    yield Check(
        "password policy",
        ppolicy_ok,
        "ppolicy overlay active (pwdEndTime enforced by the server)"
        if ppolicy_ok
        else "the ppolicy overlay is not active: expired accounts could still log in",
        "load the ppolicy module and add the overlay to the accounts' database"
        if not ppolicy_ok
        else "",
    )


def _local_checks(config: Config, write_test: bool) -> Iterator[Check]:
    data_dir = Path(config.paths.data_dir)
    yield from _file_checks(config)
    yield _writable_dir("data dir", data_dir, make=write_test)
    yield _state_store_check(config)
    yield _written_file("mail queue", data_dir / QUEUE_FILE)
    audit = config.paths.audit_log_path
    audit_folder = _writable_dir("audit log", audit.parent, "audit log folder", make=write_test)
    yield _written_file("audit log", audit) if audit_folder.ok else audit_folder
    yield _syslog_check(config)
    # As the purge checks it before it deletes anything (made 0700 on first use).
    archive = config.paths.archive_path
    yield _writable_dir("archive folder", archive, "archive folder", make=write_test)
    if config.mail.transport == "outbox":
        yield _outbox_check(config, write_test)
    else:
        yield _guard("mail transport", lambda: _smtp_check(config))


def _state_store_check(config: Config) -> Check:
    """The SQLite file, or (directory backend) where the state is: not a file of this host."""
    state_db = Path(config.paths.data_dir) / STATE_FILE
    if state_backend(config) != "directory":
        return _written_file("state store", state_db)
    detail = (
        f"directory: {config.directory.state_dn} (the 'state branch' rows), "
        "no state file on this host"
    )
    if os.path.lexists(state_db):
        detail += f"; {state_db} is not used (left from before 'umacct state migrate'?)"
    return Check("state store", True, detail)


def _syslog_check(config: Config) -> Check:
    """``[audit] syslog``: whether the copy of each record can reach the system logger."""
    from umacct.audit_syslog import syslog_problem

    socket_path = config.audit.syslog_socket
    if not config.audit.syslog:
        return Check("audit syslog", True, "off: the records go to the audit log file only")
    problem = syslog_problem(socket_path)
    if problem:
        return Check(
            "audit syslog",
            False,
            f"cannot reach syslog at {socket_path}: {problem}; the records would go to the "
            "audit log file only",
            "start the system logger (systemd-journald or rsyslog), or set [audit] "
            "syslog_socket to its socket, or syslog = false",
        )
    return Check(
        "audit syslog",
        True,
        f"each record is also sent to {socket_path} (facility auth, tag umacct)",
    )


def _outbox_check(config: Config, write_test: bool) -> Check:
    folder = _writable_dir("mail transport", config.outbox_dir, "outbox", make=write_test)
    if not folder.ok:
        return folder
    return Check(
        "mail transport",
        True,
        f"outbox {config.outbox_dir}: messages are written there, nothing delivers them by "
        "itself: nobody receives a link until they are sent on",
        'to send mail, set [mail] transport = "smtp" and [mail.smtp]',
        level="warn",
    )


def _file_checks(config: Config) -> Iterator[Check]:
    """The files the tool reads: whoever may rewrite one could steer the tool (requirement 31).

    Loading the configuration refuses each of these already; the rows say what was checked.
    """
    if config.source is not None:
        yield _read_check(
            "configuration file",
            find_read_problem(config.source, WHY_SERVER),
            config.source,
        )
    ca_file = config.directory.ca_file
    if ca_file:
        yield _read_check("CA file", find_read_problem(Path(ca_file), WHY_SERVER), ca_file)
    else:
        yield Check("CA file", True, "none configured: the system's trust store")
    templates = config.mail.templates_dir
    if templates:
        problem = find_read_folder_problem(Path(templates), WHY_MAIL)
        yield _read_check("templates", problem, f"{templates} and every file in it")
    else:
        yield Check("templates", True, "the shipped templates")


def _read_check(name: str, problem: FileProblem | None, what: object) -> Check:
    if problem:
        return Check(name, False, f"{problem.path}: {problem.problem}", problem.fix)
    return Check(name, True, f"{what}: writable only by root or the tool's user")


def _written_file(name: str, path: Path) -> Check:
    problem = find_written_problem(path)
    if problem:
        return Check(name, False, f"{problem.path}: {problem.problem}", problem.fix)
    if not os.path.lexists(path):
        return Check(name, True, f"{path} not created yet (made 0600 on first use)")
    return Check(name, True, f"{path}: a file of the tool's user, writable by no one else")


def _writable_dir(
    name: str, path: Path, what: str = "data dir", detail: str | None = None, *, make: bool
) -> Check:
    problem = find_written_problem(path, folder=True)
    if problem:
        return Check(name, False, f"{problem.path}: {problem.problem}", problem.fix)
    if not make and not os.path.lexists(path):
        return _future_dir(name, path)
    try:
        if make:
            ensure_private_dir(path, what)
        writable = os.access(path, os.W_OK | os.X_OK)
    except UmacctError as error:
        return Check(name, False, error.message, f"give the tool's user a private folder {path}")
    if not writable:
        return Check(
            name, False, f"{path} is not writable", f"give the tool's user write access to {path}"
        )
    return Check(name, True, detail or f"{path} is writable, and no one else's")


def _future_dir(name: str, path: Path) -> Check:
    """A folder not made yet: doctor does not make it; say whether the tool could."""
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        return Check(
            name,
            False,
            f"{path} does not exist and {parent} is not writable",
            f"make {path} (mode 0700) for the tool's user",
        )
    return Check(name, True, f"{path} not created yet (made 0700 on first use)")


def _smtp_check(config: Config) -> Check:
    """Connect to the relay, say EHLO, STARTTLS and AUTH when configured; send nothing."""
    from umacct.mail.smtp import SmtpTransport

    smtp = config.mail.smtp
    password = find_secret(SecretKind.SMTP, config).value if smtp.username else None
    SmtpTransport(smtp, password)  # the settings every command would refuse
    where = f"SMTP {smtp.host}:{smtp.port}"
    steps: list[str] = []
    try:
        steps = smtp_handshake(config, password)
    except (OSError, smtplib.SMTPException, _HandshakeError) as error:
        done = f" after {', '.join(steps)}" if steps else ""
        return Check(
            "mail transport",
            False,
            f"{where}: {_smtp_words(error)}{done}",
            "check [mail.smtp] host, port and security, that the relay runs, and the SMTP "
            "password ('umacct secret set smtp')",
        )
    return Check("mail transport", True, f"{where}: {', '.join(steps)}")


class _HandshakeError(Exception):
    """The relay answered, but not what the configuration needs."""


def smtp_handshake(config: Config, password: str | None) -> list[str]:
    """Connect, EHLO, STARTTLS (``starttls``), AUTH (with a username): the steps done."""
    smtp = config.mail.smtp
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    steps = ["connected" + (" (TLS, certificate verified)" if smtp.security == "tls" else "")]
    try:
        code, _ = client.ehlo()
        if not 200 <= code < 300:
            raise _HandshakeError(f"EHLO answered {code}")
        steps.append("EHLO")
        if smtp.security == "starttls":
            if not client.has_extn("starttls"):
                raise _HandshakeError("the relay does not offer STARTTLS")
            client.starttls(context=context)
            client.ehlo()
            steps.append("STARTTLS (certificate verified)")
        if smtp.username:
            if not client.has_extn("auth"):
                raise _HandshakeError("the relay does not offer AUTH")
            client.login(smtp.username, password or "")
            steps.append(f"AUTH as {smtp.username}")
        client.quit()
    finally:
        client.close()
    return steps


def _smtp_words(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return "the relay refused the login: check the SMTP password"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, smtplib.SMTPResponseException):
        answer = error.smtp_error
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
        return f"the relay answered {error.smtp_code} {text}"
    if isinstance(error, smtplib.SMTPException):
        return str(error) or type(error).__name__
    if isinstance(error, OSError):
        return f"connection failed: {error.strerror or error or type(error).__name__}"
    return str(error) or type(error).__name__


def config_refusals(config: Config) -> None:
    """Raise ConfigError for what every command would refuse at its first connection.

    Cleartext to a directory server that is not loopback or ldapi, an unusable directory
    URL, SMTP in clear to a relay that is not loopback.
    """
    from umacct.directory.connection import check_cleartext, parse_url
    from umacct.mail.smtp import SmtpTransport

    check_cleartext([parse_url(url) for url in config.directory.urls], config.directory.tls)
    if config.mail.transport == "smtp":
        SmtpTransport(config.mail.smtp, "unused: the settings only")
