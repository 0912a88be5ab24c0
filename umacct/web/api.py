"""The JSON API under ``/api/``: the pages' handlers for a site that keeps its own ENT pages.

The same services as the pages (never the command line), the same rate limits (the same
keys: a client cannot double its allowance by using both), the same answer for unknown
accounts on ``/api/self-service``, the same rule that only a POST uses a link's token (a GET
only looks at it). What differs is how a caller proves who it is:

- the public endpoints (self-service, activation, reset, confirmation) need nothing but the
  link's token, as the pages do;
- ``/api/account...`` acts for one person, named in ``[web] remote_user_header`` (default
  ``X-Remote-User``) by either a trusted proxy's single sign-on (that header from ``[web]
  trusted_proxies``, with ``remote_user_header`` set), or a caller holding the bearer token
  of ``umacct secret set web-api`` (``Authorization: Bearer ...``, compared in constant
  time). A session cookie is never accepted here, nor any cookie set: there is no ambient
  credential for another site to ride, hence no CSRF field; bodies must be
  ``application/json``, which a cross-site form cannot send.

Errors are ``{"error": {"code": ..., "message": ...}}`` with stable codes (docs/web.md), never
a traceback; tokens are never logged (the access log has no query string, bodies are not
logged).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from umacct.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    RefusedError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.secrets import SecretKind, find_secret
from umacct.services.accounts import find_account, recovery_address
from umacct.services.addresses import (
    FORWARDING,
    RECOVERY,
    clear_forwarding,
    confirm_forwarding,
    confirm_recovery,
    request_forwarding,
    request_recovery,
)
from umacct.services.credentials import (
    SELF_SERVICE_ANSWER,
    SELF_SERVICE_SECONDS,
    PasswordSet,
    activate,
    change_password,
    reset_with_token,
    self_service_reset,
)
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose
from umacct.web.app import MAX_FIELD_CHARS, WebContext, context_of, in_worker
from umacct.web.pages import LINK_EXPIRED, LINK_WORDS, LinkLook, look_at_link
from umacct.web.security import Client
from umacct.web.sessions import may_manage

LOG = logging.getLogger("umacct.web")
PREFIX = "/api"
DEFAULT_USER_HEADER = "X-Remote-User"
MAX_ADDRESS = 256
RETRY_UNAVAILABLE = "120"
RETRY_RATE = "3600"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_CONFIRMS = (TokenPurpose.CONFIRM_RECOVERY, TokenPurpose.CONFIRM_FORWARDING, TokenPurpose.CONFIRM)
Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """An answer that is an error: status, stable code, message, extra fields, headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        """The JSON answer."""
        body = {"error": {"code": self.code, "message": self.message, **self.extra}}
        return JSONResponse(body, self.status, headers=self.headers)


def routes() -> list[Route]:
    """The API's routes; anything else under ``/api/`` is a JSON 404."""
    return [
        Route(f"{PREFIX}/self-service", self_service, methods=_METHODS),
        Route(f"{PREFIX}/activation", activation, methods=_METHODS),
        Route(f"{PREFIX}/reset", reset, methods=_METHODS),
        Route(f"{PREFIX}/confirm", confirm, methods=_METHODS),
        Route(f"{PREFIX}/account", account, methods=_METHODS),
        Route(f"{PREFIX}/account/password", password, methods=_METHODS),
        Route(f"{PREFIX}/account/recovery", recovery, methods=_METHODS),
        Route(f"{PREFIX}/account/forwarding", forwarding, methods=_METHODS),
        Route(PREFIX, unknown, methods=_METHODS),
        Route(PREFIX + "/{rest:path}", unknown, methods=_METHODS),
    ]


def endpoint(*methods: str) -> Callable[[Handler], Handler]:
    """A handler that answers only ``methods`` and only in JSON, whatever goes wrong."""
    allowed = {*methods, "HEAD"} if "GET" in methods else set(methods)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def answer(request: Request) -> Response:
            if request.method not in allowed:
                return ApiError(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not accepted here",
                    headers={"allow": ", ".join(sorted(allowed))},
                ).response()
            try:
                return await handler(request)
            except ApiError as error:
                return error.response()
            except UmacctError as error:
                return service_error(error).response()
            except Exception:
                LOG.exception("unexpected error on %s %s", request.method, request.url.path)
                return ApiError(500, "internal", "something went wrong; try again later").response()

        return answer

    return wrap


