r"""The output layer: the only place that knows about consoles, tables, JSON and CSV.

Commands hand it plain data (dataclasses, dicts, lists); it renders them in the format the
user asked for. Data goes to stdout, diagnostics to stderr.

Values come from the directory, the audit log and the command line: anything may be in them.
So (security.md 37 and 32) nothing they hold reaches the terminal as a control: C0 and C1
controls (ESC, hence every CSI and OSC sequence), invisible formatting characters (bidi
overrides, zero-width spaces), line and paragraph separators and lone surrogates are shown
escaped, Python style (``\x1b``, ``\u202e``), in tables, plain text and CSV, and as ``\u``
escapes in JSON; table cells are plain text to rich (``[/bold]`` is shown, not read as
markup); a CSV cell that a spreadsheet would read as a formula gets a leading ``'``.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console

# Every code point of the Unicode categories Cc (controls), Cf (format: bidi, zero-width), Cs
# (surrogates), Zl and Zp (line and paragraph separators), as ranges (a few unassigned code
# points inside them come along); tests/test_display.py checks it against unicodedata.
_UNSAFE_RANGES = (
    "\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f"
)
_UNSAFE = re.compile(f"[\x00-\x1f{_UNSAFE_RANGES}]")
_UNSAFE_BUT_LAYOUT = re.compile(f"[\x00-\x08\x0b-\x1f{_UNSAFE_RANGES}]")
# What json.dumps(ensure_ascii=False) leaves as it is (it escapes U+0000 to U+001F itself).
_UNSAFE_IN_JSON = re.compile(f"[{_UNSAFE_RANGES}]")
# A spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection),
# full-width forms included; tab and CR are escaped anyway, and still count.
_FORMULA_STARTS = frozenset("=+-@|\t\r\uff1d\uff0b\uff0d\uff20\uff5c")


def _escape(match: re.Match[str]) -> str:
    # The forms umacct/audit.py writes in the log, so that a value reads the same everywhere.
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _escape_json(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def printable(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with every control, invisible format character and separator escaped.

    ``keep_layout`` leaves LF and TAB as they are, for text the tool itself lays out (a
    document on several lines, tab-separated fields); a value is escaped whole.
    """
    if text.isprintable():  # most values: nothing to escape (LF and TAB are not printable)
        return text
    if not keep_layout:
        return _UNSAFE.sub(_escape, text)
    # Every character either pattern matches is one str.isprintable refuses: a document
    # printable but for its LF and TAB (a JSON report of thousands of rows) has none to
    # escape, and the test in C spares the regular expression's walk of every character.
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    return _UNSAFE_BUT_LAYOUT.sub(_escape, text)


def csv_safe(text: str) -> str:
    """A CSV cell: escaped as ``printable``, and ``'`` first if a spreadsheet would compute it."""
    first = text[:1]
    if first == " ":
        first = text.lstrip(" ")[:1]
    if first in _FORMULA_STARTS:
        text = "'" + text
    return printable(text)


class OutputFormat(enum.StrEnum):
    """How a command prints its data."""

    TABLE = "table"
    TSV = "tsv"
    JSON = "json"
    CSV = "csv"
    CSV_EXCEL = "csv-excel"
    """CSV as French Excel opens it by a double click: ``;`` and UTF-8 with a BOM."""

    @property
    def is_csv(self) -> bool:
        """Either CSV flavour."""
        return self in (OutputFormat.CSV, OutputFormat.CSV_EXCEL)


EXCEL_BOM = "\ufeff"


class ResultFormat(enum.StrEnum):
    """How a command that changes something reports it."""

    TABLE = "table"
    JSON = "json"


def remember_format(ctx: typer.Context, value: enum.Enum | None) -> enum.Enum | None:
    """Option callback: --format typed after the command counts as if typed before it."""
    from umacct.cli.state import get_state

    if value is not None:
        get_state(ctx).set_format(OutputFormat(value.value))
    return value


def remember_json(ctx: typer.Context, value: bool) -> bool:
    """Option callback: --json after the command, as before it."""
    from umacct.cli.state import get_state

    if value:
        get_state(ctx).set_format(OutputFormat.JSON)
    return value


FORMAT_HELP = (
    "Output format: table (for people; tab-separated rows, tsv, when not on a terminal), "
    "json or csv (for scripts), csv-excel (';' and a BOM, for French Excel). --json is short "
    "for --format json."
)
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format", "-f", help=FORMAT_HELP, case_sensitive=False, callback=remember_format
    ),
]


