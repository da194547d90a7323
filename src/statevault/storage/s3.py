"""``s3://`` (and ``s3a://``) through s3fs: single-PUT atomic replace, ETag compare-and-swap.

S3 replaces an object atomically on every PUT, and honours ``If-Match: <etag>`` and
``If-None-Match: *`` on PUT, so ``write(expect=...)`` is a real compare-and-swap done by the
server. Each operation is one request: ``read`` is one GET (bytes and ETag from the same
response), ``info`` one HEAD, ``write`` one PUT, ``delete`` a HEAD and a DELETE, ``list_dir``
one ListObjectsV2 per 1,000 keys (strongly consistent on AWS since December 2020).

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
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Final

import s3fs
from fsspec.utils import tokenize

from ..errors import (
    StorageConfigurationError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)
from .base import Listed, ObjectInfo, exception_chain
from .objectstore import ObjectStore, byte_range, content_total

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


class S3Store(ObjectStore[_Filesystem]):
    """An object in an S3 bucket (AWS or any S3-compatible server); atomic and conditional.

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``,
    which S3 enforces. Objects are written with one PUT, so at most 5 GiB (multipart
    uploads would lose the condition: s3fs passes ``IfMatch`` to the wrong call).
    """

    protocol = "s3"
    put_limit = "one S3 PUT carries at most 5 GiB"
    missing_container_error = StorageConfigurationError
    if_absent: ClassVar[Mapping[str, Any]] = {"IfNoneMatch": "*"}
    # s3fs raises FileNotFoundError for NoSuchKey and for a HEAD's bare 404.
    not_found_errors = (FileNotFoundError,)
    container_missing_codes = _MISCONFIGURED_CODES
    precondition_errors = (FileExistsError,)
    precondition_codes = _CONFLICT_CODES
    range_codes = _RANGE_NOT_SATISFIABLE
    delete_reports_missing = False

    @staticmethod
    def if_match(token: str) -> dict[str, Any]:
        return {"IfMatch": token}

    @classmethod
    def error_codes(cls, exc: BaseException) -> frozenset[str]:
        code = error_code(exc)
        return frozenset() if code is None else frozenset({code})

    @classmethod
    def classify_error(cls, exc: BaseException) -> type[StorageError] | None:
        return classify_s3_error(exc)

    @classmethod
    def _connect(cls, storage_options: Mapping[str, Any] | None) -> _Filesystem:
        return _Filesystem(storage_options)

    def _split(self, url: str) -> tuple[str, str]:
        bucket, key, _ = self._fs.split_path(self._fs._strip_protocol(url))
        return bucket, key

    @property
    def _fs(self) -> s3fs.S3FileSystem:
        return self._handle.get()

    @property
    def _loop(self) -> Any:
        return self._fs.loop

    def _max_put_bytes(self) -> int:
        return MAX_PUT_BYTES

    # -- requests -----------------------------------------------------------------------

    async def _get(self, start: int | None, length: int | None) -> tuple[bytes, ObjectInfo]:
        span = byte_range(start, length)
        extra = {"Range": span} if span else {}
        response: dict[str, Any] = await self._fs._call_s3(
            "get_object", Bucket=self._container, Key=self._key, **extra
        )
        body = response["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        return data, _info(response, content_total(response.get("ContentRange"), len(data)))

    async def _head(self) -> ObjectInfo:
        response: dict[str, Any] = await self._fs._call_s3(
            "head_object", Bucket=self._container, Key=self._key
        )
        return _info(response, int(response["ContentLength"]))

    async def _put(self, data: bytes, conditions: dict[str, Any]) -> ObjectInfo:
        client = await self._fs.set_session()
        # Registered last on the generic event, so it runs after botocore's add_expect_header;
        # the unique id makes re-registration (every PUT, and on a refreshed client) a no-op.
        client.meta.events.register_last(
            "before-call.s3", _no_expect_continue, unique_id=_NO_EXPECT_ID
        )
        response: dict[str, Any] = await self._fs._call_s3(
            "put_object", Bucket=self._container, Key=self._key, Body=data, **conditions
        )
        return _info(response, len(data))

    async def _remove(self) -> None:
        await self._fs._call_s3("delete_object", Bucket=self._container, Key=self._key)

    async def _copy(self, dest: S3Store, token: str) -> str | None:
        response: dict[str, Any] = await self._fs._call_s3(
            "copy_object",
            Bucket=dest._container,
            Key=dest._key,
            CopySource={"Bucket": self._container, "Key": self._key},
            CopySourceIfMatch=token,
        )
        return str(response["CopyObjectResult"]["ETag"])

    async def _list(self, prefix: str) -> list[Listed]:
        found: list[Listed] = []
        page: dict[str, Any] = {}
        while True:
            response: dict[str, Any] = await self._fs._call_s3(
                "list_objects_v2",
                Bucket=self._container,
                Prefix=prefix,
                Delimiter="/",
                MaxKeys=self.list_page,
                **page,
            )
            for item in response.get("Contents", ()):
                modified = _modified(item)
                found.append(
                    Listed(
                        str(item["Key"])[len(prefix) :],
                        int(item.get("Size", 0)),
                        None if modified is None else modified.timestamp(),
                    )
                )
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return found
            page = {"ContinuationToken": token}
