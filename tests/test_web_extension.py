"""umacct serve: the extension request, from the link of the expiry warning and the account page."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from days import month_end
from people import Person, add_person, compte, read, rewrite_config
from test_extension_requests import (
    EXTENSION_LINK,
    HELPDESK,
    grace_end,
    review,
    warn_day,
    warned,
)
from test_web import Web, csrf_of, web
from test_web_account import logged_in

from umacct.localdir.profiles import profiles_as_toml
from umacct.mail.dates import french_date
from umacct.services.extensions import issue_extension_link
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["web"]

On = Callable[[date], Runtime]


def relay_token(web: Web, person: Person) -> str:
    """The token of the extension link in the last warning the relay delivered to the person."""
    for mail in reversed(web.relay.received):
        if person.identifier in mail.rcpt_tos:
            body = mail.message.get_body(("plain",))
            found = EXTENSION_LINK.search(str(body.get_content())) if body else None
            if found:
                return found.group(1)
    raise AssertionError("no extension link")


def on_warn_day(web: Web, on: On) -> Web:
    return dataclasses.replace(web, day=warn_day(), runtime=on(warn_day()))


def _plus_12() -> date:
    """The grace end after one extension of 12 months."""
    return month_end(-1 + 24)


def test_opening_the_link_consumes_nothing_and_the_form_grants_it_at_once(web: Web, on: On) -> None:
    person, _ = warned(on, "web.auto")
    token = relay_token(web, person)
    site = on_warn_day(web, on)
    browser = site.client()
    for _ in range(2):
        page = browser.get("/extension", params={"token": token})
        assert page.status_code == 200, page.text
        assert "Demander la prolongation" in page.text and "dès votre demande" in page.text
    assert site.runtime.tokens.check(token, TokenPurpose.EXTENSION)  # nothing used
    answer = browser.post("/extension", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 200, answer.text
    assert "Prolongation accordée" in answer.text
    assert french_date(_plus_12()) in answer.text
    assert compte(read(site.runtime, person)).endswith(f":{_plus_12().strftime('%Y%m%d')}")
    again = browser.post("/extension", data={"csrf": csrf_of(page.text), "token": token})
    assert again.status_code == 400  # used


def test_sec51_the_extension_form_needs_its_csrf_half(web: Web, on: On) -> None:
    person, _ = warned(on, "web.csrf")
    token = relay_token(web, person)
    site = on_warn_day(web, on)
    browser = site.client()
    browser.get("/extension", params={"token": token})
    refused = browser.post("/extension", data={"token": token})
    assert refused.status_code == 403
    assert site.runtime.tokens.check(token, TokenPurpose.EXTENSION)
    assert compte(read(site.runtime, person)).endswith(f":{grace_end().strftime('%Y%m%d')}")


def test_a_review_profile_queues_the_request_and_tells_the_helpdesk(
    web: Web, on: On, config_path: Path
) -> None:
    person, _ = warned(on, "web.review")
    token = relay_token(web, person)
    review(web.config_path)
    site = on_warn_day(web, on)
    browser = site.client(headers={"accept-language": "en"})
    page = browser.get("/extension", params={"token": token})
    assert "The helpdesk will review your request" in page.text
    answer = browser.post("/extension", data={"csrf": csrf_of(page.text), "token": token})
    assert answer.status_code == 200, answer.text
    assert "is waiting for the helpdesk" in answer.text
    assert any(HELPDESK in mail.rcpt_tos for mail in web.relay.received)
    assert compte(read(site.runtime, person)).endswith(f":{grace_end().strftime('%Y%m%d')}")
    [request] = site.runtime.store.extension_requests(account=person.identifier)
    assert request.status == "pending" and request.via == "link"


@pytest.mark.parametrize("token", ["not-a-token", "A" * 43])
def test_an_unknown_link_is_refused(web: Web, on: On, token: str) -> None:
    answer = on_warn_day(web, on).client().get("/extension", params={"token": token})
    assert answer.status_code == 400 and "Ce lien n'est pas valable" in html.unescape(answer.text)


def test_an_expired_link_says_so(web: Web, on: On) -> None:
    person, _ = warned(on, "web.late")
    token = relay_token(web, person)
    late = dataclasses.replace(web, day=grace_end() + timedelta(days=1))
    answer = late.client().get("/extension", params={"token": token})
    assert answer.status_code == 400 and "expiré" in answer.text


def test_the_policy_refuses_with_its_reason(web: Web, on: On, config_path: Path) -> None:
    """Not extendable, not in grace, maximum reached: a page with the policy's reason."""
    runtime = on(warn_day())
    active = add_person(runtime, "still.working", profile="titulaire")
    person, _ = warned(on, "ext.max")
    vacataire = add_person(
        runtime, "not.extendable", profile="vacataire", end_of_activity=grace_end()
    )
    cases = [
        (active, "n'est pas en période de maintien"),
        (vacataire, "ne permet pas de prolongation"),
    ]
    profile = {**profiles_as_toml()["titulaire"], "max_extensions": 0}
    rewrite_config(config_path, profiles={"titulaire": profile})
    cases.append((person, "permet au plus 0 prolongations"))
    site = on_warn_day(web, on)
    for who, words in cases:
        link, _ = issue_extension_link(site.runtime, who.identifier, grace_end())
        found = EXTENSION_LINK.search(link)
        assert found is not None
        answer = site.client().get("/extension", params={"token": found.group(1)})
        assert answer.status_code == 403, (who, answer.text)
        assert words in html.unescape(answer.text), answer.text


def test_the_account_page_offers_the_request_in_the_grace_period(web: Web, on: On) -> None:
    person, _ = warned(on, "web.account")
    active = add_person(on(warn_day()), "web.active", profile="titulaire")
    site = on_warn_day(web, on)
    assert "Prolongation du compte" not in logged_in(site, active).get("/account").text
    browser = logged_in(site, person)
    page = browser.get("/account")
    assert "Prolongation du compte" in page.text and 'action="/account/extension"' in page.text
    refused = browser.post("/account/extension", data={})
    assert refused.status_code == 403
    done = browser.post("/account/extension", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    # granted at once (auto), with the new last day:
    assert f"prolongé jusqu'au {french_date(_plus_12())}" in html.unescape(done.text)
    assert compte(read(site.runtime, person)).endswith(f":{_plus_12().strftime('%Y%m%d')}")
    assert "déjà maintenu jusqu'au" in html.unescape(done.text)  # renews, does not stack


def test_the_account_page_shows_a_pending_request(web: Web, on: On) -> None:
    person, _ = warned(on, "web.pending")
    review(web.config_path)
    site = on_warn_day(web, on)
    browser = logged_in(site, person)
    page = browser.get("/account")
    browser.post("/account/extension", data={"csrf": csrf_of(page.text)})
    shown = browser.get("/account")
    assert "attend l'examen de l'assistance" in html.unescape(shown.text)
    assert 'action="/account/extension"' not in shown.text
