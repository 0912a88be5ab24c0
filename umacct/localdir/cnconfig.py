"""The LDIF that builds a local directory: its ``cn=config`` and its base tree.

Both are loaded with ``slapadd`` before the server starts, which is much faster than adding
entries over the protocol.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from umacct.errors import InvalidInputError
from umacct.ldif import LdifEntry, entries_to_ldif
from umacct.localdir.ldif import ssha_hash
from umacct.localdir.tls import ServerCertificate

MODULE_DIR = Path("/usr/lib/ldap")
SYSTEM_SCHEMA_DIR = Path("/etc/ldap/schema")
SYSTEM_SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
DB_MAX_SIZE = 4 * 1024**3

# The indexes the README recommends to sites: equality for look-ups, substrings for the
# prefix searches (a taken identifier's suffixes, state prefixes).
_SUPANN_INDEXES = (
    "supannAliasLogin eq,sub",
    "supannMailPerso,supannEmpId,supannEtuId,supannCodePopulation eq",
    "supannEmpDateFin,supannEtuDateFin,supannExtDateFin eq",
    "supannRessourceEtatDate,supannRessourceEtat eq,sub",
)
# Ordering filters on GeneralizedTime use the equality index in back-mdb.
_INDEXES = (
    "objectClass eq",
    "uid,mail,eduPersonPrincipalName eq,sub",
    "pwdEndTime eq",
    "cn,sn,givenName eq,sub",
)


@dataclass(frozen=True)
class Tree:
    """The DNs of a local directory, all derived from its base DN."""

    base_dn: str

    @property
    def people_dn(self) -> str:
        """Where people's entries live."""
        return f"ou=people,{self.base_dn}"

    @property
    def system_dn(self) -> str:
        """Where service accounts live."""
        return f"ou=system,{self.base_dn}"

    @property
    def policies_dn(self) -> str:
        """Where password policies live."""
        return f"ou=policies,{self.base_dn}"

    @property
    def default_policy_dn(self) -> str:
        """The password policy that applies to every entry."""
        return f"cn=default,{self.policies_dn}"

    @property
    def bind_dn(self) -> str:
        """The tool's service account."""
        return f"cn=umacct,{self.system_dn}"

    @property
    def state_dn(self) -> str:
        """The branch of the tool's own state (``[directory] state_dn``; docs/state.md)."""
        return f"ou=umacct,{self.system_dn}"

    @property
    def root_dn(self) -> str:
        """The directory manager, reached over ldapi with SASL EXTERNAL."""
        return f"cn=admin,{self.base_dn}"


@dataclass(frozen=True)
class ServerFiles:
    """Where the server keeps its files, and who may administer it over ldapi."""

    data_dir: Path
    pid_file: Path
    args_file: Path
    uid: int
    gid: int


@dataclass(frozen=True)
class Replication:
    """One provider of a multi-provider pair: its server ID and where its peer listens.

    The peer is reached over its ldapi socket with SASL EXTERNAL, which maps to the root DN:
    replication needs no password and bypasses the access rules and size limits.
    """

    server_id: int
    peer_url: str


