"""Test certificates for a local directory: a throwaway CA and a server certificate it signs.

The server certificate names ``localhost`` only (no IP address), so that a client which
connects to ``localhost`` verifies it and one that connects to ``127.0.0.1`` sees a host
name mismatch: both cases are testable with one server. Made with the ``openssl`` command.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from umacct.errors import UnavailableError

SERVER_NAME = "localhost"
VALID_DAYS = 30
_KEY_OPTIONS = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc")


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA whose certificate a client trusts (``ca_file``) and whose key signs servers."""

    certificate: Path
    key: Path


@dataclass(frozen=True)
class ServerCertificate:
    """What slapd needs for TLS: the CA certificate, its own certificate and its key."""

    ca_file: Path
    certificate: Path
    key: Path


def make_ca(folder: Path, name: str = "umacct test CA") -> CertificateAuthority:
    """Create a self-signed CA in ``folder`` (``ca.pem``, ``ca.key``), valid a few weeks."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    authority = CertificateAuthority(folder / "ca.pem", folder / "ca.key")
    _openssl(
        "req", "-x509", *_KEY_OPTIONS, "-days", str(VALID_DAYS), "-subj", f"/CN={name}",
        "-keyout", str(authority.key), "-out", str(authority.certificate),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return authority


def make_server_certificate(
    folder: Path, authority: CertificateAuthority, host_name: str = SERVER_NAME
) -> ServerCertificate:
    """Create ``server.pem`` and ``server.key`` in ``folder``, for ``host_name``, signed by ``authority``."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    server = ServerCertificate(authority.certificate, folder / "server.pem", folder / "server.key")
    request, extensions = folder / "server.csr", folder / "server.ext"
    _openssl(
        "req", "-new", *_KEY_OPTIONS, "-subj", f"/CN={host_name}",
        "-keyout", str(server.key), "-out", str(request),
    )  # fmt: skip
    extensions.write_text(
        f"subjectAltName = DNS:{host_name}\n"
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n",
        encoding="ascii",
    )
    _openssl(
        "x509", "-req", "-in", str(request), "-days", str(VALID_DAYS),
        "-CA", str(authority.certificate), "-CAkey", str(authority.key), "-CAcreateserial",
        "-extfile", str(extensions), "-out", str(server.certificate),
    )  # fmt: skip
    request.unlink()
    extensions.unlink()
    return server


def make_test_tls(folder: Path) -> ServerCertificate:
    """A fresh CA and a certificate for ``localhost`` it signs, all in ``folder``."""
    return make_server_certificate(folder, make_ca(folder))


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise UnavailableError(
            "the openssl command is needed for a local directory with TLS; "
            "install it with 'apt-get install openssl'"
        )
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UnavailableError(f"openssl {args[0]} failed: {result.stderr.strip()}")
