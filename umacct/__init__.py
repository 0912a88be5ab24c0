"""umacct: the life of a university's IT accounts in an LDAP directory."""

__version__ = "0.1.0"
