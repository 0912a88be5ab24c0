"""On a server with no keyring: the messages name the places that work there, in our words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
import tomli_w
from command_line import umacct
from helpers import minimal_config
from keyring.backends import fail

from umacct.config import parse_config
from umacct.errors import ConfigError
from umacct.secrets import SecretKind, find_secret


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The keyring library finds no backend, as on a headless server without keyrings.alt."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.delenv("UMACCT_BIND_PASSWORD", raising=False)
    monkeypatch.delenv("UMACCT_SMTP_PASSWORD", raising=False)
    try:
        yield
    finally:
        keyring.set_keyring(before)


def test_secret_set_without_a_keyring_names_the_server_ways(
    no_keyring: None, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(minimal_config()), encoding="utf-8")
    for kind, places in (
        ("directory", ["bind_password_file", "umacct-bind-password", "$UMACCT_BIND_PASSWORD"]),
        ("smtp", ["umacct-smtp-password", "$UMACCT_SMTP_PASSWORD"]),
    ):
        code, out, err = umacct(
            "--config", str(path), "secret", "set", kind, "--stdin", "--allow-plaintext",
            stdin="pw-123\n",
        )  # fmt: skip
        assert (code, out) == (78, ""), err
        assert err.count("\n") == 1 and "no system keyring" in err
        assert all(place in err for place in places), err
        assert "recommended" not in err and "keyrings.alt" not in err  # the library's words


def test_a_missing_password_says_where_it_may_be_in_whole_words(no_keyring: None) -> None:
    config = parse_config(minimal_config())
    with pytest.raises(ConfigError) as smtp:
        find_secret(SecretKind.SMTP, config)
    assert "name a file in or" not in smtp.value.message
    assert "a systemd credential named umacct-smtp-password (LoadCredential=)" in smtp.value.message
    with pytest.raises(ConfigError) as directory:
        find_secret(SecretKind.DIRECTORY, config)
    assert "a file named by [directory] bind_password_file (mode 0600)" in directory.value.message
