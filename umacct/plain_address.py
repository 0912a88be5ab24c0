"""The common address decided without ``email_validator``, with the very same answer.

``email_validator`` walks an address character by character (Unicode normalisation of each
window, IDNA mapping of the domain) and its import compiles patterns over all of Unicode:
about 40 ms a process and 30 µs an address. Nearly every address the tool checks is plain
ASCII: a dot-atom local part and an ordinary host name. For exactly those ``plain_address``
returns what ``email_validator.validate_email(address, check_deliverability=False, ...)``
returns as ``ascii_email`` (whatever the ``allow_*`` options: a dot-atom local part and a
host name need none of them). For anything else it returns None and the caller asks
``email_validator`` as before, so every refusal and its message still come from there.

What the library does with such an address, step by step (email_validator 2.x,
``syntax.py``), and why the answer is the one computed here:

* no quote, ``<``, space or second ``@``: the split is at the one ``@``, no display name, no
  quoted local part; ASCII text is unchanged by NFC, so no character combines with another;
* the local part matches ``DOT_ATOM_TEXT``: kept as it is, unless it is one of the RFC 2142
  names (``postmaster``...), which the library lower-cases: those are left to it; at most 64
  characters, so ``strict`` mode has nothing to add;
* the domain: ASCII letters, digits, hyphens and dots, so every character-set and
  "unsafe character" check passes; UTS-46 mapping only lower-cases ASCII letters; labels of
  1 to 63 characters, not starting or ending with a hyphen; no ``--`` at all (neither an
  R-LDH label nor Punycode ``xn--``, which the library decodes and checks further); a last
  label ending in a letter and at least one dot (the "globally deliverable" rules); not a
  special-use name (``localhost``, ``.test``...: left to the library, which refuses them or,
  in its test environment, accepts them); at most 253 characters;
* the whole address at most 254 characters (the same before and after lower-casing).

``tests/test_plain_address.py`` compares both on generated addresses, hostile ones included.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Sequence

# email_validator.rfc_constants.EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH, DOMAIN_MAX_LENGTH.
_EMAIL_MAX_LENGTH = 254
_LOCAL_PART_MAX_LENGTH = 64
_DOMAIN_MAX_LENGTH = 253
# The two lists of email_validator the answer depends on, as the library ships them (a test
# checks it); once a program has imported the library, its lists are read instead (it may
# have changed them). RFC 2142's names, which the library lower-cases:
CASE_INSENSITIVE_MAILBOX_NAMES = frozenset({
    "info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
    "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp",
})  # fmt: skip
# The special-use domains it refuses (or accepts in its test environment):
SPECIAL_USE_DOMAIN_NAMES = ("arpa", "invalid", "local", "localhost", "onion", "test")

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LAST_LABEL = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"
_PLAIN = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+{_LAST_LABEL})")


def plain_address(address: str) -> str | None:
    """``local@domain`` with the domain lower-cased, for a plain ASCII address; else None.

    None means "ask email_validator": the address may be valid or not.
    """
    if len(address) > _EMAIL_MAX_LENGTH or not address.isascii():
        return None
    match = _PLAIN.fullmatch(address)
    if match is None:
        return None
    local, domain = match.groups()
    case_insensitive, special_use = _library_lists()
    if len(local) > _LOCAL_PART_MAX_LENGTH or local.lower() in case_insensitive:
        return None
    if len(domain) > _DOMAIN_MAX_LENGTH or "--" in domain:
        return None
    domain = domain.lower()
    dotted = "." + domain
    if any(dotted.endswith("." + special) for special in special_use):
        return None
    return f"{local}@{domain}"


def _library_lists() -> tuple[Collection[str], Sequence[str]]:
    """The library's two lists once it is loaded, else the copies above."""
    checker = sys.modules.get("email_validator.validate_email")
    library = sys.modules.get("email_validator")
    if checker is None or library is None:
        return CASE_INSENSITIVE_MAILBOX_NAMES, SPECIAL_USE_DOMAIN_NAMES
    return checker.CASE_INSENSITIVE_MAILBOX_NAMES, library.SPECIAL_USE_DOMAIN_NAMES
