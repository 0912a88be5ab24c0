"""Secrets (the bind and SMTP passwords, the web host's keys): files, keyring, environment, prompt.

No secret is ever read from the command line or the configuration file (security.md 10, 18).
The lookup order is, for the bind password, the file ``[directory] bind_password_file`` names
(mode 0600 or 0400, owned by the user running the tool, like ``ldapsearch -y``); then a
systemd credential (``LoadCredential=`` puts it in ``$CREDENTIALS_DIRECTORY``); then the
keyring (service ``umacct``); then an environment variable; then a prompt when the caller can
ask one (a terminal); otherwise a ``ConfigError`` names them all. Servers often have no
system keyring: the file and the systemd credential are the ways meant for them.

``umacct secret set`` refuses a keyring backend that keeps passwords in a plain file
(``keyrings.alt``'s ``PlaintextKeyring``) unless told so (``allow_plaintext``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from umacct.config import Config
from umacct.errors import ConfigError, RefusedError

KEYRING_SERVICE = "umacct"

Prompt = Callable[[str], str]


class SecretKind(StrEnum):
    """The secrets the tool knows about."""

    DIRECTORY = "directory"
    SMTP = "smtp"
    WEB = "web"
    """The key that signs the web pages' CSRF cookies (``umacct serve``): the same on every
    web host, so that a form served by one is accepted by another."""
    WEB_DIRECTORY = "web-directory"
    """The password of ``[web] bind_dn``, the narrower DN a web host binds with."""
    WEB_API = "web-api"
    """The bearer token callers of the JSON API (``/api/``) authenticate with."""


_ENV_VARS = {
    SecretKind.DIRECTORY: "UMACCT_BIND_PASSWORD",
    SecretKind.SMTP: "UMACCT_SMTP_PASSWORD",
    SecretKind.WEB: "UMACCT_WEB_SECRET",
    SecretKind.WEB_DIRECTORY: "UMACCT_WEB_BIND_PASSWORD",
    SecretKind.WEB_API: "UMACCT_WEB_API_TOKEN",
}
WEB_KEYRING_USER = "web:csrf"
_FIXED_KEYRING_USERS = {
    SecretKind.WEB: WEB_KEYRING_USER,
    SecretKind.WEB_DIRECTORY: "web:directory",
    SecretKind.WEB_API: "web:api",
}
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
"""Where systemd puts the service's credentials (``LoadCredential=NAME:PATH``)."""
_CREDENTIAL_NAMES = {
    SecretKind.DIRECTORY: "umacct-bind-password",
    SecretKind.SMTP: "umacct-smtp-password",
    SecretKind.WEB: "umacct-web-secret",
    SecretKind.WEB_DIRECTORY: "umacct-web-bind-password",
    SecretKind.WEB_API: "umacct-web-api-token",
}
MAX_SECRET_FILE = 4096


@dataclass(frozen=True)
class Secret:
    """A secret and where it came from; ``repr`` never shows the value."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, value='********')"


def credential_name(kind: SecretKind) -> str:
    """The systemd credential's name for this secret (``LoadCredential=<name>:<file>``)."""
    return _CREDENTIAL_NAMES[kind]


def env_var(kind: SecretKind) -> str:
    """The environment variable that may hold this secret."""
    return _ENV_VARS[kind]


def keyring_username(kind: SecretKind, config: Config) -> str:
    """The keyring entry's username: the bind DN, ``smtp:<user>@<host>``, or ``web:...``.

    The web host's secrets are ``web:csrf``, ``web:directory`` and ``web:api``.
    """
    if kind is SecretKind.DIRECTORY:
        return config.directory.bind_dn
    if kind in _FIXED_KEYRING_USERS:
        return _FIXED_KEYRING_USERS[kind]
    smtp = config.mail.smtp
    return f"smtp:{smtp.username}@{smtp.host}"


def _from_keyring(username: str) -> str | None:
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, username)
    except KeyringError:
        return None  # no usable backend on this machine: fall through to the environment


