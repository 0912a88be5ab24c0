"""Secrets: keyring first, then the environment, then a prompt; never argv (security 10, 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
from helpers import minimal_config as minimal
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.config import parse_config
from umacct.errors import ConfigError
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
        app, ["--config", str(path), "secret", "set", "directory"], input="s3cret-value\n"
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
    result = runner.invoke(app, ["--config", str(path), "secret", "set", "smtp"], input="\n")
    assert result.exit_code == 65
