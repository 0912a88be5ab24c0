"""The hostile-input corpus: command lines and files an attacker or a careless operator gives.

Each case is run through the real CLI by ``test_hostile.py`` against a seeded directory. In
``argv`` these placeholders are replaced before the run:

* ``{active}``, ``{grace}``, ``{new}``, ``{expired}``, ``{staff}``: the institutional
  addresses of the seeded people (active, in grace, awaiting activation, expired, staff);
* ``{csv}``: the path of the case's ``csv`` bytes, written to a file first;
* ``{people_dn}``: the people unit's DN.

``code`` is the exact exit code expected; ``says`` a fragment the one-line error must hold.
A case with ``accepted=True`` is accepted on purpose (a read command or a dry run): it must
exit 0, change nothing, and ``says`` is looked for on stdout to show the stored or shown value
is the safe one.
"""

from __future__ import annotations

from dataclasses import dataclass

from days import month_end

INVALID = 65
NOT_FOUND = 67
REFUSED = 77
USAGE = 2

INJECTIONS = {
    "filter": "*)(uid=*",
    "star": "*",
    "or": "x)(|(objectClass=*",
    "comma": "ana.active,ou=people",
    "plus": "ana.active+cn=x",
    "backslash": "ana.active\\2a",
    "hash": "#ana.active",
    "nul": "ana.active\x00",
    "newline": "ana.active\nuid=x",
}


@dataclass(frozen=True)
class Case:
    """One hostile input and what the tool must answer."""

    name: str
    argv: tuple[str, ...]
    code: int
    says: str = ""
    stdin: str | None = None
    csv: bytes | None = None
    accepted: bool = False
    row_report: bool = False
    """An intake whose rows are all refused: one ``line N: ...`` per row, then a summary."""


def _account_cases() -> list[Case]:
    """Filter and DN injection in the account argument of every command that takes one."""
    commands: dict[str, tuple[str, ...]] = {
        "show": ("show", "{x}"),
        "explain": ("explain", "{x}"),
        "suspend": (
            "suspend",
            "{x}",
            "--end-of-activity",
            month_end(-1).isoformat(),
            "--reason",
            "left",
        ),
        "extend": ("extend", "{x}", "--reason", "asked"),
        "purge": ("purge", "{x}", "--yes", "--reason", "left"),
        "activate": ("activate", "{x}"),
        "reset": ("reset", "{x}"),
        "passwd": ("passwd", "{x}", "--password-stdin"),
        "set_recovery": ("set-recovery", "{x}", "new.address@example.net"),
        "redirect": ("redirect", "{x}", "elsewhere@example.net"),
        "antispam": ("antispam", "{x}", "high"),
        "directory_set": ("directory", "set", "{x}", "title=Dr"),
        "restore": ("restore", "{x}", "--reason", "mistake"),
        "audit": ("audit", "--account", "{x}"),
    }
    # Every command gets the filter injection; the other payloads rotate through them so
    # each payload meets several commands and each command several payloads.
    payloads = list(INJECTIONS)
    cases: list[Case] = []
    for index, (command, argv) in enumerate(commands.items()):
        chosen = ["filter", payloads[1 + index % (len(payloads) - 1)]]
        chosen += [payloads[1 + (index + 4) % (len(payloads) - 1)]]
        for payload in dict.fromkeys(chosen):
            value = INJECTIONS[payload]
            control = any(ch in value for ch in "\x00\n")
            code = INVALID if control else NOT_FOUND
            says = "control characters" if control else "no account"
            if command == "restore" and not control:
                says = "no purged account"
            stdin = "current password\nnew password long enough\n" if command == "passwd" else None
            cases.append(
                Case(f"account-{payload}-{command}", _fill(argv, value), code, says, stdin=stdin)
            )
    return cases


