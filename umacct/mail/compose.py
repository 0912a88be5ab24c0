"""Building an outgoing message from a bilingual template.

A template is a UTF-8 text file named ``<kind>.txt``: a ``Subject:`` line, a blank line,
then the body, French first and English after. ``$name`` placeholders are filled from the
caller's parameters (``string.Template`` syntax). Two conveniences:

* a parameter whose name ends in ``_date`` holds an ISO date (``2026-11-26``); the template
  may then also use ``$<name>_fr`` (``26 novembre 2026``) and ``$<name>_en``
  (``26 November 2026``);
* lines between ``[[flag]]`` and ``[[/flag]]`` are kept only when the parameter ``flag`` is
  ``yes`` (it must be ``yes`` or ``no``); blocks may nest.

A site overrides a built-in template by putting a file of the same name in
``[mail] templates_dir``; it may also add kinds of its own there.
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import quoprimime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser, HeaderParser
from email.utils import format_datetime, make_msgid, parseaddr
from importlib import resources
from pathlib import Path

from umacct.clock import Clock
from umacct.config import MailConfig
from umacct.errors import ConfigError, InvalidInputError
from umacct.mail.dates import english_date, french_date, parse_iso_date
from umacct.plain_address import plain_address

TEMPLATE_SUFFIX = ".txt"
DATE_SUFFIX = "_date"
_KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLOCK_MARKER = re.compile(r"\[\[(/?)([A-Za-z_][A-Za-z0-9_]*)\]\]")
# CR, LF, NUL and every other control character but TAB (they include all the line ends
# str.splitlines() knows but two), plus the Unicode line and paragraph separators.
_FORBIDDEN_CHARACTERS = frozenset(
    [chr(code) for code in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0)]]
    + ["\u2028", "\u2029"]
)
# The same characters, searched for at C speed (a test checks the two agree).
_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_FLAG_VALUES = {"yes": True, "no": False}
ENCODED_WORD_START = "=?"
# An address as the To header carries it: RFC 5322 atext dot-atoms, an LDH domain.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


@dataclass(frozen=True)
class MailTemplate:
    """A parsed template: its subject and body, still with placeholders."""

    kind: str
    subject: str
    body: str
    source: str


def check_no_line_break(value: str, what: str) -> None:
    """Refuse CR, LF, NUL and other control characters (they could forge headers)."""
    if _FORBIDDEN.search(value):
        raise InvalidInputError(f"{what}: line breaks and control characters are not allowed")


def check_no_encoded_word(value: str, what: str) -> None:
    """Refuse ``=?``, the start of an RFC 2047 encoded word (security.md 34).

    The email package, like many mail readers, decodes an encoded word even inside an address,
    so ``=?utf-8?q?a=40evil.org=2C?=b@example.org`` would be read as two recipients.
    """
    if ENCODED_WORD_START in value:
        raise InvalidInputError(
            f"{what}: {ENCODED_WORD_START!r} is not allowed (it starts an encoded word, which "
            "mail readers decode into other addresses)"
        )


def normalise_recipient(address: str) -> str:
    """Validate a recipient address and return its normalised, ASCII-domain form.

    The result is a plain dot-atom address: ASCII, no quoted local part, no IP literal, no
    display name and no ``=?``, so that the ``To`` header read back is this one address.
    """
    check_no_line_break(address, "recipient address")
    check_no_encoded_word(address, f"recipient address {address!r}")
    recipient = plain_address(address) or _checked_recipient(address)
    if not _DOT_ATOM_ADDRESS.fullmatch(recipient):
        raise InvalidInputError(f"recipient address {address!r} is not a plain address")
    return recipient


def _checked_recipient(address: str) -> str:
    """email_validator's answer (the address plain_address cannot decide alone)."""
    from email_validator import EmailNotValidError, validate_email  # 40 ms to import

    try:
        valid = validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            allow_empty_local=False,
        )
    except EmailNotValidError as exc:
        raise InvalidInputError(f"recipient address {address!r} is not valid: {exc}") from None
    return valid.ascii_email or valid.normalized


def builtin_templates_dir() -> Path:
    """The folder of the templates shipped with the tool."""
    return Path(str(resources.files("umacct.mail") / "templates"))


def available_kinds(templates_dir: str | None = None) -> list[str]:
    """Every message kind a template exists for, built-in or added by the site."""
    folders = [builtin_templates_dir()]
    if templates_dir:
        folders.append(Path(templates_dir))
    kinds = {
        path.stem
        for folder in folders
        if folder.is_dir()
        for path in folder.glob(f"*{TEMPLATE_SUFFIX}")
        if _KIND.fullmatch(path.stem)
    }
    return sorted(kinds)


