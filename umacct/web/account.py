"""The pages behind a login ("Gestion du compte"): password, addresses, and for staff more.

A person logs in with the institutional address and the password, checked by a real bind as
that person (the same answer, status and time, at least a second, for an unknown account, a
wrong password or an account that cannot log in); or, behind the site's single sign-on, a
trusted proxy names the person in ``[web] remote_user_header`` (from any other peer that
header is ignored). Every request of a session, or of the single sign-on, checks again on the
entry it reads that the account may still use the pages (``may_manage``: active or in grace,
not locked, ``pwdEndTime`` not passed) and, for a session, that the password did not change
since it began (another session, a reset, the command line, another web host): if not, the
session ends and the visit is a logged-out one (the single sign-on gets a 403 page). The forms call the services of ``umacct passwd``, ``set-recovery`` and
``redirect``: a new address is stored only once the link mailed to it is opened. For a
staff profile the page also has the directory data and the antispam level (``umacct
directory set``, ``umacct antispam``; see ``umacct.web.staff``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from umacct.errors import InvalidInputError, NotFoundError, RefusedError, UmacctError
from umacct.policy import Stage
from umacct.services.accounts import Account, find_account, recovery_address
from umacct.services.addresses import clear_forwarding, request_forwarding, request_recovery
from umacct.services.credentials import change_password
from umacct.services.extensions import (
    ExtensionAnswer,
    ExtensionStatus,
    request_extension,
    status_of,
)
from umacct.services.runtime import Runtime
from umacct.web.app import (
    MAX_FIELD_CHARS,
    Page,
    error_response,
    in_worker,
    page_for,
    page_home,
    rate_limited,
)
from umacct.web.extension import day_words
from umacct.web.i18n import password_reason
from umacct.web.reasons import address_reason, extension_reason
from umacct.web.security import cookie_options, session_cookie_name
from umacct.web.sessions import may_manage, password_mark
from umacct.web.staff import (
    FIELD_PREFIX,
    StaffAnswer,
    StaffView,
    attribute_hint,
    attribute_label,
    level_label,
    save_antispam,
    save_directory_data,
    staff_view,
    typed_values,
    with_typed,
)

LOGIN_SECONDS = 1.0


def routes() -> list[Route]:
    """The routes of the account pages."""
    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/account", account_page, methods=["GET"]),
        Route("/account/password", password_form, methods=["POST"]),
        Route("/account/recovery", recovery_form, methods=["POST"]),
        Route("/account/forwarding", forwarding_form, methods=["POST"]),
        Route("/account/directory", directory_form, methods=["POST"]),
        Route("/account/antispam", antispam_form, methods=["POST"]),
        Route("/account/extension", extension_form, methods=["POST"]),
    ]


@dataclass(frozen=True)
class AwaitingActivation:
    """The person the single sign-on names has an account awaiting its first activation."""

    identifier: str


@dataclass(frozen=True)
class SessionEnded:
    """The session's account may no longer use the pages (locked, expired, password changed).

    The session is deleted; the answer clears its cookie and sends to the login.
    """


@dataclass(frozen=True)
class Unmanageable:
    """The single sign-on names an account that cannot be managed now (locked, expired)."""

    identifier: str


Visitor = str | AwaitingActivation | SessionEnded | Unmanageable | None
"""Who a request is from (see ``who``): an identifier may use the pages; None is logged out."""


@dataclass(frozen=True)
class AccountView:
    """What the account page shows."""

    account: str
    recovery: str | None
    forwarding: str | None
    staff: StaffView | None = None
    """The staff part (directory data, antispam); None for an account that is not staff."""
    extension: ExtensionStatus | None = None
    """The extension part: an extendable profile in its grace period; None otherwise."""


# --- who is there ---------------------------------------------------------------------------


def authenticate(runtime: Runtime, key: str, password: str) -> Account | None:
    """The account (as read before the bind) if ``password`` binds as it, else None."""
    try:
        account = find_account(runtime.directory, runtime.config, key)
    except (NotFoundError, InvalidInputError):
        return None
    if not may_manage(account, runtime.clock.now()):
        return None
    return account if runtime.directory.check_password(account.dn, password) else None


def _session_cookie(page: Page) -> str | None:
    return page.request.cookies.get(session_cookie_name(page.client))


def who(page: Page) -> Visitor:
    """The logged-in account: the trusted proxy's single sign-on, else the session cookie.

    An account the single sign-on names that awaits its activation cannot use the pages yet
    (it has no password): it is told so, with the "1ère connexion" form, not sent to a login;
    one locked or expired is told it cannot be managed now. A session is checked against the
    account's entry on every request (``may_manage``, the password mark) and ended if it fails.
    """
    context = page.context
    header = context.settings.remote_user_header
    if header and page.client.from_proxy and page.request.headers.get(header):
        with context.runtime(page.client) as runtime:
            try:
                account = find_account(
                    runtime.directory, runtime.config, page.request.headers[header]
                )
            except (NotFoundError, InvalidInputError):
                return None
            if account.stage is Stage.CREATED:
                return AwaitingActivation(account.identifier)
            if not may_manage(account, runtime.clock.now()):
                return Unmanageable(account.identifier)
            return account.identifier
    cookie = _session_cookie(page)
    with context.sessions() as sessions:
        live = sessions.live(cookie)
    if live is None:
        return None
    with context.runtime(page.client) as runtime:
        try:
            found: Account | None = find_account(runtime.directory, runtime.config, live.account)
        except (NotFoundError, InvalidInputError):
            found = None
        now = runtime.clock.now()
    if found is not None and may_manage(found, now) and live.mark == password_mark(found):
        return found.identifier
    with context.sessions() as sessions:
        sessions.close_session(cookie)
    return SessionEnded()


def _view(page: Page, identifier: str, typed: dict[str, list[str]] | None = None) -> AccountView:
    with page.context.runtime(page.client) as runtime:
        account = find_account(runtime.directory, runtime.config, identifier)
        forwards = account.values(runtime.config.attributes.forwarding)
        staff = staff_view(runtime, account)
        return AccountView(
            account.identifier,
            recovery_address(runtime, account),
            forwards[0] if forwards else None,
            with_typed(staff, typed) if staff is not None and typed else staff,
            extension_part(runtime, account),
        )


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _not_logged_in(page: Page, visitor: Visitor) -> Response | None:
    """The answer to a visitor who may not use the pages now; None for one who may."""
    if isinstance(visitor, str):
        return None
    if isinstance(visitor, AwaitingActivation):
        return _awaiting(page, visitor)
    if isinstance(visitor, Unmanageable):
        return page.message(403, "unmanageable_title", "unmanageable", link=page_home(page))
    response = _to_login()
    if isinstance(visitor, SessionEnded):
        response.delete_cookie(session_cookie_name(page.client), **cookie_options(page.client))
    return response


def _awaiting(page: Page, awaiting: AwaitingActivation) -> Response:
    """The account awaits activation: the "1ère connexion" form (``/``), filled in."""
    return page.render("awaiting.html", title=page.t("awaiting_title"), account=awaiting.identifier)


# --- login, logout --------------------------------------------------------------------------


async def login(request: Request) -> Response:
    """The login form; a real bind as the person opens a session."""
    page = await page_for(request)
    if request.method != "POST":
        return page.render("login.html", title=page.t("login_title"), address="")
    if not page.csrf_ok():
        return page.message(403, "csrf_title", "csrf", link="/login")
    address, password = page.field("address").strip(), page.field("password")
    settings = page.context.settings
    checks = [
        (f"client:{page.client.address}:post", settings.client_posts_per_hour),
        (f"login:{address.casefold()[:256]}", settings.login_attempts_per_hour),
    ]
    if not await in_worker(page.context.allow, *checks):
        return rate_limited(page)
    errors = {}
    if not address or len(address) > 256:
        errors["address"] = page.t("required" if not address else "too_long")
    if not password or len(password) > MAX_FIELD_CHARS:
        errors["password"] = page.t("required" if not password else "too_long")
    if errors:
        return page.render(
            "login.html", 400, title=page.t("login_title"), address=address[:256], errors=errors
        )
    try:
        session = await in_worker(_log_in, page, address, password)
    except UmacctError as error:
        return error_response(page, error)
    if session is None:
        errors = {"password": page.t("login_failed")}
        return page.render(
            "login.html", 400, title=page.t("login_title"), address=address, errors=errors
        )
    response = RedirectResponse("/account", status_code=303)
    response.set_cookie(session_cookie_name(page.client), session, **cookie_options(page.client))
    return response


def _log_in(page: Page, address: str, password: str) -> str | None:
    started = time.monotonic()
    try:
        with page.context.runtime(page.client) as runtime:
            account = authenticate(runtime, address, password)
        if account is None:
            return None
        with page.context.sessions() as sessions:
            return sessions.open(account.identifier, password_mark(account))
    finally:
        remaining = LOGIN_SECONDS - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)


async def logout(request: Request) -> Response:
    """End the session."""
    page = await page_for(request)
    if not page.csrf_ok():
        return page.message(403, "csrf_title", "csrf", link="/account")
    await in_worker(_log_out, page)
    response = page.message(200, "logout", "logged_out", link="/")
    response.delete_cookie(session_cookie_name(page.client), **cookie_options(page.client))
    return response


def _log_out(page: Page) -> None:
    with page.context.sessions() as sessions:
        sessions.close_session(_session_cookie(page))


# --- the account page and its forms -----------------------------------------------------------


async def account_page(request: Request) -> Response:
    """Gestion du compte: the account, its recovery address and forwarding, and the forms."""
    page = await page_for(request)
    try:
        identifier = await in_worker(who, page)
        refused = _not_logged_in(page, identifier)
        if refused is not None or not isinstance(identifier, str):
            return refused or _to_login()
        view = await in_worker(_view, page, identifier)
    except UmacctError as error:
        return error_response(page, error)
    return _render(page, view)


def _render(
    page: Page,
    view: AccountView,
    status: int = 200,
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    kept: dict[str, str] | None = None,
) -> Response:
    t = page.t
    return page.render(
        "account.html",
        status,
        title=t("account_title"),
        view=view,
        notice=notice,
        errors=errors or {},
        first_error=next(iter(errors or {}), None),
        kept=kept or {},
        sso=bool(page.context.settings.remote_user_header and page.client.from_proxy),
        min_length=page.context.config.policy.password_min_length,
        attribute_label=lambda name: attribute_label(t, name),
        attribute_hint=lambda name: attribute_hint(t, name),
        level_label=lambda name: level_label(t, name),
        **extension_values(page, view.extension),
    )


async def _posted(
    request: Request, attempts: bool = False
) -> tuple[Page, str | None, Response | None]:
    """A form of the account page: CSRF, the client's limit, and who sent it."""
    page = await page_for(request)
    if not page.csrf_ok():
        return page, None, page.message(403, "csrf_title", "csrf", link="/account")
    settings = page.context.settings
    checks = [(f"client:{page.client.address}:post", settings.client_posts_per_hour)]
    if not await in_worker(page.context.allow, *checks):
        return page, None, rate_limited(page)
    try:
        identifier = await in_worker(who, page)
    except UmacctError as error:
        return page, None, error_response(page, error)
    refused = _not_logged_in(page, identifier)
    if refused is not None or not isinstance(identifier, str):
        return page, None, refused or _to_login()
    if attempts:
        key = (f"account:{identifier}:password", settings.account_attempts_per_hour)
        if not await in_worker(page.context.allow, key):
            return page, None, rate_limited(page)
    return page, identifier, None