UNCUT_WIDTH = 100_000
"""The width a table is drawn at when no terminal limits it: every value whole."""


class Output:
    """One output stream: text is written as it is; rich is loaded only to draw tables.

    ``show`` and every JSON or CSV output never import rich, which keeps one-liners quick.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        color: bool,
        zone: Callable[[], tzinfo | None] | None = None,
        note: Callable[[str], None] | None = None,
        width: int | None = None,
    ) -> None:
        self.file = stream
        self._color = color
        self._console: Console | None = None
        self._zone = zone
        self.note = note
        """Where a line about the output goes (stderr): the columns a table left out."""
        self._width = width

    @property
    def zone(self) -> tzinfo | None:
        """The time zone instants are shown in for people (the policy's), if known."""
        return self._zone() if self._zone else None

    @property
    def console(self) -> Console:
        """A rich console on the same stream, for tables and progress bars."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.file,
                no_color=not self._color,
                highlight=False,
                soft_wrap=True,
                width=self._width if self.is_terminal else UNCUT_WIDTH,
            )
        return self._console

    @property
    def is_terminal(self) -> bool:
        """Whether a person is watching this stream."""
        return self.file.isatty()

    def out(self, text: str = "", end: str = "\n") -> None:
        """Write text (no markup, no wrapping); controls but LF and TAB are shown escaped."""
        self.file.write(printable(text, keep_layout=True) + end)

    def print(self, renderable: object) -> None:
        """Draw a rich renderable (a table): as wide as the terminal, or whole off one."""
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


def with_dry_run(value: Any, dry_run: bool) -> Any:
    """A command's result as JSON data, saying whether it was a dry run (each item of a list)."""
    data = to_jsonable(value)
    if isinstance(data, dict):
        return {**data, "dry_run": dry_run}
    if isinstance(data, list):
        return [{**item, "dry_run": dry_run} if isinstance(item, dict) else item for item in data]
    return data


def dumps_json(value: Any) -> str:
    r"""One JSON document, stable key order, UTF-8 kept readable, every control escaped.

    ``json.dumps`` escapes U+0000 to U+001F; DEL, the C1 controls (U+009B is a CSI), bidi
    and zero-width characters, separators and lone surrogates are escaped here (``\u``).
    """
    try:
        text = _indented_json(value)
    except _NotPlain:
        text = json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)
    # Every character _UNSAFE_IN_JSON matches is one str.isprintable refuses, and the only
    # one of those in JSON's own layout is LF: a text printable but for it has none to escape.
    if text.replace("\n", "").isprintable():
        return text
    return _UNSAFE_IN_JSON.sub(_escape_json, text)


class _NotPlain(Exception):
    """A value ``_indented_json`` leaves to ``json.dumps``: it renders only the usual ones."""


def _float_text(value: float) -> str:
    # As json's floatstr with allow_nan.
    if math.isnan(value):
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


_INFINITY = float("inf")
_SCALARS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    int: int.__repr__,
    bool: lambda flag: "true" if flag else "false",
    type(None): lambda _: "null",
    float: _float_text,
}
"""The exact types that JSON writes as they are, and how ``json.dumps`` writes each."""
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_FIELD_HEADS: dict[tuple[tuple[str, ...], int], tuple[str, ...]] = {}
"""What comes before each field's value, by field names and depth."""


def _indented_json(value: Any) -> str:
    """``json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)`` in one walk.

    Lists of thousands of results (``create --csv --json``) are written without building the
    converted copy first nor going through json's generators; the scalars of a container
    are written in its own loop. ``_NotPlain`` for a value ``to_jsonable`` would hand on as
    it is (json's own way with it is then the one to follow: its error, or its text).
    """
    out: list[str] = []
    _write_json(value, 0, out)
    return "".join(out)


def _write_json(value: Any, level: int, out: list[str]) -> None:
    """Append the JSON of ``value`` (not a scalar of ``_SCALARS``) at depth ``level``."""
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(field.name for field in dataclasses.fields(value))
    if names is not None:
        _write_fields(value, names, level, out)
    elif isinstance(value, Mapping):
        _write_items(list({str(k): v for k, v in value.items()}.items()), level, out)
    elif isinstance(value, list | tuple | set | frozenset):
        _write_list(value, level, out)
    elif isinstance(value, enum.Enum):
        write = _SCALARS.get(type(value.value))
        if write is None:
            raise _NotPlain
        out.append(write(value.value))
    elif isinstance(value, datetime | date):
        out.append(encode_basestring(value.isoformat()))
    elif isinstance(value, Path):
        out.append(encode_basestring(str(value)))
    else:
        write = _SCALARS.get(kind)
        if write is None:
            raise _NotPlain
        out.append(write(value))


