"""umacct serve as deployed: [web] in the configuration, a narrower bind DN, shared counters."""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from command_line import umacct
from days import TODAY, clock_on
from people import (
    NEW_PASSWORD,
    OTHER_PASSWORD,
    add_person,
    compte,
    read,
    rewrite_config,
    runtime_on,
    token_in_mail,
)
from smtp_fixtures import SmtpTestServer
from starlette.testclient import TestClient
from test_state_support import bound, branch, drop_branch, host_config, new_branch
from test_web import CLIENT, csrf_of, post_password

from umacct.clock import FixedClock
from umacct.config import load_config
from umacct.directory import connect
from umacct.errors import ConfigError, RefusedError
from umacct.localdir import LocalDirectory
from umacct.services.credentials import send_activation
from umacct.state.admin import init_branch
from umacct.state.counters import WINDOW_SECONDS, DirectoryCounters, window_of
from umacct.web.app import create_app
from umacct.web.settings import WebSettings, load_web_settings

pytestmark = pytest.mark.usefixtures("directory_clean")
__all__ = ["branch"]


# --- [web] in the configuration itself ------------------------------------------------------


def test_the_configurations_web_table_is_read(config_path: Path) -> None:
    rewrite_config(config_path, web={"institution": "Université Test", "port": 8282})
    settings = load_web_settings(load_config(config_path))
    assert (settings.institution, settings.port) == ("Université Test", 8282)
    assert settings.source == config_path


def test_the_order_web_config_then_the_configuration_then_web_toml(
    config_path: Path, tmp_path: Path
) -> None:
    (config_path.parent / "web.toml").write_text("[web]\nport = 8001\n", encoding="utf-8")
    assert load_web_settings(load_config(config_path)).port == 8001
    rewrite_config(config_path, web={"port": 8002})
    assert load_web_settings(load_config(config_path)).port == 8002
    explicit = tmp_path / "site-web.toml"
    explicit.write_text("[web]\nport = 8003\n", encoding="utf-8")
    assert load_web_settings(load_config(config_path), explicit).port == 8003


def test_the_configurations_web_table_drives_serve(config_path: Path) -> None:
    rewrite_config(config_path, web={"host": "0.0.0.0"})  # no trusted proxy in front
    code, _, err = umacct("serve")
    assert code == 78
    assert "trusted_proxies" in err and "0.0.0.0" in err


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"colour": "red"}, "colour"),
        ({"port": "80"}, "port"),
        ({"bind_dn": "not a dn"}, "bind_dn"),
        ({"remote_user_header": "X-Remote-User"}, "remote_user_header"),
    ],
)
def test_a_bad_web_key_in_the_configuration_is_refused(
    config_path: Path, table: dict[str, object], key: str
) -> None:
    rewrite_config(config_path, web=table)
    with pytest.raises(ConfigError, match=f"\\[web\\] {key}") as refused:
        load_web_settings(load_config(config_path))
    assert str(config_path) in refused.value.message
    code, out, err = umacct("config", "check")
    assert code == 78, out
    assert f"[web] {key}" in err and len(err.strip().splitlines()) == 1
    code, _, err = umacct("serve")
    assert code == 78 and f"[web] {key}" in err


def test_config_check_accepts_a_good_web_table(config_path: Path) -> None:
    rewrite_config(
        config_path,
        web={"trusted_proxies": ["127.0.0.1"], "bind_dn": "cn=umacct-web,ou=system,dc=x,dc=org"},
    )
    code, _, err = umacct("config", "check")
    assert code == 0, err


# --- [links] stay https, but for loopback ---------------------------------------------------


@pytest.mark.parametrize(
    "base",
    [
        "http://ent.example.org",
        "http://10.0.0.8:8080",
        "http://127.0.0.1.nip.io",
        "ftp://127.0.0.1",
    ],
)
def test_an_http_link_base_beyond_loopback_is_refused(config_path: Path, base: str) -> None:
    rewrite_config(config_path, links={"activation": f"{base}/activation?token={{token}}"})
    code, _, err = umacct("config", "check")
    assert code == 78
    assert "[links]" in err and "activation" in err and "loopback" in err


