"""What `cache.remote` names, before anything is opened: the URL's protocol, its form without a
password (`redact`), the modes, the storage options that must not hold a secret, and how fsspec's
backends report an entry's modification time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

MODES = ("read-write", "read-only", "off")
# single-PUT stores: an upload is visible whole at its final name or not at all
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
READ_ONLY_PROTOCOLS = frozenset({"http", "https"})
# storage options that carry a secret: refused in cache.remote.options (config is cached and
# reported); credentials come from the provider's environment variables, profile or role
SECRET_OPTIONS = frozenset({"key", "secret", "password", "account_key", "sas_token", "connection_string",
                            "client_secret", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"})
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}


def redact(url: str) -> str:
    """The URL with any password (`scheme://user:password@host`) replaced by ***."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", url)


def protocol_of(url: str) -> str:
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    return match.group(1).lower() if match else "file"


def secret_option(options: Any, where: str) -> str | None:
    """The config key of the first credential in `options` (searched through nested dicts), or None."""
    if not isinstance(options, Mapping):
        return None
    for name, value in options.items():
        here = f"{where}.{name}"
        if str(name).lower() in SECRET_OPTIONS:
            return here
        found = secret_option(value, here)
        if found:
            return found
    return None


def plain_options(value: Any) -> Any:
    """Nested mappings (an OmegaConf DictConfig too) as plain dicts, lists as lists: what fsspec's
    backends expect as keyword arguments."""
    if isinstance(value, Mapping):
        return {str(k): plain_options(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_options(v) for v in value]
    return value


def listed_mtime(info: dict[str, Any]) -> float:
    """An fsspec listing entry's modification time in seconds (s3fs: LastModified, a datetime;
    local: mtime; gcsfs: updated, an ISO string), 0 where the backend gives none."""
    for field in ("LastModified", "mtime", "updated", "last_modified", "created"):
        value = info.get(field)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
        return float(value)
    return 0.0
