"""umacct serve: its settings, its command, and the real server (uvicorn) with its access log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from command_line import umacct
from smtp_fixtures import free_port
from starlette.testclient import TestClient

from umacct.config import load_config
from umacct.errors import ConfigError
from umacct.web.app import create_app
from umacct.web.i18n import from_accept_language, password_reason
from umacct.web.serve import check_listening
from umacct.web.settings import WebSettings, load_web_settings, parse_web_settings

pytestmark = pytest.mark.usefixtures("directory_clean")


# --- settings -------------------------------------------------------------------------------


def test_web_toml_beside_the_configuration_is_read(config_path: Path) -> None:
    (config_path.parent / "web.toml").write_text(
        '[web]\ninstitution = "Université Test"\nport = 8181\ntrusted_proxies = ["10.1.0.0/16"]\n',
        encoding="utf-8",
    )
    settings = load_web_settings(load_config(config_path))
    assert (settings.institution, settings.port) == ("Université Test", 8181)
    assert settings.source == config_path.parent / "web.toml"


def test_no_web_settings_gives_the_defaults(config_path: Path) -> None:
    assert load_web_settings(load_config(config_path)) == WebSettings()


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"colour": "red"}, "unknown key"),
        ({"port": "80"}, "expected int"),
        ({"port": 0}, "expected 1 to 65535"),
        ({"trusted_proxies": ["not-an-address"]}, "trusted_proxies"),
        ({"logo_url": "http://evil.example/logo.png"}, "logo_url"),
        ({"ent_url": "javascript:alert(1)"}, "ent_url"),
        ({"client_requests_per_hour": 0}, "1 or more"),
        ({"institution": "a\nb"}, "printable"),
        ({"secret": "x"}, "unknown key"),
    ],
)
def test_bad_web_settings_are_refused(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_web_settings(table)


def test_a_web_file_anyone_may_write_is_refused(config_path: Path) -> None:
    path = config_path.parent / "web.toml"
    path.write_text("[web]\n", encoding="utf-8")
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="web settings"):
        load_web_settings(load_config(config_path))


def test_templates_are_overridable(config_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "home.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Site page</h1>'
        '<form method="post"><input type="hidden" name="csrf" value="{{ csrf }}"></form>'
        "{% endblock %}",
        encoding="utf-8",
    )
    (folder / "umacct.css").write_text("body { color: black; }", encoding="utf-8")
    settings = parse_web_settings({"templates_dir": str(folder), "institution": "Université X"})
    browser = TestClient(
        create_app(load_config(config_path), settings, key=b"k"), base_url="https://x.test"
    )
    page = browser.get("/")
    assert "Site page" in page.text and "Université X" in page.text
    assert browser.get("/static/umacct.css").text == "body { color: black; }"


def test_a_logo_on_another_https_host_is_allowed_by_the_policy(config_path: Path) -> None:
    settings = parse_web_settings({"logo_url": "https://cdn.example.org/logo.svg"})
    browser = TestClient(
        create_app(load_config(config_path), settings, key=b"k"), base_url="https://x.test"
    )
    page = browser.get("/")
    assert 'src="https://cdn.example.org/logo.svg"' in page.text
    assert "img-src 'self' https://cdn.example.org;" in page.headers["content-security-policy"]


def test_sec56_listening_beyond_loopback_needs_a_trusted_proxy() -> None:
    check_listening("127.0.0.1", WebSettings())
    check_listening("::1", WebSettings())
    with pytest.raises(ConfigError, match="trusted_proxies"):
        check_listening("0.0.0.0", WebSettings())
    check_listening("0.0.0.0", WebSettings(trusted_proxies=["10.0.0.1"]))


def test_sec56_the_command_refuses_to_listen_beyond_loopback(config_path: Path) -> None:
    code, _, err = umacct("serve", "--host", "0.0.0.0")
    assert code == 78
    assert "trusted_proxies" in err


def test_languages_and_reasons() -> None:
    assert from_accept_language("") == "fr"
    assert from_accept_language("en;q=0.3, fr;q=0.2") == "en"
    french = password_reason(
        "the password is too short: at least 12 characters besides spaces, it has 5", "fr"
    )
    assert (
        french == "Le mot de passe est trop court : au moins 12 caractères hors espaces, il en a 5."
    )
    assert password_reason("the password contains your surname (martin)", "fr").endswith(
        "(martin)."
    )
    assert password_reason("something new", "fr") == "something new"


# --- the real server ------------------------------------------------------------------------


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "exited")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("umacct serve did not start")


@pytest.fixture
def server(config_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "umacct", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        wait_for_port(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        except ValueError:
            pass  # the test read the pipes itself


def test_sec53_the_real_server_logs_no_query_string(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = server
    secret = "Zq" * 21 + "x"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as answer:
        assert answer.status == 200
        assert "server" not in {name.lower() for name in answer.headers}
        assert "no-referrer" in answer.headers["referrer-policy"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/activation?token={secret}")
    assert refused.value.code == 400
    refused.value.close()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    log = err.decode()
    assert '"GET /activation" 400' in log, log
    assert secret not in log and "?token" not in log
    assert "no web secret stored" in log  # the per-process key is said


def test_sec51_the_csrf_key_comes_from_the_secret_store(config_path: Path) -> None:
    from test_web import csrf_of

    from umacct.web.app import web_key

    config = load_config(config_path)
    key, warning = web_key(config)
    assert warning is not None and "umacct secret set web" in warning
    code, _, err = umacct(
        "secret", "set", "web", "--stdin", "--allow-plaintext",  # the tests' file keyring
        stdin="a long shared web key 1234\n",
    )  # fmt: skip
    assert code == 0, err
    key, warning = web_key(config)
    assert (key, warning) == (b"a long shared web key 1234", None)
    first = TestClient(create_app(config), base_url="https://x.test")
    second = TestClient(create_app(config), base_url="https://x.test")
    form = first.get("/")
    second.cookies.update(dict(first.cookies))
    answer = second.post("/", data={"csrf": csrf_of(form.text), "address": ""})
    assert answer.status_code == 400  # past the CSRF check: the address is missing
