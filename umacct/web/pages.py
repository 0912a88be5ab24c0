"""The pages: ``/`` (first login / login problem), activation, reset and confirmation links.

A GET only shows: it looks at the link without using it (mail scanners and previewers open
links; opening one twice consumes nothing). Only a POST, with the token in a hidden field and
a valid CSRF field, calls the service that uses the link. Every POST counts against the
client address's hourly limit; password forms also against the account's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from umacct.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.services.addresses import FORWARDING, RECOVERY, confirm_forwarding, confirm_recovery
from umacct.services.credentials import (
    SELF_SERVICE_SECONDS,
    PasswordSet,
    activate,
    reset_with_token,
    self_service_reset,
)
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose
from umacct.web.app import (
    MAX_FIELD_CHARS,
    Page,
    WebContext,
    error_response,
    in_worker,
    page_for,
    page_home,
    rate_limited,
)
from umacct.web.i18n import password_reason

LOG = logging.getLogger("umacct.web")
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
"""What a link's token can look like: anything else is refused before any look-up."""
LINK_EXPIRED = "this link expired"
LINK_WORDS = "this link"
"""How the token service's refusals begin (a dead, used or expired link)."""
PasswordService = Callable[[Runtime, str, str], PasswordSet]
_CONFIRM_PURPOSES = {
    TokenPurpose.CONFIRM_RECOVERY: RECOVERY,
    TokenPurpose.CONFIRM_FORWARDING: FORWARDING,
}


@dataclass(frozen=True)
class LinkLook:
    """What a link is, seen without using it."""

    state: str
    """``valid``, ``expired`` or ``invalid``."""
    account: str = ""
    change: str = ""
    """For a confirmation: ``recovery`` or ``forwarding``."""
    address: str = ""


def look_at_link(context: WebContext, token: str, purposes: tuple[TokenPurpose, ...]) -> LinkLook:
    """The link's state for the first purpose it fits (read only: nothing is used)."""
    if not TOKEN_SHAPE.match(token):
        return LinkLook("invalid")
    with context.runtime() as runtime:
        expired = False
        for purpose in purposes:
            try:
                record = runtime.tokens.check(token, purpose)
            except InvalidInputError as error:
                expired = expired or error.message.startswith(LINK_EXPIRED)
                continue
            change = _CONFIRM_PURPOSES.get(purpose, record.payload.get("kind", ""))
            return LinkLook("valid", record.account, change, record.payload.get("address", ""))
        return LinkLook("expired" if expired else "invalid")


async def _look(page: Page, token: str, purposes: tuple[TokenPurpose, ...]) -> LinkLook | Response:
    """The link, or the page saying why it cannot be looked at (503 when the store is down)."""
    try:
        return await in_worker(look_at_link, page.context, token, purposes)
    except UmacctError as error:
        return error_response(page, error)


def _token_of(page: Page, kind: str) -> str:
    route = page.context.routes[kind]
    if page.form is not None:
        return page.field("token")
    if route.query_name is None:
        return str(page.request.path_params.get("token", ""))
    return page.request.query_params.get(route.query_name, "")


def _switch(page: Page, kind: str, token: str) -> str:
    route = page.context.routes[kind]
    if route.query_name is None:
        return page.switch_href()
    return page.switch_href(**{route.query_name: token})


def _link_refused(page: Page, look: LinkLook) -> HTMLResponse:
    if look.state == "expired":
        return page.message(
            400,
            "link_expired_title",
            "link_expired",
            link=page_home(page),
            link_text="ask_new_link",
        )
    return page.message(
        400, "link_invalid_title", "link_invalid", link=page_home(page), link_text="ask_new_link"
    )


def _post_refusal(page: Page) -> Response | None:
    """The checks every POST passes first: the form, CSRF (403), the client's limit (429)."""
    if not page.csrf_ok():
        return page.message(403, "csrf_title", "csrf", link=page.request.url.path)
    return None


async def _client_allowed(page: Page, action: str, allowed: int) -> bool:
    context = page.context
    checks = [(f"client:{page.client.address}:post", context.settings.client_posts_per_hour)]
    if action != "post":
        checks.append((f"client:{page.client.address}:{action}", allowed))
    return await in_worker(context.allow, *checks)


# --- / : first login, login problem ---------------------------------------------------------


async def home(request: Request) -> Response:
    """The page "1ère connexion / problème de connexion": one answer whatever the account."""
    page = await page_for(request)
    if request.method != "POST":
        return page.render("home.html", title=page.t("home_title"), address="")
    refused = _post_refusal(page)
    if refused is not None:
        return refused
    started = time.monotonic()
    try:
        return await _self_service_answer(page)
    except ConfigError as error:
        # Unusable configuration (the web DN's password unreadable...): it says nothing about
        # the account, so the page is the usual one, at the usual pace; the log says why.
        LOG.error("self-service request not handled: %s", error.message)
        await asyncio.sleep(max(0.0, SELF_SERVICE_SECONDS - (time.monotonic() - started)))
        return page.render("sent.html", title=page.t("sent_title"))
    except (UnavailableError, TemporaryError) as error:
        return error_response(page, error)