@pytest.mark.parametrize("base", ["http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost"])
def test_an_http_link_base_on_loopback_is_accepted(config_path: Path, base: str) -> None:
    links = {kind: f"{base}/{kind}?token={{token}}" for kind in ("activation", "reset", "confirm")}
    rewrite_config(config_path, links=links)
    code, _, err = umacct("config", "check")
    assert code == 0, err
    app = create_app(load_config(config_path), clock=clock_on(TODAY), key=b"k")
    look = TestClient(app, base_url=base).get("/activation", params={"token": "D" * 43})
    assert look.status_code == 400  # served: the link is simply not valid


# --- [web] bind_dn: a narrower DN, with exactly the rules docs/web.md gives -------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "web.md"
DOC_PEOPLE = "ou=people,dc=umontpellier,dc=fr"
DOC_WEB_DN = "cn=umacct-web,ou=system,dc=umontpellier,dc=fr"
DOC_STATE = "ou=umacct,ou=system,dc=umontpellier,dc=fr"
DOC_BASE = "dc=umontpellier,dc=fr"
WEB_PASSWORD = "a web host's own password 4417"
DATABASE = "olcDatabase={1}mdb,cn=config"


def documented_rules() -> str:
    """The LDIF of docs/web.md's "What the bind DN needs": the first ldif block there."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## What the bind DN needs") :]
    found = re.search(r"```ldif\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def access_rules(slapd: LocalDirectory) -> list[str]:
    listing = slapd.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", DATABASE, "-s", "base", "olcAccess"
    )
    return [
        line.removeprefix("olcAccess: ")
        for line in listing.splitlines()
        if line.startswith("olcAccess: ")
    ]


@dataclasses.dataclass(frozen=True)
class WebDn:
    dn: str
    state_dn: str


@pytest.fixture
def narrow_dn(
    slapd: LocalDirectory, config_path: Path, mail_relay: SmtpTestServer
) -> Iterator[WebDn]:
    """A DN of its own with the documented rules, and the state in a branch of the test's."""
    name = f"umacct-web-{secrets.token_hex(4)}"
    dn = f"cn={name},ou=system,{slapd.base_dn}"
    state_dn = new_branch(slapd)
    slapd.run_root(
        "ldapadd",
        ldif=f"dn: {dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: {name}\nuserPassword: {WEB_PASSWORD}\n",
    )
    before = access_rules(slapd)
    rules = (
        documented_rules()
        .replace(DOC_WEB_DN, dn)
        .replace(DOC_PEOPLE, slapd.people_dn)
        .replace(DOC_STATE, state_dn)
        .replace(f'"{DOC_BASE}"', f'"{slapd.base_dn}"')
    )
    slapd.run_root("ldapmodify", ldif=rules)
    rewrite_config(config_path, directory={"state_dn": state_dn}, state={"backend": "directory"})
    runtime = runtime_on(config_path, TODAY)
    init_branch(runtime.directory, state_dn)
    runtime.close()
    try:
        yield WebDn(dn, state_dn)
    finally:
        restore = "".join(f"olcAccess: {rule}\n" for rule in before)
        slapd.run_root(
            "ldapmodify", ldif=f"dn: {DATABASE}\nchangetype: modify\nreplace: olcAccess\n{restore}"
        )
        drop_branch(slapd, state_dn)
        slapd.run_root("ldapdelete", dn)


