"""The intake file parser (umacct.intake)."""

from __future__ import annotations

import contextlib
import csv
import io
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct import intake
from umacct.errors import InvalidInputError
from umacct.identifiers import PersonName, clean_name
from umacct.intake import Intake, IntakeRow, parse_date, read_intake, validate_email

PROFILES = ("etudiant", "titulaire", "contractuel")
HEADER = "given_name,surname,profile,personal_email,end_of_activity,external_id,arrival"


def read(text: str, encoding: str = "utf-8") -> Intake:
    return read_intake(text.encode(encoding), profiles=PROFILES)


def single_error(text: str) -> str:
    result = read(text)
    assert not result.rows
    assert len(result.errors) == 1
    return result.errors[0].reason


# --- validate_email -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "normalised"),
    [
        ("jean.dupont@example.org", "jean.dupont@example.org"),
        ("Jean.Dupont@Example.ORG", "Jean.Dupont@example.org"),
        ("  jean@example.org ", "jean@example.org"),
        ("jean@exämple.fr", "jean@xn--exmple-cua.fr"),
        ("jean+tag@sub.example.org", "jean+tag@sub.example.org"),
    ],
)
def test_validate_email_normalises(address: str, normalised: str) -> None:
    assert validate_email(address) == normalised


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("jean@example.org\r\nBcc: x@example.org", "line breaks"),  # security 13
        ("jean@example.org\n", "line breaks"),
        ("jean\0@example.org", "line breaks"),
        ("jean@[192.0.2.1]", "bracketed IP"),
        ("jean@[IPv6:2001:db8::1]", "bracketed IP"),
        ('"jean dupont"@example.org', "Quoting"),
        ("Jean <jean@example.org>", "display name"),
        ("jéan@example.org", "Internationalized"),
        ("jean", "@"),
        ("jean@localhost", "period"),
        ("jean@@example.org", "not valid"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_validate_email_refuses(address: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        validate_email(address)


# --- parse_date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-09-01", date(2026, 9, 1)),
        (" 2026-09-01 ", date(2026, 9, 1)),
        ("01/09/2026", date(2026, 9, 1)),
        ("1/9/2026", date(2026, 9, 1)),
        ("29/02/2028", date(2028, 2, 29)),
    ],
)
def test_parse_date(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-02-30", "does not exist: February 2026 has 28 days"),
        ("30/02/2026", "does not exist"),
        ("2026-04-31", "April 2026 has 30 days"),
        ("2026-13-01", "no month 13"),
        ("2026-00-10", "no month 0"),
        ("2026-01-00", "does not exist"),
        ("0000-01-01", "no year 0"),
        ("09/01/26", "expected YYYY-MM-DD or DD/MM/YYYY"),
        ("2026/09/01", "expected"),
        ("2026-9-1", "expected"),
        ("tomorrow", "expected"),
        ("\uff12\uff10\uff12\uff16-09-01", "expected"),
    ],
)
def test_parse_date_refuses(text: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        parse_date(text)


# --- whole files --------------------------------------------------------------------------


def test_reads_a_comma_file() -> None:
    result = read(
        f"{HEADER}\n"
        "Jean,Dupont,etudiant,jean.dupont@example.org,2027-06-30,E123,2026-09-01\n"
        "Zoë,N'Diaye,titulaire,Zoe@Example.org,,,\n"
    )
    assert result.delimiter == ","
    assert result.encoding == "utf-8"
    assert result.errors == ()
    assert result.rows == (
        IntakeRow(
            line=2,
            name=PersonName("Jean", "Dupont"),
            profile="etudiant",
            personal_email="jean.dupont@example.org",
            end_of_activity=date(2027, 6, 30),
            external_id="E123",
            arrival=date(2026, 9, 1),
        ),
        IntakeRow(
            3, PersonName("Zoë", "N'Diaye"), "titulaire", "Zoe@example.org", None, None, None
        ),
    )


def test_reads_an_excel_cp1252_semicolon_file_with_french_headers() -> None:
    data = (
        "Prénom;Nom;Profil;Mail perso;Date-fin;ID externe;Arrivée\r\n"
        "Hélène;Lætitia-Œillet;Etudiant;helene@example.org;30/06/2027;;01/09/2026\r\n"
    ).encode("cp1252")
    result = read_intake(data, profiles=PROFILES)
    assert result.encoding == "cp1252"
    assert result.delimiter == ";"
    assert result.errors == ()
    (row,) = result.rows
    assert row.name == PersonName("Hélène", "Lætitia-Œillet")
    assert row.profile == "etudiant"
    assert row.end_of_activity == date(2027, 6, 30)
    assert row.arrival == date(2026, 9, 1)
    assert row.name.local_part == "helene.laetitia-oeillet"


def test_reads_utf8_with_bom() -> None:
    data = "\ufeffprenom;nom;profil;mail_perso\nÉmile;Zola;etudiant;emile@example.org\n"
    result = read_intake(data.encode("utf-8"), profiles=PROFILES)
    assert result.encoding == "utf-8-sig"
    assert result.rows[0].name.given_name == "Émile"


def test_delimiter_inside_quotes_does_not_count() -> None:
    # A name may not hold a comma or a semicolon: the row is refused for that reason, which
    # shows the quoted delimiter was read as part of the field and not as a separator.
    data = '"given_name",surname,profile,personal_email\n"Jean; Paul","Martin; Dupont",etudiant,jp@example.org\n'
    parsed = read(data)
    assert parsed.delimiter == ","
    assert "';' is not allowed in a name" in parsed.errors[0].reason
    semicolons = 'given_name;surname;profile;personal_email\n"Jean, Paul";"Martin, Dupont";etudiant;jp@example.org\n'
    parsed = read(semicolons)
    assert parsed.delimiter == ";"
    assert "',' is not allowed in a name" in parsed.errors[0].reason


def test_blank_rows_are_skipped_silently_and_lines_still_count() -> None:
    result = read(
        "\n"
        "given_name,surname,profile,personal_email\n"
        "\n"
        ",,,\n"
        "Jean,Martin,etudiant,jean@example.org\n"
    )
    assert result.errors == ()
    assert [row.line for row in result.rows] == [5]


def test_unnamed_empty_columns_are_allowed_when_empty() -> None:
    result = read(
        "given_name;surname;profile;personal_email;;\n"
        "Jean;Martin;etudiant;jean@example.org;;\n"
        "Paul;Martin;etudiant;paul@example.org;;oops\n"
    )
    assert [row.line for row in result.rows] == [2]
    assert result.errors[0].line == 3
    assert "column 6 has no header but holds 'oops'" in result.errors[0].reason
    assert result.errors[0].raw["column_6"] == "oops"


def test_profile_is_matched_without_case() -> None:
    result = read("given_name,surname,profile,personal_email\nA,B,TITULAIRE,a@example.org\n")
    assert result.rows[0].profile == "titulaire"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"\xff\xfeg\x00i\x00", "UTF-16"),
        (b"\xef\xbb\xbfgiven_name,\xff", "byte-order mark"),
        (b"given_name,surname\x81\x8d", "neither UTF-8 nor Windows-1252"),
        (b"given_name surname profile", "cannot tell the delimiter"),
        (b"a,b;c\n", "cannot tell the delimiter"),
        (b"given_name,surname,profile\n", "missing required column.*personal_email"),
        (b"given_name,surname,profile,personal_email,date_fn\n", "unknown column.*'date_fn'"),
        (b"given_name,surname,profile,personal_email,nom\n", "'surname' appears twice"),
        (b'given_name,surname,profile,personal_email\nJean,"Mar\n', "line 2: cannot read"),
        (b'given_name,surname,profile,personal_email\nJean,"Ma"rtin,x,y\n', "line 2"),
    ],
)
def test_whole_file_errors(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        read_intake(data, profiles=PROFILES)


def test_header_only_gives_nothing_to_do() -> None:
    result = read("given_name,surname,profile,personal_email\n")
    assert result.rows == ()
    assert result.errors == ()


def test_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_INTAKE_ROWS", 2)
    rows = "".join(f"A,B{n},etudiant,a{n}@example.org\n" for n in range(3))
    with pytest.raises(InvalidInputError, match="line 4: more than 2 rows"):
        read(f"given_name,surname,profile,personal_email\n{rows}")


def test_too_large_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_INTAKE_BYTES", 10)
    with pytest.raises(InvalidInputError, match="more than 10"):
        read("given_name,surname,profile,personal_email\n")


# --- row errors ---------------------------------------------------------------------------

SHORT_HEADER = "given_name,surname,profile,personal_email,end_of_activity,external_id,arrival\n"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("Jean,Martin,etudiant,jean@,,,", "personal_email: address 'jean@' is not valid"),
        ("Jean,Martin,etudiant,jean@[192.0.2.1],,,", "bracketed IP"),
        ('Jean,Martin,etudiant,"""jean m""@example.org",,,', "Quoting"),
        ("Jean,Martin,doctorant,jean@example.org,,,", "unknown profile 'doctorant'"),
        ("Jean,Martin,etudiant,jean@example.org,2026-02-30,,", "February 2026 has 28 days"),
        ("Jean,Martin,etudiant,jean@example.org,,,31/04/2026", "arrival: date"),
        ("Jean,Martin,etudiant,jean@example.org,2026-01-01,,2026-09-01", "before arrival"),
        ("Jean,Martin,etudiant,jean@example.org,,id with space,", "external_id"),
        ("Jean,Martin,etudiant,jean@example.org,,,,extra", "expected 7 fields, found 8"),
        ("Jean,Martin,etudiant", "expected 7 fields, found 3"),
        ('"Jean\nPierre",Martin,etudiant,jean@example.org,,,', "given_name: line breaks"),
        ('Jean,"Martin\r",etudiant,jean@example.org,,,', "surname: line breaks"),
        ("Jean,Mar\u202etin,etudiant,jean@example.org,,,", "U+202E"),
        ("王,伟,etudiant,wang@example.org,,,", "give a Latin transcription"),
        (" ,Martin,etudiant,jean@example.org,,,", "given name is empty"),
        ("Jean,Martin,,,,,", "profile is empty; personal_email is empty"),
    ],
)
def test_row_errors(row: str, reason: str) -> None:
    assert reason in single_error(SHORT_HEADER + row + "\n")


