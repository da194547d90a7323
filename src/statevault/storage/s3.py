"""``s3://`` (and ``s3a://``) through s3fs: single-PUT atomic replace, ETag compare-and-swap.

S3 replaces an object atomically on every PUT, and honours ``If-Match: <etag>`` and
``If-None-Match: *`` on PUT, so ``write(expect=...)`` is a real compare-and-swap done by the
server. Each operation is one request: ``read`` is one GET (bytes and ETag from the same
response), ``info`` one HEAD, ``write`` one PUT, ``delete`` a HEAD and a DELETE.

Defaults chosen to fail fast (a trading process must learn within seconds that its save did
not happen, not after minutes of s3fs's retries nested around botocore's); every one can be
overridden through ``storage_options``:

- ``config_kwargs``: ``connect_timeout=2``, ``read_timeout=5`` (seconds of silence while
  waiting for response bytes; aiohttp starts it only once the upload is sent, so large
  uploads are not cut short), ``retries={"total_max_attempts": 2, "mode": "standard"}``
  (botocore retries once, with backoff); merged key by key with yours;
- ``retries=1``: statevault's own option, the attempts of s3fs's outer retry loop
  (``S3FileSystem.retries``, s3fs's default 5) - 1 means botocore's retry is the only one;
- ``use_listings_cache=False``: never answer from a stale listing;
- ``write_timeout``: statevault's own option, a deadline in seconds for one whole PUT;
  default 60 s plus 1 s per MiB of state.

Two things aiohttp does not time out are handled here. botocore sends PUTs with
``Expect: 100-continue``, and aiohttp waits for the ``100 Continue`` with no timeout at all, so
a server that accepts the connection and then says nothing would hang a save forever; the
header is dropped (the body goes out at once, and the read timeout then applies). A server
that stops reading a large body would still block the upload, hence the ``write_timeout``
deadline on every PUT.

Measured against a closed port on 127.0.0.1: a save, read or info fails with
``StorageUnavailableError`` in 0.5-1 s. A server that accepts connections and never answers
costs two read timeouts plus backoff (about 11 s; 2 s with ``read_timeout=0.5``, measured).
A black-holed address should cost two connect timeouts (about 5 s; not measurable here).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final

import s3fs
from fsspec.asyn import sync
from fsspec.utils import tokenize

from ..errors import (
    StateError,
    StorageConfigurationError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)
from .base import (
    ANY,
    ObjectInfo,
    Store,
    check_range,
    conflict_error,
    exception_chain,
    hold,
    join_chunks,
    process_lock,
    redact_url,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "DEFAULT_CONFIG_KWARGS",
    "DEFAULT_RETRIES",
    "S3Store",
    "classify_s3_error",
    "error_code",
]

_NO_EXPECT_ID: Final = "statevault-no-expect-continue"

DEFAULT_CONFIG_KWARGS: Final[Mapping[str, Any]] = {
    "connect_timeout": 2,
    "read_timeout": 5,
    "retries": {"total_max_attempts": 2, "mode": "standard"},
}
DEFAULT_RETRIES: Final = 1
#: A PUT may take this long plus one second per MiB before it is abandoned.
WRITE_TIMEOUT_BASE_S: Final = 60.0
WRITE_TIMEOUT_PER_MIB_S: Final = 1.0
#: The largest object one PUT may carry.
MAX_PUT_BYTES: Final = 5 * 2**30

_CONFLICT_CODES: Final = frozenset(
    {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
)
_RANGE_NOT_SATISFIABLE: Final = frozenset({"InvalidRange", "416"})
_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
)
_BOTOCORE_UNAVAILABLE: Final = (
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ProxyConnectionError",
)
_AIOHTTP_UNAVAILABLE: Final = ("ClientConnectionError", "ServerTimeoutError")
#: Error codes that mean the URL or the options are wrong, not that S3 is down.
_MISCONFIGURED_CODES: Final = frozenset({"NoSuchBucket", "InvalidBucketName"})


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``"PreconditionFailed"``, ...) anywhere in the exception chain."""
    for e in exception_chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def _unavailable_types() -> tuple[type[BaseException], ...]:
    """botocore's and aiohttp's "cannot reach the endpoint" exceptions.

    Looked up only if already imported: if they are not, none of their exceptions can be in
    flight (a generic fsspec store over s3fs reaches this through ``classify_error`` too).
    """
    types: list[type[BaseException]] = []
    for module, names in (
        ("botocore.exceptions", _BOTOCORE_UNAVAILABLE),
        ("aiohttp", _AIOHTTP_UNAVAILABLE),
    ):
        found = sys.modules.get(module)
        for name in names if found is not None else ():
            t = getattr(found, name, None)
            if isinstance(t, type) and issubclass(t, BaseException):
                types.append(t)
    return tuple(types)


