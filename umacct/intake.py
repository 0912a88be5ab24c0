"""The yearly intake file (``umacct create --csv FILE``): reading and validating every row.

The file is what a spreadsheet exports:

* encoding: UTF-8 with or without a byte-order mark, else Windows-1252 (Excel's "CSV");
  UTF-16 is refused with a hint;
* delimiter: comma or semicolon, told from the header line (delimiters inside quotes do not
  count);
* header row: ``given_name``, ``surname``, ``profile``, ``personal_email`` are required;
  ``end_of_activity``, ``external_id`` and ``arrival`` are optional. The French names
  ``prenom``, ``nom``, ``profil``, ``mail_perso``, ``date_fin``, ``id_externe``, ``arrivee``
  work too. Header names are compared without case or accents, with spaces and hyphens
  read as underscores, so ``Prénom``, ``Mail perso`` and ``Date-fin`` are recognised.

Whole-file problems raise ``InvalidInputError`` (exit 65) and nothing is created: an
undecodable file, a file over 64 MiB or 200,000 rows, malformed quoting, a missing required
column, a column named twice, and an **unknown column**
(a misspelt ``date_fn`` must not silently drop everyone's end date), unless the caller asks
to skip unknown columns (an export with extra ones: ``--ignore-unknown-columns``). Columns with an empty
header are allowed (Excel adds them after a stray cell) as long as every row leaves them empty.

Each row is then validated on its own. A bad row becomes a ``RowError`` with its physical line
number (the file's first line is 1; a quoted field spanning lines counts every line) and every reason
found; the other rows go on. Empty rows are skipped silently. A row that repeats an earlier one
(same external id, or without one, same names, profile and personal address) is reported as a
duplicate of that line.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import types
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from umacct.errors import InvalidInputError
from umacct.identifiers import PersonName, confusable_scripts
from umacct.plain_address import plain_address

MAX_INTAKE_BYTES = 64 * 1024 * 1024
MAX_INTAKE_ROWS = 200_000

REQUIRED_COLUMNS = ("given_name", "surname", "profile", "personal_email")
OPTIONAL_COLUMNS = ("end_of_activity", "external_id", "arrival")
_FRENCH_COLUMNS = {
    "prenom": "given_name",
    "nom": "surname",
    "profil": "profile",
    "mail_perso": "personal_email",
    "date_fin": "end_of_activity",
    "id_externe": "external_id",
    "arrivee": "arrival",
}
_COLUMN_NAMES = {name: name for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS} | _FRENCH_COLUMNS

_EXTERNAL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_FRENCH_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_LINE_BREAK_OR_NUL = re.compile(r"[\r\n\0]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_Value = TypeVar("_Value")


@dataclass(frozen=True)
class IntakeRow:
    """One valid row: a person to create."""

    line: int
    name: PersonName
    profile: str
    personal_email: str
    end_of_activity: date | None
    external_id: str | None
    arrival: date | None


@dataclass(frozen=True)
class RowError:
    """One refused row: its line, why, and its fields as read (by column name)."""

    line: int
    reason: str
    raw: Mapping[str, str]


@dataclass(frozen=True)
class Intake:
    """The whole file, validated: the rows to create and the rows refused."""

    rows: tuple[IntakeRow, ...]
    errors: tuple[RowError, ...]
    encoding: str
    delimiter: str
    header: tuple[str, ...] = ()
    """The header row as written (for a file of refused rows to hand back)."""
    ignored: tuple[str, ...] = ()
    """Unknown columns skipped (``ignore_unknown_columns``)."""
    records: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Every data row's fields as written, by line."""

    @property
    def french(self) -> bool:
        """Whether the header uses the French column names."""
        return any(_column_key(cell) in _FRENCH_COLUMNS for cell in self.header)


