"""Opening a bound connection: URL parsing, TLS policy, bounded failover, bind.

The tool opens its sockets itself (TCP, or the ldapi Unix socket), secures them with
``ssl`` (``tls``) and binds with requests encoded by ``ber``: each connection is one
``Wire``, which alone reads and writes its socket. Binds are simple (the service account's
DN and password) or SASL EXTERNAL over ldapi (the server maps the peer's OS user; no
password at all).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from umacct.config import DirectoryConfig
from umacct.directory import ber
from umacct.directory.results import INVALID_CREDENTIALS, SUCCESS, result_error
from umacct.directory.wire import Wire
from umacct.errors import (
    BindRefusedError,
    ConfigError,
    InvalidInputError,
    RefusedError,
    TemporaryError,
    UnavailableError,
)
from umacct.loopback import is_loopback_host

DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}
DEFAULT_LDAPI_SOCKET = "/var/run/slapd/ldapi"
TlsMode = Literal["starttls", "ldaps", "none"]
BIND_METHODS = ("simple", "sasl_external")


@dataclass(frozen=True)
class ServerAddress:
    """One directory server, from a normalised ``ldap://``, ``ldaps://`` or ``ldapi://`` URL."""

    scheme: Literal["ldap", "ldaps", "ldapi"]
    host: str
    """Host name or IP address; the socket path for ldapi."""
    port: int | None

    @property
    def url(self) -> str:
        """The canonical URL: explicit port, no trailing slash, percent-encoded socket path."""
        if self.scheme == "ldapi":
            return f"ldapi://{quote(self.host, safe='')}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def is_local(self) -> bool:
        """An ldapi socket or a loopback address (127.0.0.0/8, ::1, localhost)."""
        return self.scheme == "ldapi" or is_loopback_host(self.host)


def parse_url(url: str) -> ServerAddress:
    """Parse and normalise one directory URL; raise ConfigError when it is not usable.

    A trailing slash is dropped (ldap3 2.9.1 chokes on it); a URL with a DN, attributes or
    credentials in it is refused; ports default to 389 and 636.
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"directory URL {url!r}: {exc}") from None
    if scheme not in ("ldap", "ldaps", "ldapi"):
        raise ConfigError(f"directory URL {url!r}: expected ldap://, ldaps:// or ldapi://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"directory URL {url!r}: a DN or options in the URL are not supported")
    if parts.username is not None:
        raise ConfigError(f"directory URL {url!r}: credentials do not belong in the URL")
    if scheme == "ldapi":
        path = unquote(parts.netloc) or DEFAULT_LDAPI_SOCKET
        if not path.startswith("/"):
            raise ConfigError(f"directory URL {url!r}: the ldapi socket path must be absolute")
        return ServerAddress("ldapi", path, None)
    if not parts.hostname:
        raise ConfigError(f"directory URL {url!r}: no host name")
    return ServerAddress(scheme, parts.hostname, port or DEFAULT_PORTS[scheme])  # type: ignore[arg-type]


def tls_mode(address: ServerAddress, configured: str) -> TlsMode:
    """The TLS actually used for ``address``: ldaps:// implies ldaps, ldapi never needs TLS."""
    if address.scheme == "ldaps":
        return "ldaps"
    if address.scheme == "ldapi":
        return "none"
    if configured not in ("starttls", "ldaps", "none"):
        raise ConfigError(
            f"[directory] tls: expected 'starttls', 'ldaps' or 'none', got {configured!r}"
        )
    return configured  # type: ignore[return-value]


def check_cleartext(addresses: list[ServerAddress], configured: str) -> None:
    """Refuse cleartext to any server that is not loopback or ldapi (security requirement 17)."""
    remote = [a.url for a in addresses if tls_mode(a, configured) == "none" and not a.is_local]
    if remote:
        raise ConfigError(
            f"[directory] tls = 'none' sends the bind password in clear to {', '.join(remote)}; "
            "cleartext is allowed only to loopback or ldapi:// servers: use 'starttls' or 'ldaps'"
        )


class ServerFailure(Exception):
    """The server cannot be used now (down, TLS refused, busy); the next one may be tried."""


class InvalidCredentials(Exception):
    """The server answered the bind with invalidCredentials (49), ppolicy refusals included."""


