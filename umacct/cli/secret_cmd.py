"""``umacct secret``: store the directory or SMTP password, or a web secret, in the keyring."""

from __future__ import annotations

from typing import Annotated

import typer

from umacct.cli.state import get_state
from umacct.secrets import SecretKind

app = typer.Typer(
    help=(
        "Store passwords and the web pages' secrets in the system keyring (never on the "
        "command line).\n\n"
        "directory and smtp: the bind and relay passwords; web: the key that signs the web "
        "forms (the same on every web host); web-directory: the password of [web] bind_dn; "
        "web-api: the JSON API's bearer token."
    ),
    no_args_is_help=True,
)


def register(parent: typer.Typer) -> None:
    """Add the ``secret`` group to the application."""
    parent.add_typer(app, name="secret")


@app.command("set")
def set_secret(
    ctx: typer.Context,
    kind: Annotated[
        SecretKind,
        typer.Argument(
            help=(
                "Which secret: directory (bind DN), smtp, web (CSRF key), web-directory "
                "([web] bind_dn's password) or web-api (the API's bearer token)."
            )
        ),
    ],
    stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the password from the first line of standard input."),
    ] = False,
    allow_plaintext: Annotated[
        bool,
        typer.Option(
            "--allow-plaintext",
            help="Store it even when the keyring backend is a plain file (keyrings.alt).",
        ),
    ] = False,
) -> None:
    """Store a password in the keyring (service 'umacct'), read from a hidden prompt or stdin.

    A backend that keeps passwords in a plain file is refused (exit 77) unless
    --allow-plaintext. On a server without a system keyring, use [directory]
    bind_password_file (mode 0600) or a systemd credential (LoadCredential=) instead.
    """
    from umacct.errors import InvalidInputError
    from umacct.secrets import keyring_username, refuse_plaintext, store_secret

    state = get_state(ctx)
    config = state.config
    if not allow_plaintext:
        refuse_plaintext(kind)  # before asking for anything
    if stdin or not state.env.stdin_is_terminal:
        value = state.env.stdin.readline().rstrip("\r\n")
    else:
        from umacct.cli.terminal import ask_hidden

        value = ask_hidden(state.env, "Password", confirm=True)
    if not value:
        raise InvalidInputError("empty password: nothing stored")
    backend = store_secret(kind, config, value, allow_plaintext=allow_plaintext)
    user = keyring_username(kind, config)
    if state.json:
        state.json_result({"stored": str(kind), "keyring_user": user, "backend": backend})
    else:
        state.info(f"stored the {kind} password for {user} in the keyring ({backend})")