def load_template(kind: str, templates_dir: str | None = None) -> MailTemplate:
    """Read the site's template for ``kind`` if there is one, else the built-in one."""
    if not _KIND.fullmatch(kind):
        raise InvalidInputError(f"mail kind {kind!r}: expected lowercase letters, digits and _")
    candidates = [builtin_templates_dir() / f"{kind}{TEMPLATE_SUFFIX}"]
    if templates_dir:
        candidates.insert(0, Path(templates_dir) / f"{kind}{TEMPLATE_SUFFIX}")
    for path in candidates:
        if path.is_file():
            return _parse_template(kind, path)
    raise InvalidInputError(f"no mail template for kind {kind!r}")


def _parse_template(kind: str, path: Path) -> MailTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read mail template: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: mail template is not UTF-8 text") from None
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ConfigError(f"{path}: a mail template starts with a 'Subject:' line")
    blank, _, body = rest.partition("\n")
    if blank.strip():
        raise ConfigError(f"{path}: a blank line must follow the 'Subject:' line")
    subject = first.removeprefix("Subject:").strip()
    return MailTemplate(kind=kind, subject=subject, body=body.rstrip() + "\n", source=str(path))


def render(template: MailTemplate, params: Mapping[str, str]) -> tuple[str, str]:
    """Fill a template: returns the subject and the body."""
    values = _expanded_parameters(params)
    body = "\n".join(_kept_lines(template, values))
    return _substitute(template, template.subject, values), _substitute(template, body, values)


