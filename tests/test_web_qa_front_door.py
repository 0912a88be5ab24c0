"""umacct serve: the front door's defects a QA reviewer found (issue 15), through the app."""

from __future__ import annotations

import html
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import tomli_w
from people import add_person, compte, read, rewrite_config
from starlette.testclient import TestClient
from test_extension_requests import EXTENSION_LINK, warned
from test_state_support import branch, host_config
from test_web import SITE, Web, csrf_of, web
from test_web_account import logged_in, post
from test_web_extension import _plus_12, on_warn_day

from umacct.clock import Clock
from umacct.config import load_config
from umacct.localdir import LocalDirectory
from umacct.mail.dates import english_date, french_date
from umacct.services.extensions import issue_extension_link
from umacct.services.runtime import Runtime
from umacct.web.app import create_app
from umacct.web.reasons import address_reason, extension_reason
from umacct.web.settings import WebSettings

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["branch", "web"]

On = Callable[[date], Runtime]
WEB_DN = "cn=umacct-web,ou=system,dc=example,dc=org"
ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def traceback_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


# --- 1. a file sent to a form -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/", "/activation", "/account/password"])
def test_a_file_sent_to_a_form_is_a_413_page_without_a_traceback(
    web: Web, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    browser = web.client()
    form = browser.get("/login")
    caplog.set_level(logging.INFO)
    answer = browser.post(
        path, data={"csrf": csrf_of(form.text)}, files={"upload": ("a", b"x", "text/plain")}
    )
    assert answer.status_code == 413, answer.text
    assert "<html" in answer.text and "Formulaire trop volumineux" in answer.text
    assert "content-security-policy" in answer.headers
    assert traceback_records(caplog) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r for r in caplog.records if r.name == "umacct.web.access"] != []


