"""Typed errors. They are turned into one-line messages and exit codes in one place (cli.py)."""

from __future__ import annotations


class TrtmakeError(Exception):
    """Base of every error trtmake raises on purpose."""

    exit_code = 1


class UserError(TrtmakeError):
    """Bad configuration or input: the user can fix it. Exit code 2.

    The message names the file or config key and says what would fix it.
    """

    exit_code = 2


class BuildFailed(TrtmakeError):
    """A stage failed while running (backend error, crash in a converter). Exit code 1."""

    exit_code = 1


class AssertionsFailed(TrtmakeError):
    """A validation assertion did not hold. Exit code 1."""

    exit_code = 1


class CacheCorrupt(TrtmakeError):
    """A cached object or record failed verification; callers treat it as a cache miss."""

    exit_code = 1


class MissingDependency(UserError):
    """An optional package (tensorrt, torch, ...) is needed by the target but not installed."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message that says something, shortened to `limit`
    characters; a framework's "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT :" prefix is dropped."""
    for line in str(exc).strip().splitlines():
        line = line.strip()
        if line.startswith("[ONNXRuntimeError]"):
            line = line.split(" : ", 3)[-1].strip()
        if line and not line.startswith(("Traceback", "File ")):
            return shorten(line, limit)
    return type(exc).__name__


def shorten(text: str, limit: int = 300) -> str:
    """`text` cut to `limit` characters, with "..." where it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
