"""``[web]``: what ``umacct serve`` needs besides the tool's configuration.

The table is read from, in order: the file given to ``umacct serve --web-config FILE``; the
``[web]`` table of the configuration file itself (``Config.web``); a ``web.toml`` beside the
configuration file. None of them: the defaults below. Like the configuration, the file must
be writable only by root or the tool's user, holds no secret (the CSRF key is ``umacct
secret set web``, the narrower bind DN's password ``umacct secret set web-directory``, the
API's bearer token ``umacct secret set web-api``), and an unknown key or a wrong type stops
the server (and ``umacct config check``) with one ``ConfigError`` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from umacct.config import Config
from umacct.datadir import check_read_file, find_read_folder_problem
from umacct.directory.escape import parse_dn
from umacct.errors import ConfigError

WEB_FILE = "web.toml"
WHY_PAGES = "that user could write the pages people type their password into"
LINK_KINDS = ("activation", "reset", "confirm", "extension")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the address served, the institution's look, proxies and rate limits."""

    host: str = "127.0.0.1"
    port: int = 8080
    institution: str = "Université de Montpellier"
    logo_url: str | None = None
    """A path on this server (``/static/...``) or an https URL (added to the CSP's img-src)."""
    ent_url: str | None = None
    """Where people log in once their password is set; default: the origin of ``[links]``."""
    helpdesk_url: str | None = None
    templates_dir: str | None = None
    """Templates (and ``umacct.css``) that replace the shipped ones of the same name."""
    trusted_proxies: list[str] = field(default_factory=list)
    """Addresses or networks of the reverse proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed; from any other client these headers are ignored."""
    client_posts_per_hour: int = 60
    """Forms one client address may send in an hour (every page)."""
    client_requests_per_hour: int = 10
    """Self-service requests ("1ère connexion / problème de connexion") per client address."""
    account_attempts_per_hour: int = 10
    """Password forms sent for one account in an hour (a weak password counts)."""
    hsts_max_age: int = 31536000
    remote_user_header: str | None = None
    """The header a trusted proxy's single sign-on (mod_auth_cas, Shibboleth) names the
    logged-in person with (``X-Remote-User``); believed only from ``trusted_proxies``."""
    login_attempts_per_hour: int = 10
    """Login forms sent for one account in an hour."""
    session_idle_minutes: int = 20
    session_max_hours: int = 8
    bind_dn: str | None = None
    """A DN narrower than the tool's for the web host to bind with (its password:
    ``umacct secret set web-directory``); None: the tool's ``[directory] bind_dn``."""
    source: Path | None = None

    def proxy_networks(self) -> list[Network]:
        """The trusted proxies as networks (an address is a network of one)."""
        return [ipaddress.ip_network(text, strict=False) for text in self.trusted_proxies]


@dataclass(frozen=True)
class LinkRoute:
    """A ``[links]`` URL as a route: its path, and where the token is in it."""

    kind: str
    path: str
    """The Starlette path (``/activation``, or ``/a/{token}`` when the token is in the path)."""
    query_name: str | None
    """The query parameter holding the token (``token``), or None when it is in the path."""


def link_routes(config: Config) -> dict[str, LinkRoute]:
    """The page of each ``[links]`` URL (its path and its token parameter), by kind."""
    routes: dict[str, LinkRoute] = {}
    for kind in LINK_KINDS:
        link: str = getattr(config.links, kind)
        parts = urlsplit(link)
        names = [name for name, value in parse_qsl(parts.query) if value == "{token}"]
        if names:
            routes[kind] = LinkRoute(kind, parts.path or "/", names[0])
        elif parts.path.count("{token}") == 1 and parts.path.endswith("{token}"):
            routes[kind] = LinkRoute(kind, parts.path, None)
        else:
            raise ConfigError(
                f"[links] {kind} = {link!r}: umacct serve needs the token as a query value "
                "(?token={token}) or at the end of the path"
            )
    paths = [route.path for route in routes.values()]
    if len(set(paths)) != len(paths) or "/" in paths or any(p.startswith("/static") for p in paths):
        raise ConfigError(
            "[links]: the activation, reset and confirm pages need paths of their own "
            "(not '/' nor '/static'), to be served by umacct serve"
        )
    return routes


def ent_url(config: Config, settings: WebSettings) -> str:
    """Where the success pages send people: ``[web] ent_url`` or the origin of the links."""
    if settings.ent_url:
        return settings.ent_url
    parts = urlsplit(config.links.activation)
    return f"{parts.scheme}://{parts.netloc}/"


# --- loading --------------------------------------------------------------------------------