def service_error(error: UmacctError) -> ApiError:
    """A service's refusal as the API says it: 69/75 → 503, 77 → 403, 65/67 → 400, else 500."""
    if isinstance(error, UnavailableError | TemporaryError):
        return ApiError(
            503, "unavailable", "try again later", headers={"retry-after": RETRY_UNAVAILABLE}
        )
    code = int(error.exit_code)
    if code == 77:
        return ApiError(403, "refused", "this no longer applies to the account")
    if code in (65, 67, 2):
        return ApiError(400, "invalid", error.message)
    LOG.error("%s: %s", type(error).__name__, error.message)
    return ApiError(500, "internal", "something went wrong; try again later")


@endpoint(*_METHODS)
async def unknown(request: Request) -> Response:
    """Nothing is here."""
    raise ApiError(404, "not_found", "no such endpoint")


# --- what every endpoint uses ---------------------------------------------------------------


def _client(request: Request) -> Client:
    client: Client = request.scope["state"]["client"]
    return client


async def _body(request: Request) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "unsupported_media_type", "send a JSON object (application/json)")
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "expected a JSON object")
    return data


def _text(data: dict[str, Any], name: str, limit: int = MAX_ADDRESS) -> str:
    value = data.get(name)
    if value is None or value == "":
        raise ApiError(400, "missing_field", f"{name} is required", field=name)
    if not isinstance(value, str):
        raise ApiError(400, "bad_field", f"{name}: expected a string", field=name)
    if len(value) > limit:
        raise ApiError(400, "too_long", f"{name}: at most {limit} characters", field=name)
    return value


async def _allow(context: WebContext, *checks: tuple[str, int]) -> None:
    if not await in_worker(context.allow, *checks):
        raise ApiError(
            429, "rate_limited", "too many requests; try again later",
            headers={"retry-after": RETRY_RATE},
        )  # fmt: skip


async def _posted(request: Request) -> tuple[WebContext, Client, dict[str, Any]]:
    """A POST: its JSON body, counted against the client's hourly limit of forms."""
    context, client = context_of(request), _client(request)
    data = await _body(request)
    await _allow(context, (f"client:{client.address}:post", context.settings.client_posts_per_hour))
    return context, client, data


@contextmanager
def _runtime_for(context: WebContext, client: Client) -> Iterator[Runtime]:
    """A runtime whose audit records say they came through the API."""
    with context.runtime(client) as runtime:
        runtime.audit_details["frontend"] = "web-api"
        yield runtime


def _link_error(look: LinkLook) -> ApiError:
    if look.state == "expired":
        return ApiError(400, "link_expired", "this link expired; ask for a new one")
    return ApiError(400, "link_invalid", "this link is not valid (used, replaced or incomplete)")


async def _look(context: WebContext, token: str, purposes: tuple[TokenPurpose, ...]) -> LinkLook:
    look = await in_worker(look_at_link, context, token, purposes)
    if look.state != "valid":
        raise _link_error(look)
    return look


# --- the public endpoints -------------------------------------------------------------------


@endpoint("POST")
async def self_service(request: Request) -> Response:
    """The "1ère connexion / problème de connexion" request: one answer whatever the account.

    A configuration that cannot be used (the web DN's password unreadable...) says nothing
    about the account: the usual answer at the usual pace, and the reason in the log.
    """
    started = time.monotonic()
    try:
        return await _self_service_answer(request)
    except ConfigError as error:
        LOG.error("self-service request not handled: %s", error.message)
        await asyncio.sleep(max(0.0, SELF_SERVICE_SECONDS - (time.monotonic() - started)))
        return JSONResponse({"status": "sent", "message": SELF_SERVICE_ANSWER})


async def _self_service_answer(request: Request) -> Response:
    context, client, data = await _posted(request)
    allowed = context.settings.client_requests_per_hour
    await _allow(context, (f"client:{client.address}:self-service", allowed))
    address = _text(data, "address").strip()
    await in_worker(_self_service, context, client, address)
    return JSONResponse({"status": "sent", "message": SELF_SERVICE_ANSWER})


def _self_service(context: WebContext, client: Client, address: str) -> None:
    with _runtime_for(context, client) as runtime:
        self_service_reset(runtime, address)