def _write_fields(value: Any, names: tuple[str, ...], level: int, out: list[str]) -> None:
    """A dataclass as ``_write_items`` writes its fields, each key's text made once."""
    heads = _FIELD_HEADS.get((names, level))
    if heads is None:
        indent = "\n" + "  " * (level + 1)
        heads = _FIELD_HEADS[names, level] = tuple(
            ("{" if index == 0 else ",") + indent + encode_basestring(name) + ": "
            for index, name in enumerate(names)
        )
    if not names:
        out.append("{}")
        return
    for head, name in zip(heads, names, strict=True):
        out.append(head)
        item = getattr(value, name)
        _write_value(item, level + 1, out)
    out.append("\n" + "  " * level + "}")


def _write_value(item: Any, level: int, out: list[str]) -> None:
    """One value at ``level``: a scalar written at once, anything else walked."""
    write = _SCALARS.get(type(item))
    if write is not None:
        out.append(write(item))
    else:
        _write_json(item, level, out)


def _write_items(items: list[tuple[str, Any]], level: int, out: list[str]) -> None:
    if not items:
        out.append("{}")
        return
    indent = "\n" + "  " * (level + 1)
    separator = "{" + indent
    for key, item in items:
        out.append(separator)
        out.append(encode_basestring(key))
        out.append(": ")
        _write_value(item, level + 1, out)
        separator = "," + indent
    out.append("\n" + "  " * level + "}")


def _write_list(values: Iterable[Any], level: int, out: list[str]) -> None:
    indent = "\n" + "  " * (level + 1)
    separator = "[" + indent
    for item in values:
        out.append(separator)
        _write_value(item, level + 1, out)
        separator = "," + indent
    out.append("[]" if separator[0] == "[" else "\n" + "  " * level + "]")


def _cell(value: Any, zone: tzinfo | None = None) -> str:
    if isinstance(value, datetime) and zone is not None and value.tzinfo is not None:
        return local_time(value, zone)
    if isinstance(value, list | tuple) and zone is not None:
        return ", ".join(_cell(v, zone) for v in value)
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


def rows_to_csv(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, excel: bool = False
) -> str:
    """CSV text with a header row; lists are joined with ``;``.

    ``excel``: ``;`` between the cells and CRLF line ends, as French Excel reads them.
    """
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, lineterminator="\r\n" if excel else "\n", delimiter=";" if excel else ","
    )
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a number the tool computed: -3 stays a number
    text = "; ".join(map(_cell, value)) if isinstance(value, list | tuple) else _cell(value)
    return csv_safe(text)


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
    elif fmt.is_csv:
        _write_csv(console, rows, columns, fmt)
    elif fmt is OutputFormat.TSV:
        console.file.write(tsv_line(columns))
        for row in rows:
            console.file.write(tsv_line([row.get(c) for c in columns], console.zone))
    else:
        width = console.console.width if console.is_terminal else None
        table, left_out = _table(rows, columns, title, console.zone, width)
        console.print(table)
        if left_out and console.note is not None:
            console.note(
                f"{left_out} column{'s' if left_out > 1 else ''} left out: --format tsv shows all"
            )


def local_time(instant: datetime, zone: tzinfo) -> str:
    """An instant for people: in the policy's time zone, the zone named (``CEST``)."""
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _write_csv(
    console: Output, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: OutputFormat
) -> None:
    excel = fmt is OutputFormat.CSV_EXCEL
    # The cells are escaped already (csv_safe); the BOM is written as it is.
    console.file.write((EXCEL_BOM if excel else "") + rows_to_csv(rows, columns, excel=excel))


def tsv_line(cells: Iterable[object], zone: tzinfo | None = None) -> str:
    """One line of tab-separated whole values (a tab or line break in one is shown escaped)."""
    return "\t".join(printable(_cell(cell, zone)) for cell in cells) + "\n"


_DAY_OR_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?( ?\S+)?)?")
WHOLE_CELL_WIDTH = 40
"""A column whose values are single words (identifiers, days, states) up to this width is
never folded: it is shown whole, or left out."""
FOLDED_MIN_WIDTH = 20
IDENTIFIER_COLUMNS = frozenset({"account", "uid", "identifier"})
"""Columns never folded, however long their values."""


