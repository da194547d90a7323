"""The storage contract every backend adapter fulfils, and the helpers they share.

A ``Store`` is one object (a file, a key) at one URL. It reads and replaces that object as a
whole, optionally only if it is still the version the caller last saw (compare-and-swap), and
translates every backend failure into the statevault error ladder with the original chained.
Per-backend differences live in one module per backend (``local``, ``memory``, ``generic``,
and ``s3``, ``azure``, ``gcs`` over the shared ``objectstore`` core); nothing outside this
package asks which backend it is talking to.
"""

from __future__ import annotations

import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..errors import ConflictError, StateNotFoundError, StorageError

if TYPE_CHECKING:
    # collections.abc.Buffer exists from Python 3.12; typing_extensions has it for 3.11.
    from typing_extensions import Buffer

from .failures import ErrorClassifier, describe_error, exception_chain, translate_error
from .urls import redact_url, reject_storage_options

__all__ = [
    "ANY",
    "ErrorClassifier",
    "Listed",
    "ObjectInfo",
    "Store",
    "check_expected",
    "exception_chain",
    "conflict_error",
    "describe_error",
    "redact_url",
    "reject_storage_options",
    "translate_error",
]

#: How many leading bytes go into content-derived tokens (local, generic backends).
TOKEN_HEAD_BYTES: Final = 4096


class _AnyType:
    """Type of the ``ANY`` sentinel; one instance exists."""

    _instance: _AnyType | None = None

    def __new__(cls) -> _AnyType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


#: Pass as ``expect=`` to write unconditionally (the default).
ANY: Final = _AnyType()


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend says about one stored object at one moment.

    ``token`` is opaque: compare it for equality only. It changes whenever the object is
    replaced (S3: the ETag; local files: stat fields plus a CRC of the first 4 KiB; memory: a
    counter). ``modified`` is tz-aware UTC, or ``None`` where the backend does not say; it is
    informational and left out of ``==``, so two infos are equal when they describe the same
    stored version (same size and token), even if two requests reported the time differently.
    """

    size: int
    modified: datetime | None = field(compare=False)
    token: str


class Listed(NamedTuple):
    """One object ``Store.list_dir`` found: its name in the folder, size, and modification
    time in POSIX seconds as the listing gives it (None: it gives none; S3 and Azure give
    whole seconds). The stamp is for equality between listings, not for clock arithmetic."""

    name: str
    size: int
    stamp: float | None


class Store(ABC):
    """One object at one URL: whole-object reads, atomic (where possible) replaces, CAS.

    ``atomic`` says whether ``write`` replaces the object so readers see the old or the new
    bytes, never a mix or a prefix. ``conditional`` says whether ``write(expect=...)`` is a
    real compare-and-swap; where it is False the check is made just before writing and a
    writer in another process can slip in between. Stores are thread-safe: every method
    may be called from several threads at once.
    """

    url: str
    protocol: str
    atomic: bool
    conditional: bool

    @abstractmethod
    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        """Open (not read) the object at ``url``; how ``open_store`` constructs every Store."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @abstractmethod
    def read(self) -> tuple[Buffer, ObjectInfo]:
        """Return the whole object and the info that matches exactly those bytes.

        Raises ``StateNotFoundError`` if nothing is stored at the URL.
        """

    @abstractmethod
    def read_range(self, start: int, end: int) -> bytes:
        """Return bytes ``[start, end)`` clipped to the object's size.

        Raises ``StateNotFoundError`` if nothing is stored at the URL, ``ValueError`` for a
        negative ``start``.
        """

    def read_range_owned(self, start: int, end: int) -> bytearray | memoryview:
        """``read_range`` into fresh writable memory that nothing else holds, so a loader may
        build arrays on it without a copy (delta loads read pack ranges with it).

        The default copies ``read_range``'s bytes once; ``LocalStore`` reads straight into it.
        Errors as ``read_range``.
        """
        return bytearray(self.read_range(start, end))

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        """Return the first ``length`` bytes and the info of the object they came from.

        ``None`` if nothing is stored. Backends that can do it in one request or on one open
        descriptor override this (local, S3); this default asks ``info()`` and then reads,
        so the bytes may belong to a newer object than the info: callers use the token only
        as a compare-and-swap expectation, where a mismatch is caught by the write.
        """
        info = self.info()
        if info is None:
            return None
        return self.read_range(0, min(length, info.size)), info

    def keep_copy(self, dest: Store, chunks: Sequence[Buffer], written: ObjectInfo) -> int:
        """Make ``dest`` hold the bytes this store has just written (``chunks``; the write
        returned ``written``); return the bytes that had to be sent again (0: none). The
        default writes them again; local files hard-link, S3 copies on the server."""
        dest.write(chunks, expect=ANY)
        return sum(memoryview(c).nbytes for c in chunks)

    @abstractmethod
    def info(self) -> ObjectInfo | None:
        """Return the object's current info, or ``None`` if nothing is stored. Never cached."""

    @abstractmethod
    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """Replace the object with the concatenation of ``chunks``; return the new info.

        ``expect=ANY`` writes unconditionally, ``expect=None`` only if nothing is stored yet,
        ``expect=<token>`` only if the stored object's token is still that token; otherwise
        ``ConflictError`` (with ``found``/``expected`` left ``None``) and nothing is written.
        """

    @abstractmethod
    def delete(self) -> bool:
        """Delete the object; return True if there was one."""

    def discard_lock(self) -> None:
        """Drop the lock state kept beside an object deleted for good, never written again
        (``LocalStore``: its ``.<name>.lock``, which a plain delete keeps). Best effort."""
        return None

    def dropping_new_lock(self) -> AbstractContextManager[None]:
        """Writes in this block leave behind no lock state the block created (an object
        written once as an archive: ``export``); lock state there before, or held by another
        process at the end, stays. Default: no-op (``LocalStore`` drops its ``.<name>.lock``)."""
        return nullcontext()

    def list_dir(self) -> list[Listed] | None:
        """The objects directly under this URL as a folder (``<url>/<name>``) with the size
        and stamp the listing gives: one listing (paged where the service pages), no request
        per object. Dot-names (locks, temp files) are left out; a missing folder is ``[]``.
        None: the backend cannot list (default; the delta orphan sweep then does not run)."""
        return None

    @abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """Return the exclusive lock ``write`` takes, to group read-check-write sequences.

        Local files: a cross-process ``flock`` on a sidecar lock file. Other backends: a
        per-process lock only (use ``write(expect=...)`` for cross-process safety). The
        lock is re-entrant within one thread, so ``write`` may be called while holding it.
        """

    @abstractmethod
    def sibling(self, suffix: str) -> Store:
        """Return a Store for ``<this url><suffix>`` on the same filesystem and options."""

    # -- helpers shared by the adapters ---------------------------------------------------

    @classmethod
    def classify_error(cls, exc: BaseException) -> type[StorageError] | None:
        """What a failure of this backend means, from its own error codes and client types:
        ``StoragePermissionError``, ``StorageUnavailableError``, or None for the generic rules
        (``translate_error``). Each backend module overrides this with what it knows."""
        return None

    def _translate(self, exc: BaseException, action: str) -> StorageError:
        """Turn a backend exception into the statevault error a caller can act on."""
        return translate_error(exc, url=self.url, action=action, classify=self.classify_error)

    def _not_found(self, exc: BaseException | None = None) -> StateNotFoundError:
        err = StateNotFoundError(
            f"No state is stored at {self.url}: save one first, or check the URL."
        )
        if exc is not None:
            err.__cause__ = exc
        return err


