"""What every page gets, whatever it does: headers, CSRF, the client's address, the access log.

- Headers on every answer, error pages included: a ``Content-Security-Policy`` that allows no
  script at all (the pages have none), ``frame-ancestors 'none'``, ``form-action 'self'``,
  ``Referrer-Policy: no-referrer`` (a link's token never leaves in a ``Referer``),
  ``X-Content-Type-Options: nosniff``, ``Cache-Control: no-store``, and HSTS when the
  request came over TLS (directly, or as a trusted proxy says).
- CSRF: a signed double-submit cookie. The cookie holds 256 random bits; each form carries
  ``HMAC-SHA256(key, cookie)``, which only this server (or another holding the same
  ``umacct secret set web`` key) can compute. A form without both, or whose two halves do not
  match, is refused (403) before anything else is looked at.
- The client's address is the peer's, unless the peer is a configured proxy: then the
  rightmost ``X-Forwarded-For`` address that is not a proxy. IPv6 clients are counted by
  their /64 (one household, one limit).
- The access log has the method, the path without its query string (where the tokens are)
  and the status; a token in a link's path is replaced by ``[token]``.
- No exception reaches the browser: a generic page (500) is sent, the traceback goes to the
  server's log.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from umacct.loopback import is_loopback_host
from umacct.web.settings import Network

ACCESS_LOG = logging.getLogger("umacct.web.access")
ERROR_LOG = logging.getLogger("umacct.web")
CSRF_COOKIE_SECURE = "__Host-umacct-csrf"
CSRF_COOKIE_LOOPBACK = "umacct-csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE_SECURE = "__Host-umacct-session"
SESSION_COOKIE_LOOPBACK = "umacct-session"
MAX_BODY_BYTES = 16 * 1024
_FAILURE_PAGE = (
    b'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Erreur / Error</title>'
    b'<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>'
    b"<h1>Erreur / Error</h1><p>Une erreur est survenue, r\xc3\xa9essayez plus tard. / "
    b"Something went wrong, try again later.</p></main></body></html>"
)


@dataclass(frozen=True)
class Client:
    """Who is asking: the address limits count, and whether the request came over TLS."""

    address: str
    """The client's address (an IPv6 one as its /64 network)."""
    https: bool
    loopback_http: bool
    """Plain http to a loopback address (a local test): cookies cannot be ``Secure``."""
    from_proxy: bool = False
    """The peer is a trusted proxy (its forwarded headers, and its single sign-on, count)."""