@endpoint("GET", "POST")
async def activation(request: Request) -> Response:
    """The activation link: GET looks at it, POST sets the first password."""
    return await _password_link(request, TokenPurpose.ACTIVATION)


@endpoint("GET", "POST")
async def reset(request: Request) -> Response:
    """The reset link: GET looks at it, POST sets a new password."""
    return await _password_link(request, TokenPurpose.RESET)


async def _password_link(request: Request, purpose: TokenPurpose) -> Response:
    if request.method != "POST":
        context = context_of(request)
        look = await _look(context, request.query_params.get("token", ""), (purpose,))
        return JSONResponse({"state": look.state, "account": look.account})
    context, client, data = await _posted(request)
    token = _text(data, "token")
    look = await _look(context, token, (purpose,))
    attempts = context.settings.account_attempts_per_hour
    await _allow(context, (f"account:{look.account}:password", attempts))
    chosen = _text(data, "password", MAX_FIELD_CHARS)
    service = activate if purpose is TokenPurpose.ACTIVATION else reset_with_token
    try:
        result = await in_worker(_set_password, context, client, service, token, chosen)
    except InvalidInputError as error:
        if error.message.startswith(LINK_WORDS):
            expired = error.message.startswith(LINK_EXPIRED)
            raise _link_error(LinkLook("expired" if expired else "invalid")) from None
        raise _password_refused(error) from None
    except NotFoundError:
        raise _link_error(LinkLook("invalid")) from None
    body: dict[str, object] = {"status": result.action, "account": result.account}
    if purpose is TokenPurpose.ACTIVATION:
        body["recovery_set"] = result.recovery_set
    return JSONResponse(body)


def _password_refused(error: InvalidInputError) -> ApiError:
    return ApiError(400, "password_refused", error.message, field="password")


def _set_password(
    context: WebContext,
    client: Client,
    service: Callable[[Runtime, str, str], PasswordSet],
    token: str,
    chosen: str,
) -> PasswordSet:
    with _runtime_for(context, client) as runtime:
        return service(runtime, token, chosen)


@endpoint("GET", "POST")
async def confirm(request: Request) -> Response:
    """A confirmation link: GET says what it confirms, POST confirms it."""
    context = context_of(request)
    if request.method != "POST":
        look = await _look(context, request.query_params.get("token", ""), _CONFIRMS)
        return JSONResponse(_confirmation(look, "valid"))
    context, client, data = await _posted(request)
    token = _text(data, "token")
    look = await _look(context, token, _CONFIRMS)
    if look.change not in (RECOVERY, FORWARDING):
        raise _link_error(LinkLook("invalid"))
    try:
        await in_worker(_confirm, context, client, look.change, token)
    except (InvalidInputError, NotFoundError) as error:
        if isinstance(error, NotFoundError) or error.message.startswith(LINK_WORDS):
            raise _link_error(LinkLook("invalid")) from None
        raise
    return JSONResponse(_confirmation(look, "confirmed"))


def _confirmation(look: LinkLook, state: str) -> dict[str, str]:
    return {"state": state, "change": look.change, "account": look.account, "address": look.address}


def _confirm(context: WebContext, client: Client, change: str, token: str) -> None:
    with _runtime_for(context, client) as runtime:
        if change == RECOVERY:
            confirm_recovery(runtime, token)
        else:
            confirm_forwarding(runtime, token)


# --- for an authenticated person --------------------------------------------------------------


_NO_TOKEN = object()


def _api_token(request: Request) -> str | None:
    """The stored bearer token (kept once found), or None.

    A miss is looked up again next time, so a token stored after the server started is taken
    without a restart.
    """
    state = request.app.state
    stored = getattr(state, "api_token", _NO_TOKEN)
    if isinstance(stored, str):
        return stored
    try:
        found = find_secret(SecretKind.WEB_API, context_of(request).config).value
    except ConfigError:
        return None
    state.api_token = found
    return found


def _bearer_ok(request: Request, given: str) -> bool:
    stored = _api_token(request)
    if not stored or not given:
        return False
    digest = hashlib.sha256
    return hmac.compare_digest(digest(given.encode()).digest(), digest(stored.encode()).digest())


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"www-authenticate": "Bearer"})