async def _self_service_answer(page: Page) -> Response:
    settings = page.context.settings
    if not await _client_allowed(page, "self-service", settings.client_requests_per_hour):
        return rate_limited(page)
    address = page.field("address").strip()
    problem = "required" if not address else "too_long" if len(address) > 256 else None
    if problem:
        return page.render(
            "home.html",
            400,
            title=page.t("home_title"),
            address=address[:256],
            errors={"address": page.t(problem)},
        )
    await in_worker(_self_service, page, address)
    return page.render("sent.html", title=page.t("sent_title"))


def _self_service(page: Page, address: str) -> None:
    with page.context.runtime(page.client) as runtime:
        self_service_reset(runtime, address)


# --- activation and reset -------------------------------------------------------------------


async def activation(request: Request) -> Response:
    """The activation link: choose the first password."""
    return await _password_page(request, "activation")


async def reset(request: Request) -> Response:
    """The reset link: choose a new password."""
    return await _password_page(request, "reset")


async def _password_page(request: Request, kind: str) -> Response:
    page = await page_for(request)
    purpose = TokenPurpose(kind)
    token = _token_of(page, kind)
    if request.method == "POST":
        refused = _post_refusal(page)
        if refused is not None:
            return refused
        if not await _client_allowed(page, "post", 0):
            return rate_limited(page)
    look = await _look(page, token, (purpose,))
    if isinstance(look, Response):
        return look
    if look.state != "valid":
        return _link_refused(page, look)
    if request.method != "POST":
        return _password_form(page, kind, token, look)
    key = f"account:{look.account}:password"
    if not await in_worker(
        page.context.allow, (key, page.context.settings.account_attempts_per_hour)
    ):
        return rate_limited(page)
    password, again = page.field("password"), page.field("password2")
    if not password or len(password) > MAX_FIELD_CHARS:
        errors = {"password": page.t("required" if not password else "too_long")}
        return _password_form(page, kind, token, look, errors)
    if password != again:
        return _password_form(page, kind, token, look, {"password2": page.t("mismatch")})
    service = activate if kind == "activation" else reset_with_token
    try:
        result = await in_worker(_set_password, page, service, token, password)
    except InvalidInputError as error:
        if error.message.startswith(LINK_WORDS):
            expired = error.message.startswith(LINK_EXPIRED)
            return _link_refused(page, LinkLook("expired" if expired else "invalid"))
        reason = password_reason(error.message, page.lang)
        return _password_form(page, kind, token, look, {"password": reason})
    except NotFoundError:
        return _link_refused(page, LinkLook("invalid"))
    except UmacctError as error:
        return error_response(page, error)
    title = "activated_title" if kind == "activation" else "reset_done_title"
    return page.render(
        "done.html",
        title=page.t(title),
        kind=kind,
        account=result.account,
        recovery_set=result.recovery_set,
    )


def _set_password(page: Page, service: PasswordService, token: str, password: str) -> PasswordSet:
    with page.context.runtime(page.client) as runtime:
        return service(runtime, token, password)


def _password_form(
    page: Page, kind: str, token: str, look: LinkLook, errors: dict[str, str] | None = None
) -> HTMLResponse:
    return page.render(
        "password.html",
        400 if errors else 200,
        title=page.t(f"{kind}_title"),
        intro=page.t(f"{kind}_intro"),
        action=page.request.url.path,
        token=token,
        account=look.account,
        min_length=page.context.config.policy.password_min_length,
        errors=errors or {},
        switch_href=_switch(page, kind, token),
    )


# --- confirmations --------------------------------------------------------------------------


async def confirm(request: Request) -> Response:
    """A confirmation link: a new recovery address, or a forwarding target."""
    page = await page_for(request)
    token = _token_of(page, "confirm")
    if request.method == "POST":
        refused = _post_refusal(page)
        if refused is not None:
            return refused
        if not await _client_allowed(page, "post", 0):
            return rate_limited(page)
    purposes = (*_CONFIRM_PURPOSES, TokenPurpose.CONFIRM)
    look = await _look(page, token, purposes)
    if isinstance(look, Response):
        return look
    if look.state != "valid" or look.change not in (RECOVERY, FORWARDING):
        return _link_refused(page, look)
    values = {"account": look.account, "address": look.address}
    if request.method != "POST":
        return page.render(
            "confirm.html",
            title=page.t(f"confirm_{look.change}_title"),
            intro=page.t(f"confirm_{look.change}_intro", **values),
            action=page.request.url.path,
            token=token,
            switch_href=_switch(page, "confirm", token),
        )
    try:
        await in_worker(_confirm, page, look.change, token)
    except InvalidInputError as error:
        if error.message.startswith(LINK_WORDS):
            return _link_refused(page, LinkLook("invalid"))
        return error_response(page, error)
    except NotFoundError:
        return _link_refused(page, LinkLook("invalid"))
    except UmacctError as error:
        return error_response(page, error)
    return page.render(
        "message.html",
        title=page.t(f"confirmed_{look.change}_title"),
        text=page.t(f"confirmed_{look.change}", **values),
        detail=None,
        link=None,
        link_text=None,
    )


def _confirm(page: Page, change: str, token: str) -> None:
    with page.context.runtime(page.client) as runtime:
        _confirm_with(runtime, change, token)


def _confirm_with(runtime: Runtime, change: str, token: str) -> None:
    if change == RECOVERY:
        confirm_recovery(runtime, token)
    else:
        confirm_forwarding(runtime, token)