def _fill(argv: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(value if part == "{x}" else part for part in argv)


CR_LF_ADDRESS = "someone@example.net\r\nBcc: victim@example.org"

ADDRESSES = {
    "crlf": (CR_LF_ADDRESS, "line breaks"),
    "lf": ("someone@example.net\n", "line breaks"),
    "nul": ("some\x00one@example.net", "line breaks"),
    "ip-literal": ("someone@[127.0.0.1]", "not valid"),
    "ipv6-literal": ("someone@[IPv6:::1]", "not valid"),
    "quoted-local": ('"some one"@example.net', "not valid"),
    "display-name": ("Some One <someone@example.net>", "not valid"),
    "cyrillic-domain": ("someone@ex\u0430mple.net", "mixes scripts"),
    "cyrillic-local": ("s\u043eme@example.net", "mixes scripts"),
    "fullwidth-local": ("\uff53\uff4f\uff4d\uff45@example.net", "not valid"),
    "zero-width": ("some\u200done@example.net", "not valid"),
    "rtl-override": ("some\u202eone@example.net", "not valid"),
    "filter": ("*)(uid=*@example.net", "not valid"),
    "overlong": ("a" * 300 + "@example.net", "not valid"),
    "no-domain": ("someone@", "not valid"),
}


def _address_cases() -> list[Case]:
    """CR/LF, injection and confusables in every address a command takes."""
    commands = {
        "set-recovery": ("set-recovery", "{active}", "{x}"),
        "redirect": ("redirect", "{active}", "{x}"),
        "create": (
            "create",
            "--given-name",
            "Paul",
            "--surname",
            "Neuf",
            "--profile",
            "etudiant",
            "--personal-email",
            "{x}",
        ),
    }
    cases: list[Case] = []
    for index, (payload, (value, says)) in enumerate(ADDRESSES.items()):
        # CR/LF reach every command; the other payloads rotate.
        names = list(commands) if payload in ("crlf", "lf") else [list(commands)[index % 3]]
        for command in names:
            argv = _fill(commands[command], value)
            cases.append(Case(f"address-{payload}-{command}", argv, INVALID, says))
    cases.append(
        Case(
            "address-own-domain-recovery",
            ("set-recovery", "{active}", "x@umontpellier.fr"),
            INVALID,
            "institution",
        )
    )
    cases.append(
        Case("address-self-forward", ("redirect", "{active}", "{active}"), INVALID, "itself")
    )
    return cases


def _create(given: str, surname: str, *extra: str) -> tuple[str, ...]:
    return ("create", "--given-name", given, "--surname", surname, "--profile", "etudiant",
            "--personal-email", "paul.neuf@example.net", *extra)  # fmt: skip


NAMES = {
    "crlf": ("Jean\r\nsn: x", "not allowed"),
    "lf": ("Jean\n", "not allowed"),
    "nul": ("Je\x00an", "not allowed"),
    "filter": ("*)(uid=*", "not allowed"),
    "comma": ("Jean,ou=people", "not allowed"),
    "plus": ("Jean+cn=x", "not allowed"),
    "backslash": ("Jean\\", "not allowed"),
    "leading-hash": ("#Jean", "not allowed"),
    "formula": ('=HYPERLINK("http://x")', "not allowed"),
    "overlong": ("J" * 200, "at most 128"),
    "cyrillic-mixed": ("J\u0435an", "mixes scripts"),
    "zero-width-joiner": ("Je\u200dan", "not allowed"),
    "rtl-override": ("\u202eJean", "not allowed"),
    "arabic-only": ("\u0645\u062d\u0645\u062f", "Latin transcription"),
}


def _name_cases() -> list[Case]:
    """Hostile given names and surnames (both fields get CR/LF and injection)."""
    cases: list[Case] = []
    for payload, (value, says) in NAMES.items():
        cases.append(Case(f"name-given-{payload}", _create(value, "Neuf"), INVALID, says))
        if payload in ("crlf", "filter", "comma", "leading-hash", "cyrillic-mixed"):
            cases.append(Case(f"name-surname-{payload}", _create("Paul", value), INVALID, says))
    return cases


ACCEPTED_NAMES = [
    # An apostrophe and a hyphen are part of real names: kept as typed, folded in the uid.
    Case("name-apostrophe", _create("Anne-Marie", "N'Diaye", "--dry-run"), 0,
         "anne-marie.ndiaye@etu.umontpellier.fr", accepted=True),
    # Full-width letters are compatibility forms: stored as plain letters.
    Case("name-fullwidth", _create("\uff2a\uff45\uff41\uff4e", "Neuf", "--dry-run"), 0,
         "jean.neuf@etu.umontpellier.fr", accepted=True),
    # Leading and trailing spaces are trimmed.
    Case("name-leading-space", _create("  Paul", " Neuf ", "--dry-run"), 0,
         "paul.neuf@etu.umontpellier.fr", accepted=True),
    # A name written wholly in Cyrillic is transliterated.
    Case("name-cyrillic", _create("\u0418\u0432\u0430\u043d", "Neuf", "--dry-run"), 0,
         "ivan.neuf@etu.umontpellier.fr", accepted=True),
]  # fmt: skip

DATES = {
    "impossible": "2026-02-30",
    "month-13": "2026-13-01",
    "year-0": "0000-01-01",
    "words": "tomorrow",
    "short": "2026-1-1",
    "injection": "2026-01-01)(uid=*",
    "nul": "2026-01-01\x00",
    "five-digit-year": "20261-01-01",
    "french-impossible": "31/04/2026",
}


def _date_cases() -> list[Case]:
    """Malformed and impossible dates in every date option."""
    options = [
        ("suspend", "{active}", "--end-of-activity", "{x}", "--reason", "left"),
        ("suspend", "--due", "--as-of", "{x}"),
        ("sweep", "--as-of", "{x}"),
        ("explain", "{active}", "--as-of", "{x}"),
        ("audit", "--since", "{x}"),
        _create("Paul", "Neuf", "--arrival", "{x}"),
        _create("Paul", "Neuf", "--end-of-activity", "{x}"),
    ]
    cases: list[Case] = []
    for index, (payload, value) in enumerate(DATES.items()):
        argv = options[index % len(options)]
        cases.append(Case(f"date-{payload}-{argv[0]}", _fill(argv, value), USAGE, "date"))
    return cases


HEADER = b"given_name,surname,profile,personal_email\n"


def _csv(*rows: bytes, header: bytes = HEADER) -> bytes:
    return header + b"".join(rows)


CSV_CASES = [
    Case("csv-not-utf8", ("create", "--csv", "{csv}"), INVALID, "neither UTF-8",
         csv=_csv(b"Paul,\x81\x8d\x8f,etudiant,p@example.net\n")),
    Case("csv-utf16", ("create", "--csv", "{csv}"), INVALID, "UTF-16",
         csv="given_name,surname\n".encode("utf-16")),
    Case("csv-empty", ("create", "--csv", "{csv}"), INVALID, "empty", csv=b""),
    Case("csv-bom-only", ("create", "--csv", "{csv}"), INVALID, "empty", csv=b"\xef\xbb\xbf\r\n"),
    Case("csv-unknown-column", ("create", "--csv", "{csv}"), INVALID, "unknown column",
         csv=_csv(b"Paul,Neuf,etudiant,p@example.net,x\n",
                  header=b"given_name,surname,profile,personal_email,date_fn\n")),
    Case("csv-missing-column", ("create", "--csv", "{csv}"), INVALID, "missing required",
         csv=b"given_name,surname\nPaul,Neuf\n"),
    Case("csv-bad-quoting", ("create", "--csv", "{csv}"), INVALID, "cannot read",
         csv=_csv(b'Paul,"Ne"uf,etudiant,p@example.net\n')),
    Case("csv-unknown-profile", ("create", "--csv", "{csv}"), INVALID, "line 2",
         csv=_csv(b"Paul,Neuf,doctorant,p@example.net\n"), row_report=True),
    Case("csv-crlf-in-quoted-name", ("create", "--csv", "{csv}"), INVALID, "line 2",
         csv=_csv(b'"Pa\r\nul",Neuf,etudiant,p@example.net\n'), row_report=True),
    Case("csv-formula-name", ("create", "--csv", "{csv}"), INVALID, "line 2",
         csv=_csv(b'"=cmd|\' /C calc\'!A0",Neuf,etudiant,p@example.net\n'), row_report=True),
    Case("csv-injected-address", ("create", "--csv", "{csv}"), INVALID, "line 2",
         csv=_csv(b"Paul,Neuf,etudiant,*)(uid=*@example.net\n"), row_report=True),
    Case("csv-duplicate-rows-dry-run", ("create", "--csv", "{csv}", "--dry-run"), INVALID,
         "duplicate of line 2",
         csv=_csv(b"Paul,Neuf,etudiant,p@example.net\n", b"Paul,Neuf,etudiant,p@example.net\n"), row_report=True),
    Case("csv-empty-rows-and-bad-date", ("create", "--csv", "{csv}"), INVALID, "line 4",
         csv=_csv(b",,,\n", b"\n",
                  b"Paul,Neuf,etudiant,p@example.net,2026-02-30\n",
                  header=b"given_name,surname,profile,personal_email,end_of_activity\n"), row_report=True),
    Case("csv-excel-cp1252-dry-run", ("create", "--csv", "{csv}", "--dry-run"), 0,
         "helene.lefevre@etu.umontpellier.fr", accepted=True,
         csv=b"Pr\xe9nom;Nom;Profil;Mail perso\r\nH\xe9l\xe8ne;Lef\xe8vre;etudiant;h@example.net\r\n"),
    Case("csv-bom-semicolon-dry-run", ("create", "--csv", "{csv}", "--dry-run"), 0,
         "paul.neuf@etu.umontpellier.fr", accepted=True,
         csv=b"\xef\xbb\xbfprenom;nom;profil;mail_perso\r\nPaul;Neuf;etudiant;p@example.net\r\n"),
    Case("csv-no-such-file", ("create", "--csv", "/nonexistent/intake.csv"), INVALID, "intake"),
]  # fmt: skip

ATTRIBUTE_CASES = [
    Case("attr-not-editable", ("directory", "set", "{staff}", "uid=evil"), REFUSED, "uid"),
    Case("attr-password", ("directory", "set", "{staff}", "userPassword=x"), REFUSED,
         "userPassword"),
    Case("attr-option", ("directory", "set", "{staff}", "title;binary=x"), REFUSED, "title;binary"),
    Case("attr-no-equals", ("directory", "set", "{staff}", "title"), INVALID, "ATTR=VALUE"),
    Case("attr-injected-name", ("directory", "set", "{staff}", "*)(uid=*=x"), REFUSED, "*)(uid"),
    Case("attr-phone-syntax", ("directory", "set", "{staff}", "telephoneNumber=*)(uid=*"),
         INVALID, "telephoneNumber"),
    Case("attr-crlf-value", ("directory", "set", "{staff}", "title=Dr\r\nuid: evil"), INVALID,
         "title"),
    Case("attr-nul-value", ("directory", "set", "{staff}", "title=Dr\x00"), INVALID, "title"),
    Case("attr-overlong-value", ("directory", "set", "{staff}", "title=" + "x" * 5000), INVALID,
         "title"),
    Case("attr-rtl-value", ("directory", "set", "{staff}", "title=\u202eDr"), INVALID, "title"),
    Case("attr-not-staff", ("directory", "set", "{new}", "title=Dr"), REFUSED, "staff"),
    Case("antispam-unknown-level", ("antispam", "{staff}", "*)(x=*"), INVALID, "level"),
    Case("antispam-level-newline", ("antispam", "{staff}", "high\n"), INVALID, "level"),
]  # fmt: skip

OTHER_CASES = [
    Case("profile-unknown-create", ("create", "--given-name", "Paul", "--surname", "Neuf",
         "--profile", "nope", "--personal-email", "p@example.net"), USAGE, "--profile"),
    Case("profile-injected-list", ("list", "--profile", "*)(uid=*"), USAGE, "--profile"),
    Case("state-unknown-list", ("list", "--state", "*"), USAGE, "state"),
    Case("expiring-negative-list", ("list", "--expiring-within", "-1"), USAGE, "expiring"),
    Case("purge-limit-zero", ("purge", "--expired", "--yes", "--limit", "0", "--reason", "cleanup"), USAGE, "limit"),
    Case("token-garbage-activate", ("activate", "--token", "*)(uid=*", "--password-stdin"),
         INVALID, "link", stdin="velvet otter climbs 7 ladders\n"),
    Case("token-nul-reset", ("reset", "--token", "abc\x00def", "--password-stdin"), INVALID,
         "link", stdin="velvet otter climbs 7 ladders\n"),
    Case("token-overlong-confirm", ("set-recovery", "--token", "A" * 10000), INVALID, "link"),
    Case("password-empty-stdin", ("passwd", "{active}", "--password-stdin"), INVALID, "stdin",
         stdin="\n\n"),
    Case("reason-crlf", ("suspend", "{active}", "--reason", "left\r\n{\"forged\": 1}"), INVALID,
         "reason"),
    Case("reason-overlong", ("extend", "{grace}", "--reason", "x" * 5000), INVALID, "reason"),
    Case("unknown-account", ("show", "nobody.here@umontpellier.fr"), NOT_FOUND, "no account"),
    Case("account-leading-space-show", ("show", " {active}"), 0, "ana.active", accepted=True),
    # The directory folds full-width letters itself; the tool does so first and names the
    # account as stored.
    Case("account-fullwidth-show", ("show", "\uff41\uff4e\uff41.active"), 0, "ana.active",
         accepted=True),
    Case("account-cyrillic-show", ("show", "\u0430na.active@umontpellier.fr"), NOT_FOUND,
         "no account"),
    Case("account-zwj-show", ("show", "ana\u200d.active"), INVALID, "control characters"),
    Case("account-overlong-show", ("show", "a" * 300), INVALID, "too long"),
    Case("account-dn-show", ("show", "uid=ana.active,{people_dn}"), NOT_FOUND, "no account"),
]  # fmt: skip

OPTION_CASES = [
    # --json and --format are accepted after the command too (read commands, as people type).
    Case("option-json-at-end", ("show", "{active}", "--json"), 0, "ana.active", accepted=True),
    Case("option-config-after-command", ("sweep", "--config", "/etc/passwd"), USAGE, "--config"),
    Case("option-debug-after-command", ("extend", "{grace}", "--debug"), USAGE, "--debug"),
    Case("option-missing-value", ("sweep", "--as-of"), USAGE, "--as-of"),
    Case("option-bad-format", ("show", "{active}", "--format", "xml"), USAGE, "xml"),
    Case("option-password-argument", ("passwd", "{active}", "--password", "hunter2hunter2"),
         USAGE, "--password"),
    Case("option-limit-not-a-number", ("purge", "--expired", "--limit", "ten"), USAGE, "--limit"),
    Case("option-unknown-command", ("delete", "{active}"), USAGE, "delete"),
    Case("option-two-accounts", ("suspend", "{active}", "{grace}"), USAGE, "unexpected"),
]  # fmt: skip

CASES: list[Case] = [
    *_account_cases(),
    *_address_cases(),
    *_name_cases(),
    *ACCEPTED_NAMES,
    *_date_cases(),
    *CSV_CASES,
    *ATTRIBUTE_CASES,
    *OTHER_CASES,
    *OPTION_CASES,
]