def load_web_settings(config: Config, explicit: Path | None = None) -> WebSettings:
    """The ``[web]`` table, from the first place that has one (see the module's doc)."""
    if explicit is not None:
        return _from_file(explicit)
    if config.web:
        return parse_web_settings(config.web, config.source)
    if config.source is not None and (config.source.parent / WEB_FILE).is_file():
        return _from_file(config.source.parent / WEB_FILE)
    return WebSettings()


def check_config_web(config: Config) -> None:
    """``umacct config check``: the configuration's own ``[web]`` table, if it has one."""
    if config.web:
        parse_web_settings(config.web, config.source)


def _from_file(path: Path) -> WebSettings:
    check_read_file(path, "web settings", WHY_PAGES)
    document = _read(path)
    table = document.get("web", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [web]: expected a table")
    extra = sorted(set(document) - {"web"})
    if extra:
        raise ConfigError(f"{path}: {extra[0]}: unknown table (expected only [web])")
    return parse_web_settings(table, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


_TYPES: dict[str, tuple[type, ...]] = {
    "host": (str,),
    "port": (int,),
    "institution": (str,),
    "logo_url": (str,),
    "ent_url": (str,),
    "helpdesk_url": (str,),
    "templates_dir": (str,),
    "trusted_proxies": (list,),
    "client_posts_per_hour": (int,),
    "client_requests_per_hour": (int,),
    "account_attempts_per_hour": (int,),
    "hsts_max_age": (int,),
    "remote_user_header": (str,),
    "login_attempts_per_hour": (int,),
    "session_idle_minutes": (int,),
    "session_max_hours": (int,),
    "bind_dn": (str,),
}
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def parse_web_settings(table: dict[str, Any], source: Path | None = None) -> WebSettings:
    """Check a ``[web]`` table and build the settings."""
    where = f"{source}: [web]" if source else "[web]"
    for key, value in table.items():
        if key not in _TYPES:
            raise ConfigError(
                f"{where} {key}: unknown key (expected one of: {', '.join(sorted(_TYPES))})"
            )
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            raise ConfigError(f"{where} {key}: expected {_TYPES[key][0].__name__}, got {value!r}")
    settings = dataclasses.replace(WebSettings(**table), source=source)
    _check(settings, where)
    return settings


def _check(settings: WebSettings, where: str) -> None:
    if not 1 <= settings.port <= 65535:
        raise ConfigError(f"{where} port: expected 1 to 65535, got {settings.port}")
    for name in (
        "client_posts_per_hour",
        "client_requests_per_hour",
        "account_attempts_per_hour",
        "login_attempts_per_hour",
        "session_idle_minutes",
        "session_max_hours",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{where} {name}: expected 1 or more")
    header = settings.remote_user_header
    if header is not None:
        if not _HEADER_NAME.match(header):
            raise ConfigError(f"{where} remote_user_header: expected a header name, got {header!r}")
        if not settings.trusted_proxies:
            raise ConfigError(
                f"{where} remote_user_header: needs trusted_proxies (the header is believed "
                "only from them)"
            )
    if settings.bind_dn is not None:
        try:
            parse_dn(settings.bind_dn)
        except ValueError:
            raise ConfigError(f"{where} bind_dn: expected a DN, got {settings.bind_dn!r}") from None
    if settings.hsts_max_age < 0:
        raise ConfigError(f"{where} hsts_max_age: expected 0 or more seconds")
    if not settings.institution.strip() or not settings.institution.isprintable():
        raise ConfigError(f"{where} institution: expected a printable name")
    for text in settings.trusted_proxies:
        try:
            ipaddress.ip_network(str(text), strict=False)
        except ValueError:
            raise ConfigError(
                f"{where} trusted_proxies: expected addresses or networks, got {text!r}"
            ) from None
    for name in ("ent_url", "helpdesk_url"):
        value = getattr(settings, name)
        if value is not None and not value.startswith(("https://", "/")):
            raise ConfigError(f"{where} {name}: expected an https:// URL, got {value!r}")
    logo = settings.logo_url
    if logo is not None and not (logo.startswith("https://") or logo.startswith("/")):
        raise ConfigError(f"{where} logo_url: expected /path or an https:// URL, got {logo!r}")
    if settings.templates_dir:
        problem = find_read_folder_problem(Path(settings.templates_dir), WHY_PAGES)
        if problem:
            raise ConfigError(problem.message("[web] templates_dir"))
        if not Path(settings.templates_dir).is_dir():
            raise ConfigError(f"{where} templates_dir: {settings.templates_dir} is not a folder")
