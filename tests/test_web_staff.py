"""umacct serve, Gestion du compte for staff: directory data and antispam level, against slapd."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import Person, add_person, read, rewrite_config
from starlette.testclient import TestClient
from test_web import CLIENT, Web, csrf_of, web
from test_web_account import logged_in, post

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["web"]

LEVELS = {"off": "antispam:off", "normal": "antispam:normal", "high": "antispam:high"}
PHONE = "dir.telephoneNumber"


def with_antispam(web: Web) -> None:
    rewrite_config(web.config_path, antispam={"attribute": "description", "levels": LEVELS})


def staff_member(web: Web, uid: str = "eli.bernard", **extra: list[str]) -> Person:
    return add_person(web.runtime, uid, profile="titulaire", extra=dict(extra))


def audited(web: Web, person: Person, command: str) -> list[dict[str, object]]:
    return [
        {**record.details, "changes": record.changes}
        for record in web.runtime.audit.read(account=person.identifier)
        if record.command == command
    ]


def field_value(page: str, field_id: str) -> str:
    found = re.search(rf'<input id="{field_id}"[^>]*value="([^"]*)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def test_a_staff_member_sees_and_saves_the_directory_data(web: Web) -> None:
    person = staff_member(web, roomNumber=["A101"])
    browser = logged_in(web, person)
    page = browser.get("/account")
    assert page.status_code == 200
    assert "Pour les personnels" in page.text and "Vos données d&#39;annuaire" in page.text
    assert field_value(page.text, "dir-roomNumber-0") == "A101"
    assert '<label for="dir-telephoneNumber-0">Téléphone</label>' in page.text
    assert "n&#39;est pas proposé sur ce site" in page.text  # no [antispam] table
    assert 'action="/account/antispam"' not in page.text
    done = post(
        browser,
        "/account/directory",
        **{
            PHONE: "+33 4 67 14 30 30",
            "dir.roomNumber": "B204",
            "dir.title": "Ingénieure d'études",
            "dir.postalAddress": "Bât. 4\r\n\r\n34090 Montpellier\r\n",
        },
    )
    assert done.status_code == 200, done.text
    assert "Vos données d&#39;annuaire sont enregistrées" in done.text
    entry = read(web.runtime, person)
    assert entry.get("telephoneNumber") == ["+33 4 67 14 30 30"]
    assert entry.get("roomNumber") == ["B204"]
    assert entry.get("title") == ["Ingénieure d'études"]
    assert entry.get("postalAddress") == ["Bât. 4 $ 34090 Montpellier"]
    assert ">Bât. 4\n34090 Montpellier</textarea>" in done.text  # shown as lines again
    [record] = audited(web, person, "directory set")
    assert (record["frontend"], record["client"]) == ("web", CLIENT[0])
    again = post(browser, "/account/directory", **{"dir.roomNumber": "B204"})
    assert again.status_code == 200
    assert "Rien n&#39;a changé" in again.text
    assert len(audited(web, person, "directory set")) == 1


def test_every_refused_value_is_shown_on_its_field_and_nothing_changes(web: Web) -> None:
    person = staff_member(web, telephoneNumber=["+33 4 67 00 00 01"])
    browser = logged_in(web, person)
    before = read(web.runtime, person)
    refused = post(
        browser,
        "/account/directory",
        **{PHONE: "call me", "dir.roomNumber": "B\u202e204", "dir.title": "Chef de projet"},
    )
    assert refused.status_code == 400
    text = refused.text
    for field_id in ("dir-telephoneNumber-0", "dir-roomNumber-0"):
        assert f'id="{field_id}-error"' in text
        assert f'href="#{field_id}"' in text  # the summary at the top links to it
        tag = re.search(rf'<input id="{field_id}"[^>]*>', text)
        assert tag is not None and 'aria-invalid="true"' in tag.group(0)
        assert f"{field_id}-error" in tag.group(0)  # aria-describedby
    assert "Ce n&#39;est pas un numéro de téléphone" in text
    assert "dir-title-0-error" not in text
    assert field_value(text, "dir-telephoneNumber-0") == "call me"  # kept, to be corrected
    assert field_value(text, "dir-title-0") == "Chef de projet"
    assert read(web.runtime, person) == before
    assert audited(web, person, "directory set") == []
    english = browser.get("/account?lang=en")
    assert "Your directory data" in english.text
    refused = post(browser, "/account/directory", **{PHONE: "call me", "lang": "en"})
    assert refused.status_code == 400
    assert "Not a telephone number" in refused.text


def test_a_second_value_is_kept_and_an_emptied_field_removes_its_value(web: Web) -> None:
    person = staff_member(web, telephoneNumber=["+33 4 67 00 00 01", "+33 4 67 00 00 02"])
    browser = logged_in(web, person)
    page = browser.get("/account")
    assert field_value(page.text, "dir-telephoneNumber-1") == "+33 4 67 00 00 02"
    assert "Téléphone (2)" in page.text
    done = browser.post(
        "/account/directory",
        data={"csrf": csrf_of(page.text), PHONE: ["+33 4 67 00 00 01", "+33 4 67 99 99 99"]},
    )
    assert done.status_code == 200, done.text
    assert read(web.runtime, person).get("telephoneNumber") == [
        "+33 4 67 00 00 01",
        "+33 4 67 99 99 99",
    ]
    post(browser, "/account/directory", **{PHONE: ""})
    assert read(web.runtime, person).get("telephoneNumber") == []


def test_sec58_a_field_for_another_attribute_changes_nothing(web: Web) -> None:
    person = staff_member(web)
    browser = logged_in(web, person)
    before = read(web.runtime, person)
    answer = post(
        browser,
        "/account/directory",
        **{"dir.mail": "boss@umontpellier.fr", "dir.userPassword": "x", "dir.uid": "root"},
    )
    assert answer.status_code == 200
    assert read(web.runtime, person) == before
    assert audited(web, person, "directory set") == []


def test_sec58_the_staff_part_is_for_staff_profiles_only(web: Web) -> None:
    with_antispam(web)
    student = add_person(web.runtime, "cy.dupont", profile="etudiant")
    browser = logged_in(web, student)
    page = browser.get("/account")
    assert page.status_code == 200
    assert "Pour les personnels" not in page.text
    assert 'action="/account/directory"' not in page.text
    before = read(web.runtime, student)
    for path, data in (
        ("/account/directory", {"dir.roomNumber": "B204"}),
        ("/account/antispam", {"level": "high"}),
    ):
        answer = post(browser, path, **data)
        assert answer.status_code == 403
        assert "Réservé aux personnels" in answer.text
    assert read(web.runtime, student) == before
    assert web.runtime.audit.read(account=student.identifier) == []


def test_the_antispam_level_is_shown_and_changed(web: Web) -> None:
    with_antispam(web)
    person = staff_member(web, "bo.chen")
    browser = logged_in(web, person)
    page = browser.get("/account")
    assert "Niveau antispam" in page.text
    assert "Aucun niveau n&#39;est choisi" in page.text
    assert page.text.count('type="radio"') == 3
    assert '<label for="level-3">Élevé</label>' in page.text
    done = post(browser, "/account/antispam", level="high")
    assert done.status_code == 200, done.text
    assert "Le niveau antispam est désormais : Élevé." in done.text
    assert read(web.runtime, person).get("description") == ["antispam:high"]
    assert re.search(r'value="high" checked', done.text)
    [record] = audited(web, person, "antispam")
    assert (record["frontend"], record["level"]) == ("web", "high")
    same = post(browser, "/account/antispam", level="high", lang="en")
    assert "The antispam level already was: High." in same.text
    for level, words in (("maximum", "Ce niveau n&#39;existe pas"), ("", "Choisissez un niveau")):
        refused = post(browser, "/account/antispam", level=level)
        assert refused.status_code == 400
        assert 'id="level-error"' in refused.text and 'href="#level"' in refused.text
        assert words in refused.text
    assert read(web.runtime, person).get("description") == ["antispam:high"]
    assert len(audited(web, person, "antispam")) == 1


def test_a_value_that_is_no_level_is_said_so(web: Web) -> None:
    with_antispam(web)
    person = staff_member(web, "di.vidal", description=["spam-filter:custom"])
    page = logged_in(web, person).get("/account")
    assert "Le réglage actuel (spam-filter:custom) n&#39;est aucun des niveaux" in page.text
    assert "checked" not in page.text


def test_without_an_antispam_table_the_form_is_not_offered(web: Web) -> None:
    person = staff_member(web)
    browser = logged_in(web, person)
    answer = post(browser, "/account/antispam", level="high")
    assert answer.status_code == 400
    assert "n&#39;est pas proposé sur ce site" in answer.text
    assert read(web.runtime, person).get("description") == []


def test_sec51_sec52_the_staff_forms_need_their_csrf_half_and_carry_the_headers(
    web: Web,
) -> None:
    with_antispam(web)
    person = staff_member(web)
    browser = logged_in(web, person)
    before = read(web.runtime, person)
    for path, data in (
        ("/account/directory", {"dir.roomNumber": "B204"}),
        ("/account/antispam", {"level": "high"}),
    ):
        answer = browser.post(path, data=data)
        assert answer.status_code == 403
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["referrer-policy"] == "no-referrer"
        forged = browser.post(
            path, data={"csrf": "0" * 64, **data}, headers={"sec-fetch-site": "same-origin"}
        )
        assert forged.status_code == 403
    assert read(web.runtime, person) == before
    refused = post(browser, "/account/directory", **{PHONE: "call me"})
    assert refused.headers["cache-control"] == "no-store"
    assert "script-src 'none'" in refused.headers["content-security-policy"]
    assert "<script" not in refused.text and " style=" not in refused.text


def test_the_staff_forms_need_a_login(web: Web) -> None:
    person = staff_member(web)
    browser = web.client()
    page = browser.get("/login")
    for path in ("/account/directory", "/account/antispam"):
        answer = browser.post(
            path, data={"csrf": csrf_of(page.text), "dir.roomNumber": "B1", "level": "high"},
            follow_redirects=False,
        )  # fmt: skip
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert read(web.runtime, person).get("roomNumber") == []


@pytest.fixture
def staff_browser(web: Web) -> tuple[Web, Person, TestClient, str]:
    person = staff_member(web, "hy.pothese")
    browser = logged_in(web, person, client_posts_per_hour=10_000)
    return web, person, browser, csrf_of(browser.get("/account").text)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=40))
def test_any_typed_phone_is_stored_as_typed_or_refused_on_its_field(
    staff_browser: tuple[Web, Person, TestClient, str], text: str
) -> None:
    web, person, browser, csrf = staff_browser
    before = read(web.runtime, person).get("telephoneNumber")
    answer = browser.post("/account/directory", data={"csrf": csrf, PHONE: text})
    after = read(web.runtime, person).get("telephoneNumber")
    if answer.status_code == 200:
        assert after == ([text.strip()] if text.strip() else [])
    else:
        assert answer.status_code == 400, answer.text
        assert 'id="dir-telephoneNumber-0-error"' in answer.text
        assert after == before
