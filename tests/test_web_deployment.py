"""umacct serve as deployed: [web] in the configuration, a narrower bind DN, shared counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from command_line import umacct
from people import rewrite_config

from umacct.config import load_config
from umacct.errors import ConfigError
from umacct.web.settings import load_web_settings

pytestmark = pytest.mark.usefixtures("directory_clean")


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