def _expanded_parameters(params: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in params.items():
        if not _PARAMETER_NAME.fullmatch(name):
            raise InvalidInputError(f"mail parameter name {name!r} is not an identifier")
        if not isinstance(value, str):
            raise InvalidInputError(f"mail parameter {name!r}: expected text")
        check_no_line_break(value, f"mail parameter {name!r}")
        values[name] = value
        if name.endswith(DATE_SUFFIX):
            day = parse_iso_date(value, name)
            values[f"{name}_fr"] = french_date(day)
            values[f"{name}_en"] = english_date(day)
    return values


@functools.lru_cache(maxsize=64)
def _body_lines(body: str) -> tuple[tuple[str, str | None, bool], ...]:
    """The body's lines, each with its block marker's flag (None: text) and whether it closes.

    Parsed once per template body (a run's messages of a kind share it), not per message.
    """
    lines: list[tuple[str, str | None, bool]] = []
    for line in body.split("\n"):
        marker = _BLOCK_MARKER.fullmatch(line.strip())
        if marker is None:
            lines.append((line, None, False))
        else:
            lines.append((line, marker.group(2), bool(marker.group(1))))
    return tuple(lines)


def _kept_lines(template: MailTemplate, values: Mapping[str, str]) -> Iterator[str]:
    open_blocks: list[tuple[str, bool]] = []
    kept_all = True  # every open block is kept
    for line, flag, closing in _body_lines(template.body):
        if flag is None:
            if kept_all:
                yield line
            continue
        if not closing:
            open_blocks.append((flag, _flag(template, flag, values)))
        elif open_blocks and open_blocks[-1][0] == flag:
            open_blocks.pop()
        else:
            raise ConfigError(f"{template.source}: [[/{flag}]] closes no open [[{flag}]] block")
        kept_all = all(kept for _, kept in open_blocks)
    if open_blocks:
        raise ConfigError(f"{template.source}: [[{open_blocks[-1][0]}]] is never closed")


def _flag(template: MailTemplate, flag: str, values: Mapping[str, str]) -> bool:
    if flag not in values:
        raise InvalidInputError(f"mail {template.kind!r} needs parameter {flag!r} (yes or no)")
    if values[flag] not in _FLAG_VALUES:
        raise InvalidInputError(
            f"mail parameter {flag!r}: expected yes or no, got {values[flag]!r}"
        )
    return _FLAG_VALUES[values[flag]]


def _substitute(template: MailTemplate, text: str, values: Mapping[str, str]) -> str:
    """``string.Template(text).substitute(values)``, from the text's pieces found once."""
    try:
        pieces = _pieces(text)
        if pieces is None:  # an invalid placeholder: string.Template says which
            return string.Template(text).substitute(values)
        literals, names = pieces
        filled = [literals[0]]
        for name, literal in zip(names, literals[1:], strict=True):
            filled.append(str(values[name]))
            filled.append(literal)
        return "".join(filled)
    except KeyError as exc:
        raise InvalidInputError(f"mail {template.kind!r} needs parameter {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ConfigError(f"{template.source}: bad placeholder: {exc}") from None


@functools.lru_cache(maxsize=256)
def _pieces(text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The text around its placeholders (one more piece than names) and the names, in order.

    Found by ``string.Template``'s own pattern (``$$`` is a ``$`` in the piece); None when a
    placeholder is invalid. A run's messages of a kind share their text before substitution.
    """
    literals: list[str] = []
    names: list[str] = []
    current: list[str] = []
    start = 0
    for found in string.Template.pattern.finditer(text):
        if found.group("invalid") is not None:
            return None
        current.append(text[start : found.start()])
        name = found.group("named") or found.group("braced")
        if name is None:  # escaped
            current.append(string.Template.delimiter)
        else:
            literals.append("".join(current))
            names.append(name)
            current = []
        start = found.end()
    current.append(text[start:])
    literals.append("".join(current))
    return tuple(literals), tuple(names)


def sender_address(config: MailConfig) -> Address:
    """The configured ``From``, validated; ConfigError when it is not a usable address."""
    return _sender_address(config.from_)


@functools.lru_cache(maxsize=8)
def _sender_address(from_: str) -> Address:
    check_no_line_break(from_, "[mail] from")
    if ENCODED_WORD_START in from_:
        # The header parser would decode it, into other addresses as the case may be: a site
        # writes its display name in plain UTF-8 and the tool encodes it (security.md 34).
        raise ConfigError(f"[mail] from: {from_!r}: write the name as plain text, without '=?'")
    display_name, addr_spec = parseaddr(from_)
    return Address(display_name=display_name, addr_spec=_checked_sender(from_, addr_spec))


def _checked_sender(from_: str, addr_spec: str) -> str:
    fast = plain_address(addr_spec)
    if fast is not None:
        return fast
    from email_validator import EmailNotValidError, validate_email  # 40 ms to import

    try:
        valid = validate_email(addr_spec, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ConfigError(f"[mail] from: {from_!r} is not a valid address: {exc}") from None
    return valid.ascii_email or valid.normalized


@dataclass(frozen=True)
class OutgoingMessage:
    """A composed message: its envelope and its bytes (7-bit, lines ending in LF)."""

    sender: str
    """The envelope sender (the address of ``From``)."""
    recipient: str
    message_id: str
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message read back by the email package (for callers that inspect headers)."""
        message = BytesParser(policy=email.policy.default).parsebytes(self.data)
        assert isinstance(message, EmailMessage)
        return message


class Composer:
    """Builds messages for one run: templates read once per kind, ``From`` checked once.

    The message is written directly rather than through ``EmailMessage`` (whose header
    objects cost about 2 ms a message): the headers security.md 15 asks for, folded by the
    email package's own policy where folding can matter, and a quoted-printable UTF-8 body
    in lines of at most 76 characters, as RFC 2045 asks (``EmailMessage.set_content`` writes
    up to 78, its policy's header line length).
    """

    def __init__(self, config: MailConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._templates: dict[str, MailTemplate] = {}
        self._sender: tuple[Address, str] | None = None
        """The ``From`` address and its header line, once the first message checked it."""
        self._date: tuple[tuple[datetime, timedelta | None], str] | None = None
        """The last ``Date`` line, with the second and UTC offset it was written for."""

    def compose(self, kind: str, to: str, params: Mapping[str, str]) -> OutgoingMessage:
        """The message of ``kind`` for ``to`` (validated and normalised here)."""
        recipient = normalise_recipient(to)
        sender, from_header = self._sender_header()
        template = self._template(kind)
        subject, body = render(template, params)
        message_id = make_msgid(domain=sender.domain)
        head = "".join([
            self._date_header(self._clock.now()),
            from_header,
            _recipient_header(recipient),
            _subject_header(subject),
            f"Message-ID: {message_id}\n",
            # RFC 3834: tells vacation responders and other robots not to answer.
            "Auto-Submitted: auto-generated\n",
            _BODY_HEADERS,
        ])  # fmt: skip
        data = head.encode("ascii") + b"\n" + _quoted_printable(body, _static_lines(template.body))
        return OutgoingMessage(sender.addr_spec, recipient, message_id, data)

    def _sender_header(self) -> tuple[Address, str]:
        if self._sender is None:
            sender = sender_address(self._config)
            self._sender = sender, _folded_header("From", str(sender))
        return self._sender

    def _date_header(self, now: datetime) -> str:
        """``Date: ...`` for ``now``; written once per second (it shows no finer time).

        ``format_datetime`` reads the wall-clock fields down to the second and the UTC offset:
        an instant in the same second with the same offset gets the same text.
        """
        key = (now.replace(microsecond=0), now.utcoffset())
        if self._date is None or self._date[0] != key:
            self._date = key, f"Date: {format_datetime(now)}\n"
        return self._date[1]

    def _template(self, kind: str) -> MailTemplate:
        template = self._templates.get(kind)
        if template is None:
            template = load_template(kind, self._config.templates_dir)
            self._templates[kind] = template
        return template


# Quoted-printable keeps the message 7-bit, so no relay needs 8BITMIME.
_BODY_HEADERS = (
    'Content-Type: text/plain; charset="utf-8"\n'
    "Content-Transfer-Encoding: quoted-printable\n"
    "MIME-Version: 1.0\n"
)
_UNFOLDED_LENGTH = 78
_QUOTED_PRINTABLE_LENGTH = 76
"""The longest line of a quoted-printable body, its soft break's ``=`` included (RFC 2045)."""


@functools.lru_cache(maxsize=256)
def _folded_header(name: str, value: str) -> str:
    """``Name: value`` folded and RFC 2047-encoded by the email package's default policy."""
    header = email.policy.default.header_factory(name, value)
    return str(header.fold(policy=email.policy.default))


def _recipient_header(recipient: str) -> str:
    # A normalised recipient is an ASCII dot-atom address (at most 254 characters, far below
    # the 998 of RFC 5322): written as it is, never through the email package's header parser,
    # which would decode an encoded word in it and fold the result into several addresses.
    return f"To: {recipient}\n"


def _subject_header(subject: str) -> str:
    """``Subject: ...``, read back as exactly ``subject`` whatever it holds.

    Without ``=?`` the email package folds and encodes it. With it, the package would first
    decode the text as if it were already an encoded header (``=?utf-8?q?x=0D=0ABcc...?=``
    becomes a line break and a new header), so the whole subject is encoded as UTF-8 words.
    """
    if ENCODED_WORD_START not in subject:
        folded = _folded_header("Subject", subject)
        if _reads_back(folded, subject):
            return folded
    encoded = Header(subject, "utf-8", _UNFOLDED_LENGTH, "Subject").encode(linesep="\n")
    return f"Subject: {encoded}\n"


@functools.lru_cache(maxsize=256)
def _reads_back(folded: str, subject: str) -> bool:
    """Whether a reader decodes the folded header to the subject's words (spaces may move).

    The email package's folding can drop the space between two encoded words it makes
    (``𐀀 0`` read back as ``𐀀0``, after non-breaking spaces): such a subject is encoded
    whole as UTF-8 words instead, which read back exactly.
    """
    decoded = HeaderParser(policy=email.policy.default).parsestr(folded)["Subject"]
    return str(decoded).split() == subject.split()


def _quoted_printable(body: str, known: Mapping[bytes, bytes] | None = None) -> bytes:
    """The body's UTF-8 lines, each ended by LF, quoted-printable (RFC 2045).

    Quoted-printable encodes each line on its own (its soft breaks included), so it is done
    line by line here, a line of ``known`` (the template's lines without a placeholder, the
    same in every message) taken already encoded.
    """
    known = known or {}
    lines = body.encode("utf-8").splitlines() or [b""]
    return b"".join([known.get(line) or _encoded_line(line) for line in lines])


def _encoded_line(line: bytes) -> bytes:
    """One line (no CR or LF in it) quoted-printable, with its LF, in lines of 76 at most.

    ``binascii.b2a_qp`` (C) quotes every byte outside printable ASCII and a line holding only
    ``.``, and breaks lines at 76 characters, but for a line ending in a blank: it writes
    that blank as ``=20`` or ``=09`` past the 76th. Such a line goes to the email package's
    encoder (Python, ten times slower), which leaves room for it.
    """
    if line.endswith((b" ", b"\t")):
        text = quoprimime.body_encode(line.decode("latin-1") + "\n", _QUOTED_PRINTABLE_LENGTH)
        return text.encode("ascii")
    return binascii.b2a_qp(line + b"\n", quotetabs=False, istext=True, header=False)


@functools.lru_cache(maxsize=64)
def _static_lines(body: str) -> Mapping[bytes, bytes]:
    """The template body's lines that hold no ``$`` (rendered as they are), encoded."""
    lines = (line.encode("utf-8") for line in body.split("\n"))
    return {line: _encoded_line(line) for line in lines if not re.search(rb"[$\r]", line)}


def compose(
    kind: str, to: str, params: Mapping[str, str], *, config: MailConfig, clock: Clock
) -> OutgoingMessage:
    """Build the message of ``kind`` for ``to``, with every header security.md 15 asks for."""
    return Composer(config, clock).compose(kind, to, params)
