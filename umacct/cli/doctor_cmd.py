"""``umacct doctor``: check that everything the tool needs is in place."""

from __future__ import annotations

from typing import Annotated

import typer

from umacct.cli.output import FormatOption, OutputFormat, render_rows
from umacct.cli.state import get_state


def doctor(
    ctx: typer.Context,
    write_test: Annotated[
        bool,
        typer.Option(
            "--write-test",
            help="Also add and delete a probe entry in the directory, and make the missing "
            "folders (without it doctor writes nothing).",
        ),
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Check the configuration, secrets, connection, TLS, bind, write access, schema, ppolicy and mail.

    One row per file the tool trusts (configuration, CA file, templates, data dir, state
    store, mail queue, audit log, archive folder): owned by root or the tool's user,
    writable by no one else. With [audit] syslog, whether the logger's socket answers.
    The connection row names the server and its TLS version (or ldapi, or no TLS); the bind
    row the identity the server mapped (WhoAmI, dn:...), for simple and SASL EXTERNAL binds.
    The state backend; with [directory] state_dn, the branch: readable by the tool, read by
    no anonymous session, and with --write-test writable. With several [directory] urls, the
    providers' contextCSN compared (disagreement fails; an unreachable one is a warning).
    SMTP: connects, says EHLO, STARTTLS and AUTH as configured (sends nothing); the outbox
    is a warning, since it delivers nothing by itself. Doctor writes nothing unless
    --write-test (probe entries added and deleted, the missing folders made).
    Exits 0 when every check passes (WARN and skip included), 1 otherwise; each failing or
    warning check says how to fix it; in JSON each check also carries its data. A
    configuration, CA file or templates others may rewrite stops it first, as every command
    (exit 78): the directory is not contacted with settings someone else may have written.
    """
    from umacct.services.doctor import run_doctor

    state = get_state(ctx)
    report = run_doctor(state.config, prompt=state.prompt_password, write_test=write_test)
    rows = [
        {"check": c.name, "status": c.status, "detail": c.detail, "fix": c.fix, "data": c.data}
        for c in report.checks
    ]
    output_format = state.output_format(fmt)
    columns = ["check", "status", "detail"] + (["fix"] if any(r["fix"] for r in rows) else [])
    if output_format is OutputFormat.JSON:
        columns = ["check", "status", "detail", "fix", "data"]
    render_rows(state.out, rows, columns, output_format)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the application."""
    app.command("doctor")(doctor)
