"""umacct serve: a session never outlives a lock, an expiry or a password change (issue 15).

Every request of a session checks the account's entry again: a lock, an expiry or a password
changed elsewhere (the command line, a reset link, another web host) ends it, with nothing
written; the single sign-on of a locked account gets a 403 page; a confirmation link of a
locked account stores nothing.
"""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from command_line import umacct
from days import TODAY, days
from people import (
    NEW_PASSWORD,
    OTHER_PASSWORD,
    Person,
    add_person,
    read,
    runtime_on,
    token_in_mail,
)
from starlette.testclient import TestClient
from test_web import SITE, Web, csrf_of, personal, post_password, web
from test_web_account import log_in

from umacct.directory import Change
from umacct.services.addresses import request_forwarding
from umacct.services.credentials import send_reset
from umacct.web.limits import LIMITS_FILE

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["web"]

ATTACKER = "attacker@example.com"
SESSION = "__Host-umacct-session"


def session_of(web: Web, person: Person, app: object | None = None) -> tuple[TestClient, str]:
    """A logged-in browser, and the CSRF field of its account page."""
    browser = TestClient(app or web.app(), base_url=SITE, client=("203.0.113.5", 40000))
    assert log_in(browser, person.identifier, person.password)[0] == 303
    page = browser.get("/account")
    assert page.status_code == 200
    return browser, csrf_of(page.text)