def validate_email(address: str) -> str:
    """Validate a personal address and return it normalised (domain lower-case, ASCII).

    CR, LF and NUL, quoted local parts, IP-literal domains, display names, non-ASCII local
    parts and labels that mix Latin, Greek and Cyrillic letters (look-alikes) are refused (the directory attributes are IA5 strings). Nothing is looked up in
    the DNS. Raises ``InvalidInputError`` with the reason.
    """
    if _LINE_BREAK_OR_NUL.search(address):
        raise InvalidInputError(f"address {address!r}: line breaks and NUL are not allowed")
    text = address.strip()
    if not text:
        raise InvalidInputError("address is empty")
    if "=?" in text:
        raise InvalidInputError(
            f"address {text!r}: '=?' is not allowed (it starts an encoded word, which mail "
            "readers decode into other addresses)"
        )
    if not text.isascii():  # an ASCII label holds Latin letters only
        for label in re.split(r"[@.\uff0e\u3002\uff61]", text):
            if len(confusable_scripts(label)) > 1:
                raise InvalidInputError(
                    f"address {text!r}: {label!r} mixes scripts "
                    f"({', '.join(sorted(confusable_scripts(label)))}), as a look-alike address does"
                )
    return plain_address(text) or _checked_address(text)


def _checked_address(text: str) -> str:
    """email_validator's answer (the address plain_address cannot decide alone)."""
    import email_validator  # 40 ms to import: only for what plain_address leaves

    try:
        valid = email_validator.validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
        )
    except email_validator.EmailNotValidError as exc:
        raise InvalidInputError(f"address {text!r} is not valid: {exc}") from None
    return valid.ascii_email or valid.normalized


def parse_date(text: str) -> date:
    """Read a date written ``YYYY-MM-DD`` or, as French spreadsheets do, ``DD/MM/YYYY``.

    Raises ``InvalidInputError`` for another format or a day that does not exist.
    """
    cleaned = text.strip()
    if match := _ISO_DATE.fullmatch(cleaned):
        year, month, day = (int(part) for part in match.groups())
    elif match := _FRENCH_DATE.fullmatch(cleaned):
        day, month, year = (int(part) for part in match.groups())
    else:
        raise InvalidInputError(f"date {text!r}: expected YYYY-MM-DD or DD/MM/YYYY")
    if not 1 <= month <= 12:
        raise InvalidInputError(f"date {text!r}: there is no month {month}")
    if year < 1:
        raise InvalidInputError(f"date {text!r}: there is no year 0")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise InvalidInputError(
            f"date {text!r} does not exist: {calendar.month_name[month]} {year} "
            f"has {days_in_month} days"
        )
    return date(year, month, day)


def read_intake(
    data: bytes, *, profiles: Collection[str], ignore_unknown_columns: bool = False
) -> Intake:
    """Decode, parse and validate an intake file; ``profiles`` are the configured keys.

    Raises ``InvalidInputError`` for problems with the whole file; problems with single
    rows are returned in ``Intake.errors``. With ``ignore_unknown_columns`` a column the
    tool does not know (an export's extra ones) is skipped instead of refusing the file
    (``Intake.ignored`` names them).
    """
    if len(data) > MAX_INTAKE_BYTES:
        raise InvalidInputError(
            f"the file is {len(data)} bytes, more than {MAX_INTAKE_BYTES}; split it"
        )
    text, encoding = _decode(data)
    if not text.strip():
        raise InvalidInputError("the file is empty: expected a header row and one row per person")
    delimiter = _detect_delimiter(text)
    records = _records(text, delimiter)
    first = next(records, None)
    if first is None:
        raise InvalidInputError("the file has no header row")
    header_line, header = first
    columns = _map_header(header, header_line, ignore_unknown=ignore_unknown_columns)
    validator = _RowValidator(columns, profiles)
    rows: list[IntakeRow] = []
    errors: list[RowError] = []
    written: dict[int, tuple[str, ...]] = {}
    for count, (line, fields) in enumerate(records, start=1):
        if count > MAX_INTAKE_ROWS:
            raise InvalidInputError(
                f"line {line}: more than {MAX_INTAKE_ROWS} rows in one file; split it"
            )
        written[line] = tuple(fields)
        outcome = validator.check(line, fields)
        if isinstance(outcome, IntakeRow):
            rows.append(outcome)
        else:
            errors.append(outcome)
    ignored = tuple(cell for cell, column in zip(header, columns, strict=True) if column == IGNORED)
    return Intake(
        rows=tuple(rows), errors=tuple(errors), encoding=encoding, delimiter=delimiter,
        header=tuple(header), ignored=ignored, records=written,
    )  # fmt: skip


