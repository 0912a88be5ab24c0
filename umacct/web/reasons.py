"""The services' refusals a page shows, in the page's language (French or English).

The core speaks English, in sentences of fixed shapes; the pages put them into the person's
language by those shapes, with the dates written as the page writes them (``1er janvier
2028``, ``1 January 2028``), never ``2028-01-01``. A reason of a shape not listed here (a
new one) is shown as the core wrote it.
"""

from __future__ import annotations

import re
from datetime import date

from umacct.mail.dates import english_date, french_date

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# --- the extension request (umacct.policy's refusals, umacct.services.extensions) ---------------

_EXTENSION_REASONS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^profile (\S+) is not extendable$"),
     "Your profile ({0}) cannot be extended.", "Votre profil ({0}) ne permet pas de prolongation."),
    (re.compile(r"^account expired on (\S+)$"),
     "The account expired on {0}.", "Le compte a expiré le {0}."),
    (re.compile(r"^account is not in its grace period"),
     "The account is not in its grace period.", "Le compte n'est pas en période de maintien."),
    (re.compile(r"^(?:already extended|the grace period runs) to (\S+): .* from (\S+) "),
     "The account is already kept until {0}: an extension renews, it does not add up; it can "
     "be asked from {1}.",
     "Le compte est déjà maintenu jusqu'au {0} : une prolongation renouvelle, elle ne s'ajoute "
     "pas ; elle peut être demandée à partir du {1}."),
    (re.compile(r"^profile (\S+) allows at most (\d+) extensions and (\d+) were granted"),
     "Your profile ({0}) allows at most {1} extensions, and {2} were granted.",
     "Votre profil ({0}) permet au plus {1} prolongations, et {2} ont été accordées."),
    (re.compile(r"^the request of (\S+) was refused on (\S+): (.*)$"),
     "Your request of {0} was refused on {1}: {2}",
     "Votre demande du {0} a été refusée le {1} : {2}"),
]  # fmt: skip


def day_in(lang: str, text: str) -> str:
    """``text`` written as the language writes a date when it is one (``YYYY-MM-DD``)."""
    if not _ISO_DAY.match(text):
        return text
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return french_date(day) if lang == "fr" else english_date(day)


def extension_reason(reason: str, lang: str) -> str:
    """The policy's refusal of an extension in the page's language (else as the core says)."""
    for pattern, english, french in _EXTENSION_REASONS:
        found = pattern.match(reason)
        if found:
            values = [day_in(lang, value) for value in found.groups()]
            return (french if lang == "fr" else english).format(*values)
    return reason


# --- recovery addresses and forwarding targets (umacct.services.addresses, intake) -------------

_ADDRESS_REASONS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^recovery address \S+ is inside the institution's domain (\S+):"),
     "it is inside the institution's domain ({0}): the recovery address must be a personal "
     "address outside it.",
     "elle est dans le domaine de l'établissement ({0}) : l'adresse de secours doit être une "
     "adresse personnelle, hors de ce domaine."),
    (re.compile(r"^\S+ cannot forward its mail to itself$"),
     "mail cannot be forwarded to the account itself.",
     "le courrier ne peut pas être redirigé vers le compte lui-même."),
    (re.compile(r"^forwarding \S+ to \S+ makes a loop: (\S+) forwards back to it$"),
     "{0} forwards back to this account: the mail would go round in a loop.",
     "{0} redirige vers ce compte : le courrier tournerait en boucle."),
    (re.compile(r"^forwarding to \S+ follows more than (\d+) institutional forwards"),
     "this address forwards on through more than {0} addresses of the institution.",
     "cette adresse redirige à son tour vers plus de {0} adresses de l'établissement."),
    (re.compile(r"^address is empty$"),
     "the address is empty.", "l'adresse est vide."),
    (re.compile(r"^address .*: line breaks and NUL are not allowed$"),
     "line breaks are not allowed in an address.",
     "les retours à la ligne ne sont pas acceptés dans une adresse."),
    (re.compile(r"^address .*: '=\?' is not allowed"),
     "“=?” is not allowed in an address.", "« =? » n'est pas accepté dans une adresse."),
    (re.compile(r"^address .*: .* mixes scripts"),
     "it mixes alphabets (Latin, Greek, Cyrillic), as look-alike addresses do.",
     "elle mêle plusieurs alphabets (latin, grec, cyrillique), comme les adresses "
     "d'imitation."),
    (re.compile(r"^address .* is not valid: "),
     "it is not a valid email address.", "ce n'est pas une adresse mail valable."),
]  # fmt: skip


def address_reason(reason: str, lang: str) -> str:
    """Why an address was refused, to follow "This address cannot be used:" in the language."""
    for pattern, english, french in _ADDRESS_REASONS:
        found = pattern.match(reason)
        if found:
            return (french if lang == "fr" else english).format(*found.groups())
    return reason
