"""Whether a host names this machine only: the one test behind every cleartext exception."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP literal (127.0.0.0/8, ``::1``).

    Any case, with or without the final dot, bracketed or not. Names are never resolved:
    ``127.0.0.1.evil.com`` is not this machine.
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
