"""Whom the web host binds as: the tool's DN, or ``[web] bind_dn`` (narrower, docs/web.md).

With ``[web] bind_dn`` every connection the pages open (the run's, and the one a held lease
renews on) binds with that DN and its password, looked up like the tool's: a systemd
credential (``umacct-web-bind-password``), the keyring (``umacct secret set
web-directory``), then ``$UMACCT_WEB_BIND_PASSWORD``. It never falls back to the tool's
DN: a web host given a narrower DN must not hold the wider one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from umacct.clock import Clock
from umacct.config import Config
from umacct.errors import ConfigError
from umacct.secrets import SecretKind, credential_name, env_var, find_secret
from umacct.services.runtime import Runtime
from umacct.web.settings import WebSettings

if TYPE_CHECKING:
    from umacct.directory import Directory


@dataclass
class WebRuntime(Runtime):
    """A runtime whose directory connections bind as ``web_bind_dn``."""

    web_bind_dn: str = ""

    def connect_directory(self) -> Directory:
        """A new connection, bound as the web host's own DN."""
        from umacct.directory import connect

        settings = dataclasses.replace(
            self.config.directory,
            bind_dn=self.web_bind_dn,
            bind_method="simple",
            bind_password_file=None,
        )
        password = find_secret(SecretKind.WEB_DIRECTORY, self.config)
        return connect(settings, password.value)


def web_runtimes(config: Config, settings: WebSettings, clock: Clock) -> Callable[[], Runtime]:
    """How the pages make a runtime: bound as ``[web] bind_dn`` when set, else as the tool."""
    bind_dn = settings.bind_dn
    if bind_dn:
        return lambda: WebRuntime(config, clock=clock, web_bind_dn=bind_dn)
    return lambda: Runtime(config, clock=clock)


def check_web_bind_password(config: Config, settings: WebSettings) -> None:
    """Refuse to serve (ConfigError, exit 78) when ``[web] bind_dn`` has no password stored.

    Every form would fail otherwise; the server checks it once, at start. Nobody is asked:
    a server has no terminal to ask on.
    """
    if not settings.bind_dn:
        return
    kind = SecretKind.WEB_DIRECTORY
    try:
        find_secret(kind, config)
    except ConfigError as error:
        if not error.message.startswith(f"no {kind} password"):
            raise ConfigError(f"[web] bind_dn {settings.bind_dn}: {error.message}") from None
        raise ConfigError(
            f"[web] bind_dn {settings.bind_dn} has no password stored: store it with "
            f"'umacct secret set {kind}', or put it in ${env_var(kind)}, or give the service "
            f"the systemd credential {credential_name(kind)} (LoadCredential=)"
        ) from None
