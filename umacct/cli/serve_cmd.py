"""``umacct serve``: the web pages behind the links the tool mails (the ``web`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from umacct.cli.state import get_state
from umacct.errors import UnavailableError


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on ([web] host, else 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port ([web] port, else 8080)."),
    ] = None,
    web_config: Annotated[
        Path | None,
        typer.Option(
            "--web-config",
            metavar="FILE",
            help=(
                "A TOML file with the [web] table (default: the configuration's own [web], "
                "else web.toml beside it)."
            ),
        ),
    ] = None,
) -> None:
    """Serve the web pages of the mailed links (activation, reset, confirmation) and first login.

    Every form consumes its link only when sent (POST), never when opened; the pages speak
    French and English; /api/ answers the same in JSON for a site's own ENT pages. Behind a
    TLS reverse proxy in production; binds as [web] bind_dn when set (docs/web.md), and
    refuses to start (exit 78) when that DN's password is stored nowhere. Runs until
    interrupted; needs the web extra: pip install 'umacct[web]'.
    """
    state = get_state(ctx)
    try:
        from umacct.web.serve import serve as run_server
        from umacct.web.settings import load_web_settings
    except ImportError as error:
        raise UnavailableError(
            f"umacct serve needs the web extra ({error.name} is missing): pip install 'umacct[web]'"
        ) from None
    settings = load_web_settings(state.config, web_config)
    run_server(state.config, settings, host=host or settings.host, port=port or settings.port)


def register(app: typer.Typer) -> None:
    """Add the command to the application."""
    app.command("serve")(serve)
