"""The web application behind every link the tool mails: ``create_app`` and what pages share.

Starlette (ASGI) with Jinja2 templates, served by uvicorn (``umacct serve``). Each request
that touches the directory, the state store or the mail gets a ``Runtime`` of its own, made
and closed in one worker thread (the services block; SQLite connections stay in their
thread), and calls the same services as the command line: never the command line itself.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from umacct.clock import Clock, SystemClock
from umacct.config import Config
from umacct.errors import ConfigError, TemporaryError, UmacctError, UnavailableError
from umacct.secrets import SecretKind, find_secret
from umacct.services.runtime import Runtime
from umacct.web.i18n import Translate, chosen_language, translator
from umacct.web.limits import Counters, open_limits
from umacct.web.security import Client, Csrf, FrontMiddleware, cookie_options
from umacct.web.sessions import Sessions
from umacct.web.settings import LinkRoute, WebSettings, ent_url, link_routes

LOG = logging.getLogger("umacct.web")
LANG_COOKIE = "umacct-lang"
LANG_COOKIE_SECONDS = 365 * 86400
STYLE_FILE = "umacct.css"
MAX_FIELD_CHARS = 1024
MAX_FIELDS = 48
_SAME_SITE = ("same-origin", "none")
_TOO_MUCH = ("Too many", "Part exceeded", "Field exceeded")
"""How the form parser's refusals of a file, too many fields or too long a one begin."""
_ERROR_PAGES = {
    400: ("bad_request_title", "bad_form"),
    404: ("not_found_title", "not_found"),
    413: ("too_large_title", "too_large"),
}
_BUILTIN = Path(__file__).parent
T = TypeVar("T")
RuntimeFactory = Callable[[], Runtime]


@dataclass
class WebContext:
    """What every page needs: configuration, settings, keys, templates, and how to work."""

    config: Config
    settings: WebSettings
    csrf: Csrf
    templates: Environment
    routes: dict[str, LinkRoute]
    runtime_factory: RuntimeFactory
    clock: Clock

    @contextmanager
    def runtime(self, client: Client | None = None) -> Iterator[Runtime]:
        """A runtime for this request, closed when done (call from a worker thread).

        What it audits says it came through the web pages, and from which client address.
        """
        runtime = self.runtime_factory()
        if client is not None:
            runtime.audit_details.update({"frontend": "web", "client": client.address})
        try:
            yield runtime
        finally:
            runtime.close()

    @contextmanager
    def limits(self) -> Iterator[Counters]:
        """The rate-limit counters, where the state lives (call from a worker thread)."""
        limits = open_limits(self.config, self.clock, self.runtime_factory)
        try:
            yield limits
        finally:
            limits.close()

    @contextmanager
    def sessions(self) -> Iterator[Sessions]:
        """The logged-in sessions (call from a worker thread)."""
        settings = self.settings
        sessions = Sessions(
            Path(self.config.paths.data_dir),
            self.clock,
            idle=timedelta(minutes=settings.session_idle_minutes),
            longest=timedelta(hours=settings.session_max_hours),
        )
        try:
            yield sessions
        finally:
            sessions.close()

    def allow(self, *checks: tuple[str, int]) -> bool:
        """Count a hit on each ``(key, allowed per hour)``; False at the first used up."""
        with self.limits() as limits:
            return all(limits.hit(key, allowed) for key, allowed in checks)


def web_key(config: Config) -> tuple[bytes, str | None]:
    """The CSRF key from the secret store, or a key for this process and a warning."""
    try:
        return find_secret(SecretKind.WEB, config).value.encode("utf-8"), None
    except ConfigError:
        return secrets.token_bytes(32), (
            "no web secret stored ('umacct secret set web', or $UMACCT_WEB_SECRET): using a "
            "key made for this process, so forms opened before a restart, or served by "
            "another web host, are refused"
        )