def classify_s3_error(exc: BaseException) -> type[StorageError] | None:
    """S3 access denials -> permission; botocore/aiohttp connection failures -> unavailable;
    a missing bucket -> configuration."""
    if error_code(exc) in _MISCONFIGURED_CODES:
        return StorageConfigurationError
    if error_code(exc) in _DENIED_CODES:
        return StoragePermissionError
    unavailable = _unavailable_types()
    if unavailable and any(isinstance(e, unavailable) for e in exception_chain(exc)):
        return StorageUnavailableError
    return None


_filesystems: dict[str, s3fs.S3FileSystem] = {}
_filesystems_guard = threading.Lock()


def _no_expect_continue(params: dict[str, Any], **_: Any) -> None:
    """botocore event hook: send PUT bodies at once instead of waiting for 100 Continue."""
    params.get("headers", {}).pop("Expect", None)


def make_filesystem(storage_options: Mapping[str, Any] | None) -> s3fs.S3FileSystem:
    """Return an ``S3FileSystem`` for user options with statevault's fail-fast defaults.

    Stores opened with equal options share one filesystem (and so one connection pool and
    one botocore client, whose creation costs 0.1-0.3 s); ``skip_instance_cache=True`` in
    the options gives a fresh one. The cache is ours, not fsspec's, because ``retries`` is
    set on the instance and must not leak into other users' cached filesystems.
    """
    # Deep copies: botocore rewrites the retries dict it is given, in place.
    options = copy.deepcopy(dict(storage_options or {}))
    options.pop("write_timeout", None)  # the Store's, not the filesystem's
    fresh = bool(options.pop("skip_instance_cache", False))
    retries = int(options.pop("retries", DEFAULT_RETRIES))
    config = copy.deepcopy(dict(DEFAULT_CONFIG_KWARGS))
    config.update(options.get("config_kwargs") or {})
    options["config_kwargs"] = config
    options.setdefault("use_listings_cache", False)
    key = tokenize(options, retries)
    with _filesystems_guard:
        fs = None if fresh else _filesystems.get(key)
        if fs is None:
            fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
            fs.retries = max(1, retries)
            if not fresh:
                _filesystems[key] = fs
        return fs


def _forget_filesystems() -> None:
    """In a forked child: the parent's filesystems (their event loop thread, their
    connections) are unusable; new ones are made on first use."""
    global _filesystems_guard  # noqa: PLW0603 - a thread may have held it at the fork
    _filesystems_guard = threading.Lock()
    _filesystems.clear()


os.register_at_fork(after_in_child=_forget_filesystems)


class _Filesystem:
    """The filesystem of one set of storage options, remade in a forked child (an s3fs
    filesystem refuses to run in a process other than the one that made it)."""

    __slots__ = ("_fs", "_options", "_pid")

    def __init__(self, storage_options: Mapping[str, Any] | None) -> None:
        self._options = copy.deepcopy(dict(storage_options or {}))
        self._fs = make_filesystem(self._options)
        self._pid = os.getpid()

    def get(self) -> s3fs.S3FileSystem:
        if self._pid != os.getpid():
            self._fs = make_filesystem(self._options)
            self._pid = os.getpid()
        return self._fs