def test_a_bad_row_does_not_stop_the_others() -> None:
    result = read(
        SHORT_HEADER + "A,B,etudiant,bad,,,\n"
        "C,D,etudiant,c@example.org,,,\n"
        "E,F,nope,e@example.org,2026-02-30,,\n"
        "G,H,etudiant,g@example.org,,,\n"
    )
    assert [row.line for row in result.rows] == [3, 5]
    assert [error.line for error in result.errors] == [2, 4]
    assert "unknown profile" in result.errors[1].reason
    assert "end_of_activity" in result.errors[1].reason
    assert result.errors[1].raw["profile"] == "nope"


def test_duplicates_are_reported_with_the_first_line() -> None:
    result = read(
        SHORT_HEADER + "Jean,Martin,etudiant,jean@example.org,,E1,\n"
        "Jeanne,Martin,etudiant,jeanne@example.org,,E1,\n"
        "Paul,Durand,etudiant,paul@example.org,,,\n"
        "paul, durand ,etudiant,Paul@Example.org,,,\n"
        "Paul,Durand,titulaire,paul@example.org,,,\n"
    )
    assert [row.line for row in result.rows] == [2, 4, 6]
    assert [(error.line, error.reason) for error in result.errors] == [
        (3, "duplicate of line 2 (same external id)"),
        (5, "duplicate of line 4 (same names, profile and personal address)"),
    ]