def ended(browser: TestClient) -> None:
    """The session is over: the account page sends to the login, and the cookie is cleared."""
    answer = browser.get("/account", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


def mailed_to(web: Web, address: str) -> bool:
    return any(address in mail.rcpt_tos for mail in web.relay.received)


def cleared(answer: httpx.Response) -> bool:
    """The answer deletes the session cookie."""
    return any(
        value.startswith(f"{SESSION}=") and "Max-Age=0" in value
        for value in answer.headers.get_list("set-cookie")
    )


def test_sec63_a_lock_ends_the_session_and_its_forms_write_nothing(web: Web) -> None:
    person = add_person(web.runtime, "lea.dubois", profile="titulaire")
    looking, _ = session_of(web, person)
    forwarding, csrf = session_of(web, person)
    directory, csrf_directory = session_of(web, person)
    code, _, err = umacct(
        "lock", person.identifier, "--kind", "administrative", "--reason", "charter abuse"
    )
    assert code == 0, err
    answer = looking.get("/account", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert cleared(answer)
    posted = forwarding.post(
        "/account/forwarding",
        data={"csrf": csrf, "forwarding": ATTACKER},
        follow_redirects=False,
    )
    assert posted.status_code == 303 and cleared(posted)
    written = directory.post(
        "/account/directory",
        data={"csrf": csrf_directory, "dir.roomNumber": "Z999"},
        follow_redirects=False,
    )
    assert written.status_code == 303
    entry = read(web.runtime, person)
    assert entry.get("mailForwardingAddress") == []
    assert entry.get("roomNumber") == []
    assert not mailed_to(web, ATTACKER)
    for browser in (looking, forwarding, directory):
        ended(browser)


def test_sec63_an_expiry_ends_the_session_and_no_recovery_link_goes(web: Web) -> None:
    person = add_person(web.runtime, "an.li")
    browser, csrf = session_of(web, person)
    other, _ = session_of(web, person)
    code, _, err = umacct(
        "suspend",
        person.identifier,
        "--end-of-activity",
        days(-400).isoformat(),
        "--no-notice",
        "--reason",
        "left",
    )
    assert code == 0, err
    posted = browser.post(
        "/account/recovery", data={"csrf": csrf, "recovery": ATTACKER}, follow_redirects=False
    )
    assert posted.status_code == 303 and cleared(posted)
    assert not mailed_to(web, ATTACKER)
    assert read(web.runtime, person).get("supannMailPerso") == [personal(person)]
    ended(other)


def test_sec63_a_reset_on_the_command_line_ends_the_sessions(web: Web) -> None:
    person = add_person(web.runtime, "lea.dubois")
    browser, _ = session_of(web, person)
    code, _, err = umacct("reset", person.identifier)
    assert code == 0, err
    token = token_in_mail(web.relay, personal(person), "reset")
    code, _, err = umacct("reset", "--token", token, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert code == 0, err
    ended(browser)


def test_sec63_a_reset_link_on_the_web_ends_the_sessions(web: Web) -> None:
    person = add_person(web.runtime, "lea.dubois")
    browser, _ = session_of(web, person)
    send_reset(web.runtime, person.identifier)
    token = token_in_mail(web.relay, personal(person), "reset")
    done = post_password(web.client(), "/reset", token, NEW_PASSWORD)
    assert done.status_code == 200, done.text
    ended(browser)


def test_sec63_a_reset_on_another_web_host_ends_the_sessions(web: Web, tmp_path: Path) -> None:
    person = add_person(web.runtime, "lea.dubois")
    document = tomllib.loads(web.config_path.read_text(encoding="utf-8"))
    document["paths"]["data_dir"] = str(tmp_path / "host-b")
    host_b = tmp_path / "host-b.toml"
    host_b.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    on_b = Web(host_b, web.runtime, web.relay, web.settings)
    browser_a, _ = session_of(web, person)
    browser_b, _ = session_of(on_b, person)
    assert browser_a.get("/account", follow_redirects=False).status_code == 200
    on_b_runtime = runtime_on(host_b, TODAY)
    try:
        send_reset(on_b_runtime, person.identifier)
    finally:
        on_b_runtime.close()
    token = token_in_mail(web.relay, personal(person), "reset")
    done = post_password(on_b.client(), "/reset", token, NEW_PASSWORD)
    assert done.status_code == 200, done.text
    ended(browser_a)
    ended(browser_b)  # host B's own session (its own data folder) ends as well


def test_sec63_the_session_that_changed_the_password_stays(web: Web) -> None:
    person = add_person(web.runtime, "eve.roux")
    browser, csrf = session_of(web, person)
    other, _ = session_of(web, person)
    done = browser.post(
        "/account/password",
        data={"csrf": csrf, "current": person.password, "password": OTHER_PASSWORD,
              "password2": OTHER_PASSWORD},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert browser.get("/account", follow_redirects=False).status_code == 200
    ended(other)


def test_sec63_single_sign_on_of_a_locked_account_gets_no_page(web: Web) -> None:
    person = add_person(web.runtime, "sam.roger")
    app = web.app(remote_user_header="X-Remote-User", trusted_proxies=["10.0.0.1"])
    proxy = TestClient(app, base_url=SITE, client=("10.0.0.1", 1000))
    assert proxy.get("/account", headers={"x-remote-user": person.uid}).status_code == 200
    code, _, err = umacct("lock", person.identifier, "--kind", "technical", "--reason", "stolen")
    assert code == 0, err
    page = proxy.get("/account", headers={"x-remote-user": person.uid}, follow_redirects=False)
    assert page.status_code == 403
    assert "ne peut pas être géré" in page.text
    assert 'action="/account/forwarding"' not in page.text
    form = proxy.get("/login")
    posted = proxy.post(
        "/account/forwarding",
        headers={"x-remote-user": person.uid},
        data={"csrf": csrf_of(form.text), "forwarding": ATTACKER},
        follow_redirects=False,
    )
    assert posted.status_code == 403
    assert not mailed_to(web, ATTACKER)


def test_sec63_a_confirmation_link_of_a_locked_account_stores_nothing(web: Web) -> None:
    person = add_person(web.runtime, "lea.dubois")
    code, _, err = umacct("lock", person.identifier, "--kind", "administrative", "--reason", "x")
    assert code == 0, err
    request_forwarding(web.runtime, person.identifier, ATTACKER)  # asked while locked
    token = token_in_mail(web.relay, ATTACKER, "confirm")
    browser = web.client()
    page = browser.get("/confirm", params={"token": token})
    answer = browser.post("/confirm", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 403
    assert read(web.runtime, person).get("mailForwardingAddress") == []
    code, _, _ = umacct("redirect", "--token", token)
    assert code == 77
    assert read(web.runtime, person).get("mailForwardingAddress") == []


@pytest.mark.parametrize("attribute", ["pwdAccountLockedTime", "pwdEndTime"])
def test_sec63_a_password_policy_lock_or_cut_off_ends_the_session_and_the_api(
    web: Web, attribute: str
) -> None:
    person = add_person(web.runtime, "ivo.petit")
    browser, _ = session_of(web, person)
    past = "20200101000000Z" if attribute == "pwdEndTime" else "000001010000Z"
    web.runtime.directory.modify(person.dn, [Change("replace", attribute, (past,))])
    ended(browser)  # the state still says active: the password policy's own lock counts
    app = web.app(remote_user_header="X-Remote-User", trusted_proxies=["10.0.0.1"])
    proxy = TestClient(app, base_url=SITE, client=("10.0.0.1", 1000))
    answer = proxy.get("/api/account", headers={"x-remote-user": person.uid})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "account_unusable"


def test_sec63_a_session_opened_before_marks_were_kept_ends(web: Web) -> None:
    person = add_person(web.runtime, "rose.martin")
    browser, _ = session_of(web, person)
    database = Path(web.runtime.config.paths.data_dir) / LIMITS_FILE
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE sessions SET mark = NULL")
    connection.close()
    ended(browser)
