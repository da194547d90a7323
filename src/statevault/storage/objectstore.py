"""``ObjectStore``: the shared core of the cloud object stores (S3, Azure Blob, GCS).

An object store replaces an object atomically on every upload and checks a precondition the
caller names (an ETag or a generation) on the service, so compare-and-swap is the service's.
What is the same for every such service lives here, once: one request per operation, the
size check before any request, the write deadline, mapping ``expect`` to the precondition,
and the reading of failures ("not found", "precondition failed", "range not satisfiable",
"the container does not exist", "access denied") into the statevault error ladder.

A backend is one small subclass that declares only what differs, as zict's layers do: the
precondition arguments of its client (``unconditional``, ``if_absent``, ``if_match``), the
error codes and exception classes that mean each of those answers (``error_codes`` reads a
failure's codes; ``not_found_errors``, ``precondition_codes``, ...), what "unreachable" is
(``classify_error``), and the primitives that each send one request (``_get``, ``_head``,
``_put``, ``_remove`` as coroutines on the client's event loop, ``_connect`` for the
shared client), plus ``_list``, one paged listing, and ``_copy``, a server-side copy where
the service has one. Nothing here asks which backend it is.

Size: over 400 lines on purpose: the request protocol every cloud backend shares (each
operation's one request and how its failures read) is one unit, so that no backend repeats it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Self, TypeVar

from fsspec.asyn import sync

from ..errors import (
    ConfigurationError,
    StateError,
    StorageError,
    StoragePermissionError,
)
from .base import (
    ANY,
    Listed,
    ObjectInfo,
    Store,
    check_range,
    conflict_error,
    describe_error,
    hold,
    join_chunks,
    process_lock,
    redact_url,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "WRITE_TIMEOUT_BASE_S",
    "WRITE_TIMEOUT_PER_MIB_S",
    "ObjectStore",
    "byte_range",
    "content_total",
]

#: A PUT may take this long plus one second per MiB before it is abandoned.
WRITE_TIMEOUT_BASE_S: Final = 60.0
WRITE_TIMEOUT_PER_MIB_S: Final = 1.0

#: The shared client a backend's stores use (a filesystem, an account, ...).
H = TypeVar("H")


def byte_range(start: int | None, length: int | None) -> str | None:
    """The ``Range`` header for ``length`` bytes from ``start`` (None: the whole object)."""
    if start is None or length is None:
        return None
    return f"bytes={start}-{start + length - 1}"


def content_total(content_range: object, fallback: int) -> int:
    """The object's size from a ``Content-Range: bytes 0-99/12345`` answer (``fallback``
    when the header is absent, as it is when the whole object was sent)."""
    total = str(content_range or "").rpartition("/")[2]
    return int(total) if total.isdigit() else fallback


class ObjectStore(Store, Generic[H]):
    """One object in a cloud object store; atomic and conditional (the service checks).

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``, which
    the service enforces. Stores opened with equal ``storage_options`` share one client (the
    backend's ``_connect``); ``sibling`` shares it too. ``write_timeout`` in the options is a
    deadline in seconds for one whole upload (default 60 s plus 1 s per MiB).
    """

    atomic = True
    conditional = True

    # -- what each backend declares ---------------------------------------------------------

    #: Words for messages: "does not name an object: use s3://bucket/path/to/state".
    object_word: ClassVar[str] = "an object"
    container_word: ClassVar[str] = "bucket"
    #: How to create a missing container, for the message (" (az storage container create)").
    create_hint: ClassVar[str] = ""
    #: What to check when access is denied ("Access denied while saving <url>: check ...").
    credentials_hint: ClassVar[str] = "the credentials and bucket policy in storage_options"
    #: The end of "Cannot save N bytes to <url>: ..." when a state exceeds one upload.
    put_limit: ClassVar[str] = "one upload carries at most 5 GiB"
    #: The error a missing container is (a configuration error is never spooled).
    missing_container_error: ClassVar[type[StorageError]] = StorageError

    #: Keyword arguments of ``_put`` for an unconditional write and for "only if absent".
    unconditional: ClassVar[Mapping[str, Any]] = {}
    if_absent: ClassVar[Mapping[str, Any]]

    #: Exception classes and codes (``error_codes``) meaning "no such object".
    not_found_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    not_found_codes: ClassVar[frozenset[str]] = frozenset()
    #: ... meaning "the container (bucket) does not exist": never a missing object.
    container_missing_codes: ClassVar[frozenset[str]] = frozenset()
    #: ... meaning "a precondition failed": the compare-and-swap refused the write.
    precondition_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    precondition_codes: ClassVar[frozenset[str]] = frozenset({"412"})
    #: ... meaning "the range starts at or past the end of the object".
    range_codes: ClassVar[frozenset[str]] = frozenset({"416"})
    #: Whether a conditional write to a deleted object answers "not found" (S3 and Azure
    #: answer If-Match that way; GCS answers a generation mismatch with 412 instead).
    deleted_answers_not_found: ClassVar[bool] = True
    #: Whether a DELETE of a missing object says so (S3 answers 204 either way: ask first).
    delete_reports_missing: ClassVar[bool] = True
    #: Keys per page of ``list_dir`` (the services' own maximum is 1,000 on S3 and GCS).
    list_page: int = 1000

    @staticmethod
    def if_match(token: str) -> dict[str, Any]:
        """Keyword arguments of ``_put`` for "only if the stored token is still ``token``"."""
        raise NotImplementedError

    @classmethod
    def error_codes(cls, exc: BaseException) -> frozenset[str]:
        """The service's error codes and HTTP status (as text) that ``exc`` carries."""
        return frozenset()

    @classmethod
    @abstractmethod
    def _connect(cls, storage_options: Mapping[str, Any] | None) -> H:
        """The (shared) client for these options."""

    @abstractmethod
    def _split(self, url: str) -> tuple[str, str]:
        """``(container, key)`` of ``url``; either may be empty (then the URL is refused)."""

    @property
    @abstractmethod
    def _loop(self) -> Any:
        """The event loop the client's coroutines run on."""

    @abstractmethod
    def _max_put_bytes(self) -> int:
        """The largest object one upload may carry (read at each write)."""

    @abstractmethod
    async def _get(self, start: int | None, length: int | None) -> tuple[bytes, ObjectInfo]:
        """One GET of ``length`` bytes from ``start`` (all of it for ``None``); the info
        gives the object's whole size and the token of the version the bytes came from."""

    @abstractmethod
    async def _head(self) -> ObjectInfo:
        """One request for the object's metadata."""

    @abstractmethod
    async def _put(self, data: bytes, conditions: dict[str, Any]) -> ObjectInfo:
        """One upload of ``data`` with the precondition keyword arguments ``conditions``."""

    @abstractmethod
    async def _remove(self) -> None:
        """One DELETE."""

    async def _copy(self, dest: Self, token: str) -> str | None:
        """One server-side copy of this object over ``dest`` (same connection), refused by a
        service that checks it if this object's token is no longer ``token``; the copy's
        token. None: the backend has no such copy here (default), the bytes go up again."""
        return None

    @abstractmethod
    async def _list(self, prefix: str) -> list[Listed]:
        """One listing of the keys directly under ``prefix`` (the delimiter ``/``), every
        page of it; names relative to ``prefix``, size and last-modified from the listing."""

    # -- opening --------------------------------------------------------------------------

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        write_timeout = (storage_options or {}).get("write_timeout")
        self._init(
            self._connect(storage_options),
            url,
            None if write_timeout is None else float(write_timeout),
        )

    def _init(self, handle: H, url: str, write_timeout: float | None) -> None:
        self._handle = handle
        self._write_timeout = write_timeout
        container, key = self._split(url)
        if not container or not key or url.endswith("/"):
            raise ValueError(
                f"{redact_url(url)} does not name {self.object_word}: use "
                f"{self.protocol}://{self.container_word}/path/to/state"
            )
        self._container: str = container
        self._key: str = key
        self.path: str = f"{container}/{key}"
        self.url = f"{self.protocol}://{container}/{key}"
        self._lock = process_lock(self.url)

    def sibling(self, suffix: str) -> Self:
        store = type(self).__new__(type(self))
        store._init(self._handle, self.url + suffix, self._write_timeout)
        return store

    def lock(self) -> AbstractContextManager[None]:
        """A per-process lock (re-entrant); the service offers none here, use ``expect``."""
        return hold(self._lock)

    # -- reading failures -----------------------------------------------------------------

    def _is_missing(self, exc: BaseException) -> bool:
        """``exc`` says the object does not exist (and not that its container does not)."""
        codes = self.error_codes(exc)
        if codes & self.container_missing_codes:
            return False
        return isinstance(exc, self.not_found_errors) or bool(codes & self.not_found_codes)

    def _missing_at_probe(self, exc: BaseException) -> bool:
        """``_is_missing`` for ``read_head``, the probe before a first save."""
        return self._is_missing(exc)

    def _is_conflict(self, exc: BaseException) -> bool:
        """``exc``, the answer to a conditional write, says the precondition did not hold."""
        if isinstance(exc, self.precondition_errors):
            return True
        if self.error_codes(exc) & self.precondition_codes:
            return True
        return self.deleted_answers_not_found and self._is_missing(exc)

    def _describe(self, exc: BaseException) -> str:
        """What a message quotes of the service's answer (never credentials)."""
        return describe_error(exc)

    def _fail(self, exc: BaseException, action: str) -> StorageError:
        """The statevault error for a failed request, ``exc`` chained."""
        err: StorageError
        if self.error_codes(exc) & self.container_missing_codes:
            spooled = issubclass(self.missing_container_error, ConfigurationError)
            err = self.missing_container_error(
                f"The {self.container_word} {self._container!r} does not exist while {action} "
                f"{self.url}: create it{self.create_hint} or fix the URL"
                + ("; nothing was spooled." if spooled else ".")
            )
        elif self.classify_error(exc) is StoragePermissionError:
            err = StoragePermissionError(
                f"Access denied while {action} {self.url}: check {self.credentials_hint}. "
                f"({self._describe(exc)})"
            )
        else:
            return self._translate(exc, action)
        err.__cause__ = exc
        return err

    # -- requests -------------------------------------------------------------------------

    def _run(self, coro_fn: Any, *args: Any, timeout: float | None = None) -> Any:
        # fsspec cancels the coroutine at the timeout and raises FSTimeoutError (a
        # TimeoutError, so it translates to StorageUnavailableError).
        return sync(self._loop, coro_fn, *args, timeout=timeout)

    def _put_deadline(self, size: int) -> float:
        if self._write_timeout is not None:
            return self._write_timeout
        return WRITE_TIMEOUT_BASE_S + WRITE_TIMEOUT_PER_MIB_S * size / 2**20

    def _preconditions(self, expect: object) -> dict[str, Any]:
        if expect is ANY:
            return dict(self.unconditional)
        if expect is None:
            return dict(self.if_absent)
        return self.if_match(str(expect))

    # -- Store ----------------------------------------------------------------------------

    def read(self) -> tuple[Buffer, ObjectInfo]:
        """One GET; the token and the bytes come from the same response."""
        try:
            data, info = self._run(self._get, None, None)
        except StateError:
            raise
        except Exception as e:
            if self._is_missing(e):
                raise self._not_found(e) from e
            raise self._fail(e, "reading") from e
        return data, ObjectInfo(len(data), info.modified, info.token)

    def read_range(self, start: int, end: int) -> bytes:
        check_range(start, end)
        if end <= start:
            if self.info() is None:
                raise self._not_found()
            return b""
        try:
            data, _ = self._run(self._get, start, end - start)
        except StateError:
            raise
        except Exception as e:
            if self._is_missing(e):
                raise self._not_found(e) from e
            if self.error_codes(e) & self.range_codes:
                return b""  # start is at or past the end of the object
            raise self._fail(e, "reading") from e
        result: bytes = data[: end - start]
        return result

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        """One ranged GET: the first bytes and the token of the same object version."""
        if length <= 0:
            info = self.info()
            return None if info is None else (b"", info)
        try:
            data, info = self._run(self._get, 0, length)
        except StateError:
            raise
        except Exception as e:
            if self._missing_at_probe(e):
                return None
            if self.error_codes(e) & self.range_codes:  # an empty object has no byte 0
                info = self.info()
                return None if info is None else (b"", info)
            raise self._fail(e, "reading") from e
        return data[:length], info

    def info(self) -> ObjectInfo | None:
        try:
            info: ObjectInfo = self._run(self._head)
        except StateError:
            raise
        except Exception as e:
            if self._is_missing(e):
                return None
            raise self._fail(e, "inspecting") from e
        return info

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """One upload; ``expect`` becomes the service's precondition (``if_absent`` for
        None, ``if_match`` for a token); a refused precondition is ``ConflictError``."""
        data = join_chunks(chunks)
        if len(data) > self._max_put_bytes():
            raise StorageError(
                f"Cannot save {len(data)} bytes to {self.url}: {self.put_limit}. "
                "Enable compression or split the state."
            )
        conditions = self._preconditions(expect)
        with self._lock:
            try:
                info: ObjectInfo = self._run(
                    self._put, data, conditions, timeout=self._put_deadline(len(data))
                )
            except StateError:
                raise
            except Exception as e:
                if expect is not ANY and self._is_conflict(e):
                    raise conflict_error(self.url, expect) from e
                raise self._fail(e, "saving") from e
        return info

    def keep_copy(self, dest: Store, chunks: Sequence[Buffer], written: ObjectInfo) -> int:
        """A server-side copy where the backend has one (one request, nothing uploaded).

        It counts only if the copy's token is ``written``'s: a plain single-upload object's
        ETag is its content's MD5, which a copy keeps, so equal tokens mean ``dest`` holds the
        bytes just written even where the service ignores the copy's precondition (moto).
        Otherwise (another write came between, encryption that changes ETags, a refused
        precondition, no such copy) the bytes are written again, as the default does.
        """
        if isinstance(dest, type(self)) and dest._handle is self._handle:
            with dest._lock:
                try:
                    token = self._run(
                        self._copy, dest, written.token, timeout=self._put_deadline(0)
                    )
                except StateError:
                    raise
                except Exception as e:
                    if not (self._is_conflict(e) or self._is_missing(e)):
                        raise dest._fail(e, "keeping a version") from e
                    token = None
            if token is not None and token == written.token:
                return 0
        return super().keep_copy(dest, chunks, written)

    def delete(self) -> bool:
        with self._lock:
            if not self.delete_reports_missing and self.info() is None:
                return False
            try:
                self._run(self._remove)
            except StateError:
                raise
            except Exception as e:
                if self._is_missing(e):
                    return False
                raise self._fail(e, "deleting") from e
            return True

    def list_dir(self) -> list[Listed]:
        """The objects ``<key>/<name>`` (one level): ONE listing, in pages of ``list_page``
        keys (1,000), never a request per object.

        Assumes the listing is strongly consistent: it shows every object whose upload
        finished before it began and none whose delete finished (S3 since December 2020,
        Azure Blob and GCS too). The orphan sweep's safety does not rest on it: what is kept
        comes from the HEADs and versions read (by GET) before the listing, and a listing only
        offers candidates, so a lagging one can only delay a deletion. The stamp is the
        listing's Last-Modified (whole seconds on S3 and Azure, milliseconds on GCS).
        """
        try:
            found: list[Listed] = self._run(self._list, self._key + "/")
        except StateError:
            raise
        except Exception as e:
            raise self._fail(e, "listing") from e
        return [e for e in found if e.name and "/" not in e.name and not e.name.startswith(".")]
