"""The configuration: search order, validation errors, the example file, the CLI commands."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from helpers import minimal_config as minimal
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.config import find_config, load_config, parse_config, parse_duration
from umacct.errors import ConfigError, ExitCode

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


def test_example_config_is_valid_and_has_the_six_profiles() -> None:
    config = load_config(EXAMPLE)
    assert set(config.profiles) == {
        "titulaire", "contractuel", "autre_personnel", "vacataire", "heberge_en", "etudiant",
    }  # fmt: skip
    assert config.profiles["titulaire"].grace_months == 12
    assert config.profiles["titulaire"].extendable
    assert config.profiles["autre_personnel"].grace_months == 3
    assert config.profiles["vacataire"].grace_months == 6
    assert config.profiles["heberge_en"].grace_months == 6
    assert 3 <= config.profiles["etudiant"].grace_months <= 12
    assert config.profiles["etudiant"].domain == "etu.umontpellier.fr"
    assert config.mail.from_.endswith("<no-reply@umontpellier.fr>")


def test_example_config_documents_every_key() -> None:
    """Each key of each dataclass appears in the example (commented out or not)."""
    text = EXAMPLE.read_text("utf-8")
    for key in parse_config(minimal()).to_dict()["directory"]:
        assert f"{key} =" in text or f"# {key} =" in text, key
    for table in ("attributes", "paths", "mail", "links", "tokens", "policy", "staff", "reports"):
        for key in parse_config(minimal()).to_dict()[table]:
            if key == "smtp":
                continue
            assert f"\n{key} =" in text or f"# {key} =" in text, (table, key)


def test_defaults_fill_in() -> None:
    config = parse_config(minimal())
    assert config.attributes.state_date == "supannRessourceEtatDate"
    assert config.policy.purge_after_days == 30
    assert config.policy.warn_days_before_expiry == [30, 7]
    assert config.tokens.activation_ttl == "24h"
    assert config.outbox_dir == Path("/var/lib/umacct/outbox")
    assert config.paths.audit_log_path == Path("/var/lib/umacct/audit.jsonl")


def test_to_dict_round_trips() -> None:
    config = load_config(EXAMPLE)
    again = parse_config(tomllib.loads(tomli_w.dumps(config.to_dict())))
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["directory"].update(colour="x"), "[directory] colour: unknown key"),
        (lambda d: d["directory"].pop("bind_dn"), "[directory] bind_dn: missing required key"),
        (
            lambda d: d["directory"].update(connect_timeout="5"),
            "[directory] connect_timeout: expected an integer",
        ),
        (
            lambda d: d["directory"].update(connect_timeout=True),
            "expected an integer, got a boolean",
        ),
        (
            lambda d: d["directory"].update(urls="ldap://x"),
            "[directory] urls: expected a list of strings",
        ),
        (
            lambda d: d["directory"].update(urls=["http://x"]),
            "expected ldap://, ldaps:// or ldapi://",
        ),
        (lambda d: d["directory"].update(tls="yes"), "[directory] tls: expected 'starttls'"),
        (lambda d: d["directory"].update(bind_password="s3cret"), "secrets do not belong"),
        (
            lambda d: d.update(policy={"timezone": "Mars/Olympus"}),
            "[policy] timezone: expected an IANA",
        ),
        (
            lambda d: d.update(links={"reset": "http://x/{token}"}),
            "[links] reset: expected an https://",
        ),
        (
            lambda d: d.update(tokens={"activation_ttl": "2d"}),
            "[tokens] activation_ttl: expected a duration from 1m to 24h",
        ),
        (
            lambda d: d.update(tokens={"reset_ttl": "soon"}),
            "[tokens] reset_ttl: expected a duration",
        ),
        (
            lambda d: d["profiles"]["etudiant"].update(grace_months=0),
            "[profiles.etudiant] grace_months",
        ),
        (
            lambda d: d["profiles"]["etudiant"].update(domain="not a domain"),
            "[profiles.etudiant] domain",
        ),
        (
            lambda d: d["profiles"]["etudiant"].update(extendable=True),
            "[profiles.etudiant] extension_months",
        ),
        (
            lambda d: d["profiles"]["etudiant"].pop("label"),
            "[profiles.etudiant] label: missing required key",
        ),
        (lambda d: d.update(profiles={}), "profiles: expected at least one"),
        (lambda d: d.update(mail={"transport": "pigeon"}), "[mail] transport"),
        (
            lambda d: d.update(mail={"smtp": {"port": "25"}}),
            "[mail.smtp] port: expected an integer",
        ),
        (
            lambda d: d.update(antispam={"attribute": "x"}),
            "[antispam] levels: missing required key",
        ),
        (lambda d: d.update(unknown_table={}), "unknown_table: unknown key"),
    ],
)
def test_bad_config_gives_one_precise_error(tmp_path: Path, mutate: Any, message: str) -> None:
    document = minimal()
    mutate(document)
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in caught.value.message
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[directory\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "umacct").mkdir(parents=True)
    xdg_file = write(xdg / "umacct", minimal())
    env_file = write(tmp_path, minimal())
    explicit = tmp_path / "explicit.toml"
    explicit.write_text(env_file.read_text())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("UMACCT_CONFIG", raising=False)
    assert find_config() == xdg_file
    monkeypatch.setenv("UMACCT_CONFIG", str(env_file))
    assert find_config() == env_file
    assert find_config(explicit) == explicit
    monkeypatch.setenv("UMACCT_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"absent\.toml: no such configuration file"):
        find_config()


@given(st.integers(min_value=0, max_value=10_000), st.sampled_from("smhd"))
def test_durations(value: int, unit: str) -> None:
    assert (
        parse_duration(f"{value}{unit}") == value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    )


runner = CliRunner()


def test_cli_config_check_exit_78_on_bad_file(tmp_path: Path) -> None:
    document = minimal()
    document["directory"]["tls"] = "maybe"
    path = write(tmp_path, document)
    result = runner.invoke(app, ["--config", str(path), "config", "check"])
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert "[directory] tls" in result.stderr
    assert result.stderr.count("\n") == 1


def test_cli_config_check_json_error_on_stderr(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--json", "--config", str(tmp_path / "nope.toml"), "config", "check"]
    )
    assert result.exit_code == 78
    assert result.stdout == ""
    assert '"error": "config"' in result.stderr


def test_cli_config_init_writes_a_valid_file_and_refuses_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "config.toml"
    result = runner.invoke(app, ["config", "init", str(target)])
    assert result.exit_code == 0, result.stderr
    assert load_config(target).profiles
    assert "# " in target.read_text("utf-8")
    again = runner.invoke(app, ["config", "init", str(target)])
    assert again.exit_code == ExitCode.REFUSED
    assert runner.invoke(app, ["config", "init", "--force", str(target)]).exit_code == 0


def test_cli_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, minimal())
    monkeypatch.setenv("UMACCT_BIND_PASSWORD", "do-not-print-me")
    result = runner.invoke(app, ["--config", str(path), "config", "show"])
    assert result.exit_code == 0
    assert "do-not-print-me" not in result.output
    assert "directory password: ******** (from $UMACCT_BIND_PASSWORD)" in result.stdout
    assert tomllib.loads(result.stdout)["directory"]["people_dn"] == "ou=people,dc=example,dc=org"
    as_json = runner.invoke(app, ["--json", "--config", str(path), "config", "show"])
    assert "do-not-print-me" not in as_json.output
    assert '"secrets"' in as_json.stdout


@pytest.mark.parametrize("delimiter", ["+", "-", "_", "=", ""])
def test_recipient_delimiter_one_separator_or_none(tmp_path: Path, delimiter: str) -> None:
    document = minimal()
    document["mail"] = {"recipient_delimiter": delimiter}
    assert load_config(write(tmp_path, document)).mail.recipient_delimiter == delimiter
    assert parse_config(minimal()).mail.recipient_delimiter == "+"


@pytest.mark.parametrize("delimiter", ["+-", "@", ".", " ", "a", "1", "\n", "é", "\u200b", 5])
def test_recipient_delimiter_bad_values_exit_78(tmp_path: Path, delimiter: object) -> None:
    document = minimal()
    document["mail"] = {"recipient_delimiter": delimiter}
    path = write(tmp_path, document)
    result = runner.invoke(app, ["--config", str(path), "config", "check"])
    assert result.exit_code == ExitCode.CONFIG_ERROR
    assert "[mail] recipient_delimiter" in result.stderr
    assert result.stderr.count("\n") == 1