def find_client(scope: Scope, proxies: Sequence[Network]) -> Client:
    """The client of a request, believing forwarded headers only from ``proxies``."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    headers = Headers(scope=scope)
    https = scope.get("scheme") == "https"
    address = peer
    from_proxy = _in_networks(peer, proxies)
    if from_proxy:
        forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",")]
        for candidate in reversed([part for part in forwarded if part]):
            address = candidate
            if not _in_networks(candidate, proxies):
                break
        proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
        https = https or proto == "https"
    host = headers.get("host", "").rpartition(":")[0] or headers.get("host", "")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    loopback_http = not https and is_loopback_host(host) and _is_loopback_address(peer)
    return Client(_counted(address), https, loopback_http, from_proxy)


def _in_networks(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _counted(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# --- CSRF ---------------------------------------------------------------------------------


class Csrf:
    """Signed double-submit cookies (see the module's doc)."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"umacct-web-csrf\0" + key).digest()

    @staticmethod
    def cookie_name(client: Client) -> str:
        """``__Host-`` (Secure, whole site) unless plain http on loopback."""
        return CSRF_COOKIE_LOOPBACK if client.loopback_http else CSRF_COOKIE_SECURE

    @staticmethod
    def new_cookie() -> str:
        """A fresh cookie value: 256 random bits."""
        return secrets.token_urlsafe(32)

    def form_value(self, cookie: str) -> str:
        """What the form's hidden field holds for this cookie."""
        return hmac.new(self._key, cookie.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, field: str | None) -> bool:
        """Whether a form's field matches the request's cookie."""
        if not cookie or not field or len(cookie) > 100 or len(field) > 100:
            return False
        return hmac.compare_digest(self.form_value(cookie), field)


def session_cookie_name(client: Client) -> str:
    """The logged-in session's cookie: ``__Host-`` unless plain http on loopback."""
    return SESSION_COOKIE_LOOPBACK if client.loopback_http else SESSION_COOKIE_SECURE


def cookie_options(client: Client) -> dict[str, Any]:
    """``HttpOnly; SameSite=Strict; Path=/``, and ``Secure`` except on loopback http."""
    return {"httponly": True, "samesite": "strict", "secure": not client.loopback_http, "path": "/"}


# --- the middleware -------------------------------------------------------------------------


def security_headers(
    client: Client, img_sources: Sequence[str], hsts_max_age: int
) -> list[tuple[bytes, bytes]]:
    """The headers every answer carries."""
    images = " ".join(["'self'", *img_sources])
    policy = (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src "
        f"{images}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    )
    headers = [
        (b"content-security-policy", policy.encode("ascii")),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
        (b"cache-control", b"no-store"),
    ]
    if client.https and hsts_max_age:
        headers.append((b"strict-transport-security", f"max-age={hsts_max_age}".encode()))
    return headers


class FrontMiddleware:
    """Client, headers, body limit, access log and the last-resort error page (ASGI)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        proxies: Sequence[Network],
        img_sources: Sequence[str],
        hsts_max_age: int,
        token_path_prefixes: Sequence[str],
    ) -> None:
        self.app = app
        self.proxies = list(proxies)
        self.img_sources = list(img_sources)
        self.hsts_max_age = hsts_max_age
        self.token_path_prefixes = list(token_path_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other ASGI events pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = find_client(scope, self.proxies)
        scope.setdefault("state", {})["client"] = client
        extra = security_headers(client, self.img_sources, self.hsts_max_age)
        started = time.monotonic()
        status = {"code": 0}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name == b"cache-control" and "cache-control" in headers:
                        continue  # the style sheet may be cached; pages are not
                    headers[name.decode()] = value.decode()
            await send(message)

        try:
            if self._too_large(scope):
                await _send_plain(send_with_headers, 413, b"Request too large")
            else:
                await self.app(scope, _limited(receive), send_with_headers)
        except _BodyTooLarge:
            if not status["code"]:
                await _send_plain(send_with_headers, 413, b"Request too large")
        except Exception:
            ERROR_LOG.exception("unexpected error on %s %s", scope.get("method"), self._path(scope))
            if not status["code"]:
                await _send_plain(send_with_headers, 500, _FAILURE_PAGE, html=True)
        finally:
            ACCESS_LOG.info(
                '%s "%s %s" %s %.0fms',
                client.address,
                scope.get("method", "?"),
                self._path(scope),
                status["code"] or "-",
                (time.monotonic() - started) * 1000,
            )

    def _too_large(self, scope: Scope) -> bool:
        length = Headers(scope=scope).get("content-length")
        if length is None:
            return False
        return not length.isdigit() or int(length) > MAX_BODY_BYTES

    def _path(self, scope: Scope) -> str:
        """The path as logged: never the query string, a token in the path as ``[token]``."""
        path = str(scope.get("path", ""))
        for prefix in self.token_path_prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                return f"{prefix}[token]"
        return path if path.isprintable() else repr(path)


class _BodyTooLarge(Exception):
    pass


def _limited(receive: Receive) -> Receive:
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise _BodyTooLarge
        return message

    return limited


async def _send_plain(send: Send, status: int, body: bytes, *, html: bool = False) -> None:
    kind = b"text/html; charset=utf-8" if html else b"text/plain; charset=utf-8"
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