# -- chunks ---------------------------------------------------------------------------------


def byte_view(chunk: Buffer) -> memoryview:
    """Return a flat unsigned-byte view of any buffer (numpy arrays, memoryviews, bytes)."""
    view = memoryview(chunk)
    if not view.c_contiguous:
        # A strided view cannot be written as-is; one copy makes it contiguous.
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def join_chunks(chunks: Sequence[Buffer]) -> bytes:
    """Concatenate chunks into one ``bytes`` (one copy), for backends that need one body."""
    return b"".join(byte_view(c) for c in chunks)


def head_crc(data: Buffer) -> int:
    """CRC32 of the first ``TOKEN_HEAD_BYTES`` bytes of ``data``."""
    return zlib.crc32(byte_view(data)[:TOKEN_HEAD_BYTES])


def check_range(start: int, end: int) -> None:
    """Reject ranges no backend can serve."""
    if start < 0:
        raise ValueError(f"read_range start must be >= 0, got {start}")


# -- locks ----------------------------------------------------------------------------------

_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()


def process_lock(key: str) -> threading.RLock:
    """Return the process-wide re-entrant lock for ``key`` (one per URL)."""
    with _process_locks_guard:
        lock = _process_locks.get(key)
        if lock is None:
            lock = _process_locks[key] = threading.RLock()
        return lock


@contextmanager
def hold(lock: threading.RLock) -> Iterator[None]:
    """Context manager over an RLock (so ``Store.lock`` can return a fresh CM each call)."""
    with lock:
        yield


# -- conflicts ------------------------------------------------------------------------------


def conflict_error(url: str, expect: object) -> ConflictError:
    """The ``ConflictError`` every store raises when ``write(expect=...)`` does not hold."""
    if expect is None:
        return ConflictError(
            f"stored object changed: {url} already exists and this write expected to create "
            "it. Load it first, or save unconditionally."
        )
    return ConflictError(
        f"stored object changed: {url} was replaced or deleted by another writer since it "
        "was last read. Load it again, merge, and save."
    )


def check_expected(url: str, current: ObjectInfo | None, expect: object) -> None:
    """Raise ``conflict_error`` unless ``current`` (the stored object's info) meets ``expect``.

    ``expect`` as in ``Store.write``: ``ANY``, ``None`` (nothing stored) or a token.
    """
    if expect is ANY:
        return
    if expect is None:
        if current is not None:
            raise conflict_error(url, expect)
    elif current is None or current.token != expect:
        raise conflict_error(url, expect)
