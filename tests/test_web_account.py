"""umacct serve: the pages behind a login (password, recovery address, forwarding)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest
from days import TODAY, clock_on
from people import NEW_PASSWORD, Person, add_person, read, runtime_on, token_in_mail
from starlette.testclient import TestClient
from test_web import CLIENT, SITE, Web, csrf_of, personal, web

from umacct.clock import FixedClock
from umacct.config import load_config
from umacct.web.app import create_app

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["web"]


def log_in(browser: TestClient, address: str, password: str) -> tuple[int, str, float]:
    form = browser.get("/login")
    started = time.monotonic()
    answer = browser.post(
        "/login",
        data={"csrf": csrf_of(form.text), "address": address, "password": password},
        follow_redirects=False,
    )
    return answer.status_code, answer.text, time.monotonic() - started


def logged_in(web: Web, person: Person, **changes: object) -> TestClient:
    browser = web.client(**changes)
    status, _, _ = log_in(browser, person.identifier, person.password)
    assert status == 303
    return browser


def post(browser: TestClient, path: str, **fields: str) -> object:
    page = browser.get("/account")
    return browser.post(path, data={"csrf": csrf_of(page.text), **fields}, follow_redirects=False)


def test_a_person_logs_in_and_sees_the_account(web: Web) -> None:
    person = add_person(web.runtime, "eva.morel")
    browser = web.client()
    assert browser.get("/account", follow_redirects=False).headers["location"] == "/login"
    status, _, _ = log_in(browser, person.identifier, person.password)
    assert status == 303
    page = browser.get("/account")
    assert page.status_code == 200
    assert person.identifier in page.text
    assert personal(person) in page.text  # the recovery address
    assert "Modifier votre mot de passe" in page.text
    cookie = [c for c in browser.cookies.jar if c.name == "__Host-umacct-session"]
    assert cookie and cookie[0].secure


def test_sec57_a_failed_login_says_the_same_whatever_the_account(web: Web) -> None:
    active = add_person(web.runtime, "hugo.perrin")
    waiting = add_person(web.runtime, "lou.marchand", awaiting_activation=True)
    expired = add_person(
        web.runtime,
        "ali.mercier",
        state_values=["{COMPTE}I:SupannExpire:20250101:", "{MAIL}I:SupannExpire:20250101:"],
    )
    answers = set()
    for address, password in (
        (active.identifier, "not the password at all"),
        (waiting.identifier, "whatever it is 123"),
        (expired.identifier, expired.password),
        ("nobody@umontpellier.fr", "whatever it is 123"),
        ("*", "whatever it is 123"),
    ):
        status, text, seconds = log_in(web.client(), address, password)
        assert seconds >= 1.0
        body = re.sub(r'value="[^"]*"', "", text)
        answers.add((status, body.replace(address, "ADDRESS")))
    assert len(answers) == 1
    assert next(iter(answers))[0] == 400


def test_sec57_logins_are_limited_per_account_known_or_not(web: Web) -> None:
    person = add_person(web.runtime, "max.roche")
    app = web.app(login_attempts_per_hour=2)
    for address in (person.identifier, "nobody@umontpellier.fr"):
        for n in range(2):
            browser = TestClient(app, base_url=SITE, client=(f"198.51.100.{n}", 1000))
            assert log_in(browser, address, "wrong password here")[0] == 400
        browser = TestClient(app, base_url=SITE, client=("198.51.100.9", 1000))
        assert log_in(browser, address.upper(), person.password)[0] == 429


def test_the_password_is_changed_with_the_current_one(web: Web) -> None:
    person = add_person(web.runtime, "lea.colin")
    other = logged_in(web, person)
    browser = logged_in(web, person)
    wrong = post(
        browser,
        "/account/password",
        current="nope nope nope",
        password=NEW_PASSWORD,
        password2=NEW_PASSWORD,
    )
    assert wrong.status_code == 400
    assert 'id="current-error"' in wrong.text
    weak = post(
        browser,
        "/account/password",
        current=person.password,
        password="azertyuiop12",
        password2="azertyuiop12",
    )
    assert weak.status_code == 400
    assert 'id="password-error"' in weak.text
    done = post(
        browser,
        "/account/password",
        current=person.password,
        password=NEW_PASSWORD,
        password2=NEW_PASSWORD,
    )
    assert done.status_code == 200, done.text
    assert "Votre mot de passe a été modifié" in done.text
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert browser.get("/account", follow_redirects=False).status_code == 200
    assert other.get("/account", follow_redirects=False).status_code == 303  # closed


def test_a_recovery_address_is_asked_then_confirmed_by_its_link(web: Web) -> None:
    person = add_person(web.runtime, "ines.fabre")
    browser = logged_in(web, person)
    refused = post(browser, "/account/recovery", recovery="ines@umontpellier.fr")
    assert refused.status_code == 400
    assert 'id="recovery-error"' in refused.text
    sent = post(browser, "/account/recovery", recovery="ines.home@example.com")
    assert sent.status_code == 200
    assert "ines.home@example.com" in sent.text
    assert read(web.runtime, person).get("supannMailPerso") == [personal(person)]
    token = token_in_mail(web.relay, "ines.home@example.com", "confirm")
    page = browser.get("/confirm", params={"token": token})
    browser.post("/confirm", data={"csrf": csrf_of(page.text), "token": token})
    assert read(web.runtime, person).get("supannMailPerso") == ["ines.home@example.com"]


def test_forwarding_is_asked_then_stopped(web: Web) -> None:
    person = add_person(
        web.runtime, "noa.brun", extra={"mailForwardingAddress": ["noa@example.org"]}
    )
    browser = logged_in(web, person)
    page = browser.get("/account")
    assert "noa@example.org" in page.text
    sent = post(browser, "/account/forwarding", forwarding="noa.new@example.com")
    assert sent.status_code == 200
    token_in_mail(web.relay, "noa.new@example.com", "confirm")
    stopped = post(browser, "/account/forwarding", off="1")
    assert stopped.status_code == 200
    assert "La redirection est arrêtée" in stopped.text
    assert read(web.runtime, person).get("mailForwardingAddress") == []


def test_sec51_the_account_forms_need_their_csrf_half(web: Web) -> None:
    person = add_person(web.runtime, "jade.guerin")
    browser = logged_in(web, person)
    for path, data in (
        (
            "/account/password",
            {"current": person.password, "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
        ),
        ("/account/forwarding", {"off": "1"}),
        ("/logout", {}),
    ):
        assert browser.post(path, data=data).status_code == 403
    assert web.runtime.directory.check_password(person.dn, person.password)


def test_logout_ends_the_session(web: Web) -> None:
    person = add_person(web.runtime, "emma.fontaine")
    browser = logged_in(web, person)
    cookies = dict(browser.cookies)
    answer = post(browser, "/logout")
    assert answer.status_code == 200
    again = web.client()
    again.cookies.update(cookies)
    assert again.get("/account", follow_redirects=False).status_code == 303


def test_a_session_ends_after_its_idle_time(web: Web) -> None:
    person = add_person(web.runtime, "tim.lacroix")
    config = load_config(web.config_path)
    start = clock_on(TODAY).now()

    def app_at(instant: datetime) -> TestClient:
        app = create_app(
            config,
            web.settings,
            clock=FixedClock(instant),
            runtime_factory=lambda: runtime_on(web.config_path, TODAY),
            key=b"test-key",
        )
        return TestClient(app, base_url=SITE, client=CLIENT)

    browser = app_at(start)
    assert log_in(browser, person.identifier, person.password)[0] == 303
    later = app_at(start + timedelta(minutes=15))
    later.cookies.update(dict(browser.cookies))
    assert later.get("/account", follow_redirects=False).status_code == 200
    idle = app_at(start + timedelta(minutes=36))
    idle.cookies.update(dict(browser.cookies))
    assert idle.get("/account", follow_redirects=False).status_code == 303


def test_sec56_single_sign_on_only_from_a_trusted_proxy(web: Web) -> None:
    person = add_person(web.runtime, "sam.roger")
    app = web.app(remote_user_header="X-Remote-User", trusted_proxies=["10.0.0.1"])
    proxy = TestClient(app, base_url=SITE, client=("10.0.0.1", 1000))
    page = proxy.get("/account", headers={"x-remote-user": person.uid})
    assert page.status_code == 200
    assert person.identifier in page.text
    assert "Se déconnecter" not in page.text
    forged = TestClient(app, base_url=SITE, client=("203.0.113.7", 1000))
    answer = forged.get("/account", headers={"x-remote-user": person.uid}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    unknown = proxy.get("/account", headers={"x-remote-user": "nobody"}, follow_redirects=False)
    assert unknown.status_code == 303
