"""``memory://``: fsspec's process-wide in-memory filesystem, for tests and ephemeral state.

Every ``memory://`` store in a process shares fsspec's one global ``MemoryFileSystem`` store,
as users of fsspec expect; nothing survives the process. A replace puts a new file object
into the store's dict in one step, so it is atomic; a per-path process lock makes
compare-and-swap exact within the process (the only place this store exists).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC
from typing import TYPE_CHECKING, Any

from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from .base import (
    ANY,
    Listed,
    ObjectInfo,
    Store,
    check_expected,
    check_range,
    hold,
    join_chunks,
    process_lock,
    reject_storage_options,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["MemoryStore"]

# Tokens are a process-wide counter attached to the file object that holds the bytes: a new
# object (from us or from anyone using fsspec directly) gets a new number.
_counter = itertools.count(1)
_tokens: weakref.WeakKeyDictionary[MemoryFile, str] = weakref.WeakKeyDictionary()
_tokens_guard = threading.Lock()


def _token(f: MemoryFile) -> str:
    with _tokens_guard:
        token = _tokens.get(f)
        if token is None:
            token = _tokens[f] = f"m{next(_counter)}"
        return token


def _info(f: MemoryFile) -> ObjectInfo:
    modified = getattr(f, "modified", None)
    if modified is not None:
        modified = modified.astimezone(UTC)
    return ObjectInfo(size=f.getbuffer().nbytes, modified=modified, token=_token(f))


class MemoryStore(Store):
    """An object in fsspec's process-wide memory filesystem; atomic and conditional.

    ``read`` returns ``bytes`` (a copy: the stored object stays immutable to callers).
    ``lock`` is the per-process lock ``write`` takes, which is all the locking this store
    can need. Clear everything with ``MemoryFileSystem.store.clear()``.
    """

    protocol = "memory"
    atomic = True
    conditional = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        reject_storage_options(storage_options, "memory://")
        self._fs = MemoryFileSystem()
        self.path: str = self._fs._strip_protocol(url)
        self.url = f"memory://{self.path}"
        self._lock = process_lock(self.url)

    def _file(self) -> MemoryFile | None:
        # One dict lookup: the bytes and the info then come from the same object.
        f: MemoryFile | None = self._fs.store.get(self.path)
        return f

    def read(self) -> tuple[Buffer, ObjectInfo]:
        f = self._file()
        if f is None:
            raise self._not_found()
        return f.getvalue(), _info(f)

    def read_range(self, start: int, end: int) -> bytes:
        check_range(start, end)
        f = self._file()
        if f is None:
            raise self._not_found()
        with f.getbuffer() as view:
            return bytes(view[start:end]) if end > start else b""

    def info(self) -> ObjectInfo | None:
        f = self._file()
        return None if f is None else _info(f)

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        data = join_chunks(chunks)
        with self._lock:
            if expect is not ANY:
                current = self._file()
                check_expected(self.url, None if current is None else _info(current), expect)
            f = MemoryFile(self._fs, self.path, data)
            f.commit()  # one dict assignment: readers see the old object or this one
            return _info(f)

    def delete(self) -> bool:
        with self._lock:
            return self._fs.store.pop(self.path, None) is not None

    def list_dir(self) -> list[Listed]:
        """The objects ``<path>/<name>`` (one level), from one copy of the store's dict: what
        was stored at that instant. The stamp is the file object's ``modified`` time, which
        every replace sets anew (a new object)."""
        prefix = self.path + "/"
        found = []
        for key, f in list(self._fs.store.items()):  # one C-level copy: no lock needed
            name = key[len(prefix) :] if key.startswith(prefix) else ""
            if name and "/" not in name and not name.startswith("."):
                modified = getattr(f, "modified", None)
                stamp = None if modified is None else modified.timestamp()
                found.append(Listed(name, f.getbuffer().nbytes, stamp))
        return found

    def lock(self) -> AbstractContextManager[None]:
        """The per-process lock ``write`` uses (re-entrant within a thread)."""
        return hold(self._lock)

    def sibling(self, suffix: str) -> MemoryStore:
        return MemoryStore(self.url + suffix)