def read_secret_file(path: Path, what: str) -> str:
    """The secret a file holds (one trailing line break dropped).

    Refused (ConfigError, exit 78) unless it is a regular file, not a link, owned by the user
    running the tool, that no group or other user may read or write (mode 0600 or 0400):
    checked on the opened file itself, so that it cannot be swapped in between.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot open: {exc.strerror}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise ConfigError(
                f"{what} {path}: owned by uid {info.st_uid}, not by the user running umacct "
                f"(uid {os.geteuid()}): chown it"
            )
        if info.st_mode & 0o077:
            raise ConfigError(
                f"{what} {path}: mode {stat.S_IMODE(info.st_mode):04o} lets others read it: "
                f"chmod 600 {path}"
            )
        data = handle.read(MAX_SECRET_FILE + 1)
    if len(data) > MAX_SECRET_FILE:
        raise ConfigError(f"{what} {path}: more than {MAX_SECRET_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path}: not UTF-8 text") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value or any(ch in value for ch in "\r\n\0"):
        raise ConfigError(f"{what} {path}: expected one line holding the password")
    return value


def _from_credentials(kind: SecretKind) -> tuple[str, str] | None:
    """The systemd credential of this secret, if the service was given one."""
    folder = os.environ.get(CREDENTIALS_DIRECTORY)
    if not folder:
        return None
    path = Path(folder) / credential_name(kind)
    if not os.path.lexists(path):
        return None
    return read_secret_file(path, "systemd credential"), f"systemd credential {path.name}"


def find_secret(kind: SecretKind, config: Config, prompt: Prompt | None = None) -> Secret:
    """Look the secret up: its file, systemd credential, keyring, environment, ``prompt``."""
    password_file = config.directory.bind_password_file
    if kind is SecretKind.DIRECTORY and password_file:
        path = Path(password_file)
        return Secret(read_secret_file(path, "[directory] bind_password_file"), f"file {path}")
    credential = _from_credentials(kind)
    if credential is not None:
        return Secret(*credential)
    username = keyring_username(kind, config)
    value = _from_keyring(username)
    if value:
        return Secret(value, "keyring")
    value = os.environ.get(env_var(kind))
    if value:
        return Secret(value, f"${env_var(kind)}")
    if prompt is not None:
        value = prompt(f"Password for {username}")
        if value:
            return Secret(value, "prompt")
    raise ConfigError(
        f"no {kind} password: store it with 'umacct secret set {kind}' (keyring service "
        f"'{KEYRING_SERVICE}', user '{username}'), or {_places_without_keyring(kind)}, or run "
        "on a terminal to be asked"
    )


def _places_without_keyring(kind: SecretKind) -> str:
    """Where the secret may be kept on a server with no keyring, in words."""
    places = [
        f"a systemd credential named {credential_name(kind)} (LoadCredential=)",
        f"${env_var(kind)}",
    ]
    if kind is SecretKind.DIRECTORY:
        places.insert(0, "a file named by [directory] bind_password_file (mode 0600)")
    return ", ".join(places[:-1]) + f" or {places[-1]}"


def plaintext_backend() -> str | None:
    """The keyring backend's name when it keeps passwords in a plain file, else None."""
    import keyring

    backend = keyring.get_keyring()
    chain = getattr(backend, "backends", None) or [backend]
    for each in chain[:1]:  # a chain writes to its first backend
        name = f"{type(each).__module__}.{type(each).__name__}"
        if "plaintext" in name.lower() or name.startswith("keyrings.alt.file.Plaintext"):
            return name
    return None


def refuse_plaintext(kind: SecretKind) -> None:
    """RefusedError (exit 77) when the keyring backend keeps passwords in a plain file."""
    plain = plaintext_backend()
    if plain:
        raise RefusedError(
            f"the keyring backend {plain} keeps passwords in a plain file: refused; use a "
            f"system keyring, or {_places_without_keyring(kind)}, or --allow-plaintext to "
            "store it there anyway"
        )


def store_secret(
    kind: SecretKind, config: Config, value: str, *, allow_plaintext: bool = True
) -> str:
    """Save the secret in the keyring; return the keyring backend's name.

    With ``allow_plaintext`` False, a backend that writes passwords to a plain file is
    refused (RefusedError, exit 77), before anything is written.
    """
    import keyring
    from keyring.errors import KeyringError

    if not value or any(ch in value for ch in "\r\n\0"):
        raise ConfigError("refusing an empty password or one with a line break or NUL")
    if not allow_plaintext:
        refuse_plaintext(kind)
    try:
        keyring.set_password(KEYRING_SERVICE, keyring_username(kind, config), value)
    except KeyringError:
        raise ConfigError(
            "no system keyring on this machine (a server without a desktop session has none): "
            f"keep the {kind} secret in {_places_without_keyring(kind)} instead"
        ) from None
    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"