@functools.cache
def password_hash_scheme() -> str:
    """``{ARGON2}`` when slapd's argon2 module loads on this machine, else ``{SSHA}``."""
    if not (MODULE_DIR / "argon2.so").exists():
        return "{SSHA}"
    probe = subprocess.run(
        ["slappasswd", "-o", f"module-path={MODULE_DIR}", "-o", "module-load=argon2",
         "-h", "{ARGON2}", "-s", "probe"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return "{ARGON2}" if probe.returncode == 0 and probe.stdout.startswith("{ARGON2}") else "{SSHA}"


def _schema_ldif(supann_schema: bool) -> str:
    texts = [
        (SYSTEM_SCHEMA_DIR / f"{name}.ldif").read_text(encoding="utf-8") for name in SYSTEM_SCHEMAS
    ]
    ours = ["eduperson.ldif", "supann.ldif"] if supann_schema else ["eduperson.ldif"]
    package = resources.files("umacct.localdir") / "schema"
    texts += [(package / name).read_text(encoding="utf-8") for name in ours]
    return "".join(text.rstrip("\n") + "\n\n" for text in texts)


def _access_rules(tree: Tree) -> list[str]:
    service = f'dn.exact="{tree.bind_dn}"'
    people = f'dn.subtree="{tree.people_dn}"'
    rules = [
        # The service account may set passwords (Password Modify) and test their presence,
        # but never read the hashes.
        f"to attrs=userPassword by self write by anonymous auth by {service} =wscdx by * none",
        # The tool's state (pending links, purged identifiers...): its DN only (docs/state.md).
        f'to dn.subtree="{tree.state_dn}" by {service} write by * none',
        # Plain write covers ppolicy's pwdStartTime, pwdEndTime and pwdAccountLockedTime:
        # in OpenLDAP 2.5 they are operational but administrator-modifiable.
        f"to {people} by {service} write by self read by * none",
        f"to * by {service} read by self read by * none",
    ]
    return [f"{{{number}}}{rule}" for number, rule in enumerate(rules)]


def _tls_settings(tls: ServerCertificate | None) -> dict[str, list[str]]:
    if tls is None:
        return {}
    return {
        "olcTLSCACertificateFile": [str(tls.ca_file)],
        "olcTLSCertificateFile": [str(tls.certificate)],
        "olcTLSCertificateKeyFile": [str(tls.key)],
    }


def _syncrepl(tree: Tree, replication: Replication) -> str:
    # retry "1 +": every second for ever, so a restarted peer is caught up within seconds.
    return (
        f"{{0}}rid={replication.server_id:03d} provider={replication.peer_url} "
        f'bindmethod=sasl saslmech=EXTERNAL searchbase="{tree.base_dn}" '
        'type=refreshAndPersist retry="1 +" timeout=5 network-timeout=3'
    )


def _replication_settings(tree: Tree, replication: Replication | None) -> dict[str, list[str]]:
    if replication is None:
        return {}
    return {"olcSyncrepl": [_syncrepl(tree, replication)], "olcMultiProvider": ["TRUE"]}


def config_ldif(
    tree: Tree,
    files: ServerFiles,
    *,
    durable: bool,
    supann_schema: bool,
    tls: ServerCertificate | None = None,
    replication: Replication | None = None,
) -> str:
    """The LDIF of the whole ``cn=config`` tree, for ``slapadd -n0``.

    With ``tls`` the server offers StartTLS and ldaps with those files; with ``replication``
    it is one provider of a multi-provider pair (syncprov, and syncrepl from its peer).
    """
    scheme = password_hash_scheme()
    modules = ["back_mdb", "ppolicy"] + (["argon2"] if scheme == "{ARGON2}" else [])
    indexes = list(_INDEXES) + (list(_SUPANN_INDEXES) if supann_schema else [])
    if replication is not None:
        modules.append("syncprov")
        indexes.append("entryCSN,entryUUID eq")
    server_id = {"olcServerID": [str(replication.server_id)]} if replication else {}
    peercred = f"gidnumber={files.gid}\\+uidnumber={files.uid},cn=peercred,cn=external,cn=auth"
    root_only = [f'{{0}}to * by dn.exact="{tree.root_dn}" manage by * none']
    head = [
        LdifEntry("cn=config", {
            "objectClass": ["olcGlobal"],
            "cn": ["config"],
            "olcPidFile": [str(files.pid_file)],
            "olcArgsFile": [str(files.args_file)],
            "olcAuthzRegexp": [f'{{0}}"^{peercred}$" "{tree.root_dn}"'],
            "olcToolThreads": ["2"],
            **server_id,
            **_tls_settings(tls),
        }),
        LdifEntry("cn=module{0},cn=config", {
            "objectClass": ["olcModuleList"],
            "cn": ["module{0}"],
            "olcModulePath": [str(MODULE_DIR)],
            "olcModuleLoad": [f"{{{n}}}{name}" for n, name in enumerate(modules)],
        }),
        LdifEntry("cn=schema,cn=config", {"objectClass": ["olcSchemaConfig"], "cn": ["schema"]}),
    ]  # fmt: skip
    databases = [
        LdifEntry("olcDatabase={-1}frontend,cn=config", {
            "objectClass": ["olcDatabaseConfig", "olcFrontendConfig"],
            "olcDatabase": ["{-1}frontend"],
            "olcPasswordHash": [scheme],
        }),
        LdifEntry("olcDatabase={0}config,cn=config", {
            "objectClass": ["olcDatabaseConfig"],
            "olcDatabase": ["{0}config"],
            "olcAccess": root_only,
        }),
        LdifEntry("olcDatabase={1}mdb,cn=config", {
            "objectClass": ["olcDatabaseConfig", "olcMdbConfig"],
            "olcDatabase": ["{1}mdb"],
            "olcDbDirectory": [str(files.data_dir)],
            "olcSuffix": [tree.base_dn],
            "olcRootDN": [tree.root_dn],
            "olcDbMaxSize": [str(DB_MAX_SIZE)],
            "olcDbNoSync": ["FALSE" if durable else "TRUE"],
            # Records pwdLastSuccess on every successful bind.
            "olcLastBind": ["TRUE"],
            "olcDbIndex": indexes,
            "olcAccess": _access_rules(tree),
            # Paged searches over the whole population must not hit the default size limit.
            "olcLimits": [f'{{0}}dn.exact="{tree.bind_dn}" size=unlimited time=unlimited'],
            **_replication_settings(tree, replication),
        }),
        LdifEntry("olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config", {
            "objectClass": ["olcOverlayConfig", "olcPPolicyConfig"],
            "olcOverlay": ["{0}ppolicy"],
            "olcPPolicyDefault": [tree.default_policy_dn],
            "olcPPolicyHashCleartext": ["TRUE"],
        }),
    ]  # fmt: skip
    if replication is not None:
        syncprov = {
            "objectClass": ["olcOverlayConfig", "olcSyncProvConfig"],
            "olcOverlay": ["{1}syncprov"],
            "olcSpCheckpoint": ["100 1"],
            # The deletes a provider made while its peer was down, replayed to the peer when it
            # comes back: without this log only a present phase tells them, and a peer once
            # kept a deleted entry with the contextCSN of the delete (a CI run of the
            # kill-and-restart test).
            "olcSpSessionlog": ["1000"],
        }
        databases.append(LdifEntry("olcOverlay={1}syncprov,olcDatabase={1}mdb,cn=config", syncprov))
    return entries_to_ldif(head) + _schema_ldif(supann_schema) + entries_to_ldif(databases)


def _base_entry(base_dn: str) -> LdifEntry:
    attribute, _, value = base_dn.split(",", maxsplit=1)[0].partition("=")
    match attribute.strip().lower():
        case "dc":
            return LdifEntry(base_dn, {
                "objectClass": ["dcObject", "organization"], "dc": [value], "o": [value],
            })  # fmt: skip
        case "o":
            return LdifEntry(base_dn, {"objectClass": ["organization"], "o": [value]})
        case _:
            raise InvalidInputError(f"base DN {base_dn!r}: expected it to start with dc= or o=")


def _unit(dn: str, name: str) -> LdifEntry:
    return LdifEntry(dn, {"objectClass": ["organizationalUnit"], "ou": [name]})


def base_entries(tree: Tree, bind_password: str) -> list[LdifEntry]:
    """The base tree: base entry, units, default policy, service account, the tool's state."""
    from umacct.state.branch import branch_entries

    return [
        _base_entry(tree.base_dn),
        _unit(tree.people_dn, "people"),
        _unit(tree.system_dn, "system"),
        *(LdifEntry(dn, attributes) for dn, attributes in branch_entries(tree.state_dn)),
        _unit(tree.policies_dn, "policies"),
        LdifEntry(tree.default_policy_dn, {
            "objectClass": ["organizationalRole", "pwdPolicy"],
            "cn": ["default"],
            "pwdAttribute": ["userPassword"],
            # pwdAccountLockedTime only counts with pwdLockout; no lockout after failed binds.
            "pwdLockout": ["TRUE"],
            "pwdMaxFailure": ["0"],
        }),
        LdifEntry(tree.bind_dn, {
            "objectClass": ["organizationalRole", "simpleSecurityObject"],
            "cn": ["umacct"],
            "description": ["Service account of the umacct tool"],
            "userPassword": [ssha_hash(bind_password)],
        }),
    ]  # fmt: skip
