"""TLS for the directory's connections, with Python's ``ssl`` (security requirement 17).

The certificate chain and the host name (or IP address) are checked by OpenSSL, TLS 1.2 or
later, SNI sent. A refusal is described in one line naming the server: untrusted certificate,
host name mismatch, failed handshake.
"""

from __future__ import annotations

import socket
import ssl

from umacct.errors import ConfigError


class TlsRefused(Exception):
    """The TLS handshake failed; the message says why, naming the host."""


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A context that verifies the server against ``ca_file`` (else the system's trust store)."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[directory] ca_file {ca_file}: cannot load it: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def handshake(sock: socket.socket, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    """Wrap ``sock`` (which the result then owns) and complete the handshake with ``host``."""
    secured = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    try:
        secured.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        secured.close()
        reason = exc.verify_message or str(exc)
        if "mismatch" in reason.lower():
            raise TlsRefused(
                f"host name mismatch: the certificate of {host} does not name it"
            ) from None
        raise TlsRefused(f"certificate of {host} not trusted: {reason}") from None
    except (ssl.SSLError, OSError) as exc:
        secured.close()
        why = getattr(exc, "reason", None) or exc or "closed during the handshake"
        raise TlsRefused(f"TLS handshake with {host} failed: {why}") from None
    return secured
