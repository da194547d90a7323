"""Copies kept beside a state before the commit layer replaces it, and the refusal to
replace a state this writer could not read.

``<url>.unreadable``: a current object that could not be read, before a save replaces it;
``<url>.legacy.json``: a legacy JSON document, before the first save converts it. Neither
copy is on the critical path: a failure is logged and the save goes ahead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..errors import CorruptStateError, MissingKeyError, StateError, UnreadableStateError
from ..storage import ObjectInfo, Store

__all__ = ["copy_aside", "damaged_error", "damaged_token", "missing_key", "replaceable"]

log = logging.getLogger("statevault")


def copy_aside(
    store: Store, token: str, suffix: str, *, what: str = "the unreadable state", once: bool = False
) -> None:
    """Copy the object of ``store`` to ``<url><suffix>`` if it is still version ``token``.

    ``once``: keep an existing copy (it is the original). Never raises: the caller's save
    must go ahead whatever happens here.
    """
    aside = store.sibling(suffix)
    try:
        if once and aside.info() is not None:
            return
        data, info = store.read()
        if info.token != token:
            return
        aside.write([data])
    except (StateError, OSError) as e:
        log.error(
            "%s: could not keep %s aside at %s (%s); saving anyway", store.url, what, aside.url, e
        )
        return
    log.error("%s: kept %s aside at %s before replacing it", store.url, what, aside.url)


def missing_key(url: str) -> MissingKeyError:
    """The error of a keyless writer facing an encrypted state."""
    return MissingKeyError(
        f"{url} is encrypted and this manager has no key: give encryption_key (or key_file, "
        "or STATEVAULT_KEY)"
    )


def replaceable(store: Store, token: str, error: StateError, on_unreadable: str) -> bool:
    """Whether a write may go ahead over the object ``token`` that could not be read.

    False: it is no longer stored (the write's own check applies). True: it is, and the caller
    said ``on_unreadable="replace"``. Otherwise ``UnreadableStateError`` saying why and what
    to do. One ranged read.
    """
    head = store.read_head(1)
    if head is None or head[1].token != token:
        return False
    if on_unreadable == "replace":
        return True
    raise UnreadableStateError(
        f"{store.url} holds a state this manager could not read ({type(error).__name__}: "
        f"{error}); saving would replace it, so nothing was saved. Fix the cause (the right "
        "encryption_key, a newer statevault, the missing types) and load it again; or, to "
        "replace it on purpose, create the manager with on_unreadable='replace' (its bytes "
        f"are kept at {store.url}.unreadable first)."
    ) from error


def damaged_error(url: str) -> UnreadableStateError:
    """A running writer found its state damaged and no retained version readable."""
    return UnreadableStateError(
        f"{url}: the stored state changed into something unreadable and no retained version "
        "reads: nothing was saved over it. Inspect or restore it, or create the manager with "
        f"on_unreadable='replace' to save over it (its bytes are kept at {url}.unreadable)."
    )


def damaged_token(
    read: Callable[[], tuple[Any, ObjectInfo]], decode: Callable[[Any], Any]
) -> str | None:
    """The token of the stored object if it is damaged beyond reading, else None.

    Only called after a refused write (rare), so reading the whole object is acceptable.
    """
    try:
        data, info = read()
    except StateError:
        return None
    try:
        decode(data)
    except CorruptStateError:
        return info.token
    except StateError:
        return None  # readable bytes this process cannot use (keys, types): not ours to judge
    return None
