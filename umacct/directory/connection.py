"""Opening a bound ldap3 connection: URL parsing, TLS policy, bounded failover, bind.

Every connection uses the SAFE_SYNC strategy (each call returns its own result, no shared
state), ``get_info=NONE`` (the schema is read only when asked for), ``raise_exceptions=False``
(results are mapped in ``results``) and ``check_names=False`` so that DNs and filters, already
escaped by ``escape``, are sent exactly as built.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException

from umacct.config import DirectoryConfig
from umacct.directory.results import INVALID_CREDENTIALS, SUCCESS, result_error
from umacct.errors import (
    ConfigError,
    InvalidInputError,
    RefusedError,
    TemporaryError,
    UnavailableError,
)

DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}
DEFAULT_LDAPI_SOCKET = "/var/run/slapd/ldapi"
TlsMode = Literal["starttls", "ldaps", "none"]


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
        if self.scheme == "ldapi" or self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


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


class _StrictTls(ldap3.Tls):  # type: ignore[misc]
    """Certificate and host name checked by OpenSSL, TLS 1.2 or later, SNI sent.

    ldap3's own host name check uses a backport that rejects IP addresses on recent Pythons,
    so the whole wrapping is done here; the reason of a refusal is kept for the error text.
    """

    def __init__(self, ca_file: str | None) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        try:
            # Without ca_file, the system's trust store.
            self.context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[directory] ca_file {ca_file}: cannot load it: {exc}") from None
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.refusal: str | None = None

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        host = connection.server.host
        # Wrapping moves the file descriptor to the new socket: keep it where cleanup finds it.
        connection.socket = self.context.wrap_socket(
            connection.socket, server_hostname=host, do_handshake_on_connect=False
        )
        try:
            connection.socket.do_handshake()
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or str(exc)
            if "mismatch" in reason.lower():
                self.refusal = f"host name mismatch: the certificate of {host} does not name it"
            else:
                self.refusal = f"certificate of {host} not trusted: {reason}"
            raise
        except ssl.SSLError as exc:
            self.refusal = f"TLS handshake with {host} failed: {exc.reason or exc}"
            raise


def _describe_socket_error(exc: BaseException) -> str:
    """A one-line reason from ldap3's socket errors, which may nest a list of attempts."""
    if len(exc.args) == 2 and isinstance(exc.args[1], list):
        return "; ".join(f"{address}: {error}" for error, address in exc.args[1])
    return str(exc)


def _set_receive_timeout(connection: Any, seconds: int) -> None:
    """Change the socket's receive timeout once bound (ldap3 sets it only when opening)."""
    sock = connection.socket
    sock.settimeout(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("LL", seconds, 0))


def discard(connection: Any) -> None:
    """Unbind and close the socket, which ldap3 leaves open when opening fails midway."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
    if connection.socket is not None:
        with contextlib.suppress(OSError):
            connection.socket.close()


class ServerFailure(Exception):
    """The server cannot be used now (down, TLS refused, busy); the next one may be tried."""


class InvalidCredentials(Exception):
    """The server answered the bind with invalidCredentials (49), ppolicy refusals included."""


def open_bound(
    address: ServerAddress, settings: DirectoryConfig, bind_dn: str, password: str
) -> Any:
    """Open a connection to one server, secure it as configured, bind as ``bind_dn``; return it.

    An empty password is refused before anything is sent (security requirement 11). Each
    network wait while opening is bounded by ``connect_timeout``; once bound, reads wait at
    most ``receive_timeout``. Raises ``ServerFailure`` when the server cannot be used,
    ``InvalidCredentials`` on result 49, the mapped error for any other refusal.
    """
    if not password:
        raise InvalidInputError(f"bind as {bind_dn}: an empty password is refused")
    mode = tls_mode(address, settings.tls)
    tls = _StrictTls(settings.ca_file) if mode != "none" else None
    target = f"ldapi://{quote(address.host)}" if address.scheme == "ldapi" else address.host
    server = ldap3.Server(
        target,
        port=address.port,
        use_ssl=mode == "ldaps",
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=settings.connect_timeout,
    )
    connection = ldap3.Connection(
        server,
        user=bind_dn,
        password=password.encode("utf-8"),  # bytes are sent as they are, without SASLprep
        client_strategy=ldap3.SAFE_SYNC,
        raise_exceptions=False,
        receive_timeout=int(settings.connect_timeout),
        check_names=False,
        auto_escape=False,
        auto_referrals=False,
        return_empty_attributes=False,
    )
    try:
        connection.open(read_server_info=False)
        if mode == "starttls":
            connection.start_tls(read_server_info=False)
        connection.bind(read_server_info=False)
    except LDAPException as exc:
        discard(connection)
        refusal = tls.refusal if tls else None
        raise ServerFailure(refusal or _describe_socket_error(exc)) from None
    result = connection.result
    if result["result"] != SUCCESS:
        discard(connection)
        if result["result"] == INVALID_CREDENTIALS:
            raise InvalidCredentials(str(result.get("message") or ""))
        error = result_error("bind as", bind_dn, result)
        if isinstance(error, UnavailableError | TemporaryError):
            raise ServerFailure(error.message)
        raise error
    _set_receive_timeout(connection, int(settings.receive_timeout))
    return connection


def open_with_failover(settings: DirectoryConfig, password: str) -> tuple[Any, ServerAddress]:
    """Try the configured URLs in order; return the first bound connection and its server.

    Raises ConfigError, before any network access, for a missing password or cleartext to a
    remote server, and for a bind refused with invalid credentials; UnavailableError listing
    each URL tried and why when no server can be used.
    """
    addresses = [parse_url(url) for url in settings.urls]
    if not addresses:
        raise ConfigError("[directory] urls: expected at least one URL")
    check_cleartext(addresses, settings.tls)
    if not password:
        raise ConfigError(f"no bind password for {settings.bind_dn}: an empty one is refused")
    failures: list[str] = []
    for address in addresses:
        try:
            return open_bound(address, settings, settings.bind_dn, password), address
        except ServerFailure as failure:
            failures.append(f"{address.url}: {failure}")
        except InvalidCredentials:
            raise ConfigError(
                f"bind as {settings.bind_dn} refused: invalid credentials; check the password "
                "in the keyring ('umacct secret set directory') or $UMACCT_BIND_PASSWORD"
            ) from None
        except (InvalidInputError, RefusedError) as exc:  # a bad bind_dn, a server policy
            raise ConfigError(exc.message) from None
    raise UnavailableError("cannot reach the directory: " + "; ".join(failures))
