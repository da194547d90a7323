"""URL and option helpers every backend shares: redacting credentials for messages, and
refusing ``storage_options`` a backend has no use for (kept apart from ``base``, the
contract itself; re-exported there)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import StorageOptionsError

# -- URLs -----------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """Drop ``user:password@`` from a URL so it is safe to show in messages."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# -- options --------------------------------------------------------------------------------


def reject_storage_options(options: Mapping[str, Any] | None, target: str) -> None:
    """Refuse ``storage_options`` for a backend that takes none (``target``: "a local path").

    ``StorageOptionsError`` (a configuration error: never spooled; exit status 10 in the CLI)
    names the options and where they may have come from.
    """
    if options:
        raise StorageOptionsError(
            f"storage_options {sorted(options)} have no meaning for {target}: remove them "
            "(--storage-options or STATEVAULT_STORAGE_OPTIONS on the command line), or give "
            "the URL of a backend that takes options (s3://, az://, gs://, ...)."
        )
