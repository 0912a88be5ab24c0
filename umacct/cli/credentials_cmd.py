"""Credential commands: ``activate``, ``reset``, ``passwd``, ``set-recovery``, ``redirect``.

Passwords never come from the command line (security 10): a hidden prompt, or stdin with
``--password-stdin``. A token may (it is what the web front end passes).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from umacct.cli.params import ACCOUNT_HELP, OptionalAccount, checked_reason
from umacct.cli.state import AppState, get_state
from umacct.errors import InvalidInputError, UsageError

OptionalEmail = Annotated[
    str | None, typer.Argument(help="The new address.", show_default=False, metavar="EMAIL")
]
Token = Annotated[
    str | None,
    typer.Option("--token", metavar="TOKEN", help="The token from the link the person opened."),
]
TokenStdin = Annotated[
    bool,
    typer.Option(
        "--token-stdin",
        help="Read the token from the first line of stdin instead of --token (it then never "
        "shows in the process list); with --password-stdin the password follows on the next "
        "line, otherwise it is asked on the terminal.",
    ),
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from stdin (one line) instead of a prompt."
    ),
]
NoConfirm = Annotated[
    bool,
    typer.Option(
        "--no-confirm", help="Helpdesk, after checking the identity: store without a link."
    ),
]
Reason = Annotated[
    str | None,
    typer.Option(
        "--reason", help="Why (required with --no-confirm; audited).", callback=checked_reason
    ),
]


def read_passwords(
    state: AppState, labels: list[str], *, from_stdin: bool, lines: list[str] | None = None
) -> list[str]:
    """One password per label: lines of stdin, or hidden prompts (the last one asked twice).

    ``lines`` are stdin's lines already read (after a token read from stdin); the prompts
    then go to the terminal itself, since stdin is not one.
    """
    if from_stdin:
        if lines is None:
            lines = _stdin_lines(state)
        if len(lines) < len(labels) or any(not line for line in lines[: len(labels)]):
            wanted = ", then ".join(labels)
            raise InvalidInputError(f"expected on stdin, one per line: {wanted}")
        return lines[: len(labels)]
    if lines is None and not state.env.stdin_is_terminal:
        raise InvalidInputError("no terminal to ask for the password: use --password-stdin")
    return [
        _ask_on_the_terminal(state, label, confirm=i == len(labels) - 1)
        for i, label in enumerate(labels)
    ]


def read_token(
    state: AppState, token: str | None, token_stdin: bool
) -> tuple[str | None, list[str] | None]:
    """The token from --token, or from stdin's first line; and stdin's other lines if read."""
    if not token_stdin:
        return token, None
    if token is not None:
        raise UsageError("give --token or --token-stdin, not both")
    lines = _stdin_lines(state)
    first = lines.pop(0).strip() if lines else ""
    if not first:
        raise InvalidInputError("--token-stdin: the first line of stdin holds no token")
    return first, lines


def _stdin_lines(state: AppState) -> list[str]:
    return [line.removesuffix("\r") for line in state.env.stdin.read().split("\n")]


def _ask_on_the_terminal(state: AppState, label: str, *, confirm: bool) -> str:
    """A hidden prompt on the controlling terminal, never on stdout (which carries data)."""
    from umacct.cli.terminal import ask_hidden

    try:
        return ask_hidden(state.env, label, confirm=confirm)
    except InvalidInputError as error:
        if "differ" in error.message:
            raise InvalidInputError("the two passwords typed differ") from None
        raise InvalidInputError(
            "no terminal to ask for the password: give it on stdin (--password-stdin)"
        ) from None


def _check_link(state: AppState, token: str, purpose: str) -> None:
    """An expired, used or unknown link is said before anyone types a password for it."""
    from umacct.tokens import TokenPurpose

    state.runtime().tokens.check(token, TokenPurpose(purpose))


def render(state: AppState, result: Any) -> None:
    """The result as JSON with --json, else its message."""
    if state.json:
        state.json_result(result)
    else:
        state.out.out(state.mail_words(result.message, mailed=getattr(result, "sent", False)))


def _one_of(given: dict[str, bool]) -> None:
    if sum(given.values()) != 1:
        raise typer.BadParameter(f"give exactly one of {', '.join(given)}")


def register(app: typer.Typer) -> None:
    """Add the credential commands to the application."""
    app.command("activate")(activate)
    app.command("reset")(reset)
    app.command("passwd")(passwd)
    app.command("set-recovery")(set_recovery)
    app.command("redirect")(redirect)


def activate(
    ctx: typer.Context,
    account: OptionalAccount = None,
    token: Token = None,
    token_stdin: TokenStdin = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Send a new activation link (ACCOUNT), or choose the first password (--token).

    ACCOUNT: the link goes to the personal address and the previous one stops working; only
    for an account awaiting activation (exit 77 otherwise). --token: the password is checked
    against the policy (exit 65 with the reason), set, and the account becomes active.
    """
    from umacct.services.credentials import activate as activate_account
    from umacct.services.credentials import send_activation

    state = get_state(ctx)
    token, lines = read_token(state, token, token_stdin)
    _one_of({"ACCOUNT": account is not None, "--token": token is not None})
    if account is not None:
        render(state, send_activation(state.runtime(), account))
        return
    assert token is not None
    _check_link(state, token, "activation")
    [password] = read_passwords(state, ["New password"], from_stdin=password_stdin, lines=lines)
    render(state, activate_account(state.runtime(), token, password))