def test_line_numbers_count_multi_line_fields_and_crlf() -> None:
    result = read(
        "given_name,surname,profile,personal_email\r\n"
        '"Jean\r\nPierre",Martin,etudiant,jp@example.org\r\n'
        "\r\n"
        'Anne,"Le\n\nGoff",etudiant,anne@example.org\r\n'
        "Paul,Durand,etudiant,paul@example.org\r\n"
    )
    assert [error.line for error in result.errors] == [2, 5]
    assert [row.line for row in result.rows] == [8]


# --- properties ---------------------------------------------------------------------------


def _acceptable(name: str) -> bool:
    try:
        clean_name(name)
    except InvalidInputError:
        return False
    return True


# What a name may hold (letters, marks, digits, spaces, dashes, apostrophes, dots), without
# the rare combinations clean_name refuses (a word mixing scripts, a fraction after NFKC).
unicode_names = st.builds(
    str.__add__,
    st.sampled_from(["A", "é", "Ø", "Jean ", "Œ"]),
    st.text(
        st.characters(codec="utf-8", categories=["L", "M", "N", "Zs", "Pd"])
        | st.sampled_from("'."),
        max_size=30,
    ),
).filter(_acceptable)
# Letters from Windows-1252's upper half only (0xC0-0xFF): their bytes can never form
# UTF-8, so the file is read back as Windows-1252, as Excel wrote it.
cp1252_names = st.text(
    st.sampled_from("ABCabcxyz -'.ÀÂÇÉÈÊËÎÏÔÙÛÜàâçéèêëîïôùûüÿñÑ"), min_size=1, max_size=30
).map(lambda name: "A" + name)
dates = st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31))


