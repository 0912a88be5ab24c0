"""The suite under libfaketime (`make test-later-dates`): what it changes and how the tests cope.

Debian's libfaketime 0.9.10 calls ``getenv`` inside its ``pthread_cond_timedwait``, which a
thread waiting for the GIL calls without holding it, while the thread that holds the GIL may
be adding a variable to the environment (every test does, through ``monkeypatch.setenv``).
glibc's ``setenv`` then moves the environment array and frees the old one under the reader:
a segmentation fault, seen once in CI and reproduced in a few seconds by
``tests/test_faketime_support.py``. Under faketime, the suite writes the environment by
installing a new array and keeping every old one alive, so a reader half-way through an old
array still reads valid memory.
"""

from __future__ import annotations

import ctypes
import errno
import os

UNDER_FAKETIME = "faketime" in os.environ.get("LD_PRELOAD", "")

_libc = ctypes.CDLL(None)
_environ = ctypes.c_void_p.in_dll(_libc, "environ")
_kept_alive: list[ctypes.Array[ctypes.c_char] | ctypes.Array[ctypes.c_void_p]] = []


def write_environment_copy_on_write() -> None:
    """From now on, os.environ's writes reach the C environment without freeing any array."""
    os.putenv = _putenv
    os.unsetenv = _unsetenv


def _putenv(name: str | bytes, value: str | bytes) -> None:
    name_bytes, value_bytes = os.fsencode(name), os.fsencode(value)
    if b"\0" in name_bytes + value_bytes:
        raise ValueError("embedded null byte")
    if b"=" in name_bytes:
        raise ValueError("illegal environment variable name")
    _refuse_what_glibc_refuses(name_bytes)
    entry = ctypes.create_string_buffer(name_bytes + b"=" + value_bytes)
    _kept_alive.append(entry)
    _install([*_entries_without(name_bytes), ctypes.addressof(entry)])


def _unsetenv(name: str | bytes) -> None:
    name_bytes = os.fsencode(name)
    if b"\0" in name_bytes:
        raise ValueError("embedded null byte")
    _refuse_what_glibc_refuses(name_bytes)
    _install(_entries_without(name_bytes))


def _refuse_what_glibc_refuses(name: bytes) -> None:
    """The errors os.putenv and os.unsetenv raise for the names setenv refuses."""
    if not name or b"=" in name:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))


def _entries_without(name: bytes) -> list[int]:
    """The addresses of the C environment's "NAME=value" strings, but those of ``name``.

    Read through pointer views rather than ctypes.cast or string_at: those are foreign calls,
    which hand the GIL to the waiting threads at every entry.
    """
    addresses = ctypes.POINTER(ctypes.c_void_p).from_address(ctypes.addressof(_environ))
    texts = ctypes.POINTER(ctypes.c_char_p).from_address(ctypes.addressof(_environ))
    entries: list[int] = []
    index = 0
    while (address := addresses[index]) is not None:
        if (texts[index] or b"").partition(b"=")[0] != name:
            entries.append(address)
        index += 1
    return entries


def _install(entries: list[int]) -> None:
    array = (ctypes.c_void_p * (len(entries) + 1))(*entries, None)
    _kept_alive.append(array)
    _environ.value = ctypes.addressof(array)  # one aligned store: a reader sees old or new