async def _person(request: Request) -> tuple[WebContext, Client, str]:
    """Who the request acts for: a bearer caller's or the trusted proxy's named person."""
    context, client = context_of(request), _client(request)
    settings = context.settings
    header = settings.remote_user_header or DEFAULT_USER_HEADER
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not _bearer_ok(request, given.strip()):
            raise _unauthenticated("the bearer token is not valid")
    elif not (settings.remote_user_header and client.from_proxy):
        raise _unauthenticated(
            "needs Authorization: Bearer, or single sign-on from a trusted proxy"
        )
    named = request.headers.get(header, "").strip()
    if not named or len(named) > MAX_ADDRESS:
        raise _unauthenticated(f"no person named in {header}")
    identifier = await in_worker(_usable_account, context, client, named)
    if identifier is None:
        raise ApiError(403, "account_unusable", "no account that can log in has that name")
    return context, client, identifier


def _usable_account(context: WebContext, client: Client, named: str) -> str | None:
    with _runtime_for(context, client) as runtime:
        try:
            found = find_account(runtime.directory, runtime.config, named)
        except (NotFoundError, InvalidInputError):
            return None
        return found.identifier if may_manage(found, runtime.clock.now()) else None


async def _person_posted(request: Request) -> tuple[WebContext, Client, str, dict[str, Any]]:
    context, client = context_of(request), _client(request)
    data = await _body(request)
    await _allow(context, (f"client:{client.address}:post", context.settings.client_posts_per_hour))
    context, client, identifier = await _person(request)
    return context, client, identifier, data


@endpoint("GET")
async def account(request: Request) -> Response:
    """The person's account: identifier, recovery address, forwarding."""
    context, client, identifier = await _person(request)
    return JSONResponse(await in_worker(_account_view, context, client, identifier))


def _account_view(context: WebContext, client: Client, identifier: str) -> dict[str, object]:
    with _runtime_for(context, client) as runtime:
        found = find_account(runtime.directory, runtime.config, identifier)
        forwards = found.values(runtime.config.attributes.forwarding)
        return {
            "account": found.identifier,
            "recovery": recovery_address(runtime, found),
            "forwarding": forwards[0] if forwards else None,
        }


@endpoint("POST")
async def password(request: Request) -> Response:
    """Change the password: the current one and the new one; the person's sessions end."""
    context, client, identifier, data = await _person_posted(request)
    attempts = context.settings.account_attempts_per_hour
    await _allow(context, (f"account:{identifier}:password", attempts))
    current = _text(data, "current", MAX_FIELD_CHARS)
    chosen = _text(data, "password", MAX_FIELD_CHARS)
    try:
        await in_worker(_change_password, context, client, identifier, current, chosen)
    except RefusedError:
        raise ApiError(
            403, "wrong_current_password", "the current password is wrong", field="current"
        ) from None
    except InvalidInputError as error:
        raise _password_refused(error) from None
    return JSONResponse({"status": "passwd", "account": identifier})


def _change_password(
    context: WebContext, client: Client, identifier: str, current: str, chosen: str
) -> None:
    with _runtime_for(context, client) as runtime:
        change_password(runtime, identifier, current, chosen)
    with context.sessions() as sessions:
        sessions.close_others(identifier, None)


@endpoint("POST")
async def recovery(request: Request) -> Response:
    """A new recovery address: a confirmation link goes to it."""
    context, client, identifier, data = await _person_posted(request)
    address = _text(data, "address").strip()
    await in_worker(_request_change, context, client, identifier, RECOVERY, address)
    return JSONResponse({"status": "link_sent", "address": address}, 202)


@endpoint("POST")
async def forwarding(request: Request) -> Response:
    """A forwarding target (a confirmation link goes to it), or ``{"off": true}``."""
    context, client, identifier, data = await _person_posted(request)
    if data.get("off") is True:
        await in_worker(_request_change, context, client, identifier, FORWARDING, "")
        return JSONResponse({"status": "forwarding_stopped"})
    address = _text(data, "address").strip()
    await in_worker(_request_change, context, client, identifier, FORWARDING, address)
    return JSONResponse({"status": "link_sent", "address": address}, 202)


def _request_change(
    context: WebContext, client: Client, identifier: str, change: str, address: str
) -> None:
    with _runtime_for(context, client) as runtime:
        try:
            if change == RECOVERY:
                request_recovery(runtime, identifier, address)
            elif not address:
                clear_forwarding(runtime, identifier)
            else:
                request_forwarding(runtime, identifier, address)
        except InvalidInputError as error:
            raise ApiError(400, "address_refused", error.message, field="address") from None