def test_a_form_that_cannot_be_read_is_a_400_page(web: Web) -> None:
    answer = web.client().post(
        "/login", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    assert answer.status_code == 400, answer.text
    assert "<html" in answer.text


# --- 2. [web] bind_dn without its password --------------------------------------------------


def test_serve_refuses_to_start_without_the_web_bind_password(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UMACCT_WEB_BIND_PASSWORD", raising=False)
    rewrite_config(config_path, web={"bind_dn": WEB_DN, "port": 1})
    done = subprocess.run(
        [sys.executable, "-m", "umacct", "serve"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert done.returncode == 78, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for words in (WEB_DN, "umacct secret set web-directory", "$UMACCT_WEB_BIND_PASSWORD",
                  "umacct-web-bind-password"):  # fmt: skip
        assert words in lines[0], lines[0]
    assert "terminal" not in lines[0]


def _sent_page(text: str) -> str:
    return re.sub(r'value="[^"]*"', "", text)


def test_an_unreadable_web_bind_password_keeps_the_self_service_answer(
    web: Web, config_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    person = add_person(web.runtime, "rose.vidal")
    healthy = web.client()
    form = healthy.get("/")
    usual = healthy.post(
        "/", data={"csrf": csrf_of(form.text), "address": "nobody@umontpellier.fr"}
    )
    monkeypatch.delenv("UMACCT_WEB_BIND_PASSWORD", raising=False)
    clock: Clock = web.app().state.context.clock
    app = create_app(load_config(config_path), WebSettings(bind_dn=WEB_DN), clock=clock, key=b"k")
    browser = TestClient(app, base_url=SITE, client=("203.0.113.40", 1000))
    caplog.set_level(logging.INFO)
    form = browser.get("/")
    started = time.monotonic()
    answer = browser.post("/", data={"csrf": csrf_of(form.text), "address": person.identifier})
    assert time.monotonic() - started >= 1.0
    assert answer.status_code == usual.status_code == 200
    assert _sent_page(answer.text) == _sent_page(usual.text)
    assert "web-directory" in caplog.text  # said in the log, not on the page
    assert traceback_records(caplog) == []
    started = time.monotonic()
    api = browser.post("/api/self-service", json={"address": person.identifier})
    assert time.monotonic() - started >= 1.0
    assert api.status_code == 200 and api.json()["status"] == "sent"


def test_with_the_counters_in_the_state_branch_too(
    slapd: LocalDirectory, branch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rate-limit counters bind first there: their failure gives the same answer too."""
    monkeypatch.delenv("UMACCT_WEB_BIND_PASSWORD", raising=False)
    path = tmp_path / "config.toml"
    path.write_bytes(tomli_w.dumps(host_config(slapd, tmp_path / "data", branch)).encode())
    app = create_app(load_config(path), WebSettings(bind_dn=WEB_DN), key=b"k")
    browser = TestClient(app, base_url=SITE, client=("203.0.113.41", 1000))
    form = browser.get("/")
    started = time.monotonic()
    answer = browser.post("/", data={"csrf": csrf_of(form.text), "address": "a@umontpellier.fr"})
    assert time.monotonic() - started >= 1.0
    assert answer.status_code == 200 and "Demande enregistrée" in answer.text


# --- 3. refused addresses: the reason in the page's language, the value kept ----------------


def test_a_refused_recovery_address_says_why_in_french_and_keeps_the_value(web: Web) -> None:
    person = add_person(web.runtime, "zoe.lefevre")
    browser = logged_in(web, person)
    typed = "zoe.lefevre@umontpellier.fr"
    refused = post(browser, "/account/recovery", recovery=typed)
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert "Cette adresse ne peut pas être utilisée" in text
    assert "domaine de l'établissement" in text and "umontpellier.fr" in text
    assert "inside the institution" not in text and "personal address" not in text
    assert re.search(r'id="recovery"[^>]*value="zoe\.lefevre@umontpellier\.fr"', refused.text)


def test_a_forwarding_to_itself_says_why_in_the_page_language(web: Web) -> None:
    person = add_person(web.runtime, "ugo.bernard")
    browser = logged_in(web, person)
    refused = post(browser, "/account/forwarding", forwarding=person.identifier)
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert "cannot forward" not in text and "vers le compte lui-même" in text
    assert f'value="{person.identifier}"' in refused.text
    english = logged_in(web, person, headers={"accept-language": "en"})
    refused = post(english, "/account/forwarding", forwarding=person.identifier)
    assert "This address cannot be used: mail cannot be forwarded to the account" in (
        html.unescape(refused.text)
    )


def test_address_reasons_in_both_languages() -> None:
    inside = (
        "recovery address zoe@umontpellier.fr is inside the institution's domain "
        "umontpellier.fr: it must be a personal address outside it"
    )
    assert "umontpellier.fr" in address_reason(inside, "fr")
    assert "domaine" in address_reason(inside, "fr")
    assert "outside" in address_reason(inside, "en")
    loop = "forwarding a@umontpellier.fr to b@umontpellier.fr makes a loop: b@umontpellier.fr forwards back to it"
    assert "boucle" in address_reason(loop, "fr")
    bad = "address 'x@' is not valid: There must be something after the @-sign."
    assert address_reason(bad, "fr") == "ce n'est pas une adresse mail valable."
    assert address_reason("address is empty", "en") == "the address is empty."
    assert address_reason("something new", "fr") == "something new"


# --- 4. the extension section of /account ---------------------------------------------------


def test_the_account_page_says_the_extension_was_granted_and_refuses_again_with_403(
    web: Web, on: On
) -> None:
    person, _ = warned(on, "qa.extension")
    site = on_warn_day(web, on)
    browser = logged_in(site, person)
    page = browser.get("/account")
    done = browser.post("/account/extension", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    text = html.unescape(done.text)
    assert "Prolongation accordée" in text or "prolongé jusqu'au" in text
    assert f"prolongé jusqu'au {french_date(_plus_12())}" in text
    assert compte(read(site.runtime, person)).endswith(f":{_plus_12().strftime('%Y%m%d')}")
    again = browser.post("/account/extension", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 403, again.text
    text = html.unescape(again.text)
    assert f"déjà maintenu jusqu'au {french_date(_plus_12())}" in text
    assert not ISO_DAY.search(re.sub(r"<[^>]*>", "", text)), text


def test_the_extension_link_refusal_writes_its_dates_in_the_page_language(web: Web, on: On) -> None:
    person, _ = warned(on, "qa.extlink")
    site = on_warn_day(web, on)
    browser = logged_in(site, person)
    page = browser.get("/account")
    assert browser.post("/account/extension", data={"csrf": csrf_of(page.text)}).status_code == 200
    link, _ = issue_extension_link(site.runtime, person.identifier, _plus_12())
    found = EXTENSION_LINK.search(link)
    assert found is not None
    for lang, words in (("fr", french_date(_plus_12())), ("en", english_date(_plus_12()))):
        answer = site.client().get("/extension", params={"token": found.group(1), "lang": lang})
        assert answer.status_code == 403, answer.text
        text = html.unescape(answer.text)
        assert words in text, text
        assert not ISO_DAY.search(re.sub(r"<[^>]*>", "", text)), text


def test_extension_reasons_write_dates_in_the_language() -> None:
    reason = (
        "already extended to 2028-01-01: an extension renews, it does not stack; it can be "
        "asked from 2027-01-02 (--force for an administrator)"
    )
    french = extension_reason(reason, "fr")
    assert "1er janvier 2028" in french and "2 janvier 2027" in french
    english = extension_reason(reason, "en")
    assert english_date(date(2028, 1, 1)) in english and "2027-01-02" not in english
    assert "1er" in extension_reason("account expired on 2027-03-01", "fr")


# --- 5. single sign-on of an account awaiting activation ------------------------------------


def test_single_sign_on_of_an_account_awaiting_activation_offers_the_first_login(
    web: Web,
) -> None:
    person = add_person(web.runtime, "lou.garnier", awaiting_activation=True)
    app = web.app(remote_user_header="X-Remote-User", trusted_proxies=["10.0.0.1"])
    proxy = TestClient(app, base_url=SITE, client=("10.0.0.1", 1000))
    page = proxy.get("/account", headers={"x-remote-user": person.uid}, follow_redirects=False)
    assert page.status_code == 200, page.headers
    text = html.unescape(page.text)
    assert "pas encore activé" in text
    assert 'action="/"' in page.text and f'value="{person.identifier}"' in page.text
    assert 'action="/login"' not in page.text
    sent = proxy.post(
        "/", data={"csrf": csrf_of(page.text), "address": person.identifier},
        headers={"x-remote-user": person.uid},
    )  # fmt: skip
    assert sent.status_code == 200 and "Demande enregistrée" in sent.text
    active = add_person(web.runtime, "lou.active")
    assert proxy.get("/account", headers={"x-remote-user": active.uid}).status_code == 200
