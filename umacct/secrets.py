"""Secrets (the directory bind password, the SMTP password): keyring, environment, prompt.

No secret is ever read from the command line or the configuration file (security.md 10, 18).
The lookup order is the keyring (service ``umacct``), then an environment variable, then a
prompt when the caller can ask one (a terminal); otherwise a ``ConfigError`` names all three.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from umacct.config import Config
from umacct.errors import ConfigError, UnavailableError

KEYRING_SERVICE = "umacct"

Prompt = Callable[[str], str]


class SecretKind(StrEnum):
    """The secrets the tool knows about."""

    DIRECTORY = "directory"
    SMTP = "smtp"
    WEB = "web"
    """The key that signs the web pages' CSRF cookies (``umacct serve``): the same on every
    web host, so that a form served by one is accepted by another."""


_ENV_VARS = {
    SecretKind.DIRECTORY: "UMACCT_BIND_PASSWORD",
    SecretKind.SMTP: "UMACCT_SMTP_PASSWORD",
    SecretKind.WEB: "UMACCT_WEB_SECRET",
}
WEB_KEYRING_USER = "web:csrf"


@dataclass(frozen=True)
class Secret:
    """A secret and where it came from; ``repr`` never shows the value."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, value='********')"


def env_var(kind: SecretKind) -> str:
    """The environment variable that may hold this secret."""
    return _ENV_VARS[kind]


def keyring_username(kind: SecretKind, config: Config) -> str:
    """The keyring entry's username: the bind DN, ``smtp:<user>@<host>`` or ``web:csrf``."""
    if kind is SecretKind.DIRECTORY:
        return config.directory.bind_dn
    if kind is SecretKind.WEB:
        return WEB_KEYRING_USER
    smtp = config.mail.smtp
    return f"smtp:{smtp.username}@{smtp.host}"


def _from_keyring(username: str) -> str | None:
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, username)
    except KeyringError:
        return None  # no usable backend on this machine: fall through to the environment


def find_secret(kind: SecretKind, config: Config, prompt: Prompt | None = None) -> Secret:
    """Look the secret up: keyring, then environment, then ``prompt`` if given."""
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
        f"'{KEYRING_SERVICE}', user '{username}'), or set ${env_var(kind)}, or run on a terminal "
        "to be asked"
    )


def store_secret(kind: SecretKind, config: Config, value: str) -> str:
    """Save the secret in the keyring; return the keyring backend's name."""
    import keyring
    from keyring.errors import KeyringError

    if not value or any(ch in value for ch in "\r\n\0"):
        raise ConfigError("refusing an empty password or one with a line break or NUL")
    try:
        keyring.set_password(KEYRING_SERVICE, keyring_username(kind, config), value)
    except KeyringError as exc:
        raise UnavailableError(
            f"no usable keyring on this machine ({exc}); set ${env_var(kind)} instead"
        ) from exc
    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"
