"""Secrets: keyring first, then the environment, then a prompt; never argv (security 10, 18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import tomli_w
from helpers import minimal_config as minimal
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.config import Config, parse_config
from umacct.errors import ConfigError
from umacct.localdir import LocalDirectory
from umacct.secrets import SecretKind, find_secret, store_secret

runner = CliRunner()


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.delenv("UMACCT_BIND_PASSWORD", raising=False)
    monkeypatch.delenv("UMACCT_SMTP_PASSWORD", raising=False)
    import keyring.core

    keyring.core.set_keyring(keyring.core.load_keyring("keyrings.alt.file.PlaintextKeyring"))
    return tmp_path / "share"


def test_sec18_lookup_order_keyring_env_prompt(
    file_keyring: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(minimal())
    with pytest.raises(ConfigError) as caught:
        find_secret(SecretKind.DIRECTORY, config)
    for hint in ("umacct secret set directory", "$UMACCT_BIND_PASSWORD", "terminal"):
        assert hint in caught.value.message
    assert find_secret(SecretKind.DIRECTORY, config, prompt=lambda _: "typed").source == "prompt"
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", "from-env")
    assert find_secret(SecretKind.DIRECTORY, config).value == "from-env"
    store_secret(SecretKind.DIRECTORY, config, "from-keyring")
    found = find_secret(SecretKind.DIRECTORY, config)
    assert (found.value, found.source) == ("from-keyring", "keyring")
    assert "from-keyring" not in repr(found)


def test_sec10_secret_set_reads_stdin_not_argv(file_keyring: Path, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(minimal()), encoding="utf-8")
    result = runner.invoke(
        app,
        ["--config", str(path), "secret", "set", "directory", "--allow-plaintext"],
        input="s3cret-value\n",
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-value" not in result.output
    config = parse_config(minimal())
    assert find_secret(SecretKind.DIRECTORY, config).value == "s3cret-value"
    refused = runner.invoke(app, ["--config", str(path), "secret", "set", "directory", "s3cret"])
    assert refused.exit_code == 2


def test_secret_set_refuses_empty(file_keyring: Path, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(minimal()), encoding="utf-8")
    result = runner.invoke(
        app, ["--config", str(path), "secret", "set", "smtp", "--allow-plaintext"], input="\n"
    )
    assert result.exit_code == 65


# --- a plain-file keyring is refused; files and systemd credentials for headless servers ---


def test_sec18_secret_set_refuses_a_plaintext_keyring(file_keyring: Path, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(minimal()), encoding="utf-8")
    result = runner.invoke(
        app, ["--config", str(path), "secret", "set", "directory", "--stdin"], input="pw-123\n"
    )
    assert result.exit_code == 77, result.output
    assert "PlaintextKeyring" in result.stderr and "--allow-plaintext" in result.stderr
    assert "bind_password_file" in result.stderr
    with pytest.raises(ConfigError):
        find_secret(SecretKind.DIRECTORY, parse_config(minimal()))  # nothing stored


def _password_file(tmp_path: Path, mode: int, text: str = "from-the-file\n") -> Path:
    secret = tmp_path / "bind-password"
    secret.write_text(text, encoding="utf-8")
    os.chmod(secret, mode)
    return secret


def _with_file(secret: Path) -> Config:
    document = minimal()
    document["directory"]["bind_password_file"] = str(secret)
    return parse_config(document)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_sec18_the_bind_password_file_comes_first(
    file_keyring: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    config = _with_file(_password_file(tmp_path, mode))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", "from-env")
    store_secret(SecretKind.DIRECTORY, config, "from-keyring")
    found = find_secret(SecretKind.DIRECTORY, config)
    assert (found.value, found.source) == ("from-the-file", f"file {tmp_path / 'bind-password'}")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_sec18_a_bind_password_file_others_may_read_is_refused(
    file_keyring: Path, tmp_path: Path, mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _with_file(_password_file(tmp_path, mode))
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", "from-env")  # never a silent fall-back
    with pytest.raises(ConfigError, match="chmod 600"):
        find_secret(SecretKind.DIRECTORY, config)


def test_sec18_a_bind_password_file_of_another_user_or_a_link_is_refused(
    file_keyring: Path, tmp_path: Path
) -> None:
    secret = _password_file(tmp_path, 0o600)
    link = tmp_path / "link"
    link.symlink_to(secret)
    with pytest.raises(ConfigError, match="cannot open"):
        find_secret(SecretKind.DIRECTORY, _with_file(link))
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(secret, 4242, 4242)
    with pytest.raises(ConfigError, match="owned by uid 4242"):
        find_secret(SecretKind.DIRECTORY, _with_file(secret))


@pytest.mark.parametrize("text", ["", "\n", "two\nlines\n", "nul\0inside"])
def test_a_bind_password_file_holds_one_line(file_keyring: Path, tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="one line"):
        find_secret(SecretKind.DIRECTORY, _with_file(_password_file(tmp_path, 0o600, text)))


def test_a_relative_bind_password_file_is_a_config_error() -> None:
    document = minimal()
    document["directory"]["bind_password_file"] = "bind-password"
    with pytest.raises(ConfigError, match="bind_password_file"):
        parse_config(document)


def test_sec18_a_systemd_credential_comes_before_the_keyring(
    file_keyring: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir(mode=0o700)
    (folder / "umacct-bind-password").write_text("from-systemd", encoding="utf-8")
    os.chmod(folder / "umacct-bind-password", 0o400)
    config = parse_config(minimal())
    store_secret(SecretKind.DIRECTORY, config, "from-keyring")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    found = find_secret(SecretKind.DIRECTORY, config)
    assert (found.value, found.source) == (
        "from-systemd",
        "systemd credential umacct-bind-password",
    )
    os.chmod(folder / "umacct-bind-password", 0o444)
    with pytest.raises(ConfigError, match="lets others read it"):
        find_secret(SecretKind.DIRECTORY, config)


def test_the_no_password_error_names_every_way(file_keyring: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_secret(SecretKind.DIRECTORY, parse_config(minimal()))
    for way in ("bind_password_file", "umacct-bind-password", "umacct secret set directory"):
        assert way in caught.value.message


@pytest.mark.usefixtures("directory_clean")
def test_sec18_the_command_line_binds_with_the_password_file(
    config_path: Path, slapd: LocalDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from command_line import umacct
    from people import rewrite_config

    secret = _password_file(tmp_path, 0o600, slapd.bind_password + "\n")
    rewrite_config(config_path, directory={"bind_password_file": str(secret)})
    monkeypatch.delenv("UMACCT_BIND_PASSWORD")
    code, out, err = umacct("list", "--json")
    assert (code, json.loads(out)) == (0, []), err
    code, out, err = umacct("doctor", "--json")
    rows = {row["check"]: row for row in json.loads(out)}
    assert rows["bind password"]["detail"] == f"found (file {secret})"
    os.chmod(secret, 0o640)
    code, out, err = umacct("list")
    assert code == 78 and "chmod 600" in err and out == ""