def _whole(values: Sequence[str]) -> bool:
    """Whether a column's values must never be folded: days, times, single words."""
    return (
        all(
            not value or _DAY_OR_TIME.fullmatch(value) or (len(value.split()) == 1)
            for value in values
        )
        and max(map(len, values), default=0) <= WHOLE_CELL_WIDTH
    )


def _table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    title: str | None,
    zone: tzinfo | None,
    width: int | None = None,
) -> tuple[Any, int]:
    """A rich table that never cuts a value, and how many columns it left out to fit ``width``.

    The first column (the account), days, times and one-word values are never folded; free
    text is folded at words onto several lines, never narrower than its header's longest word.
    When even that does not fit the terminal, columns are left out, the first ones (the most
    useful) kept, rather than drawn zero-wide.
    """
    from rich.table import Table
    from rich.text import Text

    cells = [[printable(_cell(row.get(c), zone)) for c in columns] for row in rows]
    headers = [column.replace("_", " ") for column in columns]
    whole: list[bool] = []
    least: list[int] = []  # the narrowest each column may be drawn
    full: list[int] = []  # its width with nothing folded
    for index, header in enumerate(headers):
        widest = max((len(line[index]) for line in cells), default=0)
        word = max(map(len, header.split()), default=0)  # a header folds at its spaces
        whole.append(
            index == 0
            or columns[index] in IDENTIFIER_COLUMNS
            or _whole([line[index] for line in cells])
        )
        full.append(max(widest, len(header)))
        if whole[-1]:
            least.append(max(widest, word))
        else:
            least.append(max(word, min(full[-1], FOLDED_MIN_WIDTH)))
    kept = list(range(len(columns)))
    widths: dict[int, int | None] = dict.fromkeys(kept)
    if width is not None:
        kept, used = [], 1  # the left border; each column adds its padding and a border (3)
        first = [i for i, c in enumerate(columns) if i == 0 or c in IDENTIFIER_COLUMNS]
        for index in first + [i for i in range(len(columns)) if i not in first]:
            if index == 0 or used + least[index] + 3 <= width:
                kept.append(index)
                used += least[index] + 3
        kept.sort()
        spare = max(width - used, 0)
        for index in kept:  # the room left widens the first columns up to their full width
            grow = min(spare, full[index] - least[index])
            widths[index] = least[index] + grow
            spare -= grow
    # Text, not str: rich would read markup ("[/bold]") and emoji codes in a str.
    table = Table(title=Text(printable(title)) if title else None, show_lines=False)
    for index in kept:
        drawn = widths[index]
        header = headers[index]
        if whole[index] and (drawn is None or len(header) <= drawn):
            table.add_column(Text(header), no_wrap=True, width=drawn, min_width=least[index])
        else:
            table.add_column(Text(header), overflow="fold", width=drawn, min_width=least[index])
    for line in cells:
        table.add_row(*(Text(line[index]) for index in kept))
    return table, len(columns) - len(kept)


def render_record(
    console: Output, record: Mapping[str, Any], fmt: OutputFormat, *, title: str | None = None
) -> None:
    """Print one record: aligned "name  value" lines for people, one JSON object for scripts."""
    if fmt is OutputFormat.JSON:
        console.out(dumps_json(record))
    elif fmt.is_csv:
        _write_csv(console, [record], list(record), fmt)
    elif fmt is OutputFormat.TSV:
        for name, value in record.items():
            console.file.write(tsv_line([name, value], console.zone))
    else:
        names = [key.replace("_", " ") for key in record]
        width = max(map(len, names), default=0)
        if title:
            console.out(printable(title))
        for name, value in zip(names, record.values(), strict=True):
            # One line per value: a line break in it is shown escaped, it cannot forge a line.
            console.out(f"{name:<{width}}  {printable(_cell(value, console.zone))}".rstrip())


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

    JSON is one array, written element by element; CSV and TSV go line by line; a table holds
    at most ``TABLE_ROW_LIMIT`` rows and says on stderr how many more there were.
    """
    count = 0
    if fmt is OutputFormat.TSV:
        out.file.write(tsv_line(columns))
        for item in rows:
            count += 1
            row = as_row(item)
            out.file.write(tsv_line([row.get(c) for c in columns], out.zone))
        out.file.flush()
        return count
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
    if fmt.is_csv:
        excel = fmt is OutputFormat.CSV_EXCEL
        stream.write((EXCEL_BOM if excel else "") + rows_to_csv([], columns, excel=excel))
        for item in rows:
            count += 1
            # The shared renderer formats the cells; its header line (names only) is dropped.
            stream.write(rows_to_csv([as_row(item)], columns, excel=excel).split("\n", 1)[1])
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