def create_app(
    config: Config,
    settings: WebSettings | None = None,
    *,
    clock: Clock | None = None,
    runtime_factory: RuntimeFactory | None = None,
    key: bytes | None = None,
) -> Starlette:
    """The application: routes of ``[links]``, ``/``, the style sheet, and the middleware."""
    from umacct.web import account, api, extension, pages
    from umacct.web.binding import web_runtimes

    settings = settings or WebSettings()
    clock = clock or SystemClock()
    if key is None:
        key, warning = web_key(config)
        if warning:
            LOG.warning("%s", warning)
    routes = link_routes(config)
    context = WebContext(
        config=config,
        settings=settings,
        csrf=Csrf(key),
        templates=_templates(settings),
        routes=routes,
        runtime_factory=runtime_factory or web_runtimes(config, settings, clock),
        clock=clock,
    )
    app = Starlette(
        routes=[
            Route("/", pages.home, methods=["GET", "POST"]),
            Route(routes["activation"].path, pages.activation, methods=["GET", "POST"]),
            Route(routes["reset"].path, pages.reset, methods=["GET", "POST"]),
            Route(routes["confirm"].path, pages.confirm, methods=["GET", "POST"]),
            Route(routes["extension"].path, extension.extension, methods=["GET", "POST"]),
            Route(f"/static/{STYLE_FILE}", style_sheet, methods=["GET"]),
            *account.routes(),
            *api.routes(),
        ],
        middleware=[
            Middleware(
                FrontMiddleware,
                proxies=settings.proxy_networks(),
                img_sources=_image_sources(settings),
                hsts_max_age=settings.hsts_max_age,
                token_path_prefixes=[
                    route.path.removesuffix("{token}")
                    for route in routes.values()
                    if route.query_name is None
                ],
            )
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.context = context
    return app


def _templates(settings: WebSettings) -> Environment:
    loaders: list[Any] = [PackageLoader("umacct.web", "templates")]
    if settings.templates_dir:
        loaders.insert(0, FileSystemLoader(settings.templates_dir))
    return Environment(
        loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined, auto_reload=False
    )


def _image_sources(settings: WebSettings) -> list[str]:
    logo = settings.logo_url
    if logo and logo.startswith("https://"):
        parts = urlsplit(logo)
        return [f"https://{parts.netloc}"]
    return []


def context_of(request: Request) -> WebContext:
    """The application's context."""
    context: WebContext = request.app.state.context
    return context


async def style_sheet(request: Request) -> Response:
    """The style sheet: the site's ``umacct.css`` in ``templates_dir``, else the shipped one."""
    settings = context_of(request).settings
    path = _BUILTIN / "static" / STYLE_FILE
    if settings.templates_dir and (Path(settings.templates_dir) / STYLE_FILE).is_file():
        path = Path(settings.templates_dir) / STYLE_FILE
    return FileResponse(
        path, media_type="text/css", headers={"cache-control": "public, max-age=3600"}
    )


# --- one page ----------------------------------------------------------------------------


@dataclass
class Page:
    """One request's page: its language, client, CSRF cookie, and how to answer."""

    request: Request
    context: WebContext
    lang: str
    lang_asked: bool
    client: Client
    csrf_cookie: str
    csrf_cookie_new: bool
    t: Translate = field(repr=False)
    form: FormData | None = None

    @property
    def csrf_field(self) -> str:
        """The hidden field of this page's forms."""
        return self.context.csrf.form_value(self.csrf_cookie)

    def csrf_ok(self) -> bool:
        """Whether the form posted carries the field that matches the request's cookie.

        A browser that says the form comes from another site (``Sec-Fetch-Site``) is refused
        whatever it carries.
        """
        if self.request.headers.get("sec-fetch-site", "same-origin") not in _SAME_SITE:
            return False
        cookie = self.request.cookies.get(Csrf.cookie_name(self.client))
        return self.form is not None and self.context.csrf.valid(cookie, self.field("csrf"))

    def field(self, name: str) -> str:
        """A text field of the posted form ('' when absent or not text)."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def fields(self, prefix: str) -> dict[str, list[str]]:
        """The posted text fields whose names start with ``prefix``, with all their values."""
        if self.form is None:
            return {}
        found: dict[str, list[str]] = {}
        for name, value in self.form.multi_items():
            if name.startswith(prefix) and isinstance(value, str):
                found.setdefault(name, []).append(value)
        return found

    def switch_href(self, **query: str) -> str:
        """The same page in the other language."""
        return f"{self.request.url.path}?{urlencode({**query, 'lang': self.t('switch_lang')})}"

    def render(
        self, template: str, status: int = 200, *, title: str, **values: Any
    ) -> HTMLResponse:
        """The template in this page's language, with the cookies it needs."""
        context = self.context
        settings = context.settings
        domains = sorted({profile.domain for profile in context.config.profiles.values()})
        body = context.templates.get_template(template).render(
            t=self.t,
            lang=self.lang,
            title=title,
            institution=settings.institution,
            logo_url=settings.logo_url,
            helpdesk_url=settings.helpdesk_url,
            ent_url=ent_url(context.config, settings),
            css_url=f"/static/{STYLE_FILE}",
            home_url=f"/?{urlencode({'lang': self.lang})}",
            domain=min(domains, key=len) if domains else "example.org",
            csrf=self.csrf_field,
            switch_href=values.pop("switch_href", None) or self.switch_href(),
            errors=values.pop("errors", {}),
            **values,
        )
        response = HTMLResponse(body, status_code=status)
        options = cookie_options(self.client)
        if self.csrf_cookie_new:
            response.set_cookie(Csrf.cookie_name(self.client), self.csrf_cookie, **options)
        if self.lang_asked:
            response.set_cookie(LANG_COOKIE, self.lang, max_age=LANG_COOKIE_SECONDS, **options)
        return response

    def message(
        self, status: int, title_key: str, text_key: str, *, link: str | None = None, **more: Any
    ) -> HTMLResponse:
        """A page of one message (errors, refusals), with a way on."""
        return self.render(
            "message.html",
            status,
            title=self.t(title_key),
            text=self.t(text_key),
            detail=more.pop("detail", None),
            link=link,
            link_text=more.pop("link_text", None),
            **more,
        )


async def page_for(request: Request) -> Page:
    """The page of a request; a POST's form is read (small, text only).

    A form that holds a file, or more or longer fields than a page's forms have, is refused
    here (``HTTPException`` 413; one that cannot be read at all, 400), before anything else.
    """
    form = await _read_form(request) if request.method == "POST" else None
    return _page(request, form)


def _page(request: Request, form: FormData | None) -> Page:
    context = context_of(request)
    client: Client = request.scope["state"]["client"]
    asked = request.query_params.get("lang")
    if form is not None and isinstance(form.get("lang"), str):
        asked = asked or str(form.get("lang"))
    lang, lang_asked = chosen_language(
        asked, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
    )
    cookie = request.cookies.get(Csrf.cookie_name(client))
    fresh = not cookie or len(cookie) > 100
    return Page(
        request=request,
        context=context,
        lang=lang,
        lang_asked=lang_asked and request.method != "POST",
        client=client,
        csrf_cookie=Csrf.new_cookie() if fresh or cookie is None else cookie,
        csrf_cookie_new=fresh,
        t=translator(lang),
        form=form,
    )


async def _read_form(request: Request) -> FormData | None:
    try:
        form = await request.form(
            max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_CHARS * 4
        )
    except (HTTPException, MultiPartException) as error:
        # Starlette turns the parser's refusal into a 400 of its own: say which it is here,
        # once; the error page must not read the body again (it is spent).
        words = str(getattr(error, "detail", "") or getattr(error, "message", ""))
        too_much = words.startswith(_TOO_MUCH)
        raise HTTPException(413 if too_much else 400, detail="form refused") from None
    except (ValueError, KeyError):
        return None
    return form


async def in_worker(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (directory, store, mail) in a worker thread."""
    return await run_in_threadpool(function, *args)


def error_response(page: Page, error: UmacctError) -> HTMLResponse:
    """A service's refusal as a page: 65 → 400, 67 → 400, 77 → 403, 69/75 → 503, else 500."""
    code = int(error.exit_code)
    if isinstance(error, UnavailableError | TemporaryError):
        response = page.message(503, "unavailable_title", "unavailable")
        response.headers["retry-after"] = "120"
        return response
    if code == 77:
        return page.message(403, "refused_title", "no_longer_applies", link=page_home(page))
    if code in (65, 67, 2):
        return page.message(400, "bad_request_title", "failure", detail=error.message)
    LOG.error("%s: %s", type(error).__name__, error.message)
    return page.message(500, "failure_title", "failure")


def page_home(page: Page) -> str:
    """The home page in the page's language."""
    return f"/?{urlencode({'lang': page.lang})}"


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405, 413 and other HTTP errors as pages of their own (the body is never read)."""
    assert isinstance(exc, HTTPException)
    if "client" not in request.scope.get("state", {}):
        return Response(status_code=exc.status_code)
    page = _page(request, None)
    keys = _ERROR_PAGES.get(exc.status_code, ("error_title", "failure"))
    response = page.message(exc.status_code, *keys, link=page_home(page))
    if exc.headers:
        response.headers.update(dict(exc.headers))
    return response


def rate_limited(page: Page) -> HTMLResponse:
    """429, with when to come back."""
    response = page.message(429, "rate_title", "rate", link=page_home(page))
    response.headers["retry-after"] = "3600"
    return response


def values_of(mapping: Mapping[str, object]) -> dict[str, str]:
    """Mapping values as strings."""
    return {key: str(value) for key, value in mapping.items()}
