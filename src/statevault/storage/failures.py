"""How a backend failure reads as a statevault error: the chain, the generic rules, the text.

One function, ``translate_error``, maps any exception a backend raised to ``StorageError`` or a
subclass with the original chained; a backend adds only its own knowledge through its
``classify_error`` (``ErrorClassifier``). Kept apart from ``base`` (the contract) because it is
policy: which failures a retry or the spool can help, and what the message tells a user to do.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from typing import Final

from ..errors import (
    StorageConfigurationError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)

__all__ = ["ErrorClassifier", "describe_error", "exception_chain", "translate_error"]


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts (cycle-safe)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


_UNAVAILABLE: Final = (ConnectionError, TimeoutError, socket.gaierror)

#: What a backend's ``classify_error`` returns: the error class a failure means, or None.
ErrorClassifier = Callable[[BaseException], "type[StorageError] | None"]


def translate_error(
    exc: BaseException, *, url: str, action: str, classify: ErrorClassifier | None = None
) -> StorageError:
    """Map a backend failure to ``StorageError`` or a subclass, with ``exc`` chained.

    ``classify`` is the backend's own knowledge (its error codes and client exception types,
    see ``Store.classify_error``); where it says nothing, the generic rules apply: permission
    errors -> ``StoragePermissionError``; connection failures and timeouts ->
    ``StorageUnavailableError``; a full disk or quota -> ``StorageError`` saying so; anything
    else -> ``StorageError``. ``action`` is a gerund phrase for the message ("saving", ...).
    """
    chain = list(exception_chain(exc))
    kind = classify(exc) if classify is not None else None
    err: StorageError
    if kind is StorageConfigurationError:
        err = StorageConfigurationError(
            f"The storage of {url} is misconfigured ({action}): {describe_error(exc)}. Fix the URL "
            "or storage_options; nothing was spooled, since retrying cannot help."
        )
    elif any(isinstance(e, IsADirectoryError) for e in chain):
        err = StorageConfigurationError(
            f"{url} is a directory, not a state file: give the path of a file (for example "
            f"{url.rstrip('/')}/state.sv)."
        )
    elif (
        kind is None
        and not any(isinstance(e, OSError) for e in chain)
        and any(isinstance(e, TypeError | ValueError) for e in chain)
    ):
        # The backend rejected its own configuration (an unknown or invalid option, an
        # invalid endpoint): no retry or spool can help.
        err = StorageConfigurationError(
            f"The storage of {url} rejected its configuration while {action}: "
            f"{describe_error(exc)}. Check storage_options and the URL."
        )
    elif kind is StoragePermissionError or (
        kind is None and any(isinstance(e, PermissionError) for e in chain)
    ):
        err = StoragePermissionError(
            f"Access denied while {action} {url}: check file permissions, or the credentials "
            f"and bucket policy in storage_options. ({describe_error(exc)})"
        )
    elif kind is StorageUnavailableError or (
        kind is None and any(isinstance(e, _UNAVAILABLE) for e in chain)
    ):
        err = StorageUnavailableError(
            f"Storage for {url} cannot be reached while {action}: check the endpoint, network "
            f"and credentials, then retry. ({describe_error(exc)})"
        )
    elif any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain):
        err = StorageError(
            f"No space left while {action} {url}: free disk space or raise the quota, then "
            f"retry; the previously stored state is unchanged. ({describe_error(exc)})"
        )
    else:
        err = StorageError(f"Storage failed while {action} {url}: {describe_error(exc)}")
    err.__cause__ = exc
    return err


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception (the type alone when it has no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
