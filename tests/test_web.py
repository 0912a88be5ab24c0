"""umacct serve, through the application: every page and every refusal, against slapd and SMTP."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from days import TODAY, clock_on, days
from people import (
    NEW_PASSWORD,
    Person,
    add_person,
    read,
    rewrite_config,
    runtime_on,
    token_in_mail,
)
from smtp_fixtures import SmtpTestServer
from starlette.testclient import TestClient

from umacct.config import load_config
from umacct.errors import UnavailableError
from umacct.services.credentials import send_activation
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose
from umacct.web.app import create_app
from umacct.web.settings import WebSettings

pytestmark = pytest.mark.usefixtures("directory_clean")

SITE = "https://ent.example.org"
CLIENT = ("203.0.113.5", 40000)
WEAK = "password1234"


@dataclasses.dataclass
class Web:
    """The application on the test's directory and relay, its browser, and a runtime to look."""

    config_path: Path
    runtime: Runtime
    relay: SmtpTestServer
    settings: WebSettings
    day: date = TODAY

    def app(self, **changes: Any) -> Any:
        settings = dataclasses.replace(self.settings, **changes)
        config = load_config(self.config_path)
        day = self.day
        return create_app(
            config,
            settings,
            clock=clock_on(day),
            runtime_factory=lambda: runtime_on(self.config_path, day),
            key=b"test-key",
        )

    def client(
        self,
        *,
        client: tuple[str, int] = CLIENT,
        base: str = SITE,
        headers: dict[str, str] | None = None,
        **changes: Any,
    ) -> TestClient:
        return TestClient(self.app(**changes), base_url=base, client=client, headers=headers)


@pytest.fixture
def web(
    on: Callable[[date], Runtime], config_path: Path, mail_relay: SmtpTestServer
) -> Iterator[Web]:
    yield Web(config_path, on(TODAY), mail_relay, WebSettings())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None, html
    return found.group(1)


def personal(person: Person) -> str:
    return f"{person.uid}@example.net"


def activation_token(web: Web, uid: str = "lea.moreau") -> tuple[Person, str]:
    person = add_person(web.runtime, uid, awaiting_activation=True)
    send_activation(web.runtime, person.identifier)
    return person, token_in_mail(web.relay, personal(person), "activation")


def post_password(
    browser: TestClient, path: str, token: str, password: str, again: str | None = None
) -> Any:
    form = browser.get(path, params={"token": token})
    return browser.post(
        path,
        data={
            "csrf": csrf_of(form.text),
            "token": token,
            "password": password,
            "password2": password if again is None else again,
        },
    )


def pending(web: Web, person: Person) -> list[TokenPurpose]:
    return [token.purpose for token in web.runtime.tokens.pending(person.identifier)]


# --- activation -----------------------------------------------------------------------------


