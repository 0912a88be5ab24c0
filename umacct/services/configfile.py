"""Writing a starter configuration and describing the effective one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from umacct.config import Config, example_config_text, user_config_path
from umacct.errors import ConfigError, RefusedError
from umacct.secrets import SecretKind, find_secret


def write_starter_config(path: Path | None, *, overwrite: bool = False) -> Path:
    """Write the example configuration to ``path`` (default: the XDG path); return where."""
    target = path or user_config_path()
    if target.exists() and not overwrite:
        raise RefusedError(f"{target} already exists; pass --force to overwrite it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(example_config_text())
        temporary.replace(target)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}") from exc
    return target


def describe_config(config: Config) -> dict[str, Any]:
    """The effective configuration, its file, and where each secret would come from (masked)."""
    secrets: dict[str, str] = {}
    for kind in SecretKind:
        if kind is SecretKind.SMTP and config.mail.transport != "smtp":
            continue
        try:
            secret = find_secret(kind, config)
            secrets[str(kind)] = f"******** (from {secret.source})"
        except ConfigError:
            secrets[str(kind)] = "not set"
    return {"source": str(config.source), "config": config.to_dict(), "secrets": secrets}
