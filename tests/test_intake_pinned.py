"""A small intake's every output, pinned: the entries added (all their attributes), the audit
records (minus their times), the mails (headers and bodies, minus tokens and dates) and the
JSON report. The intake's speed work must leave all of it byte for byte the same.

Dates are written relative to the test's day (``D+n``), tokens as ``<token>``; the expected
outputs are in ``tests/data/intake_pinned_*.json`` (``UMACCT_REPIN=1`` rewrites it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from command_line import umacct
from days import TODAY, days
from people import add_person, outbox_mails

from umacct.services import create
from umacct.services.runtime import Runtime
from umacct.store import PurgeRecord

pytestmark = pytest.mark.usefixtures("directory_clean")
PINNED = Path(__file__).parent / "data" / "intake_pinned.json"
"""The expected outputs, one file per batch size (``intake_pinned_<size>.json``)."""
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"]  # fmt: skip
MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]  # fmt: skip


def _rows() -> list[str]:
    rows = ["given_name;surname;profile;personal_email;end_of_activity;external_id;arrival"]
    rows += [
        "Jean;Martin;etudiant;jean.m@example.net;;S100;",
        "Jean;Martin;etudiant;jean.m2@example.net;;S101;",  # a homonym: jean.martin2
        f"Zoé;Brun;vacataire;zoe@example.net;{days(200)};;",  # zoe.brun is purged: zoe.brun3
        f"Loïc;Noël;etudiant;loic@example.net;;S102;{days(10)}",  # pre-created
        "Anaïs;Le Goff;titulaire;anais@example.net;;P200;",
        "Hervé;Da Silva;etudiant;herve@example.net;;S103;",  # herve.da-silva exists
        "Côme;Hébert;etudiant;come@umontpellier.fr;;S104;",  # refused: inside the domain
        "Élise;Dubois;nobody;elise@example.net;;S105;",  # refused: unknown profile
        "Maëlys;Lefèvre;etudiant;maelys@example.net;;S106;",
        "Maëlys;Lefèvre;etudiant;maelys2@example.net;;S107;",
        "Anaïs;Brun;etudiant;anais.b@example.net;;x.y;",  # a purged uid, not its external id
    ]
    return rows


def _relative(match: re.Match[str], year: int, month: int, day: int) -> str:
    return f"D{(date(year, month, day) - TODAY).days:+d}"


def _normalised(text: str) -> str:
    text = re.sub(r"[A-Za-z0-9_-]{32,}", "<token>", text)
    text = re.sub(r"(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                  lambda m: "T" + _relative(m, int(m[1]), int(m[2]), int(m[3])), text)  # fmt: skip
    text = re.sub(r"(\d{4})-(\d{2})-(\d{2})",
                  lambda m: _relative(m, int(m[1]), int(m[2]), int(m[3])), text)  # fmt: skip
    text = re.sub(r"\b(\d{4})(\d{2})(\d{2})(\d{6})?Z",
                  lambda m: "G" + _relative(m, int(m[1]), int(m[2]), int(m[3])) + (
                      "t" if m[4] and m[4] != "000000" else ""), text)  # fmt: skip
    text = re.sub(r"(?<=:)(\d{4})(\d{2})(\d{2})(?=:|$)",
                  lambda m: "S" + _relative(m, int(m[1]), int(m[2]), int(m[3])), text)  # fmt: skip
    french = "|".join(MONTHS_FR)
    text = re.sub(rf"\b(\d{{1,2}})(?:er)? ({french}) (\d{{4}})",
                  lambda m: "F" + _relative(m, int(m[3]), MONTHS_FR.index(m[2]) + 1, int(m[1])),
                  text)  # fmt: skip
    english = "|".join(MONTHS_EN)
    text = re.sub(rf"\b({english}) (\d{{1,2}}), (\d{{4}})",
                  lambda m: "E" + _relative(m, int(m[3]), MONTHS_EN.index(m[1]) + 1, int(m[2])),
                  text)  # fmt: skip
    text = re.sub(rf"\b(\d{{1,2}}) ({english}) (\d{{4}})",
                  lambda m: "E" + _relative(m, int(m[3]), MONTHS_EN.index(m[2]) + 1, int(m[1])),
                  text)  # fmt: skip
    return text


def _outputs(runtime: Runtime, stdout: str, stderr: str, folder: Path) -> dict[str, Any]:
    people = runtime.config.directory.people_dn
    entries = {
        entry.dn: {name: sorted(values) for name, values in sorted(entry.attributes.items())}
        for entry in runtime.directory.search(people, "(uid=*)", ["*"], scope="one")
    }
    audit = [
        {key: value for key, value in json.loads(record.to_json()).items() if key != "time"}
        for record in runtime.audit.read()
    ]
    mails = []
    for message in outbox_mails(runtime):
        headers = [(name, str(value)) for name, value in message.items()
                   if name.lower() not in ("date", "message-id")]  # fmt: skip
        bodies = [str(part.get_content()) for part in message.walk() if not part.is_multipart()]
        mails.append({"headers": headers, "bodies": bodies})
    mails.sort(key=lambda mail: json.dumps(mail, ensure_ascii=False))
    document = {"entries": dict(sorted(entries.items())), "audit": audit, "mails": mails,
                "report": json.loads(stdout.replace(str(folder), "<tmp>")),
                "stderr": stderr.replace(str(folder), "<tmp>")}  # fmt: skip
    return _walked(document)


def _walked(value: Any) -> Any:
    if isinstance(value, str):
        return _normalised(value)
    if isinstance(value, dict):
        return {_normalised(key): _walked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walked(item) for item in value]
    return value


@pytest.mark.parametrize("batch_size", [200, 4])
def test_a_small_intake_gives_exactly_the_pinned_outputs(
    on: Callable[[date], Runtime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    monkeypatch.setattr(create, "BATCH_SIZE", batch_size)  # one batch, then several
    pinned = PINNED.with_name(f"intake_pinned_{batch_size}.json")
    runtime = on(TODAY)
    add_person(runtime, "herve.da-silva", profile="etudiant", since=days(-90),
               extra={"supannEtuId": ["S103"]})  # fmt: skip
    purged_at = datetime.combine(days(-30), datetime.min.time(), UTC)
    for uid, external_id in (("zoe.brun", "V1"), ("zoe.brun2", None), ("x.y", "V2")):
        runtime.store.record_purge(PurgeRecord(
            f"{uid}@umontpellier.fr", uid, f"uid={uid},{runtime.config.directory.people_dn}",
            tmp_path / f"{uid}.ldif", purged_at, external_id=external_id,
        ))  # fmt: skip
    intake = tmp_path / "rentree.csv"
    intake.write_text("\n".join(_rows()) + "\n", encoding="utf-8")
    code, stdout, stderr = umacct("--json", "create", "--csv", str(intake))
    assert code == 65, stderr
    got = _outputs(runtime, stdout, stderr, tmp_path)
    if os.environ.get("UMACCT_REPIN"):
        pinned.parent.mkdir(exist_ok=True)
        pinned.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert got == json.loads(pinned.read_text(encoding="utf-8"))
