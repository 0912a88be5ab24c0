"""One way for the tool's resources (connections, databases, transports) to work with ``with``."""

from __future__ import annotations

from typing import Self


class Closing:
    """``with resource:`` closes it on the way out, whatever happened inside."""

    def close(self) -> None:
        """Release what the resource holds; nothing by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
