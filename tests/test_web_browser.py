"""End to end in a real browser: Debian's chromium, headless, driven by Selenium.

A person is created by ``umacct create``; the activation mail lands in the outbox; the
browser opens its link on ``umacct serve``, chooses a password, and a real bind with it
succeeds. Then the same person forgets it: ``/`` sends a reset link, the browser opens it and
sets another password, and logs in to the account page with it, where (a staff profile) she
changes her telephone number and her antispam level. Screenshots of the pages go to ``$UMACCT_SCREENSHOTS`` (the ones in
``docs/screenshots/`` were made with ``UMACCT_SCREENSHOTS=docs/screenshots``), else to the
test's own folder.

The system chromedriver is used (``/usr/bin/chromedriver``), never Selenium Manager (it
would try to download a browser): ``SE_OFFLINE`` is set too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from command_line import umacct
from days import TODAY
from faketime_support import UNDER_FAKETIME
from people import mail_text, outbox_mails, rewrite_config, runtime_on
from test_web_serve import server

from umacct.clock import SystemClock
from umacct.config import load_config

# Under faketime (`make test-later-dates`) chromium's own timers and DevTools run on the faked
# clock and lose track of pages; the pages' dates are judged there by the app tests
# (tests/test_web*.py), and `make test` runs this one in the real browser.
pytestmark = [
    pytest.mark.usefixtures("directory_clean"),
    pytest.mark.skipif(UNDER_FAKETIME, reason="chromium's timers run on faketime's clock"),
]
__all__ = ["server"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FIRST_PASSWORD = "lanterns over quiet water 58"
SECOND_PASSWORD = "copper kettle sings at noon 21"
LINK = re.compile(r"https://ent\.example\.org(/(?:activation|reset)\?token=[A-Za-z0-9_-]+)")


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "no browser: chromium and chromium-driver are not installed "
            "(scripts/ensure-system-packages installs them: apt-get install -y chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=820,900",
        "--lang=fr-FR",
        "--password-store=basic",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def antispam_levels(config_path: Path) -> None:
    """An [antispam] table in the configuration, before the server reads it."""
    levels = {"off": "antispam:off", "normal": "antispam:normal", "high": "antispam:high"}
    rewrite_config(config_path, antispam={"attribute": "description", "levels": levels})


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UMACCT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def last_link(config_path: Path, address: str, page: str) -> str:
    """The link to ``page`` (``/activation``, ``/reset``) last mailed to ``address``.

    Chosen by its page, not only by the outbox's order: processes started under faketime's
    "@" form each start their own clock, so file names of two processes do not sort in time.
    """
    runtime = runtime_on(config_path, TODAY)
    try:
        for message in reversed(outbox_mails(runtime)):
            if address in str(message["To"]):
                found = LINK.search(mail_text(message))
                if found is not None and found.group(1).startswith(page):
                    return found.group(1)
    finally:
        runtime.close()
    raise AssertionError(f"no link mailed to {address}")


def heading(driver: Any) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    located = (By.TAG_NAME, "h1")
    element = WebDriverWait(driver, 20).until(
        expected_conditions.presence_of_element_located(located)
    )
    return str(element.text)


def submit(driver: Any, action: str | None = None) -> None:
    """Send the page's form (the one posted to ``action``) and wait for the next page."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    form = f"form[action='{action}'] " if action else ""
    driver.find_element(By.CSS_SELECTOR, f"{form}button[type=submit]").click()

    def left(_: Any) -> bool:
        # Chromium may answer a question about the old page's node, while the new page loads,
        # with "Node ... does not belong to the document" instead of a stale element: both
        # mean the page was left.
        try:
            page.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 20).until(left)


def choose_password(driver: Any, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "password2").send_keys(password)
    submit(driver)


