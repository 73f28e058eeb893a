"""Hydra and OmegaConf exceptions -> one-line UserError messages naming the key and the fix."""

from __future__ import annotations

import dataclasses
import os
import re
import typing

from trtmake.errors import UserError
from trtmake.heavy import lazy_import
from trtmake.project import find_project_root

schema = lazy_import("trtmake.config.schema")


def _schema_type(parts: list[str]) -> typing.Any:
    """The schema's type at a dotted path (Optional unwrapped), or the first type on the way that
    is no dataclass (a Dict field, whose entries are free); None at a key the schema lacks."""
    node: typing.Any = schema.Config
    for part in parts:
        if not dataclasses.is_dataclass(node):
            return node
        hints = typing.get_type_hints(node)
        if part not in hints:
            return None
        node = hints[part]
        if typing.get_origin(node) is typing.Union:
            node = next((a for a in typing.get_args(node) if a is not type(None)), node)
    return node


def _valid_keys(full_key: str) -> list[str]:
    node = _schema_type(full_key.split(".")[:-1])
    return [f.name for f in dataclasses.fields(node)] if dataclasses.is_dataclass(node) else []


def _is_mapping_entry(full_key: str) -> bool:
    """`full_key` is a free mapping of the schema (a Dict field) or an entry of one."""
    node = _schema_type(full_key.split("."))
    return typing.get_origin(node) is dict or node is dict


def _chain(exc: BaseException) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def yaml_syntax_error(exc: BaseException) -> UserError | None:
    """A YAML syntax error anywhere in the chain (a recipe or conf/ file that does not parse):
    one line naming the file and line, instead of PyYAML's four."""
    import yaml

    cause = next((c for c in _chain(exc) if isinstance(c, yaml.MarkedYAMLError)), None)
    if cause is None:
        return None
    mark = cause.context_mark or cause.problem_mark
    name = str(getattr(mark, "name", "") or "a config file")
    try:
        root = str(find_project_root())
    except UserError:
        root = None
    if root and os.path.isabs(name) and name.startswith(os.path.join(root, "")):
        name = os.path.relpath(name, root)
    where = f"{name}, line {mark.line + 1}" if mark is not None else name
    what = "; ".join(part for part in (cause.context, cause.problem) if part)
    if cause.problem_mark is not None and cause.problem_mark is not mark:
        what += f" (line {cause.problem_mark.line + 1}, column {cause.problem_mark.column + 1})"
    return UserError(f"{where}: YAML syntax error: {what}; fix the file's YAML")


def to_user_error(exc: BaseException) -> UserError:
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    syntax = yaml_syntax_error(exc)
    if syntax is not None:
        return syntax
    text = str(exc)
    m = re.search(r"You must specify '([^']+)'", text)
    if m:
        options = re.findall(r"^\t(\S+)$", text, re.M)
        return UserError(f"{m.group(1)}: none given; pass {m.group(1)}=NAME, available: {', '.join(options)}")
    if isinstance(exc, MissingConfigException):
        options = re.findall(r"^\t(\S+)$", text, re.M)
        m = re.search(r"Could not find '([^/']+)/([^']+)'", text)
        if m:
            group, name = m.groups()
            return UserError(f"{group}={name}: no such recipe in engine_recipes/{group}/; "
                             f"available: {', '.join(options) or 'none'}")
        return UserError(text.splitlines()[0])
    if isinstance(exc, OverrideParseException):
        return UserError(f"command line: {text.splitlines()[0]}")
    where = ""
    m = re.search(r"In '([^']+)'", text)
    if m:
        where = f"engine_recipes/{m.group(1)}.yaml: " if "/" in m.group(1) else f"conf/{m.group(1)}.yaml: "
    m = re.search(r"Could not override '([^']+)'", text)
    if m and "To append to your config use +" in text and _is_mapping_entry(m.group(1)):
        key = m.group(1)  # a new entry of a free mapping (profile.shapes, generator_params, ...)
        hint = " (or, for any input name, profile.inputs=[{name: ..., min: ..., opt: ..., max: ...}])" \
            if key.startswith("profile.shapes") else ""
        return UserError(f"{key}: adds entries to a mapping; write it with a leading '++': ++{key}=...{hint}")
    if m:
        key = m.group(1)
        valid = _valid_keys(key)
        return UserError(f"{key}: unknown key" + (f"; valid keys: {', '.join(valid)}" if valid else ""))
    for cause in _chain(exc):
        if isinstance(cause, OmegaConfBaseException):
            key = getattr(cause, "full_key", None) or ""
            msg = str(cause).splitlines()[0]
            km = re.match(r"Key '([^']+)' not in '([^']+)'", msg)
            if km:
                valid = _valid_keys(key) if key else []
                return UserError(f"{where}{key or km.group(1)}: unknown key"
                                 + (f"; valid keys: {', '.join(valid)}" if valid else ""))
            msg = re.sub(r"\s+", " ", msg)
            return UserError(f"{where}{key + ': ' if key else ''}{msg}")
    return UserError(f"{where}{text.splitlines()[0] if text else type(exc).__name__}")
