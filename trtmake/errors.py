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
