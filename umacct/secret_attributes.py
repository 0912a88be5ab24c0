"""Attributes whose values are secrets, known by schema: their OID and every name they go by.

The audit log redacts these (security requirement 33). An attribute can be written many ways
that all mean the same to the server: ``userPassword``, ``USERPASSWORD``, ``2.5.4.35``,
``OID.2.5.4.35``, ``userPassword;binary``. Each is folded to one key before the table is
looked up: NFKC, case folded, options (``;binary``) and the ``OID.`` prefix dropped, spaces,
control and invisible characters removed, each arc of a numeric OID read as a number.

The table holds the secret attributes of the schemas a directory of this kind meets (RFC 4519,
RFC 3112, the password policy overlay, Samba, Kerberos, OpenLDAP's cn=config, Active
Directory); a name holding a secret-looking word (``password``, ``secret``, ``token``...)
counts as secret too, whatever the schema, so a site's own ``fooPassword`` stays hidden.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretAttribute:
    """An attribute type whose values are secrets (a password, its hash, a private key)."""

    oid: str
    names: tuple[str, ...]
    schema: str


SECRET_ATTRIBUTES: tuple[SecretAttribute, ...] = (
    SecretAttribute("2.5.4.35", ("userPassword",), "RFC 4519"),
    SecretAttribute("1.3.6.1.4.1.4203.1.3.4", ("authPassword",), "RFC 3112"),
    SecretAttribute("1.3.6.1.4.1.42.2.27.8.1.20", ("pwdHistory",), "password policy (ppolicy)"),
    SecretAttribute("2.16.840.1.113730.3.1.216", ("userPKCS12",), "RFC 2798"),
    SecretAttribute("1.3.6.1.4.1.4203.666.1.60", ("pKCS8PrivateKey",), "OpenLDAP"),
    SecretAttribute("1.3.6.1.4.1.4203.1.12.2.3.2.0.9", ("olcRootPW",), "OpenLDAP cn=config"),
    SecretAttribute("1.3.6.1.4.1.4203.1.12.2.3.2.0.11", ("olcSyncrepl",), "OpenLDAP cn=config"),
    SecretAttribute(
        "1.3.6.1.4.1.4203.1.12.2.3.2.3.7", ("olcDbIDAssertBind",), "OpenLDAP cn=config"
    ),
    SecretAttribute(
        "1.3.6.1.4.1.4203.1.12.2.3.0.99", ("olcTLSCertificateKey",), "OpenLDAP cn=config"
    ),
    SecretAttribute("1.3.6.1.4.1.7165.2.1.24", ("sambaLMPassword",), "Samba"),
    SecretAttribute("1.3.6.1.4.1.7165.2.1.25", ("sambaNTPassword",), "Samba"),
    SecretAttribute("1.3.6.1.4.1.7165.2.1.54", ("sambaPasswordHistory",), "Samba"),
    SecretAttribute("2.16.840.1.113719.1.301.4.39.1", ("krbPrincipalKey",), "MIT Kerberos"),
    SecretAttribute("2.16.840.1.113719.1.301.4.44.1", ("krbPwdHistory",), "MIT Kerberos"),
    SecretAttribute("1.2.840.113556.1.4.90", ("unicodePwd",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.55", ("dBCSPwd",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.94", ("ntPwdHistory",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.160", ("lmPwdHistory",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.125", ("supplementalCredentials",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.101", ("privateKey",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.27", ("currentValue",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.100", ("priorValue",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.129", ("trustAuthIncoming",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.135", ("trustAuthOutgoing",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.539", ("initialAuthIncoming",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.540", ("initialAuthOutgoing",), "Active Directory"),
    SecretAttribute("1.2.840.113556.1.4.1783", ("msDS-ExecuteScriptPassword",), "Active Directory"),
)

SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "privatekey")
"""Words that make any name secret, in the folded form of ``attribute_key``."""

NOT_SECRET = frozenset({"secretary", "0.9.2342.19200300.100.1.21"})
"""Names a secret word matches by accident (RFC 4524 ``secretary`` is a DN, no secret)."""

_NUMERIC_OID = re.compile(r"\d+(?:\.\d+)+")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def attribute_key(description: str) -> str:
    """The one spelling of an attribute description: ``USERPASSWORD;binary`` -> ``userpassword``."""
    text = unicodedata.normalize("NFKC", description)
    text = "".join(c for c in text if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    text = text.split(";", 1)[0].casefold().removeprefix("oid.")
    if _NUMERIC_OID.fullmatch(text):
        text = ".".join(str(int(arc)) for arc in text.split("."))
    return text


_SECRET_KEYS = frozenset(
    {attribute_key(attribute.oid) for attribute in SECRET_ATTRIBUTES}
    | {attribute_key(name) for attribute in SECRET_ATTRIBUTES for name in attribute.names}
)


@functools.lru_cache(maxsize=4096)
def is_secret_attribute(description: str) -> bool:
    """Whether values of the attribute (or detail) named so are secrets."""
    key = attribute_key(description)
    if key in _SECRET_KEYS:
        return True
    return key not in NOT_SECRET and any(word in key for word in SECRET_WORDS)
