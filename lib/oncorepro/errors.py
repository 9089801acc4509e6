"""Errors raised for bad user input: each message names the file and what is wrong with it."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A dataset file or folder is missing, unreadable or laid out unexpectedly."""

    def __init__(self, path: Path | str, problem: str, fix: str | None = None):
        self.path = Path(path)
        self.problem = problem
        message = f"{self.path}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)
