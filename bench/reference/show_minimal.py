"""The reference for ``umacct show``: typer and ldap3, one bind, one search, JSON out."""

import json
import os

import ldap3
import typer
from ldap3.utils.conv import escape_filter_chars

app = typer.Typer()


@app.command()
def show(account: str) -> None:
    """Print the entry whose mail is ACCOUNT."""
    server = ldap3.Server(os.environ["BENCH_URL"], get_info=ldap3.NONE)
    connection = ldap3.Connection(
        server,
        os.environ["BENCH_BIND_DN"],
        os.environ["UMACCT_BIND_PASSWORD"],
        auto_bind=True,
        client_strategy=ldap3.SAFE_SYNC,
    )
    _, _, response, _ = connection.search(
        os.environ["BENCH_BASE_DN"], f"(mail={escape_filter_chars(account)})", attributes=["*", "+"]
    )
    typer.echo(json.dumps([dict(item["attributes"]) for item in response], default=str))
    connection.unbind()


if __name__ == "__main__":
    app()