def _person(names: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str, str, date | None]]:
    return st.tuples(names, names, st.sampled_from(PROFILES), st.none() | dates)


def _write(
    people: list[tuple[str, str, str, date | None]], delimiter: str, french_dates: bool
) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Prénom", "Nom", "Profil", "Mail perso", "Date fin", "ID externe"])
    for index, (given_name, surname, profile, end) in enumerate(people):
        end_text = "" if end is None else end.strftime("%d/%m/%Y" if french_dates else "%Y-%m-%d")
        writer.writerow(
            [given_name, surname, profile, f"p{index}@Example.org", end_text, f"ID-{index}"]
        )
    return buffer.getvalue()


def _check_round_trip(
    people: list[tuple[str, str, str, date | None]], result: Intake, delimiter: str
) -> None:
    assert result.errors == ()
    assert result.delimiter == delimiter
    expected = [
        IntakeRow(
            line=index + 2,
            name=PersonName(given_name, surname),
            profile=profile,
            personal_email=f"p{index}@example.org",
            end_of_activity=end,
            external_id=f"ID-{index}",
            arrival=None,
        )
        for index, (given_name, surname, profile, end) in enumerate(people)
    ]
    assert list(result.rows) == expected


@given(
    st.lists(_person(unicode_names), max_size=8),
    st.sampled_from([",", ";"]),
    st.sampled_from(["utf-8", "utf-8-sig"]),
    st.booleans(),
)
def test_round_trip_unicode(
    people: list[tuple[str, str, str, date | None]], delimiter: str, encoding: str, french: bool
) -> None:
    text = _write(people, delimiter, french)
    result = read_intake(text.encode(encoding), profiles=PROFILES)
    _check_round_trip(people, result, delimiter)
    assert result.encoding == encoding


@given(st.lists(_person(cp1252_names), min_size=1, max_size=8), st.sampled_from([",", ";"]))
def test_round_trip_cp1252(people: list[tuple[str, str, str, date | None]], delimiter: str) -> None:
    text = _write(people, delimiter, french_dates=True)
    result = read_intake(text.encode("cp1252"), profiles=PROFILES)
    _check_round_trip(people, result, delimiter)
    assert result.encoding in ("cp1252", "utf-8")


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans()), max_size=12))
def test_line_numbers_with_embedded_newlines(layout: list[tuple[int, int, bool]]) -> None:
    """Each record: blank lines before it, newlines inside its surname, and a line ending."""
    lines = ["given_name;surname;profile;personal_email\n"]
    expected_rows: list[int] = []
    expected_errors: list[int] = []
    line = 2
    for index, (blank_lines, inner_newlines, crlf) in enumerate(layout):
        end = "\r\n" if crlf else "\n"
        lines.append(end * blank_lines)
        line += blank_lines
        surname = "Mar" + "\n" * inner_newlines + "tin"
        (expected_errors if inner_newlines else expected_rows).append(line)
        lines.append(f'Jean;"{surname}";etudiant;p{index}@example.org{end}')
        line += 1 + inner_newlines
    result = read("".join(lines))
    assert [row.line for row in result.rows] == expected_rows
    assert [error.line for error in result.errors] == expected_errors


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_invalid_input(data: bytes) -> None:
    with contextlib.suppress(InvalidInputError):
        read_intake(data, profiles=PROFILES)


@settings(max_examples=300)
@given(st.text(st.sampled_from(list(';,"\r\n \0aé@.-/0123456789\u2028\x85')), max_size=200))
def test_arbitrary_rows_after_a_good_header_raise_only_invalid_input(body: str) -> None:
    try:
        result = read("given_name;surname;profile;personal_email;date_fin;;arrivee\n" + body)
    except InvalidInputError:
        return
    for lines in ([row.line for row in result.rows], [error.line for error in result.errors]):
        assert lines == sorted(set(lines))
        assert all(line >= 2 for line in lines)
