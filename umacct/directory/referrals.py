"""Referrals (RFC 4511, 4.1.10 and 4.5.3): where the server sends the tool, and whether it goes.

A server answers with a referral when the entry an operation names lives elsewhere (result
10, the URLs in the result), and a subtree search sends a continuation reference for each
part of the tree held elsewhere (an entry of class ``referral``). Neither is ever dropped:
by default each is an error naming the URL; with ``[directory] follow_referrals = true`` the
tool follows it once (no referral from the referred server is followed), binding as it binds
to its own servers and with the same TLS checks and cleartext rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from umacct.directory.connection import ServerAddress, parse_url
from umacct.errors import ConfigError

Scope = Literal["base", "one", "sub"]
_SCOPES: dict[str, Scope] = {"base": "base", "one": "one", "sub": "sub"}


@dataclass(frozen=True)
class Referral:
    """One LDAP URL of a referral: the server, and the DN and scope to use there if given."""

    url: str
    server: ServerAddress
    dn: str | None
    scope: Scope | None


def parse_referral(url: str) -> Referral:
    """Parse ``ldap[s|i]://host[:port]/[dn[?attributes[?scope[?filter]]]]``; ConfigError if bad."""
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ConfigError(f"a referral to {url!r}: not an LDAP URL") from None
    if parts.scheme.lower() not in ("ldap", "ldaps", "ldapi") or parts.fragment:
        raise ConfigError(f"a referral to {url!r}: not an LDAP URL")
    server = parse_url(f"{parts.scheme}://{parts.netloc}")
    dn = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    fields = parts.query.split("?") if parts.query else []
    scope_text = fields[1].lower() if len(fields) > 1 else ""
    if scope_text and scope_text not in _SCOPES:
        raise ConfigError(f"a referral to {url!r}: unknown scope {scope_text!r}")
    return Referral(text, server, dn or None, _SCOPES.get(scope_text))


def continued_scope(referral: Referral, scope: Scope) -> Scope:
    """The scope of a search continued at ``referral``: its own, else one level becomes base."""
    if referral.scope is not None:
        return referral.scope
    return "base" if scope == "one" else scope


def not_followed(operation: str, target: str, urls: list[str], received: int = 0) -> ConfigError:
    """The error for referrals the settings do not follow: one line naming the first URL."""
    more = f" (and {len(urls) - 1} more)" if len(urls) > 1 else ""
    stopped = f" after {received} entries" if received else ""
    return ConfigError(
        f"{operation} {target or '(root DSE)'}: the directory refers{stopped} to another server: "
        f"{urls[0]}{more}; set [directory] follow_referrals = true to follow referrals"
    )


def followed_again(operation: str, target: str, url: str, via: str) -> ConfigError:
    """The error for a referral received from a server the tool was referred to."""
    return ConfigError(
        f"{operation} {target}: {via} refers again, to {url}: a referral is followed once only"
    )
