"""What the tool prints: no control reaches the terminal, no markup is read, no CSV formula.

Security.md 37 (terminal escapes in directory values are shown escaped in tables, plain text,
CSV and JSON) and 32 (rich markup shown as text; CSV cells neutralised, the OWASP rule).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY
from hypothesis import given, settings
from hypothesis import strategies as st
from people import add_person

from umacct.cli import output
from umacct.cli.output import (
    Output,
    OutputFormat,
    csv_safe,
    dumps_json,
    printable,
    render_record,
    render_rows,
    stream_rows,
)
from umacct.services.lifecycle import suspend
from umacct.services.runtime import Runtime

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
ESC = "\x1b"
# An OSC title change, a CSI that clears the screen, an OSC 8 link, an 8-bit CSI, a bidi
# override, a BEL and a zero-width space: what a hostile directory value may hold.
HOSTILE = (
    f"Zo{ESC}]0;pwned\x07é{ESC}[2J{ESC}]8;;https://evil.example/\x07x{ESC}]8;;\x07"
    "\x9b31m\u202egnp.exe\u200b\x85\u2028\r"
)
MARKUP = "[/bold] [red]rouge[/red] [link=https://evil.example/]ici[/link] :thumbs_up:"


def unsafe(text: str) -> list[str]:
    """The characters of ``text`` a terminal could act on (LF, TAB aside when allowed)."""
    return [char for char in text if unicodedata.category(char) in UNSAFE_CATEGORIES]


def assert_terminal_safe(text: str, *, layout: str = "\n") -> None:
    assert [char for char in unsafe(text) if char not in layout] == []


class Captured(Output):
    def __init__(self) -> None:
        self.buffer = io.StringIO()
        super().__init__(self.buffer, color=False)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


# --- the escaping itself ------------------------------------------------------------------


def test_sec37_every_control_format_and_separator_character_is_escaped() -> None:
    escaped, kept = [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        shown = printable(char)
        if category in UNSAFE_CATEGORIES:
            escaped.append(shown != char and shown.isascii() and shown.isprintable())
        elif category != "Cn":
            kept.append(shown == char)
    assert all(escaped) and len(escaped) > 2000
    assert all(kept)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f"{ESC}[31mred", "\\x1b[31mred"),
        (f"{ESC}]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x9b2J", "\\x9b2J"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\u202eevil", "\\u202eevil"),
        ("\U000e0041tag", "\\U000e0041tag"),
        ("\ud800", "\\ud800"),
        ("Zoé Lefèvre 雨", "Zoé Lefèvre 雨"),
    ],
)
def test_sec37_escapes_read_like_python(value: str, shown: str) -> None:
    assert printable(value) == shown


def test_sec37_a_laid_out_text_is_escaped_as_the_pattern_escapes_it() -> None:
    # printable(keep_layout=True) skips the pattern for a text printable but for LF and TAB.
    pattern = output._UNSAFE_BUT_LAYOUT
    for code in range(sys.maxunicode + 1):
        text = f"a\n{chr(code)}\tb"
        assert printable(text, keep_layout=True) == pattern.sub(output._escape, text)


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.sampled_from("\n\t\r\x1b\x85\u2028\u202ea é")))
def test_sec37_a_laid_out_text_keeps_only_its_line_breaks_and_tabs(value: str) -> None:
    shown = printable(value, keep_layout=True)
    assert shown == output._UNSAFE_BUT_LAYOUT.sub(output._escape, value)
    assert shown.replace("\n", "").replace("\t", "").isprintable()


@settings(max_examples=300, deadline=None)
@given(value=st.text())
def test_sec37_no_output_format_prints_a_control(value: str) -> None:
    row = {"name": value, "aliases": [value, "x"], "details": {"reason": value}}
    columns = ["name", "aliases", "details"]
    for fmt in OutputFormat:
        rows, record = Captured(), Captured()
        render_rows(rows, [row], columns, fmt, title=value)
        render_record(record, row, fmt, title=value)
        assert_terminal_safe(rows.text, layout=_layout(fmt))
        assert_terminal_safe(record.text, layout=_layout(fmt))
        if fmt is OutputFormat.JSON:
            assert json.loads(rows.text) == [row]
            assert json.loads(record.text) == row
    assert json.loads(dumps_json(row)) == row
    assert_terminal_safe(dumps_json(row))


def _layout(fmt: OutputFormat) -> str:
    """The characters a format writes itself (its separators), not taken from a value."""
    return {OutputFormat.TSV: "\n\t", OutputFormat.CSV_EXCEL: "\n\r\ufeff"}.get(fmt, "\n")


def test_sec37_json_escapes_what_json_dumps_leaves() -> None:
    text = dumps_json({"name": HOSTILE, "tag": "\U000e0041"})
    assert_terminal_safe(text)
    assert "\\u009b" in text and "\\u202e" in text and "\\udb40\\udc41" in text
    assert json.loads(text) == {"name": HOSTILE, "tag": "\U000e0041"}
    assert "é" in text  # UTF-8 stays readable


def test_sec37_streamed_rows_are_escaped_in_every_format() -> None:
    for fmt in OutputFormat:
        out = Captured()
        stream_rows(out, lambda _: None, iter([{"name": HOSTILE}]), ["name"], fmt)
        assert_terminal_safe(out.text, layout=_layout(fmt))
        assert ESC not in out.text


def test_sec37_plain_text_keeps_its_layout_but_nothing_else() -> None:
    out = Captured()
    out.out(f"line 2\t{HOSTILE}\nnext")
    assert_terminal_safe(out.text, layout="\n\t")
    assert out.text.startswith("line 2\tZo\\x1b]0;pwned\\x07é")


# --- rich markup and CSV formulas (32) ----------------------------------------------------


def test_sec32_rich_markup_in_a_value_is_shown_as_text() -> None:
    out = Captured()
    render_rows(out, [{"name": MARKUP, "n": 1}], ["name", "n"], OutputFormat.TABLE, title=MARKUP)
    assert out.text.count(MARKUP) == 2
    assert ESC not in out.text


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+33 6 12", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)", "|calc", "\t=1", "\r=1",
     "  =HYPERLINK(\"https://evil.example\")", "\uff1d1+1", "=cmd", "-"],
)  # fmt: skip
def test_sec32_a_csv_cell_a_spreadsheet_would_compute_starts_with_a_quote(value: str) -> None:
    text = csv_safe(value)
    assert text.startswith("'")
    assert text == "'" + printable(value)
    [[cell]] = list(csv.reader(io.StringIO(csv_line(value))))
    assert cell == text


def csv_line(value: object) -> str:
    out = Captured()
    render_rows(out, [{"v": value}], ["v"], OutputFormat.CSV)
    return out.text.split("\n", 1)[1]


@pytest.mark.parametrize("value", ["zoe@example.net", "Zoé", "2026-11-26", "a=b", "", "x-1"])
def test_sec32_ordinary_csv_cells_are_left_alone(value: str) -> None:
    assert csv_safe(value) == value


def test_sec32_numbers_the_tool_computed_stay_numbers_in_csv() -> None:
    assert csv_line(-3) == "-3\n"
    assert csv_line("-3") == "'-3\n"


# --- end to end: directory values through show, list, explain, report, audit ---------------


@pytest.fixture
def hostile_person(on: Callable[[date], Runtime]) -> Runtime:
    from umacct.directory import Change

    runtime = on(TODAY)
    person = add_person(runtime, "noe.vidal", profile="titulaire")
    suspend(runtime, person.identifier, reason=MARKUP)
    # Values another tool wrote (the tool's own input checks refuse them).
    hostile = {
        "cn": [f"{HOSTILE} {MARKUP}"],
        "displayName": [f"{MARKUP} {HOSTILE}"],
        "givenName": [f"{HOSTILE} {MARKUP}"],
        "sn": [f"=cmd|' /C calc'!A0 {ESC}[8m"],
        "mailForwardingAddress": [f"noe{ESC}]0;pwned\x07@evil.example"],
    }
    runtime.directory.modify(
        person.dn, [Change("replace", name, tuple(values)) for name, values in hostile.items()]
    )
    runtime.audit.append("note", f"noe.vidal{ESC}[2J", {}, f"ok{ESC}]0;pwned\x07", why=HOSTILE)
    runtime.audit.append("note", person.identifier, {}, "ok", reason=MARKUP)
    return runtime


COMMANDS = [
    ("show", "noe.vidal"),
    ("list",),
    ("explain", "noe.vidal"),
    ("audit",),
    ("report", "forwarding"),
    ("report", "forwarding", "--detail"),
    ("report", "stale-passwords", "--older-than", "0d"),
]


@pytest.mark.usefixtures("directory_clean", "hostile_person")
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sec37_sec32_hostile_directory_values_print_escaped(
    command: tuple[str, ...], fmt: str
) -> None:
    code, out, err = umacct(*command, "--format", fmt)
    assert code == 0, err
    assert_terminal_safe(out, layout="\n\t" if fmt != "table" else "\n")
    assert_terminal_safe(err, layout="\n")
    if fmt == "json":
        json.loads(out)
    if command[0] == "show" or (command[0] == "list" and fmt != "table"):  # tables cut cells
        assert ("\\u009b" if fmt == "json" else "\\x9b") in out
    if command[0] in ("show", "list", "audit") and fmt != "json":
        assert "\\x1b" in out
    if fmt == "csv":
        for row in csv.reader(io.StringIO(out)):
            assert not any(cell.lstrip(" ")[:1] in ("=", "+", "-", "@", "|") for cell in row)


@pytest.mark.usefixtures("directory_clean", "hostile_person")
def test_sec32_a_reason_with_markup_leaves_audit_readable() -> None:
    code, out, err = umacct("audit")
    assert code == 0, err
    assert "[/bold]" in out