def test_activation_page_sets_the_password_and_the_account_binds(web: Web) -> None:
    person, token = activation_token(web)
    browser = web.client()
    page = browser.get("/activation", params={"token": token})
    assert page.status_code == 200
    assert "Activer votre compte" in page.text
    assert person.identifier in page.text
    done = post_password(browser, "/activation", token, NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert "Votre compte est activé" in done.text
    assert "Se connecter à l&#39;ENT" in done.text or "Se connecter à l'ENT" in done.text
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    entry = read(web.runtime, person)
    assert any(v.startswith("{COMPTE}A:SupannActif") for v in entry.get("supannRessourceEtatDate"))


def test_sec50_opening_a_link_twice_consumes_nothing(web: Web) -> None:
    person, token = activation_token(web)
    browser = web.client()
    for _ in range(2):
        page = browser.get("/activation", params={"token": token})
        assert page.status_code == 200
        head = browser.head("/activation", params={"token": token})
        assert head.status_code == 200
    assert pending(web, person) == [TokenPurpose.ACTIVATION]
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert post_password(browser, "/activation", token, NEW_PASSWORD).status_code == 200


def test_a_used_link_is_refused_on_get_and_post(web: Web) -> None:
    _, token = activation_token(web)
    browser = web.client()
    assert post_password(browser, "/activation", token, NEW_PASSWORD).status_code == 200
    again = browser.get("/activation", params={"token": token})
    assert again.status_code == 400
    assert "Lien non valable" in again.text
    home = browser.get("/")
    second = browser.post(
        "/activation",
        data={
            "csrf": csrf_of(home.text),
            "token": token,
            "password": "x" * 20,
            "password2": "x" * 20,
        },
    )
    assert second.status_code == 400
    assert "Lien non valable" in second.text


@pytest.mark.parametrize("token", ["", "abc", "A" * 43, "A" * 43 + "<script>", "é" * 43])
def test_a_bad_token_is_refused_without_a_form(web: Web, token: str) -> None:
    page = web.client().get("/activation", params={"token": token})
    assert page.status_code == 400
    assert "Lien non valable" in page.text
    assert 'name="password"' not in page.text
    assert "<script>" not in page.text


def test_an_expired_link_says_so_and_offers_a_new_one(web: Web) -> None:
    person, token = activation_token(web)
    web.day = days(2)
    browser = web.client()
    page = browser.get("/activation", params={"token": token})
    assert page.status_code == 400
    assert "Lien expiré" in page.text
    assert 'href="/?lang=fr"' in page.text
    assert pending(web, person) == [TokenPurpose.ACTIVATION]  # as the store sees it today


def test_a_weak_password_is_refused_with_the_reason_tied_to_the_field(web: Web) -> None:
    person, token = activation_token(web)
    browser = web.client()
    page = post_password(browser, "/activation", token, WEAK)
    assert page.status_code == 400
    assert "mots de passe courants" in page.text or "trop court" in page.text
    field = re.search(r'<input id="password" [^>]*>', page.text)
    assert field is not None
    assert 'aria-describedby="password-hint password-error"' in field.group(0)
    assert 'aria-invalid="true"' in field.group(0)
    assert 'id="password-error"' in page.text
    assert pending(web, person) == [TokenPurpose.ACTIVATION]
    assert post_password(browser, "/activation", token, NEW_PASSWORD).status_code == 200


def test_the_policy_reason_in_english(web: Web) -> None:
    _, token = activation_token(web)
    browser = web.client(headers={"accept-language": "en-GB,en;q=0.9,fr;q=0.5"})
    page = post_password(browser, "/activation", token, "short")
    assert page.status_code == 400
    assert "The password is too short" in page.text
    assert '<html lang="en">' in page.text


def test_two_different_passwords_are_refused_on_the_second_field(web: Web) -> None:
    person, token = activation_token(web)
    page = post_password(web.client(), "/activation", token, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert page.status_code == 400
    assert 'id="password2-error"' in page.text
    assert "différents" in page.text
    assert pending(web, person) == [TokenPurpose.ACTIVATION]


# --- CSRF -----------------------------------------------------------------------------------


def test_sec51_a_form_without_its_csrf_half_is_refused_and_changes_nothing(web: Web) -> None:
    person, token = activation_token(web)
    browser = web.client()
    form = browser.get("/activation", params={"token": token})
    good = csrf_of(form.text)
    fields = {"token": token, "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    cases = [
        (browser, {**fields}),  # no field
        (browser, {**fields, "csrf": "0" * 64}),  # a field that matches no cookie
        (web.client(), {**fields, "csrf": good}),  # the field without its cookie
    ]
    for client, data in cases:
        answer = client.post("/activation", data=data)
        assert answer.status_code == 403
        assert "Formulaire expiré" in answer.text
    other = web.client()
    other.get("/")
    answer = other.post("/activation", data={**fields, "csrf": good})  # another browser's cookie
    assert answer.status_code == 403
    assert pending(web, person) == [TokenPurpose.ACTIVATION]
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert browser.post("/activation", data={**fields, "csrf": good}).status_code == 200


def test_sec51_the_home_form_needs_its_csrf_half_too(web: Web) -> None:
    person = add_person(web.runtime, "noe.petit")
    browser = web.client()
    answer = browser.post("/", data={"address": person.identifier})
    assert answer.status_code == 403
    assert not web.relay.received


def test_sec51_a_csrf_key_from_another_host_is_refused(web: Web) -> None:
    _, token = activation_token(web)
    config = load_config(web.config_path)
    elsewhere = TestClient(create_app(config, key=b"other-key"), base_url=SITE, client=CLIENT)
    form = elsewhere.get("/activation", params={"token": token})
    browser = web.client()
    browser.cookies.update(elsewhere.cookies)
    data = {
        "csrf": csrf_of(form.text),
        "token": token,
        "password": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    assert browser.post("/activation", data=data).status_code == 403


# --- headers and cookies --------------------------------------------------------------------


def test_sec52_every_answer_carries_the_security_headers(web: Web) -> None:
    browser = web.client()
    for answer in (
        browser.get("/"),
        browser.get("/activation", params={"token": "nope"}),
        browser.get("/no-such-page"),
        browser.post("/", data={}),
        browser.get("/static/umacct.css"),
    ):
        headers = answer.headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "form-action 'self'" in policy
        assert "unsafe-inline" not in policy
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["strict-transport-security"].startswith("max-age=")
    assert browser.get("/").headers["cache-control"] == "no-store"


def test_sec52_pages_hold_no_script_and_no_inline_style(web: Web) -> None:
    _, token = activation_token(web)
    browser = web.client()
    for page in (browser.get("/"), browser.get("/activation", params={"token": token})):
        assert "<script" not in page.text.lower()
        assert " style=" not in page.text.lower()
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", page.text, re.IGNORECASE)


def test_sec52_cookies_are_secure_httponly_strict_over_tls(web: Web) -> None:
    answer = web.client().get("/")
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-umacct-csrf=")
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    assert "domain" not in cookie.lower()


def test_sec52_plain_http_on_loopback_has_no_hsts_and_no_secure_cookie(web: Web) -> None:
    browser = web.client(client=("127.0.0.1", 50000), base="http://127.0.0.1:8080")
    answer = browser.get("/")
    assert "strict-transport-security" not in answer.headers
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("umacct-csrf=")
    assert "secure" not in cookie.lower()
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


def test_sec52_plain_http_from_elsewhere_still_gets_secure_cookies(web: Web) -> None:
    answer = web.client(base="http://ent.example.org").get("/")
    assert "secure" in answer.headers["set-cookie"].lower()
    assert "strict-transport-security" not in answer.headers


# --- logs and errors ------------------------------------------------------------------------


def test_sec53_no_token_in_the_access_log(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    _, token = activation_token(web)
    browser = web.client()
    with caplog.at_level(logging.INFO, logger="umacct.web.access"):
        post_password(browser, "/activation", token, NEW_PASSWORD)
        browser.get("/reset", params={"token": token})
    lines = [record.getMessage() for record in caplog.records if record.name == "umacct.web.access"]
    assert any('"GET /activation" 200' in line for line in lines), lines
    assert any('"POST /activation" 200' in line for line in lines), lines
    assert all(token not in line and "?" not in line for line in lines)
    assert all(token not in record.getMessage() for record in caplog.records)


def test_sec53_a_token_in_the_link_path_is_redacted(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    rewrite_config(web.config_path, links={"activation": "https://ent.example.org/a/{token}"})
    person, token = activation_token(web)
    browser = web.client()
    with caplog.at_level(logging.INFO, logger="umacct.web.access"):
        page = browser.get(f"/a/{token}")
        assert page.status_code == 200, page.text
        form = {"csrf": csrf_of(page.text), "token": token}
        done = browser.post(
            f"/a/{token}", data={**form, "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
        )
    assert done.status_code == 200
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    lines = [record.getMessage() for record in caplog.records if record.name == "umacct.web.access"]
    assert lines and all(token not in line for line in lines)
    assert any('"GET /a/[token]" 200' in line for line in lines), lines


def test_sec55_no_stack_trace_reaches_the_browser(web: Web) -> None:
    def broken() -> Runtime:
        raise RuntimeError("internal detail 0xdeadbeef")

    app = web.app()
    app.state.context.runtime_factory = broken
    browser = TestClient(app, base_url=SITE, client=CLIENT, raise_server_exceptions=False)
    answer = browser.get("/activation", params={"token": "A" * 43})
    assert answer.status_code == 500
    assert "0xdeadbeef" not in answer.text and "Traceback" not in answer.text
    assert answer.headers["content-security-policy"]


def test_sec55_an_unavailable_directory_is_a_503(web: Web) -> None:
    def down() -> Runtime:
        raise UnavailableError("ldap://10.0.0.1: connection refused")

    app = web.app()
    app.state.context.runtime_factory = down
    browser = TestClient(app, base_url=SITE, client=CLIENT)
    answer = browser.get("/activation", params={"token": "A" * 43})
    assert answer.status_code == 503
    assert "10.0.0.1" not in answer.text
    assert answer.headers["retry-after"]
    form = browser.get("/")
    posted = browser.post("/", data={"csrf": csrf_of(form.text), "address": "x@umontpellier.fr"})
    assert posted.status_code == 503


def test_a_refused_link_is_a_403(web: Web) -> None:
    expired = ["{COMPTE}I:SupannExpire:20250101:", "{MAIL}I:SupannExpire:20250101:"]
    person = add_person(web.runtime, "ines.roux", state_values=expired)
    token = web.runtime.tokens.issue(
        person.identifier, TokenPurpose.RESET, timedelta(hours=1)
    ).token
    answer = post_password(web.client(), "/reset", token, NEW_PASSWORD)
    assert answer.status_code == 403
    assert "ne s&#39;applique plus" in answer.text
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)


def test_unknown_pages_and_methods(web: Web) -> None:
    browser = web.client()
    assert browser.get("/nothing-here").status_code == 404
    assert browser.put("/").status_code == 405
    assert browser.post("/", content=b"x" * 20000).status_code == 413


def test_sec51_a_form_the_browser_says_comes_from_another_site_is_refused(web: Web) -> None:
    person, token = activation_token(web)
    browser = web.client()
    form = browser.get("/activation", params={"token": token})
    data = {
        "csrf": csrf_of(form.text),
        "token": token,
        "password": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    for site in ("cross-site", "same-site"):
        answer = browser.post("/activation", data=data, headers={"sec-fetch-site": site})
        assert answer.status_code == 403
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    answer = browser.post("/activation", data=data, headers={"sec-fetch-site": "same-origin"})
    assert answer.status_code == 200


def test_the_audit_says_the_change_came_through_the_web_and_from_where(web: Web) -> None:
    person, token = activation_token(web)
    assert post_password(web.client(), "/activation", token, NEW_PASSWORD).status_code == 200
    [record] = [r for r in web.runtime.audit.read() if r.command == "activate"]
    assert record.account == person.identifier
    assert record.details["frontend"] == "web"
    assert record.details["client"] == CLIENT[0]