async def password_form(request: Request) -> Response:
    """Change the password: the current one, then the new one twice."""
    page, identifier, refused = await _posted(request, attempts=True)
    if refused is not None or identifier is None:
        return refused or _to_login()
    current, new, again = page.field("current"), page.field("password"), page.field("password2")
    errors: dict[str, str] = {}
    for name, value in (("current", current), ("password", new)):
        if not value or len(value) > MAX_FIELD_CHARS:
            errors[name] = page.t("required" if not value else "too_long")
    if not errors and new != again:
        errors["password2"] = page.t("mismatch")
    notice = None
    if not errors:
        try:
            await in_worker(_change_password, page, identifier, current, new)
            notice = page.t("password_changed")
        except RefusedError:
            errors["current"] = page.t("wrong_current")
        except InvalidInputError as error:
            errors["password"] = password_reason(error.message, page.lang)
        except UmacctError as error:
            return error_response(page, error)
    return await _answer(page, identifier, notice, errors)


def _change_password(page: Page, identifier: str, current: str, new: str) -> None:
    cookie = _session_cookie(page)
    with page.context.runtime(page.client) as runtime:
        change_password(runtime, identifier, current, new)
        mark = password_mark(find_account(runtime.directory, runtime.config, identifier))
    with page.context.sessions() as sessions:
        sessions.close_others(identifier, cookie)
        sessions.remark(cookie, mark)