def test_activation_then_reset_in_a_real_browser(
    config_path: Path,
    antispam_levels: None,
    server: tuple[int, subprocess.Popen[bytes]],
    browser: Any,
    shots: Path,
) -> None:
    from selenium.webdriver.common.by import By

    port, _ = server
    site = f"http://127.0.0.1:{port}"
    code, out, err = umacct(
        "create", "--given-name", "Zoé", "--surname", "Lefèvre", "--profile", "titulaire",
        "--personal-email", "zoe.lefevre@example.net", clock=SystemClock(),
    )  # fmt: skip
    assert code == 0, err
    account = out.strip().splitlines()[0]
    config = load_config(config_path)

    browser.get(site + "/")
    assert heading(browser) == "1ère connexion / problème de connexion"
    browser.save_screenshot(str(shots / "home.png"))

    browser.get(site + last_link(config_path, "zoe.lefevre@example.net", "/activation"))
    assert heading(browser) == "Activer votre compte"
    assert browser.find_element(By.ID, "username").get_attribute("value") == account
    browser.save_screenshot(str(shots / "activation.png"))
    choose_password(browser, "motdepasse12")
    assert browser.find_element(By.ID, "password-error").is_displayed()
    browser.save_screenshot(str(shots / "activation-refused.png"))
    choose_password(browser, FIRST_PASSWORD)
    assert heading(browser) == "Votre compte est activé"
    browser.save_screenshot(str(shots / "activated.png"))
    runtime = runtime_on(config, TODAY)
    try:
        [entry] = list(
            runtime.directory.search(config.directory.people_dn, f"(mail={account})", ["uid"])
        )
        dn = entry.dn
        assert runtime.directory.check_password(dn, FIRST_PASSWORD)

        browser.get(site + "/?lang=en")
        assert heading(browser) == "First login / login problem"
        browser.find_element(By.ID, "address").send_keys(account)
        submit(browser)
        assert heading(browser) == "Request received"
        browser.save_screenshot(str(shots / "sent-en.png"))
        browser.get(site + last_link(config_path, "zoe.lefevre@example.net", "/reset"))
        assert heading(browser) == "Choose a new password"
        choose_password(browser, SECOND_PASSWORD)
        assert heading(browser) == "Password changed"
        browser.save_screenshot(str(shots / "reset-done-en.png"))
        assert runtime.directory.check_password(dn, SECOND_PASSWORD)
        assert not runtime.directory.check_password(dn, FIRST_PASSWORD)
        browser.get(site + "/login?lang=fr")
        browser.find_element(By.ID, "address").send_keys(account)
        browser.find_element(By.ID, "password").send_keys(SECOND_PASSWORD)
        submit(browser)
        assert heading(browser) == "Gestion du compte"
        assert "zoe.lefevre@example.net" in browser.page_source  # the recovery address
        browser.save_screenshot(str(shots / "account.png"))

        phone = browser.find_element(By.ID, "dir-telephoneNumber-0")
        phone.send_keys("+33 4 67 14 30 30")
        submit(browser, "/account/directory")
        notice = browser.find_element(By.CSS_SELECTOR, ".notice").text
        assert notice.startswith("Vos données d'annuaire sont enregistrées"), notice
        browser.find_element(By.CSS_SELECTOR, "label[for=level-3]").click()
        submit(browser, "/account/antispam")
        notice = browser.find_element(By.CSS_SELECTOR, ".notice").text
        assert notice == "Le niveau antispam est désormais : Élevé.", notice
        entry = runtime.directory.read(dn, ["telephoneNumber", "description"])
        assert entry is not None
        assert entry.get("telephoneNumber") == ["+33 4 67 14 30 30"]
        assert entry.get("description") == ["antispam:high"]
        browser.set_window_size(820, 1500)  # the whole staff part in one picture
        browser.get(site + "/account#staff-title")
        browser.save_screenshot(str(shots / "account-staff.png"))
    finally:
        runtime.close()
    browser.set_window_size(390, 844)
    browser.get(site + "/?lang=fr")
    browser.save_screenshot(str(shots / "home-phone.png"))