def _decode(data: bytes) -> tuple[str, str]:
    """Decode as UTF-8 (with or without BOM), else as Windows-1252."""
    if data.startswith(_UTF16_BOMS):
        raise InvalidInputError(
            "the file is UTF-16 ('Unicode text'); save it as 'CSV UTF-8' or 'CSV'"
        )
    if data.startswith(_UTF8_BOM):
        try:
            return data.decode("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"the file starts with a UTF-8 byte-order mark but byte {exc.start} is not UTF-8"
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"the file is neither UTF-8 nor Windows-1252 (byte {exc.start}); save it as 'CSV UTF-8'"
        ) from None


def _detect_delimiter(text: str) -> str:
    """Comma or semicolon, whichever the header line holds more of outside quotes."""
    counts = {",": 0, ";": 0}
    quoted = False
    for character in text.lstrip("\r\n"):
        if character == '"':
            quoted = not quoted
        elif character in "\r\n" and not quoted:
            break
        elif character in counts and not quoted:
            counts[character] += 1
    if counts[","] == counts[";"]:
        raise InvalidInputError(
            "cannot tell the delimiter from the header line: expected column names "
            "separated by commas or by semicolons"
        )
    return max(counts, key=counts.__getitem__)


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, fields) for every non-empty record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInputError(f"line {line}: cannot read the CSV: {exc}") from None
        if any(field.strip() for field in fields):
            # Blank lines before the record were consumed with it: its first line is the
            # last one read minus the lines inside it.
            yield reader.line_num - _line_count(fields) + 1, fields


def _line_count(fields: list[str]) -> int:
    """How many physical lines a record spans (line breaks inside its quoted fields, plus 1)."""
    return 1 + sum(len(_LINE_BREAK.findall(field)) for field in fields)


def _column_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.strip())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\s-]+", "_", bare)


IGNORED = "-ignored-"
"""The column of an unknown header cell skipped with ``ignore_unknown_columns``."""


