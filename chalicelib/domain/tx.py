"""The transaction port: writes that repositories collect, committed all or nothing."""

from __future__ import annotations

from typing import Protocol


class Tx(Protocol):
    """Writes collected by repositories, committed as one transaction."""

    def commit(self) -> None: ...
