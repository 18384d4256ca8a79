"""The progress interface of a bench. The CLI draws it, and tests pass a silent one."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def phase(self, description: str, total: int) -> None: ...

    def advance(self, steps: int = 1) -> None: ...

    def message(self, text: str) -> None: ...


class SilentProgress:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def message(self, text: str) -> None:
        pass
