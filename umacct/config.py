"""The configuration file: where it is found, what it may hold, and its validation.

The file is TOML, read with ``tomllib``. Every table maps onto a frozen dataclass below;
the dataclasses are the contract that services and outside scripts rely on. Loading
checks every key: an unknown key, a value of the wrong type or a missing required key
raises one ``ConfigError`` that names the file, the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from umacct.datadir import check_read_file, find_read_folder_problem
from umacct.errors import ConfigError
from umacct.loopback import is_loopback_host

ENV_CONFIG = "UMACCT_CONFIG"
SYSTEM_CONFIG = Path("/etc/umacct/config.toml")
SECRET_WORDS = ("password", "passwd", "secret", "token")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WHY_SERVER = "that user could point the tool at a server of their own"
WHY_MAIL = "that user could write the tool's mail"
RECIPIENT_DELIMITERS = "+-_=!#$%&'*/?^`{|}~"
"""What may fold subaddresses (``+tag``): the local-part characters that are not letters,
digits or dots (RFC 5322 ``atext``)."""
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def parse_duration(text: str) -> int:
    """Turn ``"24h"``, ``"90m"``, ``"3600s"`` or ``"7d"`` into seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as '24h', '30m' or '7d', got {text!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


@dataclass(frozen=True)
class DirectoryConfig:
    """``[directory]``: how to reach and bind to the LDAP directory."""

    urls: list[str]
    bind_dn: str
    base_dn: str
    people_dn: str
    tls: str = "starttls"
    ca_file: str | None = None
    state_dn: str | None = None
    """The branch of the tool's own state (links, notices, purges, locks): docs/state.md."""
    profile_attribute: str = "supannCodePopulation"
    connect_timeout: int = 5
    receive_timeout: int = 30
    page_size: int = 500
    transactions: str = "off"
    """``auto``: bulk adds are committed together when the server allows it; ``off``: never."""
    bind_method: str = "simple"
    """``simple``: ``bind_dn`` and its password; ``sasl_external``: over ldapi://, no password."""
    follow_referrals: bool = False
    """Whether a referral is followed (one hop, same bind and TLS checks) or is an error."""
    bind_password_file: str | None = None
    """A file that holds the bind password (``ldapsearch -y``): mode 0600 (or 0400), owned
    by the user running the tool; for servers with no system keyring."""


@dataclass(frozen=True)
class AttributesConfig:
    """``[attributes]``: the directory's attribute names, SUPANN by default."""

    state: str = "supannRessourceEtat"
    state_date: str = "supannRessourceEtatDate"
    personal_mail: str = "supannMailPerso"
    recovery_mail: str = "supannMailPerso"
    forwarding: str = "mailForwardingAddress"
    alias_login: str = "supannAliasLogin"
    affiliation: str = "eduPersonAffiliation"
    primary_affiliation: str = "eduPersonPrimaryAffiliation"
    principal_name: str = "eduPersonPrincipalName"


@dataclass(frozen=True)
class PathsConfig:
    """``[paths]``: where the tool keeps its own files."""

    data_dir: str = "/var/lib/umacct"
    audit_log: str | None = None
    archive_dir: str | None = None
    """Where purge archives go (sites put it on shared or backed-up storage)."""

    @property
    def audit_log_path(self) -> Path:
        """The audit log, ``audit.jsonl`` in the data dir unless configured."""
        return Path(self.audit_log) if self.audit_log else Path(self.data_dir) / "audit.jsonl"

    @property
    def archive_path(self) -> Path:
        """The archive folder, ``archive`` in the data dir unless configured."""
        return Path(self.archive_dir) if self.archive_dir else Path(self.data_dir) / "archive"


@dataclass(frozen=True)
class AuditConfig:
    """``[audit]``: where the audit log goes besides its file."""

    syslog: bool = False
    """Also send every record to syslog (journald), where sites already centralise logs."""
    syslog_socket: str = "/dev/log"
    """The system logger's socket (a datagram socket: journald's or rsyslog's)."""


@dataclass(frozen=True)
class SmtpConfig:
    """``[mail.smtp]``: the relay used when ``transport = "smtp"``."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    timeout: int = 30
    connections: int = 4
    """How many connections a batch of messages is sent over at once (1: one at a time)."""


@dataclass(frozen=True)
class MailConfig:
    """``[mail]``: how the tool sends mail to people."""

    transport: str = "outbox"
    outbox_dir: str | None = None
    from_: str = "Comptes informatiques <no-reply@example.org>"
    templates_dir: str | None = None
    helpdesk: str | None = None
    """The helpdesk's address: told of extension requests that wait for a review."""
    recipient_delimiter: str = "+"
    """Folds ``name+tag@`` to ``name@`` in the loop and self-forward checks; ``""``: never."""
    smtp: SmtpConfig = field(default_factory=SmtpConfig)


@dataclass(frozen=True)
class LinksConfig:
    """``[links]``: the https pages a person opens with a token (``{token}`` is replaced)."""

    activation: str = "https://ent.example.org/activation?token={token}"
    reset: str = "https://ent.example.org/reset?token={token}"
    confirm: str = "https://ent.example.org/confirm?token={token}"
    extension: str = "https://ent.example.org/extension?token={token}"


@dataclass(frozen=True)
class TokensConfig:
    """``[tokens]``: lifetimes and rates of the links sent by mail."""

    activation_ttl: str = "24h"
    reset_ttl: str = "1h"
    confirm_ttl: str = "24h"
    reset_per_hour: int = 3


@dataclass(frozen=True)
class PolicyConfig:
    """``[policy]``: rules that hold for every profile."""

    timezone: str = "Europe/Paris"
    purge_after_days: int = 30
    warn_days_before_expiry: list[int] = field(default_factory=lambda: [30, 7])
    minimum_notice_days: int = 30
    max_changes_per_run: int = 500
    new_address_on_profile_change: bool = False
    """A person who takes a profile of another domain (a student who becomes staff) gets a new
    account there, linked to the old one, instead of the profile added to the old one."""
    password_min_length: int = 12
    reserved_local_parts: list[str] = field(
        default_factory=lambda: [
            "abuse", "admin", "administrator", "hostmaster", "info", "mailer-daemon",
            "no-reply", "noreply", "postmaster", "root", "security", "support", "webmaster",
        ]
    )  # fmt: skip


@dataclass(frozen=True)
class ProfileConfig:
    """``[profiles.<key>]``: one population and its rules."""

    label: str
    domain: str
    grace_months: int
    extendable: bool = False
    extension_months: int = 0
    max_extensions: int | None = None
    extension_approval: str | None = None
    """How a person's extension request is handled: ``auto`` (granted at once; the default of
    an extendable profile) or ``review`` (queued for ``umacct extension grant|refuse``)."""
    staff: bool = False
    end_date_attribute: str = "supannEmpDateFin"
    end_date_match: str | None = None
    """With a composite attribute (``supannEmpProfil``, ``supannExtProfil``): the
    ``key=value`` a value must hold (``population={SUPANN}ENS-VAC``); its ``datefin`` is the end."""
    external_id_attribute: str = "supannEmpId"
    affiliations: list[str] = field(default_factory=lambda: ["member"])
    affiliations_in_grace: list[str] = field(default_factory=lambda: ["affiliate"])


@dataclass(frozen=True)
class AntispamConfig:
    """``[antispam]``: the site's attribute for the antispam level, and its levels."""

    attribute: str
    levels: dict[str, str]


@dataclass(frozen=True)
class StaffConfig:
    """``[staff]``: what staff may change in their own directory entry."""

    editable_attributes: list[str] = field(
        default_factory=lambda: ["telephoneNumber", "roomNumber", "title", "postalAddress"]
    )


@dataclass(frozen=True)
class ReportsConfig:
    """``[reports]``: reminders sent by the reports."""

    notify_every_days: int = 30


@dataclass(frozen=True)
class StateConfig:
    """``[state]``: where the tool keeps its own state (docs/state.md)."""

    backend: str | None = None
    """``directory`` (under ``[directory] state_dn``, shared by every host) or ``sqlite``
    (``state.db`` in the data folder, one host); by default ``directory`` when ``state_dn``
    is set, else ``sqlite``."""


@dataclass(frozen=True)
class Config:
    """The whole validated configuration, and the file it came from."""

    directory: DirectoryConfig
    profiles: dict[str, ProfileConfig]
    attributes: AttributesConfig = field(default_factory=AttributesConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    state: StateConfig = field(default_factory=StateConfig)
    antispam: AntispamConfig | None = None
    web: dict[str, Any] = field(default_factory=dict)
    """``[web]``: what ``umacct serve`` needs (checked by ``umacct.web.settings``)."""
    source: Path | None = None

    @property
    def outbox_dir(self) -> Path:
        """The outbox folder, ``outbox`` in the data dir unless configured."""
        return Path(self.mail.outbox_dir or Path(self.paths.data_dir) / "outbox")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a TOML-ready dict, with the file's own key names."""
        document: dict[str, Any] = _to_dict(self)
        return document


# --- search -------------------------------------------------------------------------------


def candidate_paths(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The places searched for the configuration, in order."""
    if explicit:
        return [Path(explicit)]
    if os.environ.get(ENV_CONFIG):
        return [Path(os.environ[ENV_CONFIG])]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "umacct" / "config.toml", SYSTEM_CONFIG]


def example_config_text() -> str:
    """The commented example configuration shipped with the tool (``config.example.toml``)."""
    from importlib import resources

    return resources.files("umacct").joinpath("data/config.example.toml").read_text("utf-8")


def user_config_path() -> Path:
    """Where ``config init`` writes by default: the XDG config path."""
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "umacct" / "config.toml"


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the first configuration file that exists in the search order."""
    paths = candidate_paths(explicit)
    for path in paths:
        if path.is_file():
            return path
    if explicit or os.environ.get(ENV_CONFIG):
        raise ConfigError(f"{paths[0]}: no such configuration file")
    tried = ", ".join(str(p) for p in paths)
    raise ConfigError(
        f"no configuration file found (tried {tried}); "
        "create one with 'umacct config init' or pass --config FILE"
    )


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Find, read and validate the configuration."""
    path = find_config(explicit)
    check_not_writable_by_others(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    config = parse_config(raw, path)
    check_trusted_files(config)
    return config


def check_not_writable_by_others(path: Path) -> None:
    """Refuse a configuration file others may rewrite (security requirements 18 and 31).

    The file holds no secret (a key that looks like one is refused), but it names the
    directory server and its CA: whoever can write it could point the tool at a server of
    their own and collect the bind password. The file (a symbolic link's target) must be
    owned by root or the tool's user and writable by no one else, and so must every folder
    on its way (a folder with the sticky bit, as ``/tmp``, may be writable by others).
    """
    check_read_file(path, "configuration file", WHY_SERVER)


def check_trusted_files(config: Config) -> None:
    """Refuse a CA file, templates folder or template others may rewrite (requirement 31)."""
    if config.directory.ca_file:
        check_read_file(Path(config.directory.ca_file), "[directory] ca_file", WHY_SERVER)
    if config.mail.templates_dir:
        problem = find_read_folder_problem(Path(config.mail.templates_dir), WHY_MAIL)
        if problem:
            raise ConfigError(problem.message("[mail] templates_dir"))


def parse_config(raw: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a parsed TOML document and build the ``Config``."""
    where = str(source) if source else "<config>"
    try:
        config: Config = _build(Config, raw, "")
        _check_values(config)
    except _KeyProblem as problem:
        key = f"[{problem.table}] {problem.key}" if problem.table else problem.key
        raise ConfigError(f"{where}: {key}: {problem.expected}") from None
    return dataclasses.replace(config, source=source)


# --- validation ---------------------------------------------------------------------------


class _KeyProblem(Exception):
    def __init__(self, table: str, key: str, expected: str) -> None:
        super().__init__(f"{table} {key}: {expected}")
        self.table, self.key, self.expected = table, key, expected


def _toml_key(name: str) -> str:
    return name.rstrip("_")


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if origin is list:
        return (
            f"a list of {_describe(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
        )
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)  # fmt: skip


def _convert(tp: Any, value: Any, table: str, key: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = next(arg for arg in typing.get_args(tp) if arg is not type(None))
        return _convert(inner, value, table, key)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _KeyProblem(table, key, f"expected a table, got {_type_name(value)}")
        return _build(tp, value, f"{table}.{key}" if table else key)
    if origin is dict:
        value_type = typing.get_args(tp)[1]
        if not isinstance(value, dict):
            raise _KeyProblem(table, key, f"expected a table, got {_type_name(value)}")
        sub = f"{table}.{key}" if table else key
        return {k: _convert(value_type, v, sub, k) for k, v in value.items()}
    if origin is list:
        item_type = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise _KeyProblem(table, key, f"expected {_describe(tp)}, got {_type_name(value)}")
        for item in value:
            _check_scalar(item_type, item, table, key, _describe(tp))
        return list(value)
    _check_scalar(tp, value, table, key, _describe(tp))
    return value


def _check_scalar(tp: Any, value: Any, table: str, key: str, expected: str) -> None:
    ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    if not ok:
        raise _KeyProblem(table, key, f"expected {expected}, got {_type_name(value)} {value!r}")


def _build(cls: type[Any], raw: dict[str, Any], table: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {_toml_key(f.name): f for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in fields:
            if any(word in key.lower() for word in SECRET_WORDS):
                raise _KeyProblem(
                    table, key,
                    "secrets do not belong in the configuration file; store it with "
                    "'umacct secret set directory|smtp' or set $UMACCT_BIND_PASSWORD / "
                    "$UMACCT_SMTP_PASSWORD",
                )  # fmt: skip
            known = ", ".join(sorted(fields))
            raise _KeyProblem(table, key, f"unknown key (expected one of: {known})")
    values: dict[str, Any] = {}
    for key, fld in fields.items():
        if key in raw:
            values[fld.name] = _convert(hints[fld.name], raw[key], table, key)
        elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            raise _KeyProblem(table, key, f"missing required key ({_describe(hints[fld.name])})")
    return cls(**values)


def _check_policy(policy: PolicyConfig) -> None:
    try:
        ZoneInfo(policy.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _KeyProblem(
            "policy",
            "timezone",
            f"expected an IANA time zone such as 'Europe/Paris', got {policy.timezone!r}",
        ) from None
    if policy.purge_after_days < 0:
        raise _KeyProblem("policy", "purge_after_days", "expected 0 or more days")
    if any(days <= 0 for days in policy.warn_days_before_expiry):
        raise _KeyProblem("policy", "warn_days_before_expiry", "expected positive numbers of days")
    if not 0 <= policy.minimum_notice_days <= 3660:
        raise _KeyProblem("policy", "minimum_notice_days", "expected 0 to 3660 days")
    if policy.max_changes_per_run < 1:
        raise _KeyProblem("policy", "max_changes_per_run", "expected 1 or more accounts")
    if not 8 <= policy.password_min_length <= 256:
        raise _KeyProblem("policy", "password_min_length", "expected a length from 8 to 256")


def _check_bind_method(d: DirectoryConfig) -> None:
    if d.bind_method not in ("simple", "sasl_external"):
        raise _KeyProblem(
            "directory",
            "bind_method",
            f"expected 'simple' or 'sasl_external', got {d.bind_method!r}",
        )
    if d.bind_method == "sasl_external":
        remote = [url for url in d.urls if urlsplit(url).scheme != "ldapi"]
        if remote:
            raise _KeyProblem(
                "directory",
                "bind_method",
                "'sasl_external' binds over ldapi:// only (the directory's own host), "
                f"not over {', '.join(remote)}",
            )


def _check_profile(table: str, profile: ProfileConfig) -> None:
    if not _DOMAIN.match(profile.domain):
        raise _KeyProblem(table, "domain", f"expected a domain name, got {profile.domain!r}")
    if not 1 <= profile.grace_months <= 120:
        raise _KeyProblem(table, "grace_months", "expected a number of months from 1 to 120")
    if profile.extendable and profile.extension_months <= 0:
        raise _KeyProblem(
            table,
            "extension_months",
            "expected a positive number of months (the profile is extendable)",
        )
    if profile.max_extensions is not None and profile.max_extensions < 0:
        raise _KeyProblem(table, "max_extensions", "expected 0 or more")
    approval = profile.extension_approval
    if approval is not None and approval not in ("auto", "review"):
        raise _KeyProblem(
            table, "extension_approval", f"expected 'auto' or 'review', got {approval!r}"
        )
    match = profile.end_date_match
    if match is not None and (
        "=" not in match or not match.partition("=")[0] or "[" in match or "]" in match
    ):
        raise _KeyProblem(
            table, "end_date_match", f"expected key=value (population=...), got {match!r}"
        )


def _check_values(config: Config) -> None:
    d = config.directory
    if not d.urls:
        raise _KeyProblem("directory", "urls", "expected at least one URL")
    for url in d.urls:
        scheme = urlsplit(url).scheme
        if scheme not in ("ldap", "ldaps", "ldapi"):
            raise _KeyProblem(
                "directory", "urls", f"expected ldap://, ldaps:// or ldapi:// URLs, got {url!r}"
            )
    if d.tls not in ("starttls", "ldaps", "none"):
        raise _KeyProblem(
            "directory", "tls", f"expected 'starttls', 'ldaps' or 'none', got {d.tls!r}"
        )
    for name in ("connect_timeout", "receive_timeout", "page_size"):
        if getattr(d, name) <= 0:
            raise _KeyProblem("directory", name, "expected a positive integer")
    if d.transactions not in ("auto", "off"):
        raise _KeyProblem(
            "directory", "transactions", f"expected 'auto' or 'off', got {d.transactions!r}"
        )
    _check_bind_method(d)
    if d.bind_password_file is not None and not Path(d.bind_password_file).is_absolute():
        raise _KeyProblem("directory", "bind_password_file", "expected an absolute path")
    if not config.profiles:
        raise _KeyProblem("", "profiles", "expected at least one [profiles.<key>] table")
    for key, profile in config.profiles.items():
        _check_profile(f"profiles.{key}", profile)
    _check_policy(config.policy)
    if config.mail.transport not in ("outbox", "smtp"):
        raise _KeyProblem(
            "mail", "transport", f"expected 'outbox' or 'smtp', got {config.mail.transport!r}"
        )
    delimiter = config.mail.recipient_delimiter
    if len(delimiter) > 1 or (delimiter and delimiter not in RECIPIENT_DELIMITERS):
        raise _KeyProblem(
            "mail",
            "recipient_delimiter",
            f'expected one of the characters {RECIPIENT_DELIMITERS} or "" (off), got {delimiter!r}',
        )
    if config.mail.smtp.security not in ("starttls", "tls", "none"):
        raise _KeyProblem(
            "mail.smtp",
            "security",
            f"expected 'starttls', 'tls' or 'none', got {config.mail.smtp.security!r}",
        )
    if not 1 <= config.mail.smtp.connections <= MAX_SMTP_CONNECTIONS:
        raise _KeyProblem(
            "mail.smtp", "connections", f"expected 1 to {MAX_SMTP_CONNECTIONS} (smtp connections)"
        )
    for name in LINK_NAMES:
        link = getattr(config.links, name)
        if not _acceptable_link(link):
            raise _KeyProblem(
                "links",
                name,
                "expected an https:// URL containing {token} (http:// only on a loopback "
                f"address: 127.0.0.1, [::1], localhost), got {link!r}",
            )
    for name in ("activation_ttl", "reset_ttl", "confirm_ttl"):
        try:
            seconds = parse_duration(getattr(config.tokens, name))
        except ValueError as exc:
            raise _KeyProblem("tokens", name, str(exc)) from None
        if not 60 <= seconds <= 86400:
            raise _KeyProblem("tokens", name, "expected a duration from 1m to 24h")
    if config.tokens.reset_per_hour < 1:
        raise _KeyProblem("tokens", "reset_per_hour", "expected 1 or more")
    _check_state(config)


MAX_SMTP_CONNECTIONS = 16
"""The most ``[mail.smtp] connections`` allowed: beyond a few, the relay's limits bite first."""
LINK_NAMES = ("activation", "reset", "confirm", "extension")


def _acceptable_link(link: str) -> bool:
    """An https link with ``{token}``, or an http one to a loopback address (tests, demo)."""
    if "{token}" not in link:
        return False
    if link.startswith("https://"):
        return True
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme == "http" and host is not None and is_loopback_host(host)


STATE_BACKENDS = ("directory", "sqlite")


def state_backend(config: Config) -> str:
    """The state store in use: ``[state] backend``, else ``directory`` if ``state_dn`` is set."""
    if config.state.backend:
        return config.state.backend
    return "directory" if config.directory.state_dn else "sqlite"


def _dn_text(dn: str) -> str:
    """A DN lower-cased, without the spaces around its separators (enough to compare)."""
    return re.sub(r"\s*([,=+])\s*", r"\1", dn.strip().lower())


def _check_state(config: Config) -> None:
    backend, state_dn = config.state.backend, config.directory.state_dn
    if backend is not None and backend not in STATE_BACKENDS:
        raise _KeyProblem("state", "backend", f"expected 'directory' or 'sqlite', got {backend!r}")
    if state_dn is None:
        if backend == "directory":
            raise _KeyProblem(
                "state", "backend", "'directory' needs [directory] state_dn (the state's branch)"
            )
        return
    text, base = _dn_text(state_dn), _dn_text(config.directory.base_dn)
    if not text.startswith("ou=") or not text.endswith("," + base):
        raise _KeyProblem(
            "directory", "state_dn",
            f"expected a branch ou=...,{config.directory.base_dn} (below base_dn), got {state_dn!r}",
        )  # fmt: skip
    people = _dn_text(config.directory.people_dn)
    if text == people or text.endswith("," + people):
        raise _KeyProblem(
            "directory", "state_dn", f"expected a branch outside people_dn, got {state_dn!r}"
        )


def _to_dict(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for fld in dataclasses.fields(value):
            item = getattr(value, fld.name)
            if fld.name == "source" or item is None:
                continue
            out[_toml_key(fld.name)] = _to_dict(item)
        return out
    if isinstance(value, dict):
        return {k: _to_dict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dict(v) for v in value]
    return value