def _open_socket(address: ServerAddress, timeout: float) -> socket.socket:
    """A connected socket to ``address``, each wait bounded by ``timeout``; ServerFailure."""
    try:
        if address.scheme == "ldapi":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address.host)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
    except OSError as exc:
        raise ServerFailure(f"cannot connect: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _secured(address: ServerAddress, settings: DirectoryConfig) -> Wire:
    """A connection to ``address``, secured as configured (TLS verified), not yet bound."""
    mode = tls_mode(address, settings.tls)
    context = None
    refused: tuple[type[Exception], ...] = ()  # what a handshake raises: ssl only for TLS
    if mode != "none":
        from umacct.directory.tls import TlsRefused, client_context

        refused = (TlsRefused,)
        context = client_context(settings.ca_file)  # ConfigError before any network access
    sock = _open_socket(address, settings.connect_timeout)
    try:
        if context is not None and mode == "ldaps":
            from umacct.directory.tls import handshake

            sock = handshake(sock, context, address.host)
        wire = Wire(sock, address.url)
        if context is not None and mode == "starttls":
            wire.start_tls(context, address.host)
    except refused as handshake_refused:
        sock.close()
        raise ServerFailure(str(handshake_refused)) from None
    except UnavailableError as lost:
        sock.close()
        raise ServerFailure(lost.message) from None
    return wire


def _bind_request(method: str, bind_dn: str, password: str | None) -> bytes:
    if method == "sasl_external":
        # An empty initial response: no authorisation identity of its own, the mapped one.
        return ber.sasl_bind_request("EXTERNAL", b"")
    # The password's bytes are sent as they are, without SASLprep.
    return ber.simple_bind_request(bind_dn, (password or "").encode("utf-8"))


def open_bound(
    address: ServerAddress,
    settings: DirectoryConfig,
    bind_dn: str,
    password: str | None,
    method: str = "simple",
) -> Wire:
    """Open a connection to one server, secure it as configured, bind; return it.

    ``method`` is ``simple`` (``bind_dn`` and ``password``) or ``sasl_external`` (ldapi only;
    no DN, no password). An empty password is refused before anything is sent (security
    requirement 11). Each network wait while opening is bounded by ``connect_timeout``;
    once bound, reads wait at most ``receive_timeout``. Raises ``ServerFailure`` when the
    server cannot be used, ``InvalidCredentials`` on result 49, the mapped error for any
    other refusal.
    """
    if method == "simple" and not password:
        raise InvalidInputError(f"bind as {bind_dn}: an empty password is refused")
    if method == "sasl_external" and address.scheme != "ldapi":
        raise ConfigError(
            f"[directory] bind_method = 'sasl_external' works over ldapi:// only, not {address.url}"
        )
    who = "SASL EXTERNAL" if method == "sasl_external" else bind_dn
    wire = _secured(address, settings)
    try:
        result = wire.exchange(
            "bind as", who, _bind_request(method, bind_dn, password), ber.BIND_RESPONSE
        )
    except UnavailableError as lost:
        raise ServerFailure(lost.message) from None
    if result.code != SUCCESS:
        wire.close()
        if result.code == INVALID_CREDENTIALS:
            raise InvalidCredentials(result.diagnostic)
        error = result_error("bind as", who, result.as_mapping())
        if isinstance(error, UnavailableError | TemporaryError):
            raise ServerFailure(error.message)
        raise error
    wire.set_timeout(settings.receive_timeout)
    return wire


def open_unbound(address: ServerAddress, settings: DirectoryConfig) -> Wire:
    """A connection to one server, secured as configured, that never binds: anonymous.

    What ``doctor`` uses to see what anybody may read. No DN and no password are sent.
    Raises ``ServerFailure`` when the server cannot be used.
    """
    wire = _secured(address, settings)
    wire.set_timeout(settings.receive_timeout)
    return wire


def bind_method(settings: DirectoryConfig) -> str:
    """The configured bind method, checked: ``simple`` or ``sasl_external``."""
    method = settings.bind_method
    if method not in BIND_METHODS:
        raise ConfigError(
            f"[directory] bind_method: expected 'simple' or 'sasl_external', got {method!r}"
        )
    return method


def needs_password(settings: DirectoryConfig) -> bool:
    """Whether binding as configured takes a password (not with SASL EXTERNAL)."""
    return bind_method(settings) == "simple"


def check_external(addresses: list[ServerAddress]) -> None:
    """SASL EXTERNAL is for the directory's own host: every URL must be an ldapi socket."""
    remote = [a.url for a in addresses if a.scheme != "ldapi"]
    if remote:
        raise ConfigError(
            "[directory] bind_method = 'sasl_external' binds over ldapi:// only (the server "
            f"maps the OS user of the socket's peer); not over {', '.join(remote)}"
        )


def checked_addresses(
    settings: DirectoryConfig, password: str | None
) -> tuple[list[ServerAddress], str | None]:
    """The servers to try, and the password to send (None with SASL EXTERNAL), once checked.

    ConfigError, before any network access, for no URL, cleartext to a remote server (SASL
    EXTERNAL: a URL that is not ldapi) or a missing or empty password (an empty one would make
    the simple bind anonymous).
    """
    addresses = [parse_url(url) for url in settings.urls]
    if not addresses:
        raise ConfigError("[directory] urls: expected at least one URL")
    if bind_method(settings) == "sasl_external":
        check_external(addresses)
        return addresses, None
    check_cleartext(addresses, settings.tls)
    if not password:
        raise ConfigError(f"no bind password for {settings.bind_dn}: an empty one is refused")
    return addresses, password


def open_with_failover(
    settings: DirectoryConfig, password: str | None
) -> tuple[Wire, ServerAddress]:
    """Try the configured URLs in order; return the first bound connection and its server.

    Raises ConfigError, before any network access, for a missing password or cleartext to a
    remote server (SASL EXTERNAL: for a URL that is not ldapi), and for a bind refused with
    invalid credentials; UnavailableError listing each URL tried and why when no server can
    be used. With SASL EXTERNAL the password is neither needed nor sent.
    """
    method = bind_method(settings)
    addresses, password = checked_addresses(settings, password)
    failures: list[str] = []
    for address in addresses:
        try:
            return open_bound(address, settings, settings.bind_dn, password, method), address
        except ServerFailure as failure:
            failures.append(f"{address.url}: {failure}")
        except InvalidCredentials:
            if method == "sasl_external":
                raise BindRefusedError(
                    f"SASL EXTERNAL bind to {address.url} refused: invalid credentials"
                ) from None
            raise BindRefusedError(
                f"bind as {settings.bind_dn} refused: invalid credentials; check the password "
                "in the keyring ('umacct secret set directory') or $UMACCT_BIND_PASSWORD"
            ) from None
        except (InvalidInputError, RefusedError) as exc:  # a bad bind_dn, a server policy
            raise ConfigError(exc.message) from None
    raise UnavailableError("cannot reach the directory: " + "; ".join(failures))