def _modified(response: Mapping[str, Any]) -> datetime | None:
    value = response.get("LastModified")
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    # PUT responses carry no Last-Modified; the Date header is the server's clock at the
    # write, which is what Last-Modified will say (to the second).
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("last-modified") or headers.get("date")
    if date:
        try:
            return parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            return None
    return None


def _info(response: Mapping[str, Any], size: int) -> ObjectInfo:
    return ObjectInfo(size=size, modified=_modified(response), token=str(response["ETag"]))


class S3Store(Store):
    """An object in an S3 bucket (AWS or any S3-compatible server); atomic and conditional.

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``,
    which S3 enforces. Objects are written with one PUT, so at most 5 GiB (multipart
    uploads would lose the condition: s3fs passes ``IfMatch`` to the wrong call).
    """

    protocol = "s3"
    atomic = True
    conditional = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        write_timeout = (storage_options or {}).get("write_timeout")
        self._init(
            _Filesystem(storage_options),
            url,
            None if write_timeout is None else float(write_timeout),
        )

    @classmethod
    def _on(cls, fs: _Filesystem, url: str, write_timeout: float | None) -> S3Store:
        store = cls.__new__(cls)
        store._init(fs, url, write_timeout)
        return store

    def _init(self, handle: _Filesystem, url: str, write_timeout: float | None) -> None:
        self._handle = handle
        self._write_timeout = write_timeout
        fs = handle.get()
        self.path: str = fs._strip_protocol(url)
        bucket, key, _ = fs.split_path(self.path)
        if not bucket or not key or url.endswith("/"):
            raise ValueError(
                f"{redact_url(url)} does not name an object: use s3://bucket/path/to/state"
            )
        self._bucket: str = bucket
        self._key: str = key
        self.url = f"s3://{bucket}/{key}"
        self._lock = process_lock(self.url)

    @property
    def _fs(self) -> s3fs.S3FileSystem:
        return self._handle.get()

    # -- requests -----------------------------------------------------------------------

    @classmethod
    def classify_error(cls, exc: BaseException) -> type[StorageError] | None:
        return classify_s3_error(exc)

    def _run(self, coro_fn: Any, *args: Any, timeout: float | None = None) -> Any:
        # fsspec cancels the coroutine at the timeout and raises FSTimeoutError (a
        # TimeoutError, so it translates to StorageUnavailableError).
        return sync(self._fs.loop, coro_fn, *args, timeout=timeout)

    def _put_deadline(self, size: int) -> float:
        if self._write_timeout is not None:
            return self._write_timeout
        return WRITE_TIMEOUT_BASE_S + WRITE_TIMEOUT_PER_MIB_S * size / 2**20

    async def _get(self, byte_range: str | None) -> tuple[dict[str, Any], bytes]:
        extra = {"Range": byte_range} if byte_range else {}
        response: dict[str, Any] = await self._fs._call_s3(
            "get_object", Bucket=self._bucket, Key=self._key, **extra
        )
        body = response["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        return response, data

    async def _head(self) -> dict[str, Any]:
        response: dict[str, Any] = await self._fs._call_s3(
            "head_object", Bucket=self._bucket, Key=self._key
        )
        return response

    async def _put(self, data: bytes, conditions: dict[str, str]) -> dict[str, Any]:
        client = await self._fs.set_session()
        # Registered last on the generic event, so it runs after botocore's add_expect_header;
        # the unique id makes re-registration (every PUT, and on a refreshed client) a no-op.
        client.meta.events.register_last(
            "before-call.s3", _no_expect_continue, unique_id=_NO_EXPECT_ID
        )
        response: dict[str, Any] = await self._fs._call_s3(
            "put_object", Bucket=self._bucket, Key=self._key, Body=data, **conditions
        )
        return response

    async def _delete(self) -> None:
        await self._fs._call_s3("delete_object", Bucket=self._bucket, Key=self._key)

    # -- Store --------------------------------------------------------------------------

    def read(self) -> tuple[Buffer, ObjectInfo]:
        """One GET; the ETag and the bytes come from the same response."""
        try:
            response, data = self._run(self._get, None)
        except FileNotFoundError as e:
            self._check_bucket(e, "reading")
            raise self._not_found(e) from e
        except Exception as e:
            raise self._translate(e, "reading") from e
        return data, _info(response, len(data))

    def read_range(self, start: int, end: int) -> bytes:
        check_range(start, end)
        if end <= start:
            if self.info() is None:
                raise self._not_found()
            return b""
        try:
            _, data = self._run(self._get, f"bytes={start}-{end - 1}")
        except FileNotFoundError as e:
            self._check_bucket(e, "reading")
            raise self._not_found(e) from e
        except Exception as e:
            if error_code(e) in _RANGE_NOT_SATISFIABLE:
                return b""  # start is at or past the end of the object
            raise self._translate(e, "reading") from e
        result: bytes = data
        return result

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        """One ranged GET: the first bytes and the ETag of the same object version."""
        if length <= 0:
            info = self.info()
            return None if info is None else (b"", info)
        try:
            response, data = self._run(self._get, f"bytes=0-{length - 1}")
        except FileNotFoundError as e:
            self._check_bucket(e, "reading")
            return None
        except Exception as e:
            if error_code(e) in _RANGE_NOT_SATISFIABLE:  # an empty object
                info = self.info()
                return None if info is None else (b"", info)
            raise self._translate(e, "reading") from e
        # Content-Range: "bytes 0-99/12345"; absent when the whole object was sent.
        total = str(response.get("ContentRange") or "").rpartition("/")[2]
        size = int(total) if total.isdigit() else len(data)
        return data, _info(response, size)

    def info(self) -> ObjectInfo | None:
        try:
            response = self._run(self._head)
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self._translate(e, "inspecting") from e
        return _info(response, int(response["ContentLength"]))

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """One PUT; ``expect`` becomes ``If-None-Match: *`` or ``If-Match: <etag>``."""
        data = join_chunks(chunks)
        if len(data) > MAX_PUT_BYTES:
            raise StorageError(
                f"Cannot save {len(data)} bytes to {self.url}: one S3 PUT carries at most "
                "5 GiB. Enable compression or split the state."
            )
        conditions: dict[str, str] = {}
        if expect is None:
            conditions["IfNoneMatch"] = "*"
        elif expect is not ANY:
            conditions["IfMatch"] = str(expect)
        with self._lock:
            try:
                response = self._run(
                    self._put, data, conditions, timeout=self._put_deadline(len(data))
                )
            except StateError:
                raise
            except Exception as e:
                self._check_bucket(e, "saving")
                # If-Match on a deleted key answers 404, not 412: the object changed too.
                if conditions and (
                    isinstance(e, FileExistsError | FileNotFoundError)
                    or error_code(e) in _CONFLICT_CODES
                ):
                    raise conflict_error(self.url, expect) from e
                raise self._translate(e, "saving") from e
        return _info(response, len(data))

    def delete(self) -> bool:
        with self._lock:
            if self.info() is None:
                return False
            try:
                self._run(self._delete)
            except Exception as e:
                raise self._translate(e, "deleting") from e
            return True

    def _check_bucket(self, exc: BaseException, action: str) -> None:
        """A "not found" that is the bucket's, not the key's, is a configuration error."""
        if error_code(exc) in _MISCONFIGURED_CODES:
            raise StorageConfigurationError(
                f"The bucket {self._bucket!r} of {self.url} does not exist (or its name is "
                f"invalid) while {action}: create it or fix the URL; nothing was spooled."
            ) from exc

    def lock(self) -> AbstractContextManager[None]:
        """A per-process lock (re-entrant); S3 itself offers no lock, use ``expect``."""
        return hold(self._lock)

    def sibling(self, suffix: str) -> S3Store:
        return S3Store._on(self._handle, self.url + suffix, self._write_timeout)
