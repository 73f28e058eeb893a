"""Typed errors. They are turned into one-line messages and exit codes in one place (cli.py)."""

from __future__ import annotations

import re


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


class CacheCorrupt(TrtmakeError):
    """A cached object or record failed verification; callers treat it as a cache miss."""

    exit_code = 1


class MissingDependency(UserError):
    """An optional package (tensorrt, torch, ...) is needed by the target but not installed."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The meaningful part of a library's error message, on one line: onnxruntime's and onnx's
    status prefixes and the model path they repeat are dropped; long text is cut at a word."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*", "", text)
    text = re.sub(r"^(Load model from \S+ failed:|Node \([^)]*\) Op \([^)]*\) )", "", text).strip()
    text = re.sub(r"^\[ShapeInferenceError\]\s*", "", text)
    return shorten(text, limit)


def shorten(text: str, limit: int = 300) -> str:
    """`text` cut at a word to at most `limit` characters, with " ..." where it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 4].rsplit(" ", 1)[0] + " ..."