def test_sec61_the_pages_work_bound_as_a_narrower_dn_with_the_documented_rules(
    narrow_dn: WebDn,
    config_path: Path,
    mail_relay: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tool = runtime_on(config_path, TODAY)
    person = add_person(tool, "lou.marchand", awaiting_activation=True)
    send_activation(tool, person.identifier)
    token = token_in_mail(mail_relay, f"{person.uid}@example.net", "activation")
    monkeypatch.delenv("UMACCT_BIND_PASSWORD")  # the web host holds only its own
    monkeypatch.setenv("UMACCT_WEB_BIND_PASSWORD", WEB_PASSWORD)
    config = load_config(config_path)
    app = create_app(config, WebSettings(bind_dn=narrow_dn.dn), clock=clock_on(TODAY), key=b"k")
    browser = TestClient(app, base_url="https://ent.example.org", client=("203.0.113.9", 4000))

    look = browser.get("/activation", params={"token": token})
    assert look.status_code == 200, look.text
    done = post_password(browser, "/activation", token, NEW_PASSWORD)
    assert done.status_code == 200, done.text
    assert tool.directory.check_password(person.dn, NEW_PASSWORD)
    assert compte(read(tool, person)).startswith("{COMPTE}A:SupannActif")

    home = browser.get("/")
    sent = browser.post("/", data={"csrf": csrf_of(home.text), "address": person.identifier})
    assert sent.status_code == 200
    reset = token_in_mail(mail_relay, f"{person.uid}@example.net", "reset")
    assert post_password(browser, "/reset", reset, OTHER_PASSWORD).status_code == 200
    assert tool.directory.check_password(person.dn, OTHER_PASSWORD)

    form = browser.get("/login")
    logged = browser.post(
        "/login",
        data={"csrf": csrf_of(form.text), "address": person.identifier, "password": OTHER_PASSWORD},
        follow_redirects=False,
    )
    assert logged.status_code == 303
    page = browser.get("/account")
    assert page.status_code == 200 and person.identifier in page.text
    changed = browser.post(
        "/account/password",
        data={"csrf": csrf_of(page.text), "current": OTHER_PASSWORD,
              "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert tool.directory.check_password(person.dn, NEW_PASSWORD)
    for change, address in (
        ("recovery", "lou.home@example.com"),
        ("forwarding", "lou@example.org"),
    ):
        asked = browser.post(
            "/account/" + change, data={"csrf": csrf_of(page.text), change: address}
        )
        assert asked.status_code == 200, asked.text
        confirm = token_in_mail(mail_relay, address, "confirm")
        look = browser.get("/confirm", params={"token": confirm})
        confirmed = browser.post("/confirm", data={"csrf": csrf_of(look.text), "token": confirm})
        assert confirmed.status_code == 200, confirmed.text
    entry = read(tool, person)
    assert entry.get("supannMailPerso") == ["lou.home@example.com"]
    assert entry.get("mailForwardingAddress") == ["lou@example.org"]
    tool.close()


def test_sec61_the_narrower_dn_may_not_add_people_nor_read_the_tool(
    narrow_dn: WebDn, slapd: LocalDirectory, config_path: Path
) -> None:
    settings = dataclasses.replace(
        load_config(config_path).directory, bind_dn=narrow_dn.dn, bind_password_file=None
    )
    with connect(settings, WEB_PASSWORD) as directory:
        with pytest.raises(RefusedError):
            directory.add(
                f"uid=intruder,{slapd.people_dn}",
                {"objectClass": ["inetOrgPerson"], "uid": ["intruder"], "cn": ["x"], "sn": ["x"]},
            )
        assert directory.read(slapd.bind_dn, ["cn"]) is None


def test_sec61_the_web_host_needs_its_own_password(
    narrow_dn: WebDn, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UMACCT_WEB_BIND_PASSWORD", raising=False)
    app = create_app(
        load_config(config_path), WebSettings(bind_dn=narrow_dn.dn), clock=clock_on(TODAY), key=b"k"
    )
    browser = TestClient(app, base_url="https://ent.example.org")
    page = browser.get("/activation", params={"token": "A" * 43})
    assert page.status_code == 500  # a configuration problem: said in the log, not the page
    assert "web-directory" not in page.text


# --- rate-limit counters where the state lives ----------------------------------------------


def host(slapd: LocalDirectory, folder: Path, state_dn: str) -> Path:
    """One web host's configuration: its own data folder, the shared state branch."""
    folder.mkdir()
    path = folder / "config.toml"
    path.write_bytes(tomli_w.dumps(host_config(slapd, folder / "data", state_dn)).encode())
    return path


def test_sec62_two_web_hosts_on_one_directory_share_one_limit(
    slapd: LocalDirectory, branch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", slapd.bind_password)
    settings = WebSettings(client_posts_per_hour=3)
    browsers = []
    for name in ("web1", "web2"):
        config = load_config(host(slapd, tmp_path / name, branch))
        app = create_app(config, settings, clock=clock_on(TODAY), key=b"shared key")
        browsers.append(TestClient(app, base_url="https://ent.example.org", client=CLIENT))

    def post(browser: TestClient) -> int:
        form = browser.get("/")
        answer = browser.post("/activation", data={"csrf": csrf_of(form.text), "token": "B" * 43})
        return answer.status_code

    assert [post(browsers[0]), post(browsers[1]), post(browsers[0])] == [400, 400, 400]
    assert post(browsers[1]) == 429  # the fourth post of that client, on either host
    assert post(browsers[0]) == 429
    with bound(slapd)() as directory:
        counted = list(
            directory.search(
                f"ou=counters,{branch}",
                "(objectClass=applicationProcess)",
                ["description"],
                scope="one",
            )
        )
    assert [
        value
        for entry in counted
        for value in entry.get("description")
        if value.startswith("count")
    ] == ["count 3"]


def counters_on(slapd: LocalDirectory, state_dn: str, instant: datetime) -> DirectoryCounters:
    return DirectoryCounters(bound(slapd)(), state_dn, FixedClock(instant))


def test_sec62_counters_in_the_branch_lose_no_hit_when_hosts_count_at_once(
    slapd: LocalDirectory, branch: str
) -> None:
    now = clock_on(TODAY).now()
    hosts = [counters_on(slapd, branch, now) for _ in range(4)]
    try:
        # One thread per host: a connection has one owner (two threads on one socket would
        # read each other's answers); the four hosts count at once.
        with ThreadPoolExecutor(max_workers=4) as pool:
            rounds = list(
                pool.map(lambda host: [host.hit("client:x:post", 10) for _ in range(4)], hosts)
            )
        answers = [answer for each in rounds for answer in each]
        assert answers.count(True) == 10
        assert not hosts[0].hit("client:x:post", 10)
        assert hosts[0].hit("client:y:post", 10)  # another key has its own count
    finally:
        for counters in hosts:
            counters.directory.close()


def test_counters_slide_over_the_hour_and_old_windows_go(
    slapd: LocalDirectory, branch: str
) -> None:
    start = datetime.fromtimestamp(window_of(clock_on(TODAY).now()) * WINDOW_SECONDS, UTC)
    first = counters_on(slapd, branch, start + timedelta(minutes=50))
    assert all(first.hit("k", 4) for _ in range(4)) and not first.hit("k", 4)
    # 15 minutes into the next window, three quarters of the last one still count: 3 of 4.
    later = counters_on(slapd, branch, start + timedelta(minutes=75))
    assert later.hit("k", 4) and not later.hit("k", 4)
    # Two windows on, nothing counts and the first window's entry is gone.
    gone = counters_on(slapd, branch, start + timedelta(minutes=190))
    assert gone.hit("k", 4)
    entries = list(
        gone.directory.search(
            f"ou=counters,{branch}", "(objectClass=applicationProcess)", ["cn"], scope="one"
        )
    )
    windows = {
        value for entry in entries for value in entry.get("cn") if value.startswith("window")
    }
    assert f"window {window_of(start)}" not in windows
    for counters in (first, later, gone):
        counters.directory.close()
