"""The audit records' one-pass redaction and escaping (a bulk intake writes thousands): the very
records, byte for byte, that redacting then escaping each text gives, on any text at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from hypothesis import example, given, settings
from hypothesis import strategies as st

from umacct.audit import (
    AuditLog,
    AuditRecord,
    _audited_changes,
    _audited_details,
    _escape_changes,
    _escape_details,
    redact_changes,
    redact_details,
)

# Any code point: controls, NUL, lone surrogates, bidi overrides, separators, private use...
NASTY = ["\x00", "\x1b[31m", "\u202e", "\u2028", "\ud800", "\udc80", "\u200b", "\x85", "\xa0"]
TEXT = st.text(alphabet=st.characters(), max_size=8) | st.sampled_from(["", "é", "a b", *NASTY])
NAME = TEXT | st.sampled_from(["userPassword", "USERPASSWORD;binary", "2.5.4.35", "mail", "cn"])
VALUE = TEXT | st.integers() | st.none()
CHANGES = st.dictionaries(
    NAME, st.dictionaries(TEXT | st.sampled_from(["before", "after"]), st.lists(VALUE, max_size=4))
)
SCALAR = TEXT | st.integers() | st.floats() | st.booleans() | st.none()
DETAIL = st.recursive(
    SCALAR | st.builds(Path, st.sampled_from(["/tmp/a", "/x\u202ey"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
DETAILS = st.dictionaries(NAME | st.sampled_from(["line", "token", "forced_date"]), DETAIL)


def shapes(value: object) -> object:
    """The value with the type of every leaf beside it: equal values of other types differ."""
    if isinstance(value, dict):
        return {(type(key), key): shapes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shapes(item) for item in value]
    return (type(value), json.dumps(value, default=str))


@settings(max_examples=400, deadline=None)
@given(changes=CHANGES)
@example(changes={"mail": {"before": [], "after": ["a@b.fr"]}})
@example(changes={"userPassword": {"before": ["old"], "after": []}})
@example(changes={"cn": {"after": ["Jean\u202eenaJ"]}})
@example(changes={"cn\x00": {"after": ["x"]}})
@example(changes={"cn": {"after\u2028": ["x"]}})
@example(changes={"cn": {"after": ["x", 3, None]}})
def test_changes_are_what_redacting_then_escaping_gives(changes: dict[str, object]) -> None:
    slow = _escape_changes(redact_changes(changes))  # type: ignore[arg-type]
    fast = _audited_changes(changes)  # type: ignore[arg-type]
    assert shapes(fast) == shapes(slow)


@settings(max_examples=400, deadline=None)
@given(details=DETAILS)
@example(details={"line": 3})
@example(details={"token": "abc", "line": 2})
@example(details={"reason\x1b": "x"})
@example(details={"reason": "x\u202ey"})
@example(details={"accounts": ["a", "b\x00"], "path": Path("/x")})
@example(details={"n": float("nan")})
def test_details_are_what_redacting_then_escaping_gives(details: dict[str, object]) -> None:
    assert shapes(_audited_details(details)) == shapes(_escape_details(redact_details(details)))


@settings(max_examples=400, deadline=None)
@given(changes=CHANGES, details=DETAILS, account=TEXT | st.none())
# orjson writes the line, then DEL and what is past ASCII are escaped as json escapes them; a
# lone surrogate (orjson refuses it) and details that are not texts are json's.
@example(changes={"cn": {"after": ["x"]}}, details={"line": 3}, account="a@b.fr")
@example(changes={}, details={}, account="a\x7fb")
@example(changes={"cn": {"after": ["Zoé"]}}, details={}, account="zoé")
@example(changes={"cn": {"after": ["😀 日本"]}}, details={"who": "Zoé"}, account="é\x7f😀")
@example(changes={}, details={}, account="\ud800")
@example(changes={}, details={"n": 2**70, "f": 1e16, "g": float("nan")}, account=None)
@example(changes={}, details={"path": Path("/x"), "when": datetime(2030, 1, 2)}, account=None)
def test_a_record_line_is_the_one_json_dumps_gave(
    changes: dict[str, object], details: dict[str, object], account: str | None
) -> None:
    record = AuditRecord(
        time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        actor="root",
        sudo_user=None,
        command="create",
        account=account,
        changes=MappingProxyType(_audited_changes(changes)),  # type: ignore[arg-type]
        result="ok",
        details=MappingProxyType(_audited_details(details)),
    )
    document = {
        "time": record.time.isoformat(),
        "actor": record.actor,
        "sudo_user": record.sudo_user,
        "command": record.command,
        "account": record.account,
        "changes": {name: dict(change) for name, change in record.changes.items()},
        "result": record.result,
        "details": dict(record.details),
    }
    expected = json.dumps(document, separators=(",", ":"), default=str)
    assert record.to_json() == expected
    assert record.to_line() == expected.encode("ascii")


class _Clock:
    def now(self) -> datetime:
        return datetime(2030, 1, 2, tzinfo=UTC)


def test_a_logged_record_is_redacted_and_escaped(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", _Clock())
    record = log.append(
        "create",
        "a\u202eb",
        {"userPassword": {"before": [], "after": ["s3cret"]}, "cn": {"after": ["x\x1by"]}},
        token="t0ken",
        line=4,
        note="n\x00",
    )
    line = (tmp_path / "audit.jsonl").read_text()
    assert "s3cret" not in line and "t0ken" not in line
    assert record.changes == {
        "userPassword": {"before": [], "after": ["<redacted>"]},
        "cn": {"after": ["x\\x1by"]},
    }
    assert record.account == "a\\u202eb"
    assert dict(record.details) == {"token": "<redacted>", "line": 4, "note": "n\\x00"}
    assert AuditRecord.from_json(line.strip()) == record


def test_a_record_keeps_its_own_copy_of_the_values(tmp_path: Path) -> None:
    # create hands the entry's own lists over: a later change of the entry (a new address
    # planned on it) must not change a record already made.
    log = AuditLog(tmp_path / "audit.jsonl", _Clock())
    values = ["a@b.fr"]
    secret = ["s3cret"]
    record = log.record(
        "create", "a", {"mail": {"after": values}, "userPassword": {"after": secret}}
    )
    values.append("x")
    secret.clear()
    assert record.changes == {
        "mail": {"after": ["a@b.fr"]},
        "userPassword": {"after": ["<redacted>"]},
    }
    line = log.record("create", "a", {"cn": {"after": values}}, note="\x00")
    values.append("y")
    assert line.changes == {"cn": {"after": ["a@b.fr", "x"]}}
