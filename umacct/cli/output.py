"""The output layer: the only place that knows about consoles, tables, JSON and CSV.

Commands hand it plain data (dataclasses, dicts, lists); it renders them in the format the
user asked for. Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console


class OutputFormat(enum.StrEnum):
    """How a read command prints its data."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format: table (for people), json or csv (for scripts). --json is short for --format json.",
        case_sensitive=False,
    ),
]


class Output:
    """One output stream: text is written as it is; rich is loaded only to draw tables.

    ``show`` and every JSON or CSV output never import rich, which keeps one-liners quick.
    """

    def __init__(self, stream: TextIO, *, color: bool) -> None:
        self.file = stream
        self._color = color
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """A rich console on the same stream, for tables and progress bars."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.file, no_color=not self._color, highlight=False, soft_wrap=True
            )
        return self._console

    @property
    def is_terminal(self) -> bool:
        """Whether a person is watching this stream."""
        return self.file.isatty()

    def out(self, text: str = "", end: str = "\n") -> None:
        """Write text as it is (no markup, no wrapping)."""
        self.file.write(text + end)

    def print(self, renderable: object) -> None:
        """Draw a rich renderable (a table)."""
        self.console.print(renderable)


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, enums, dates and paths into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def dumps_json(value: Any) -> str:
    """One JSON document, stable key order, UTF-8 kept readable."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)


def _cell(value: Any) -> str:
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def rows_to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV text with a header row; lists are joined with ``;``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                "; ".join(map(_cell, v)) if isinstance(v, list | tuple) else _cell(v)
                for v in (row.get(c) for c in columns)
            ]
        )
    return buffer.getvalue()


def render_rows(
    console: Output,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: OutputFormat,
    *,
    title: str | None = None,
) -> None:
    """Print a list of records as a table, a JSON array or CSV."""
    if fmt is OutputFormat.JSON:
        console.out(dumps_json([{c: r.get(c) for c in columns} for r in rows]))
    elif fmt is OutputFormat.CSV:
        console.out(rows_to_csv(rows, columns), end="")
    else:
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column.replace("_", " "))
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)


def render_record(
    console: Output, record: Mapping[str, Any], fmt: OutputFormat, *, title: str | None = None
) -> None:
    """Print one record: aligned "name  value" lines for people, one JSON object for scripts."""
    if fmt is OutputFormat.JSON:
        console.out(dumps_json(record))
    elif fmt is OutputFormat.CSV:
        console.out(rows_to_csv([record], list(record)), end="")
    else:
        names = [key.replace("_", " ") for key in record]
        width = max(map(len, names), default=0)
        if title:
            console.out(title)
        for name, value in zip(names, record.values(), strict=True):
            lines = _cell(value).splitlines() or [""]
            console.out(f"{name:<{width}}  {lines[0]}".rstrip())
            for line in lines[1:]:
                console.out(f"{'':<{width}}  {line}")


TABLE_ROW_LIMIT = 1000


def as_row(item: Any) -> dict[str, Any]:
    """A dataclass (or a mapping) as a row of named cells."""
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    return dict(item)


def stream_rows(
    out: Output,
    note: Callable[[str], None],
    rows: Iterable[Any],
    columns: Sequence[str],
    fmt: OutputFormat,
    *,
    title: str | None = None,
) -> int:
    """Print rows as they come, never holding them all; return how many there were.

    JSON is one array, written element by element; CSV goes line by line; a table holds at
    most ``TABLE_ROW_LIMIT`` rows and says on stderr how many more there were.
    """
    count = 0
    if fmt is OutputFormat.TABLE:
        shown: list[Mapping[str, Any]] = []
        for item in rows:
            count += 1
            if count <= TABLE_ROW_LIMIT:
                shown.append(as_row(item))
        render_rows(out, shown, columns, fmt, title=title)
        if count > TABLE_ROW_LIMIT:
            note(
                f"{count - TABLE_ROW_LIMIT} more rows not shown (table limited to "
                f"{TABLE_ROW_LIMIT}): use --format csv or --format json for all of them"
            )
        return count
    stream = out.file
    if fmt is OutputFormat.CSV:
        stream.write(rows_to_csv([], columns))
        for item in rows:
            count += 1
            # The shared renderer formats the cells; its header line (names only) is dropped.
            stream.write(rows_to_csv([as_row(item)], columns).split("\n", 1)[1])
        stream.flush()
        return count
    stream.write("[")
    for item in rows:
        row = as_row(item)
        stream.write(("," if count else "") + "\n" + dumps_json({c: row.get(c) for c in columns}))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    stream.flush()
    return count
