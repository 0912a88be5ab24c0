"""umacct serve: the home page's self-service, resets, confirmations, limits, proxies, languages."""

from __future__ import annotations

import time

import pytest
from people import NEW_PASSWORD, add_person, read, token_in_mail
from starlette.testclient import TestClient
from test_web import SITE, Web, activation_token, csrf_of, personal, post_password, web

from umacct.services.addresses import request_forwarding, request_recovery
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["web"]  # the fixture, shared with test_web


def ask(browser: TestClient, address: str) -> tuple[int, str, float]:
    form = browser.get("/")
    started = time.monotonic()
    answer = browser.post("/", data={"csrf": csrf_of(form.text), "address": address})
    return answer.status_code, answer.text, time.monotonic() - started


# --- "1ère connexion / problème de connexion" -----------------------------------------------


def test_a_reset_from_the_home_page_end_to_end(web: Web) -> None:
    person = add_person(web.runtime, "jules.faure")
    recovery = personal(person)
    browser = web.client()
    status, text, _ = ask(browser, person.identifier)
    assert status == 200
    assert "Demande enregistrée" in text
    token = token_in_mail(web.relay, recovery, "reset")
    page = browser.get("/reset", params={"token": token})
    assert page.status_code == 200
    assert "Choisir un nouveau mot de passe" in page.text
    done = post_password(browser, "/reset", token, NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert "Mot de passe changé" in done.text
    assert web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert not web.runtime.directory.check_password(person.dn, person.password)


def test_an_account_awaiting_activation_gets_a_fresh_activation_link(web: Web) -> None:
    person = add_person(web.runtime, "zoe.blanc", awaiting_activation=True)
    status, _, _ = ask(web.client(), person.identifier)
    assert status == 200
    token = token_in_mail(web.relay, personal(person), "activation")
    assert web.client().get("/activation", params={"token": token}).status_code == 200


def test_sec54_the_same_answer_status_and_time_whatever_the_account(web: Web) -> None:
    active = add_person(web.runtime, "paul.henry")
    waiting = add_person(web.runtime, "lina.girard", awaiting_activation=True)
    expired = add_person(
        web.runtime,
        "marc.dupuis",
        state_values=["{COMPTE}I:SupannExpire:20250101:", "{MAIL}I:SupannExpire:20250101:"],
    )
    answers = []
    for address in (
        active.identifier,
        waiting.identifier,
        expired.identifier,
        "nobody.here@umontpellier.fr",
        "not an address",
        "*)(uid=*",
    ):
        status, text, seconds = ask(web.client(), address)
        answers.append((status, text))
        assert seconds >= 1.0
    assert len(set(answers)) == 1, answers
    assert answers[0][0] == 200


def test_an_empty_address_is_asked_again_on_its_field(web: Web) -> None:
    status, text, _ = ask(web.client(), "  ")
    assert status == 400
    assert 'id="address-error"' in text
    assert 'aria-describedby="address-hint address-error"' in text
    assert not web.relay.received


# --- rate limits ------------------------------------------------------------------------------


def test_sec54_self_service_is_limited_per_client_address(web: Web) -> None:
    person = add_person(web.runtime, "rose.leroy")
    app = web.app(client_requests_per_hour=2)
    browser = TestClient(app, base_url=SITE, client=("198.51.100.1", 1000))
    assert ask(browser, "a@umontpellier.fr")[0] == 200
    assert ask(browser, "b@umontpellier.fr")[0] == 200
    status, text, _ = ask(browser, person.identifier)
    assert status == 429
    assert "Trop de demandes" in text
    assert not any(personal(person) in mail.rcpt_tos for mail in web.relay.received)
    elsewhere = TestClient(app, base_url=SITE, client=("198.51.100.2", 1000))
    assert ask(elsewhere, person.identifier)[0] == 200


def test_sec54_password_forms_are_limited_per_account(web: Web) -> None:
    person, token = activation_token(web)
    app = web.app(account_attempts_per_hour=2)
    for address in ("198.51.100.1", "198.51.100.2"):
        browser = TestClient(app, base_url=SITE, client=(address, 1000))
        assert post_password(browser, "/activation", token, "weak").status_code == 400
    browser = TestClient(app, base_url=SITE, client=("198.51.100.3", 1000))
    answer = post_password(browser, "/activation", token, NEW_PASSWORD)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "3600"
    assert not web.runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert [t.purpose for t in web.runtime.tokens.pending(person.identifier)] == [
        TokenPurpose.ACTIVATION
    ]


def test_sec54_every_form_counts_against_the_client_address(web: Web) -> None:
    _, token = activation_token(web)
    browser = web.client(client_posts_per_hour=2)
    assert post_password(browser, "/activation", token, "weak").status_code == 400
    assert post_password(browser, "/activation", token, "weak").status_code == 400
    assert post_password(browser, "/activation", token, NEW_PASSWORD).status_code == 429


# --- proxies ----------------------------------------------------------------------------------


def test_sec56_forwarded_headers_count_only_from_a_trusted_proxy(web: Web) -> None:
    app = web.app(client_requests_per_hour=1, trusted_proxies=["10.0.0.1"])
    claims = {"x-forwarded-for": "192.0.2.1", "x-forwarded-proto": "https"}
    plain = "http://ent.example.org"
    spoofed = TestClient(app, base_url=plain, client=("203.0.113.9", 1000)).get("/", headers=claims)
    assert "strict-transport-security" not in spoofed.headers
    proxied = TestClient(app, base_url=plain, client=("10.0.0.1", 1000)).get("/", headers=claims)
    assert proxied.headers["strict-transport-security"].startswith("max-age=")
    spoofer = TestClient(app, base_url=SITE, client=("203.0.113.9", 1000))
    for forged in ("192.0.2.1", "192.0.2.2"):
        spoofer.headers["x-forwarded-for"] = forged
        status = ask(spoofer, "a@umontpellier.fr")[0]
    assert status == 429  # the same client for the limit, whatever it claims
    proxy = TestClient(app, base_url=SITE, client=("10.0.0.1", 1000))
    for client in ("192.0.2.1", "192.0.2.2"):
        proxy.headers["x-forwarded-for"] = client
        assert ask(proxy, "a@umontpellier.fr")[0] == 200


def test_sec56_a_forged_forwarded_for_behind_the_proxy_is_not_believed(web: Web) -> None:
    app = web.app(client_requests_per_hour=1, trusted_proxies=["10.0.0.0/8"])
    proxy = TestClient(app, base_url=SITE, client=("10.0.0.1", 1000))
    # The proxy appends the real client (198.51.100.7) to what the client sent.
    for forged in ("192.0.2.1", "192.0.2.2"):
        proxy.headers["x-forwarded-for"] = f"{forged}, 198.51.100.7"
        status = ask(proxy, "a@umontpellier.fr")[0]
    assert status == 429


# --- confirmations ----------------------------------------------------------------------------


def test_a_recovery_address_is_stored_only_by_the_confirmation_form(web: Web) -> None:
    person = add_person(web.runtime, "ana.lopez")
    request_recovery(web.runtime, person.identifier, "ana.new@example.com")
    token = token_in_mail(web.relay, "ana.new@example.com", "confirm")
    browser = web.client()
    for _ in range(2):
        page = browser.get("/confirm", params={"token": token})
        assert page.status_code == 200
        assert "ana.new@example.com" in page.text
        assert "Confirmer l&#39;adresse de secours" in page.text
    assert read(web.runtime, person).get("supannMailPerso") == [personal(person)]
    done = browser.post("/confirm", data={"csrf": csrf_of(page.text), "token": token})
    assert done.status_code == 200, done.text
    assert "Adresse de secours enregistrée" in done.text
    assert read(web.runtime, person).get("supannMailPerso") == ["ana.new@example.com"]
    again = browser.post("/confirm", data={"csrf": csrf_of(page.text), "token": token})
    assert again.status_code == 400


def test_a_forwarding_is_started_by_the_confirmation_form(web: Web) -> None:
    person = add_person(web.runtime, "tom.garnier")
    request_forwarding(web.runtime, person.identifier, "tom@example.com")
    token = token_in_mail(web.relay, "tom@example.com", "confirm")
    browser = web.client(headers={"accept-language": "en"})
    page = browser.get("/confirm", params={"token": token})
    assert "Confirm the forwarding" in page.text
    assert read(web.runtime, person).get("mailForwardingAddress") == []
    done = browser.post("/confirm", data={"csrf": csrf_of(page.text), "token": token})
    assert done.status_code == 200
    assert "Forwarding saved" in done.text
    assert read(web.runtime, person).get("mailForwardingAddress") == ["tom@example.com"]


def test_a_confirmation_page_refuses_an_activation_token(web: Web) -> None:
    _, token = activation_token(web)
    assert web.client().get("/confirm", params={"token": token}).status_code == 400
    assert web.client().get("/reset", params={"token": token}).status_code == 400


# --- languages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "fr"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("de-DE,en;q=0.5,fr;q=0.8", "fr"),
        ("de, en;q=0.1", "en"),
        ("*", "fr"),
        ("fr;q=abc, en", "en"),
    ],
)
def test_the_language_comes_from_accept_language(web: Web, header: str | None, lang: str) -> None:
    headers = {"accept-language": header} if header else None
    page = web.client(headers=headers).get("/")
    assert f'<html lang="{lang}">' in page.text


def test_the_switch_keeps_the_language_and_the_link(web: Web) -> None:
    _, token = activation_token(web)
    browser = web.client()
    page = browser.get("/activation", params={"token": token})
    assert f'href="/activation?token={token}&amp;lang=en"' in page.text
    english = browser.get("/activation", params={"token": token, "lang": "en"})
    assert "Activate your account" in english.text
    assert "umacct-lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in browser.get("/").text  # the cookie remembers
    assert "Activate your account" in post_password(browser, "/activation", token, "x").text
