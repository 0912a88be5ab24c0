"""``umacct config``: write a starter file, show the effective configuration, validate it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from umacct.cli.output import dumps_json
from umacct.cli.state import get_state

app = typer.Typer(help="Write, show and check the configuration file.", no_args_is_help=True)


def register(parent: typer.Typer) -> None:
    """Add the ``config`` group to the application."""
    parent.add_typer(app, name="config")


TRANSPORT_CHOICE = (
    'mail: [mail] transport = "outbox" (the starter\'s) writes each message to a folder and '
    'sends nothing (for trying the tool); to send, set transport = "smtp" and [mail.smtp] '
    "host, port, security (and username: 'umacct secret set smtp')"
)
"""What ``config init`` says about the one choice it cannot make for the site."""


@app.command("init")
def init(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(help="Where to write it (default: ~/.config/umacct/config.toml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter configuration to edit (the six profiles of the page).

    It says which mail transport to choose: the outbox (nothing is sent) or an SMTP relay.
    """
    from umacct.services.configfile import write_starter_config

    state = get_state(ctx)
    written = write_starter_config(path, overwrite=force)
    if state.json:
        state.json_result({"written": written})
    else:
        state.info(
            f"wrote {written}: edit [directory], then run 'umacct config check' and 'umacct doctor'"
        )
        state.info(TRANSPORT_CHOICE)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (defaults filled in); secrets appear only masked."""
    from umacct.services.configfile import describe_config

    state = get_state(ctx)
    effective = describe_config(state.config)
    if state.json:
        state.out.out(dumps_json(effective))
        return
    import tomli_w

    state.out.out(f"# file: {effective['source']}")
    for kind, where in effective["secrets"].items():
        state.out.out(f"# {kind} password: {where}")
    state.out.out(tomli_w.dumps(effective["config"]), end="")


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate the configuration file; exit 78 with the first problem found.

    Also what every command would refuse at its first connection: cleartext (tls = "none",
    SMTP security = "none") to a server that is not loopback.
    """
    from umacct.services.doctor import config_refusals
    from umacct.web.settings import check_config_web

    state = get_state(ctx)
    config = state.config
    config_refusals(config)
    check_config_web(config)
    if state.json:
        state.out.out(dumps_json({"ok": True, "source": config.source}))
    else:
        state.info(f"{config.source}: ok ({len(config.profiles)} profiles)")
