"""The extension request: the link of the expiry warning, and the account page's section.

A GET of the link shows where the account stands and a button (nothing is used); the POST
of that form (CSRF checked) uses the link and files the request: granted at once for an
``auto`` profile (the page says the new end), kept for the helpdesk for a ``review`` one
(the page says it waits). A refusal of the policy (profile not extendable, already
extended, maximum reached, not in grace) is shown in the policy's words, in the page's
language.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from umacct.errors import InvalidInputError, NotFoundError, RefusedError, UmacctError
from umacct.mail.dates import english_date, french_date
from umacct.services.extensions import (
    ExtensionAnswer,
    ExtensionStatus,
    look_at_link,
    request_by_link,
)
from umacct.tokens import TokenPurpose
from umacct.web.app import Page, error_response, in_worker, page_for, rate_limited
from umacct.web.pages import LINK_EXPIRED, TOKEN_SHAPE
from umacct.web.reasons import extension_reason

KIND = TokenPurpose.EXTENSION.value


def day_words(page: Page, day: object) -> str:
    """A date as the page's language writes it."""
    from datetime import date

    if not isinstance(day, date):
        return ""
    return french_date(day) if page.lang == "fr" else english_date(day)


def _token_of(page: Page) -> str:
    route = page.context.routes[KIND]
    if page.form is not None:
        return page.field("token")
    if route.query_name is None:
        return str(page.request.path_params.get("token", ""))
    return page.request.query_params.get(route.query_name, "")


def _switch(page: Page, token: str) -> str:
    route = page.context.routes[KIND]
    if route.query_name is None:
        return page.switch_href()
    return page.switch_href(**{route.query_name: token})


def _look(page: Page, token: str) -> ExtensionStatus:
    with page.context.runtime() as runtime:
        return look_at_link(runtime, token)


def _ask(page: Page, token: str) -> ExtensionAnswer:
    with page.context.runtime(page.client) as runtime:
        return request_by_link(runtime, token)


def _dead_link(page: Page, expired: bool) -> HTMLResponse:
    title, text = (
        ("link_expired_title", "link_expired")
        if expired
        else ("link_invalid_title", "link_invalid")
    )
    return page.message(400, title, text, link="/login", link_text="extension_login")


def refused(page: Page, reason: str, status: int = 403) -> HTMLResponse:
    """The policy's refusal, in the page's language."""
    return page.render(
        "message.html", status, title=page.t("extension_refused_title"),
        text=page.t("extension_refused_intro"), detail=extension_reason(reason, page.lang),
        link="/login", link_text="extension_login",
    )  # fmt: skip


def answered(page: Page, answer: ExtensionAnswer) -> HTMLResponse:
    """The request's outcome: granted (the new end), or waiting for the helpdesk."""
    if answer.granted:
        title, text = "extension_granted_title", "extension_granted"
    else:
        title, text = "extension_pending_title", "extension_pending"
    values = {
        "account": answer.account,
        "grace_end": day_words(page, answer.grace_end),
        "date": day_words(page, answer.request.requested_at.date()),
        "id": answer.request.request_id,
    }
    return page.render(
        "message.html", title=page.t(title), text=page.t(text, **values), detail=None,
        link=None, link_text=None,
    )  # fmt: skip


async def extension(request: Request) -> Response:
    """The extension link: GET shows the request form, POST files the request."""
    page = await page_for(request)
    token = _token_of(page)
    if request.method == "POST":
        if not page.csrf_ok():
            return page.message(403, "csrf_title", "csrf", link=page.request.url.path)
        settings = page.context.settings
        key = (f"client:{page.client.address}:post", settings.client_posts_per_hour)
        if not await in_worker(page.context.allow, key):
            return rate_limited(page)
    if not TOKEN_SHAPE.match(token):
        return _dead_link(page, expired=False)
    try:
        status = await in_worker(_look, page, token)
    except InvalidInputError as error:
        return _dead_link(page, expired=error.message.startswith(LINK_EXPIRED))
    except NotFoundError:
        return _dead_link(page, expired=False)
    except UmacctError as error:
        return error_response(page, error)
    if status.pending is None and not status.allowed:
        return refused(page, status.refusal or "")
    if request.method != "POST":
        return page.render(
            "extension.html", title=page.t("extension_title"), ext=status,
            grace_end=day_words(page, status.grace_end), action=page.request.url.path,
            token=token, switch_href=_switch(page, token),
            pending_date=day_words(page, status.pending.requested_at.date()) if status.pending else "",
        )  # fmt: skip
    try:
        answer = await in_worker(_ask, page, token)
    except InvalidInputError as error:
        return _dead_link(page, expired=error.message.startswith(LINK_EXPIRED))
    except RefusedError as error:
        return refused(page, error.message)
    except UmacctError as error:
        return error_response(page, error)
    return answered(page, answer)