def reset(
    ctx: typer.Context,
    account: OptionalAccount = None,
    self_service: Annotated[
        bool,
        typer.Option(
            "--self-service",
            help="The public front end's request: the same answer whether or not the account exists.",
        ),
    ] = False,
    token: Token = None,
    token_stdin: TokenStdin = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Send a reset link to the recovery address (ACCOUNT), or set a new password (--token).

    Without a recovery address: exit 65; check the person's identity, then set-recovery.
    --self-service answers the same text, exit code and time for any ACCOUNT, sends at most
    [tokens] reset_per_hour links per account per hour, and sends an activation link instead
    to an account not yet activated.
    """
    from umacct.services.credentials import reset_with_token, self_service_reset, send_reset

    state = get_state(ctx)
    token, lines = read_token(state, token, token_stdin)
    _one_of({"ACCOUNT": account is not None, "--token": token is not None})
    if token is not None:
        if self_service:
            raise typer.BadParameter("--self-service goes with ACCOUNT, not --token")
        _check_link(state, token, "reset")
        [password] = read_passwords(state, ["New password"], from_stdin=password_stdin, lines=lines)
        render(state, reset_with_token(state.runtime(), token, password))
        return
    assert account is not None
    if self_service:
        answer = self_service_reset(state.runtime(), account)
        if state.json:
            state.json_result({"message": answer})
        else:
            state.out.out(answer)
        return
    render(state, send_reset(state.runtime(), account))


def passwd(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help=ACCOUNT_HELP, show_default=False)],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read from stdin: the current password, then the new one."
        ),
    ] = False,
) -> None:
    """The person changes their own password, proving the current one.

    A wrong current password: exit 77. A new password the policy refuses: exit 65 with why.
    """
    from umacct.services.credentials import change_password

    state = get_state(ctx)
    old, new = read_passwords(
        state, ["Current password", "New password"], from_stdin=password_stdin
    )
    render(state, change_password(state.runtime(), account, old, new))


def set_recovery(
    ctx: typer.Context,
    account: OptionalAccount = None,
    email: OptionalEmail = None,
    token: Token = None,
    token_stdin: TokenStdin = False,
    no_confirm: NoConfirm = False,
    reason: Reason = None,
) -> None:
    """Change the recovery address: a confirmation link goes to it (ACCOUNT EMAIL).

    The address is stored once the link is opened (--token); the previous address is told.
    Addresses inside the institution's own domains are refused (exit 65).
    """
    from umacct.services.addresses import confirm_recovery, request_recovery, set_recovery_now

    state = get_state(ctx)
    token, _ = read_token(state, token, token_stdin)
    _one_of({"ACCOUNT EMAIL": account is not None, "--token": token is not None})
    if token is not None:
        render(state, confirm_recovery(state.runtime(), token))
        return
    if account is None or email is None:
        raise typer.BadParameter("give ACCOUNT and EMAIL")
    if no_confirm:
        render(state, set_recovery_now(state.runtime(), account, email, reason=reason))
        return
    render(state, request_recovery(state.runtime(), account, email))


def redirect(
    ctx: typer.Context,
    account: OptionalAccount = None,
    email: OptionalEmail = None,
    off: Annotated[bool, typer.Option("--off", help="Stop forwarding.")] = False,
    token: Token = None,
    token_stdin: TokenStdin = False,
    no_confirm: NoConfirm = False,
    reason: Reason = None,
) -> None:
    """Forward the account's mail to EMAIL (after a confirmation link sent there), or --off.

    Forwarding to the account itself, or through other accounts' forwards back to it, is
    refused (exit 65). The mailbox gets a notice once forwarding starts (--token).
    """
    from umacct.services.addresses import (
        clear_forwarding,
        confirm_forwarding,
        request_forwarding,
        set_forwarding_now,
    )

    state = get_state(ctx)
    token, _ = read_token(state, token, token_stdin)
    _one_of({"ACCOUNT": account is not None, "--token": token is not None})
    if token is not None:
        render(state, confirm_forwarding(state.runtime(), token))
        return
    assert account is not None
    if off == (email is not None):
        raise typer.BadParameter("give either EMAIL or --off")
    if off:
        render(state, clear_forwarding(state.runtime(), account))
    elif no_confirm:
        assert email is not None
        render(state, set_forwarding_now(state.runtime(), account, email, reason=reason))
    else:
        assert email is not None
        render(state, request_forwarding(state.runtime(), account, email))
