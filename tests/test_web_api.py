"""umacct serve's JSON API (/api/): every endpoint and every refusal, against slapd and SMTP."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from people import NEW_PASSWORD, OTHER_PASSWORD, add_person, read, token_in_mail
from starlette.testclient import TestClient
from test_web import SITE, WEAK, Web, activation_token, pending, personal, web

from umacct.errors import UnavailableError
from umacct.services.addresses import request_recovery
from umacct.services.credentials import SELF_SERVICE_ANSWER, send_reset
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["web"]

API_TOKEN = "a long bearer token the ENT server holds 8842"
PROXY = ("127.0.0.1", 5000)
ELSEWHERE = ("198.51.100.7", 5000)


def call(browser: TestClient, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    """POST a JSON body (or GET without one)."""
    if body is None:
        return browser.get(path, headers=headers)
    return browser.post(path, json=body, headers=headers)


def code_of(answer: Any) -> str:
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    return str(answer.json()["error"]["code"])


def bearer(person_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {API_TOKEN}", "x-remote-user": person_key}


@pytest.fixture
def api_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("UMACCT_WEB_API_TOKEN", API_TOKEN)
    return API_TOKEN


# --- activation and reset with a token ------------------------------------------------------


def test_sec50_api_a_get_looks_at_the_link_and_only_a_post_uses_it(web: Web) -> None:
    person, token = activation_token(web)
    browser = web.client()
    for _ in range(2):
        look = browser.get("/api/activation", params={"token": token})
        assert look.status_code == 200
        assert look.json() == {"state": "valid", "account": person.identifier}
    assert pending(web, person) == [TokenPurpose.ACTIVATION]
    done = call(browser, "/api/activation", {"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json() == {
        "status": "activate",
        "account": person.identifier,
        "recovery_set": None,  # the personal address is already the recovery one
    }
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert not browser.cookies  # no cookie, no ambient credential
    used = call(browser, "/api/activation", {"token": token, "password": OTHER_PASSWORD})
    assert (used.status_code, code_of(used)) == (400, "link_invalid")
    looked = browser.get("/api/activation", params={"token": token})
    assert (looked.status_code, code_of(looked)) == (400, "link_invalid")


def test_api_a_weak_password_is_refused_with_its_reason_and_uses_nothing(web: Web) -> None:
    person, token = activation_token(web)
    answer = call(web.client(), "/api/activation", {"token": token, "password": WEAK})
    assert (answer.status_code, code_of(answer)) == (400, "password_refused")
    assert answer.json()["error"]["field"] == "password"
    assert "common" in answer.json()["error"]["message"]
    assert pending(web, person) == [TokenPurpose.ACTIVATION]
    assert not web.runtime.directory.check_password(person.dn, WEAK)


def test_api_reset_with_a_token(web: Web) -> None:
    person = add_person(web.runtime, "theo.roux")
    send_reset(web.runtime, person.identifier)
    token = token_in_mail(web.relay, personal(person), "reset")
    browser = web.client()
    assert browser.get("/api/reset", params={"token": token}).json()["state"] == "valid"
    done = call(browser, "/api/reset", {"token": token, "password": NEW_PASSWORD})
    assert done.json() == {"status": "reset", "account": person.identifier}
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    wrong_kind = call(browser, "/api/activation", {"token": token, "password": OTHER_PASSWORD})
    assert code_of(wrong_kind) == "link_invalid"


def test_api_a_malformed_token_or_body_is_refused(web: Web) -> None:
    browser = web.client()
    assert code_of(browser.get("/api/reset", params={"token": "short"})) == "link_invalid"
    missing = call(browser, "/api/reset", {"password": NEW_PASSWORD})
    assert (missing.status_code, code_of(missing)) == (400, "missing_field")
    assert missing.json()["error"]["field"] == "token"
    typed = call(browser, "/api/reset", {"token": 12, "password": NEW_PASSWORD})
    assert code_of(typed) == "bad_field"
    form = browser.post("/api/reset", data={"token": "x" * 43, "password": NEW_PASSWORD})
    assert (form.status_code, code_of(form)) == (415, "unsupported_media_type")
    broken = browser.post(
        "/api/reset", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (broken.status_code, code_of(broken)) == (400, "bad_json")
    listed = browser.post("/api/reset", json=["token"])
    assert code_of(listed) == "bad_json"


# --- self-service ---------------------------------------------------------------------------


def test_sec54_api_self_service_says_the_same_whatever_the_account(web: Web) -> None:
    active = add_person(web.runtime, "nina.petit")
    answers = []
    for address in (active.identifier, "nobody.here@umontpellier.fr", "*)(uid=*"):
        started = time.monotonic()
        answer = call(web.client(), "/api/self-service", {"address": address})
        assert time.monotonic() - started >= 1.0
        answers.append((answer.status_code, answer.text))
    assert len(set(answers)) == 1
    assert answers[0][0] == 200
    assert web.client().post("/api/self-service", json={"address": "x"}).json() == {
        "status": "sent",
        "message": SELF_SERVICE_ANSWER,
    }
    assert token_in_mail(web.relay, personal(active), "reset")


def test_sec54_api_self_service_shares_the_pages_limit_per_client(web: Web) -> None:
    browser = web.client(client_requests_per_hour=1)
    assert call(browser, "/api/self-service", {"address": "a@umontpellier.fr"}).status_code == 200
    limited = call(browser, "/api/self-service", {"address": "b@umontpellier.fr"})
    assert (limited.status_code, code_of(limited)) == (429, "rate_limited")
    assert limited.headers["retry-after"] == "3600"


def test_sec54_api_password_posts_are_limited_per_account(web: Web) -> None:
    person, token = activation_token(web)
    app = web.app(account_attempts_per_hour=2)
    for address in ("198.51.100.1", "198.51.100.2"):
        browser = TestClient(app, base_url=SITE, client=(address, 1000))
        assert (
            call(browser, "/api/activation", {"token": token, "password": WEAK}).status_code == 400
        )
    browser = TestClient(app, base_url=SITE, client=("198.51.100.3", 1000))
    answer = call(browser, "/api/activation", {"token": token, "password": NEW_PASSWORD})
    assert (answer.status_code, code_of(answer)) == (429, "rate_limited")
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)


# --- confirmation -----------------------------------------------------------------------------


def test_api_confirm_a_recovery_address(web: Web) -> None:
    person = add_person(web.runtime, "luc.garnier")
    request_recovery(web.runtime, person.identifier, "luc.home@example.com")
    token = token_in_mail(web.relay, "luc.home@example.com", "confirm")
    browser = web.client()
    look = browser.get("/api/confirm", params={"token": token})
    assert look.json() == {
        "state": "valid",
        "change": "recovery",
        "account": person.identifier,
        "address": "luc.home@example.com",
    }
    assert read(web.runtime, person).get("supannMailPerso") == [personal(person)]
    done = call(browser, "/api/confirm", {"token": token})
    assert done.status_code == 200 and done.json()["state"] == "confirmed"
    assert read(web.runtime, person).get("supannMailPerso") == ["luc.home@example.com"]
    again = call(browser, "/api/confirm", {"token": token})
    assert (again.status_code, code_of(again)) == (400, "link_invalid")


# --- an authenticated person --------------------------------------------------------------------


def test_api_the_account_by_bearer_token(web: Web, api_token: str) -> None:
    person = add_person(
        web.runtime, "ana.lopez", extra={"mailForwardingAddress": ["a@example.org"]}
    )
    browser = web.client()
    view = call(browser, "/api/account", **bearer(person.uid))
    assert view.status_code == 200, view.text
    assert view.json() == {
        "account": person.identifier,
        "recovery": personal(person),
        "forwarding": "a@example.org",
    }
    asked = call(
        browser, "/api/account/recovery", {"address": "ana.home@example.com"}, **bearer(person.uid)
    )
    assert (asked.status_code, asked.json()["status"]) == (202, "link_sent")
    token_in_mail(web.relay, "ana.home@example.com", "confirm")
    refused = call(
        browser, "/api/account/recovery", {"address": "x@umontpellier.fr"}, **bearer(person.uid)
    )
    assert (refused.status_code, code_of(refused)) == (400, "address_refused")
    target = call(
        browser, "/api/account/forwarding", {"address": "ana@example.net"}, **bearer(person.uid)
    )
    assert target.status_code == 202
    token_in_mail(web.relay, "ana@example.net", "confirm")
    stopped = call(browser, "/api/account/forwarding", {"off": True}, **bearer(person.uid))
    assert stopped.json() == {"status": "forwarding_stopped"}
    assert read(web.runtime, person).get("mailForwardingAddress") == []
    last = web.runtime.audit.read()[-1]
    assert (last.account, last.details["frontend"]) == (person.identifier, "web-api")
    assert last.details["client"] == "203.0.113.5"


def test_api_a_password_change_needs_the_current_one_and_a_strong_one(
    web: Web, api_token: str
) -> None:
    person = add_person(web.runtime, "ugo.faure")
    browser = web.client()
    wrong = call(
        browser, "/api/account/password", {"current": "nope", "password": NEW_PASSWORD},
        **bearer(person.identifier),
    )  # fmt: skip
    assert (wrong.status_code, code_of(wrong)) == (403, "wrong_current_password")
    weak = call(
        browser, "/api/account/password", {"current": person.password, "password": WEAK},
        **bearer(person.identifier),
    )  # fmt: skip
    assert (weak.status_code, code_of(weak)) == (400, "password_refused")
    done = call(
        browser, "/api/account/password", {"current": person.password, "password": NEW_PASSWORD},
        **bearer(person.identifier),
    )  # fmt: skip
    assert done.json() == {"status": "passwd", "account": person.identifier}
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)


def test_sec60_api_refuses_who_is_not_authenticated(web: Web, api_token: str) -> None:
    person = add_person(web.runtime, "eli.barbier")
    sso = {"remote_user_header": "X-Remote-User", "trusted_proxies": ["127.0.0.1"]}
    browser = web.client(**sso)
    nobody = call(browser, "/api/account")
    assert (nobody.status_code, code_of(nobody)) == (401, "unauthenticated")
    assert nobody.headers["www-authenticate"] == "Bearer"
    bad = call(
        browser,
        "/api/account",
        authorization="Bearer not-the-token",
        **{"x-remote-user": person.uid},
    )
    assert (bad.status_code, code_of(bad)) == (401, "unauthenticated")
    basic = call(
        browser, "/api/account", authorization=f"Basic {API_TOKEN}", **{"x-remote-user": person.uid}
    )
    assert code_of(basic) == "unauthenticated"
    # The single-sign-on header counts only from a trusted proxy.
    forged = call(
        web.client(client=ELSEWHERE, **sso), "/api/account", **{"x-remote-user": person.uid}
    )
    assert (forged.status_code, code_of(forged)) == (401, "unauthenticated")
    through = call(web.client(client=PROXY, **sso), "/api/account", **{"x-remote-user": person.uid})
    assert through.status_code == 200 and through.json()["account"] == person.identifier
    # Nor from the proxy when the site has no single sign-on configured.
    plain = call(web.client(client=PROXY), "/api/account", **{"x-remote-user": person.uid})
    assert code_of(plain) == "unauthenticated"
    unnamed = call(browser, "/api/account", authorization=f"Bearer {API_TOKEN}")
    assert code_of(unnamed) == "unauthenticated"
    unknown = call(browser, "/api/account", **bearer("nobody.here@umontpellier.fr"))
    assert (unknown.status_code, code_of(unknown)) == (403, "account_unusable")
    changed = call(
        browser, "/api/account/password", {"current": person.password, "password": NEW_PASSWORD},
        authorization="Bearer wrong", **{"x-remote-user": person.uid},
    )  # fmt: skip
    assert changed.status_code == 401
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)


def test_api_no_bearer_token_stored_means_no_bearer_access(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = add_person(web.runtime, "ivy.colin")
    client = web.client()
    answer = call(client, "/api/account", **bearer(person.uid))
    assert (answer.status_code, code_of(answer)) == (401, "unauthenticated")
    monkeypatch.setenv("UMACCT_WEB_API_TOKEN", API_TOKEN)  # stored after the server started
    answer = call(client, "/api/account", **bearer(person.uid))
    assert answer.status_code == 200, answer.text


def test_sec60_api_a_session_cookie_is_no_credential_here(web: Web) -> None:
    from test_web_account import logged_in

    person = add_person(web.runtime, "max.renard")
    browser = logged_in(web, person)
    assert browser.get("/account").status_code == 200
    answer = call(browser, "/api/account")
    assert (answer.status_code, code_of(answer)) == (401, "unauthenticated")


# --- errors, logs ---------------------------------------------------------------------------


def test_sec55_api_errors_are_json_with_stable_codes_and_no_trace(web: Web) -> None:
    browser = web.client()
    assert (browser.get("/api/nothing").status_code, code_of(browser.get("/api/nothing"))) == (
        404,
        "not_found",
    )
    wrong = browser.get("/api/self-service")
    assert (wrong.status_code, code_of(wrong)) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"

    def broken() -> Any:
        raise RuntimeError("secret internals at /srv/umacct")

    app = web.app()
    app.state.context.runtime_factory = broken
    failed = call(TestClient(app, base_url=SITE), "/api/self-service", {"address": "a@b.fr"})
    assert (failed.status_code, code_of(failed)) == (500, "internal")
    assert "internals" not in failed.text and "Traceback" not in failed.text

    def down() -> Any:
        raise UnavailableError("directory down")

    app.state.context.runtime_factory = down
    busy = TestClient(app, base_url=SITE).get("/api/activation", params={"token": "C" * 43})
    assert (busy.status_code, code_of(busy)) == (503, "unavailable")
    assert busy.headers["retry-after"]


def test_sec53_api_tokens_stay_out_of_the_access_log(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    _, token = activation_token(web)
    browser = web.client()
    with caplog.at_level(logging.INFO, logger="umacct.web.access"):
        browser.get("/api/activation", params={"token": token})
        call(browser, "/api/activation", {"token": token, "password": WEAK})
    lines = [record.getMessage() for record in caplog.records]
    assert any('"GET /api/activation" 200' in line for line in lines), lines
    assert all(token not in line for line in lines)