def _map_header(header: list[str], line: int, *, ignore_unknown: bool = False) -> list[str | None]:
    """The canonical column name of every header cell (None for an empty cell)."""
    columns: list[str | None] = []
    unknown: list[str] = []
    for cell in header:
        if not cell.strip():
            columns.append(None)
            continue
        canonical = _COLUMN_NAMES.get(_column_key(cell))
        if canonical is None and ignore_unknown:
            columns.append(IGNORED)
            continue
        if canonical is None:
            unknown.append(cell)
        elif canonical in columns:
            raise InvalidInputError(f"line {line}: column {canonical!r} appears twice")
        columns.append(canonical)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        expected = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        raise InvalidInputError(
            f"line {line}: unknown column(s) {names}; expected: {expected} "
            "(or the French prenom, nom, profil, mail_perso, date_fin, id_externe, arrivee); "
            "--ignore-unknown-columns skips them"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InvalidInputError(f"line {line}: missing required column(s) {', '.join(missing)}")
    return columns


class _RowValidator:
    """Checks rows one by one and remembers the valid ones to spot duplicates."""

    def __init__(self, columns: list[str | None], profiles: Collection[str]) -> None:
        self.columns = columns
        self.profiles = set(profiles)
        self.profiles_folded = {key.casefold(): key for key in profiles}
        self.seen: dict[tuple[str, ...], int] = {}

    def check(self, line: int, fields: list[str]) -> IntakeRow | RowError:
        """The valid row, or the error naming every problem found in it."""
        raw = self._raw(fields)
        if len(fields) != len(self.columns):
            return RowError(line, f"expected {len(self.columns)} fields, found {len(fields)}", raw)
        reasons: list[str] = []
        for index, (column, value) in enumerate(zip(self.columns, fields, strict=True), 1):
            if column == IGNORED:
                continue
            if _LINE_BREAK_OR_NUL.search(value):
                reasons.append(
                    f"{column or f'column {index}'}: line breaks and NUL are not allowed"
                )
            elif column is None and value.strip():
                reasons.append(f"column {index} has no header but holds {value!r}")
        if reasons:
            return RowError(line, "; ".join(reasons), raw)
        row = self._build(line, raw, reasons)
        if row is None:
            return RowError(line, "; ".join(reasons), raw)
        key = _duplicate_key(row)
        if key in self.seen:
            what = "external id" if row.external_id else "names, profile and personal address"
            return RowError(line, f"duplicate of line {self.seen[key]} (same {what})", raw)
        self.seen[key] = line
        return row

    def _raw(self, fields: list[str]) -> Mapping[str, str]:
        """The fields by column name; unnamed or extra fields are ``column_<number>``."""
        named: dict[str, str] = {}
        for index, value in enumerate(fields, 1):
            column = self.columns[index - 1] if index <= len(self.columns) else None
            named[column if column and column != IGNORED else f"column_{index}"] = value
        return types.MappingProxyType(named)

    def _build(self, line: int, raw: Mapping[str, str], reasons: list[str]) -> IntakeRow | None:
        """Build the row, or append the reasons it is refused and return None."""
        name = None
        try:
            name = PersonName(raw["given_name"], raw["surname"])
        except InvalidInputError as exc:
            reasons.append(exc.message)
        profile = _parse_field(raw, "profile", self._profile, reasons, required=True)
        email = _parse_field(raw, "personal_email", validate_email, reasons, required=True)
        end = _parse_field(raw, "end_of_activity", parse_date, reasons)
        arrival = _parse_field(raw, "arrival", parse_date, reasons)
        external_id = _parse_field(raw, "external_id", check_external_id, reasons)
        if end and arrival and end < arrival:
            reasons.append(f"end_of_activity {end} is before arrival {arrival}")
        if reasons or name is None or profile is None or email is None:
            return None
        return IntakeRow(line, name, profile, email, end, external_id, arrival)

    def _profile(self, value: str) -> str:
        if value in self.profiles:
            return value
        found = self.profiles_folded.get(value.casefold())
        if found is None:
            known = ", ".join(sorted(self.profiles))
            raise InvalidInputError(f"unknown profile {value!r} (configured: {known})")
        return found


def _parse_field(
    raw: Mapping[str, str],
    column: str,
    parse: Callable[[str], _Value],
    reasons: list[str],
    *,
    required: bool = False,
) -> _Value | None:
    """Parse one field; None when it is empty or refused (the reason is appended)."""
    value = raw.get(column, "").strip()
    if not value:
        if required:
            reasons.append(f"{column} is empty")
        return None
    try:
        return parse(value)
    except InvalidInputError as exc:
        reasons.append(f"{column}: {exc.message}")
        return None


def check_external_id(value: str) -> str:
    """An HR or student-system identifier: 1 to 64 letters, digits, dots, underscores, hyphens."""
    if not _EXTERNAL_ID.fullmatch(value):
        raise InvalidInputError(
            f"{value!r} is not valid: 1 to 64 letters, digits, dots, underscores or hyphens"
        )
    return value


def _duplicate_key(row: IntakeRow) -> tuple[str, ...]:
    if row.external_id:
        return ("external_id", row.external_id.casefold())
    return (
        "person",
        row.name.given_name.casefold(),
        row.name.surname.casefold(),
        row.profile,
        row.personal_email.casefold(),
    )


# --- other lists HR hands over: the same encodings, delimiters and header rules ------------


@dataclass(frozen=True)
class Table:
    """A CSV file read as the intake reads one: each non-empty row by canonical column."""

    rows: tuple[tuple[int, Mapping[str, str]], ...]
    header: tuple[str, ...]
    encoding: str
    delimiter: str
    ignored: tuple[str, ...] = ()
    """Unknown columns skipped (``ignore_unknown``)."""
    records: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Every data row's fields as written, by line (for a file of refused rows)."""


def read_table(
    data: bytes,
    names: Mapping[str, str],
    required: Collection[str],
    *,
    what: str,
    ignore_unknown: bool = False,
) -> Table:
    """Decode and split a file of ``names`` (header cell key -> canonical column).

    The intake's rules: UTF-8 (BOM or not) or Windows-1252, comma or semicolon, header
    names folded (case, accents, spaces and hyphens), an unknown (unless ``ignore_unknown``),
    missing or repeated column stops the whole file (InvalidInputError), at most
    ``MAX_INTAKE_ROWS`` rows.
    """
    if len(data) > MAX_INTAKE_BYTES:
        raise InvalidInputError(f"the file is {len(data)} bytes, more than {MAX_INTAKE_BYTES}")
    text, encoding = _decode(data)
    if not text.strip():
        raise InvalidInputError(f"the file is empty: expected a header row and one row per {what}")
    delimiter = _detect_delimiter(text)
    records = _records(text, delimiter)
    first = next(records, None)
    if first is None:
        raise InvalidInputError("the file has no header row")
    header_line, header = first
    columns: list[str | None] = []
    ignored: list[str] = []
    for cell in header:
        canonical = names.get(_column_key(cell)) if cell.strip() else None
        if cell.strip() and canonical is None and ignore_unknown:
            ignored.append(cell)
            canonical = f"{_IGNORED}{len(ignored)}"
        elif cell.strip() and canonical is None:
            expected = ", ".join(sorted(set(names)))
            raise InvalidInputError(
                f"line {header_line}: unknown column {cell!r}; expected: {expected}"
            )
        if canonical is not None and canonical in columns:
            raise InvalidInputError(f"line {header_line}: column {canonical!r} appears twice")
        columns.append(canonical)
    missing = [name for name in required if name not in columns]
    if missing:
        raise InvalidInputError(
            f"line {header_line}: missing required column(s) {', '.join(missing)}"
        )
    rows: list[tuple[int, Mapping[str, str]]] = []
    written: dict[int, tuple[str, ...]] = {}
    for count, (line, fields) in enumerate(records, start=1):
        if count > MAX_INTAKE_ROWS:
            raise InvalidInputError(f"line {line}: more than {MAX_INTAKE_ROWS} rows; split it")
        written[line] = tuple(fields)
        named = {
            column or f"column_{index}": value
            for index, (column, value) in enumerate(zip(columns, fields, strict=False), 1)
        }
        if len(fields) != len(columns):
            named["_error"] = f"expected {len(columns)} fields, found {len(fields)}"
        rows.append((line, types.MappingProxyType(named)))
    return Table(
        tuple(rows),
        tuple(header),
        encoding,
        delimiter,
        tuple(ignored),
        types.MappingProxyType(written),
    )


_IGNORED = "_ignored_"
"""The prefix of a skipped unknown column's key in a row (never a column of ``names``)."""


# --- the HR departures list (``umacct suspend --csv FILE``) --------------------------------
# Columns ``account`` (an identifier, uid, login alias or external id), ``end_of_activity``
# (empty: the profile's end-date attribute, else yesterday) and ``reason`` (empty:
# ``--reason``); French ``compte``, ``date_fin``, ``motif``. Read as the intake is; a bad row
# is refused with its line and every reason, the others go on; a repeated account is refused.

DEPARTURE_COLUMNS = {
    "account": "account", "compte": "account",
    "end_of_activity": "end_of_activity", "date_fin": "end_of_activity",
    "reason": "reason", "motif": "reason",
}  # fmt: skip
MAX_ACCOUNT_LENGTH = 256
MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class Departure:
    """One valid row: whose activity ends, on which day, why."""

    line: int
    account: str
    end_of_activity: date | None
    reason: str | None


@dataclass(frozen=True)
class RefusedRow:
    """A row refused before anything changed."""

    line: int
    reason: str


@dataclass(frozen=True)
class Departures:
    """The whole file: the valid rows and the refused ones."""

    rows: tuple[Departure, ...]
    errors: tuple[RefusedRow, ...]
    encoding: str
    delimiter: str = ","
    header: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    """Unknown columns skipped (``ignore_unknown_columns``)."""
    records: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Every data row's fields as written, by line (for ``--rejects``)."""

    @property
    def french(self) -> bool:
        """Whether the header uses the French column names (``compte``, ``motif``...)."""
        return any(_column_key(cell) in ("compte", "date_fin", "motif") for cell in self.header)


def read_departures(data: bytes, *, ignore_unknown_columns: bool = False) -> Departures:
    """Read and check the departures list; InvalidInputError for a whole-file problem."""
    table = read_table(
        data,
        DEPARTURE_COLUMNS,
        ("account",),
        what="departing person",
        ignore_unknown=ignore_unknown_columns,
    )
    rows: list[Departure] = []
    errors: list[RefusedRow] = []
    seen: dict[str, int] = {}
    for line, raw in table.rows:
        reasons = [raw["_error"]] if "_error" in raw else []
        reasons += _stray(raw)
        account = _departing_account(raw.get("account", ""), reasons)
        end = _departure_day(raw.get("end_of_activity", ""), reasons)
        reason = _departure_reason(raw.get("reason", ""), reasons)
        if account and account.casefold() in seen and not reasons:
            reasons.append(f"duplicate of line {seen[account.casefold()]} (same account)")
        if reasons or account is None:
            errors.append(RefusedRow(line, "; ".join(reasons)))
            continue
        seen[account.casefold()] = line
        rows.append(Departure(line, account, end, reason))
    return Departures(
        tuple(rows), tuple(errors), table.encoding, table.delimiter, table.header,
        table.ignored, table.records,
    )  # fmt: skip


def _stray(raw: Mapping[str, str]) -> list[str]:
    return [
        f"{name.replace('_', ' ')} has no header but holds {value!r}"
        for name, value in raw.items()
        if name.startswith("column_") and value.strip()
    ]


def _departing_account(value: str, reasons: list[str]) -> str | None:
    text = unicodedata.normalize("NFKC", value.strip())
    if not text:
        reasons.append("account is empty")
        return None
    if len(text) > MAX_ACCOUNT_LENGTH or any(unicodedata.category(c)[0] == "C" for c in text):
        reasons.append(f"account {value!r}: control characters or too long")
        return None
    return text


def _departure_day(value: str, reasons: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return parse_date(value)
    except InvalidInputError as error:
        reasons.append(f"end_of_activity: {error.message}")
        return None


def _departure_reason(value: str, reasons: list[str]) -> str | None:
    text = value.strip()
    if not text:
        return None
    if _LINE_BREAK_OR_NUL.search(text) or any(
        unicodedata.category(c) in ("Cc", "Cf") for c in text
    ):
        reasons.append("reason: control, line-break or invisible characters are not allowed")
        return None
    if len(text) > MAX_REASON_LENGTH:
        reasons.append(f"reason is {len(text)} characters long (at most {MAX_REASON_LENGTH})")
        return None
    return text