async def recovery_form(request: Request) -> Response:
    """A new recovery address: a confirmation link goes to it."""
    page, identifier, refused = await _posted(request)
    if refused is not None or identifier is None:
        return refused or _to_login()
    return await _address_change(page, identifier, "recovery")


async def forwarding_form(request: Request) -> Response:
    """A forwarding target (a confirmation link goes to it), or forwarding stopped."""
    page, identifier, refused = await _posted(request)
    if refused is not None or identifier is None:
        return refused or _to_login()
    return await _address_change(page, identifier, "forwarding")


async def _address_change(page: Page, identifier: str, change: str) -> Response:
    address = page.field(change).strip()
    stop = change == "forwarding" and page.field("off") == "1"
    errors: dict[str, str] = {}
    notice = None
    if not stop and (not address or len(address) > 256):
        errors[change] = page.t("required" if not address else "too_long")
    else:
        try:
            await in_worker(_request_change, page, identifier, change, address, stop)
            notice = (
                page.t("forwarding_stopped") if stop else page.t("link_sent_to", address=address)
            )
        except InvalidInputError as error:
            reason = address_reason(error.message, page.lang)
            errors[change] = page.t("address_refused", reason=reason)
        except UmacctError as error:
            return error_response(page, error)
    kept = {change: address} if errors and len(address) <= 256 else None
    return await _answer(page, identifier, notice, errors, kept=kept)


