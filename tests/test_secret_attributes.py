"""Secret attributes known by schema, whatever their spelling (security requirement 33).

The audit log redacts the values of ``userPassword`` whether it is written ``2.5.4.35``,
``USERPASSWORD``, ``userPassword;binary`` or ``OID.2.5.4.35``, and likewise every secret
attribute of the table in ``umacct.secret_attributes``, in changes and in details.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from umacct.audit import REDACTED, AuditLog, redact_changes, redact_details
from umacct.clock import FixedClock
from umacct.secret_attributes import SECRET_ATTRIBUTES, attribute_key, is_secret_attribute

SECRET = "S3cret-Hash-Value"
SPELLINGS = [
    "userPassword",
    "2.5.4.35",
    "userpassword;binary",
    "USERPASSWORD",
    "UserPassword;BINARY",
    "userPassword;lang-fr;binary",
    "OID.2.5.4.35",
    "oid.2.5.4.35;binary",
    "2.5.4.035",
    " userPassword ",
    "ｕｓｅｒＰａｓｓｗｏｒｄ",  # noqa: RUF001 - full-width letters fold to ASCII under NFKC
    "user\u200bPassword",
    "authPassword",
    "1.3.6.1.4.1.4203.1.3.4",
    "AUTHPASSWORD;binary",
    "sambaNTPassword",
    "sambaLMPassword",
    "sambaPasswordHistory",
    "pwdHistory",
    "PWDHISTORY",
    "1.3.6.1.4.1.42.2.27.8.1.20",
    "unicodePwd",
    "1.2.840.113556.1.4.90",
    "krbPrincipalKey",
    "userPKCS12;binary",
    "olcRootPW",
    "clientSecret",
    "resetToken",
]
NOT_SECRET = [
    "mail",
    "cn",
    "pwdEndTime",
    "pwdChangedTime",
    "pwdAccountLockedTime",
    "2.5.4.3",
    "supannMailPerso",
    "secretary",
    "0.9.2342.19200300.100.1.21",
    "description",
]


@pytest.mark.parametrize("name", SPELLINGS)
def test_sec33_a_secret_attribute_is_redacted_in_changes_and_details(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, FixedClock(datetime(2027, 6, 30, tzinfo=UTC)))
    record = log.append(
        "passwd",
        "alice@univ.example",
        {name: {"before": [f"{{SSHA}}{SECRET}"], "after": [SECRET]}},
        entry={name: [SECRET], "cn": ["Alice"]},
        attributes=[{name: SECRET}],
        **{name: SECRET},
    )
    assert SECRET not in path.read_text(encoding="utf-8")
    assert SECRET not in repr(record)
    [change] = record.changes.values()
    assert change == {"before": [REDACTED], "after": [REDACTED]}
    assert record.details["entry"]["cn"] == ["Alice"]  # type: ignore[index]


@pytest.mark.parametrize("name", NOT_SECRET)
def test_sec33_other_attributes_stay_readable(name: str) -> None:
    changes = redact_changes({name: {"before": ["20270630000000Z"], "after": []}})
    assert changes[name]["before"] == ["20270630000000Z"]
    assert redact_details({name: "kept"}) == {name: "kept"}


def _spelt_anyhow(draw: st.DrawFn, name: str) -> str:
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in name)
    options = draw(st.lists(st.sampled_from(["binary", "lang-fr", "x-site"]), max_size=2))
    prefix = draw(st.sampled_from(["", "OID.", "oid."])) if name[0].isdigit() else ""
    return prefix + cased + "".join(f";{option}" for option in options)


@st.composite
def secret_spellings(draw: st.DrawFn) -> str:
    attribute = draw(st.sampled_from(SECRET_ATTRIBUTES))
    name = draw(st.sampled_from([attribute.oid, *attribute.names]))
    return _spelt_anyhow(draw, name)


@given(name=secret_spellings())
def test_sec33_every_spelling_of_every_secret_attribute_is_redacted(name: str) -> None:
    assert is_secret_attribute(name)
    assert redact_changes({name: {"after": [SECRET]}}) == {name: {"after": [REDACTED]}}
    assert redact_details({"nested": {name: [SECRET]}}) == {"nested": {name: REDACTED}}


def test_sec33_the_table_folds_names_and_oids_to_one_key() -> None:
    assert attribute_key("UserPassword;binary") == attribute_key("userpassword") == "userpassword"
    assert attribute_key("OID.2.5.4.035;binary") == "2.5.4.35"
    assert all(attribute.oid == attribute_key(attribute.oid) for attribute in SECRET_ATTRIBUTES)
    assert len({attribute.oid for attribute in SECRET_ATTRIBUTES}) == len(SECRET_ATTRIBUTES)
