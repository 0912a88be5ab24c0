"""The state file's sqlite errors as the tool's own, for every method that touches it."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from umacct.errors import TemporaryError, UnavailableError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def sqlite_reported(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn sqlite errors into the tool's: a busy file is temporary, the rest unavailable."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise TemporaryError(f"the state store is busy ({exc}); try again later") from exc
            raise UnavailableError(f"the state store failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise UnavailableError(f"the state store failed: {exc}") from exc

    return wrapper