def _request_change(page: Page, identifier: str, change: str, address: str, stop: bool) -> None:
    with page.context.runtime(page.client) as runtime:
        if change == "recovery":
            request_recovery(runtime, identifier, address)
        elif stop:
            clear_forwarding(runtime, identifier)
        else:
            request_forwarding(runtime, identifier, address)


async def _answer(
    page: Page,
    identifier: str,
    notice: str | None,
    errors: dict[str, str],
    typed: dict[str, list[str]] | None = None,
    *,
    kept: dict[str, str] | None = None,
    status: int | None = None,
) -> Response:
    """The account page again after a form: 400 with the form's errors (its value kept)."""
    try:
        view = await in_worker(_view, page, identifier, typed if errors else None)
    except UmacctError as error:
        return error_response(page, error)
    status = status or (400 if errors else 200)
    return _render(page, view, status, notice=notice, errors=errors, kept=kept)


# --- for staff: directory data and antispam level ---------------------------------------------


async def directory_form(request: Request) -> Response:
    """Staff: the editable directory data, every value checked on its field, one write."""
    page, identifier, refused = await _posted(request)
    if refused is not None or identifier is None:
        return refused or _to_login()
    return await _staff_change(page, identifier, _save_directory)


async def antispam_form(request: Request) -> Response:
    """Staff: the antispam level, one of ``[antispam] levels`` (no table: not offered)."""
    page, identifier, refused = await _posted(request)
    if refused is not None or identifier is None:
        return refused or _to_login()
    if page.context.config.antispam is None:
        return page.message(400, "antispam_title", "antispam_not_offered", link="/account")
    return await _staff_change(page, identifier, _save_antispam)


async def _staff_change(
    page: Page, identifier: str, save: Callable[[Page, str], StaffAnswer]
) -> Response:
    try:
        answer = await in_worker(save, page, identifier)
    except RefusedError:
        return page.message(403, "staff_only_title", "staff_only", link="/account")
    except UmacctError as error:
        return error_response(page, error)
    return await _answer(page, identifier, answer.notice, answer.errors or {}, answer.typed)


def _save_directory(page: Page, identifier: str) -> StaffAnswer:
    with page.context.runtime(page.client) as runtime:
        typed = typed_values(runtime, page.fields(FIELD_PREFIX))
        return save_directory_data(runtime, identifier, typed, page.t, page.lang)


def _save_antispam(page: Page, identifier: str) -> StaffAnswer:
    with page.context.runtime(page.client) as runtime:
        return save_antispam(runtime, identifier, page.field("level"), page.t)


# --- the extension request of an extendable profile in its grace period -----------------------


def extension_part(runtime: Runtime, account: Account) -> ExtensionStatus | None:
    """The account's extension section, for an extendable profile in its grace period."""
    if account.stage is not Stage.GRACE:
        return None
    status = status_of(runtime, account)
    return status if status.extendable else None


def extension_values(page: Page, status: ExtensionStatus | None) -> dict[str, str]:
    """What the section shows: the dates in the page's language, the policy's reason."""
    if status is None:
        return {}
    pending = status.pending
    return {
        "extension_end": day_words(page, status.grace_end),
        "extension_pending_date": day_words(page, pending.requested_at.date()) if pending else "",
        "extension_refusal": extension_reason(status.refusal or "", page.lang),
    }


async def extension_form(request: Request) -> Response:
    """Ask for the extension from the account page (the same request as the mailed link)."""
    page, identifier, refused = await _posted(request)
    if refused is not None or identifier is None:
        return refused or _to_login()
    try:
        answer = await in_worker(_ask_extension, page, identifier)
    except RefusedError as error:
        reason = extension_reason(error.message, page.lang)
        return await _answer(page, identifier, reason, {}, status=403)
    except UmacctError as error:
        return error_response(page, error)
    values = {
        "account": answer.account,
        "grace_end": day_words(page, answer.grace_end),
        "id": answer.request.request_id,
    }
    key = "extension_granted" if answer.granted else "extension_pending"
    return await _answer(page, identifier, page.t(key, **values), {})


def _ask_extension(page: Page, identifier: str) -> ExtensionAnswer:
    with page.context.runtime(page.client) as runtime:
        return request_extension(runtime, identifier)
