"""``gs://`` (Google Cloud Storage) through gcsfs: one upload per save, generation CAS.

GCS replaces an object atomically on every upload, and honours the ``ifGenerationMatch``
precondition on it (``0``: only if there is no live object), so ``write(expect=...)`` is a real
compare-and-swap done by the service; the token is the object's generation. Each operation is
one request: ``read`` one media GET (bytes and ``x-goog-generation`` from the same response),
``read_range`` / ``read_head`` one ranged GET, ``info`` one metadata GET, ``write`` one
multipart upload, ``delete`` one DELETE.

Credentials, project and endpoint are whatever gcsfs accepts in ``storage_options``
(``token``, ``project``, ``endpoint_url``, ``requester_pays``, ...); the filesystem is built
from them and its authorised session is used. The requests are sent by this module with one
attempt each and our own retry, because gcsfs's request method retries six times with backoff
up to 32 s (fixed when the class is defined) and its uploads can only say ``ifGenerationMatch=0``.

Defaults chosen to fail fast, each overridable in ``storage_options``: ``requests_timeout=5``
(seconds, gcsfs's per-request aiohttp timeout), ``retries=1`` (statevault's: one retry after
0.5 s for connection failures and 5xx answers, never for a precondition failure) and
``write_timeout`` (a deadline for one whole upload; 60 s plus 1 s per MiB).
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import gcsfs
from fsspec.asyn import sync
from fsspec.utils import tokenize

from ..errors import ConflictError, StateError, StorageError, StoragePermissionError
from .base import ANY, ObjectInfo, Store, check_range, hold, join_chunks, process_lock, redact_url

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["GCSStore"]

DEFAULT_REQUESTS_TIMEOUT: Final = 5
DEFAULT_RETRIES: Final = 1
RETRY_BACKOFF_S: Final = 0.5
WRITE_TIMEOUT_BASE_S: Final = 60.0
WRITE_TIMEOUT_PER_MIB_S: Final = 1.0
#: A single multipart upload is meant for small objects; GCS accepts up to 5 TiB, but we
#: keep the same ceiling as the other backends so a state never needs a resumable upload.
MAX_PUT_BYTES: Final = 5 * 2**30
_OWN_OPTIONS: Final = ("write_timeout", "retries", "skip_instance_cache")

_filesystems: dict[str, tuple[gcsfs.GCSFileSystem, int]] = {}
_filesystems_guard = threading.Lock()


def make_filesystem(storage_options: Mapping[str, Any] | None) -> tuple[gcsfs.GCSFileSystem, int]:
    """A ``GCSFileSystem`` with fail-fast defaults, and the retry count; shared per options."""
    options = copy.deepcopy(dict(storage_options or {}))
    fresh = bool(options.get("skip_instance_cache", False))
    retries = int(options.get("retries", DEFAULT_RETRIES))
    fs_options = {k: v for k, v in options.items() if k not in _OWN_OPTIONS}
    fs_options.setdefault("requests_timeout", DEFAULT_REQUESTS_TIMEOUT)
    key = tokenize(fs_options, retries)
    with _filesystems_guard:
        entry = None if fresh else _filesystems.get(key)
        if entry is None:
            entry = (gcsfs.GCSFileSystem(skip_instance_cache=True, **fs_options), retries)
            if not fresh:
                _filesystems[key] = entry
        return entry


class _HTTPStatus(Exception):
    """A non-2xx answer we act on (412, 416, 404 where gcsfs would not say)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:200]}")
        self.status = status


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        if value[0].isdigit():
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


class GCSStore(Store):
    """An object in a GCS bucket (or an emulator); atomic and conditional.

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``, which
    the service enforces with ``ifGenerationMatch``.
    """

    protocol = "gs"
    atomic = True
    conditional = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        fs, retries = make_filesystem(storage_options)
        write_timeout = (storage_options or {}).get("write_timeout")
        self._init(fs, retries, url, None if write_timeout is None else float(write_timeout))

    def _init(
        self, fs: gcsfs.GCSFileSystem, retries: int, url: str, write_timeout: float | None
    ) -> None:
        self._fs = fs
        self._retries = max(0, retries)
        self._write_timeout = write_timeout
        bucket, key, _ = fs.split_path(url)
        if not bucket or not key or url.endswith("/"):
            raise ValueError(
                f"{redact_url(url)} does not name an object: use gs://bucket/path/to/state"
            )
        self._bucket: str = bucket
        self._key: str = key
        self.url = f"gs://{bucket}/{key}"
        self._lock = process_lock(self.url)
        location = fs._location.rstrip("/")
        object_path = f"b/{quote(bucket, safe='')}/o/{quote(key, safe='')}"
        self._meta_url = f"{location}/storage/v1/{object_path}"
        self._media_url = f"{location}/download/storage/v1/{object_path}"
        self._upload_url = f"{location}/upload/storage/v1/b/{quote(bucket, safe='')}/o"

    # -- requests -----------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request with gcsfs's authorised session; our retry, not gcsfs's six."""
        attempt = 0
        while True:
            try:
                await self._fs._set_session()
                all_headers = self._fs._get_headers(headers)
                async with self._fs.session.request(
                    method,
                    url,
                    params=self._fs._get_params(dict(params or {})),  # + requester pays
                    headers=all_headers,
                    data=data,
                    timeout=self._fs.requests_timeout,
                ) as response:
                    body = await response.read()
                    status = response.status
                    if status >= 500 and attempt < self._retries:
                        raise _HTTPStatus(status, body.decode(errors="replace"))
                    return status, response.headers, body
            except (TimeoutError, OSError, _HTTPStatus) as e:
                # aiohttp's connection errors are OSErrors; 5xx answers are retried too.
                if attempt >= self._retries:
                    if isinstance(e, _HTTPStatus):
                        return e.status, {}, str(e).encode()
                    raise
                attempt += 1
                await asyncio.sleep(RETRY_BACKOFF_S)

    def _fail(self, status: int, body: bytes, action: str) -> StorageError:
        text = body.decode(errors="replace")[:300]
        if status in (401, 403):
            return StoragePermissionError(
                f"Access denied while {action} {self.url}: check the credentials (token, "
                f"service account) and the bucket's IAM policy. (HTTP {status}: {text})"
            )
        if status == 404:
            return StorageError(
                f"The bucket {self._bucket!r} does not exist while {action} {self.url}: "
                f"create it or fix the URL. (HTTP 404: {text})"
            )
        return StorageError(f"Storage failed while {action} {self.url}: HTTP {status}: {text}")

    def _call(
        self,
        action: str,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """``_send`` from this thread; failures to reach the service become StorageErrors."""
        try:
            result: tuple[int, Mapping[str, str], bytes] = sync(
                self._fs.loop, self._send, method, url, params, headers, data, timeout=timeout
            )
        except StateError:
            raise
        except Exception as e:
            # fsspec raises FSTimeoutError (a TimeoutError) at the deadline -> unavailable.
            raise self._translate(e, action) from e
        return result

    def _get(self, action: str, byte_range: str | None) -> tuple[int, Mapping[str, str], bytes]:
        headers = {"Range": byte_range} if byte_range else None
        return self._call(action, "GET", self._media_url, params={"alt": "media"}, headers=headers)

    def _object_missing(self, status: int, body: bytes) -> bool:
        """A 404 for the object itself, not for its bucket (which is a misconfiguration)."""
        if status != 404:
            return False
        return not self._bucket_missing()

    def _bucket_missing(self) -> bool:
        location = self._fs._location.rstrip("/")
        url = f"{location}/storage/v1/b/{quote(self._bucket, safe='')}"
        try:
            status, _, _ = self._call("inspecting", "GET", url)
        except StorageError:
            return False  # the original 404 is reported instead
        return status == 404

    @staticmethod
    def _info(headers: Mapping[str, str], size: int) -> ObjectInfo:
        return ObjectInfo(
            size, _parse_time(headers.get("Last-Modified")), str(headers["X-Goog-Generation"])
        )

    @staticmethod
    def _total(headers: Mapping[str, str], fallback: int) -> int:
        total = str(headers.get("Content-Range") or "").rpartition("/")[2]
        return int(total) if total.isdigit() else fallback

    # -- Store --------------------------------------------------------------------------

    def read(self) -> tuple[Buffer, ObjectInfo]:
        """One media GET; the generation and the bytes come from the same response."""
        status, headers, body = self._get("reading", None)
        if status == 200:
            return body, self._info(headers, len(body))
        if self._object_missing(status, body):
            raise self._not_found()
        raise self._fail(status, body, "reading")

    def read_range(self, start: int, end: int) -> bytes:
        check_range(start, end)
        if end <= start:
            if self.info() is None:
                raise self._not_found()
            return b""
        status, _, body = self._get("reading", f"bytes={start}-{end - 1}")
        if status in (200, 206):
            return body[: end - start]
        if status == 416:
            return b""  # start is at or past the end of the object
        if self._object_missing(status, body):
            raise self._not_found()
        raise self._fail(status, body, "reading")

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        """One ranged GET: the first bytes and the generation of the same object."""
        if length <= 0:
            info = self.info()
            return None if info is None else (b"", info)
        status, headers, body = self._get("reading", f"bytes=0-{length - 1}")
        if status in (200, 206):
            return body[:length], self._info(headers, self._total(headers, len(body)))
        if status == 416:  # an empty object
            info = self.info()
            return None if info is None else (b"", info)
        if status == 404:
            # No bucket probe here: this is the first-save probe, kept to one request; a
            # missing bucket is reported by the upload that follows (uploads 404 only then).
            return None
        raise self._fail(status, body, "reading")

    def info(self) -> ObjectInfo | None:
        status, _, body = self._call("inspecting", "GET", self._meta_url)
        if status == 200:
            meta = json.loads(body)
            return ObjectInfo(
                int(meta["size"]), _parse_time(meta.get("updated")), meta["generation"]
            )
        if self._object_missing(status, body):
            return None
        raise self._fail(status, body, "inspecting")

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """One multipart upload; ``expect`` becomes ``ifGenerationMatch`` (0 for None)."""
        data = join_chunks(chunks)
        if len(data) > MAX_PUT_BYTES:
            raise StorageError(
                f"Cannot save {len(data)} bytes to {self.url}: statevault sends a state in one "
                "upload of at most 5 GiB. Enable compression or split the state."
            )
        params = {"uploadType": "multipart"}
        if expect is None:
            params["ifGenerationMatch"] = "0"
        elif expect is not ANY:
            params["ifGenerationMatch"] = str(expect)
        boundary = f"statevault-{secrets.token_hex(8)}"
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps({"name": self._key}).encode(),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        headers = {"Content-Type": f"multipart/related; boundary={boundary}"}
        deadline = self._write_timeout
        if deadline is None:
            deadline = WRITE_TIMEOUT_BASE_S + WRITE_TIMEOUT_PER_MIB_S * len(data) / 2**20
        with self._lock:
            status, _, answer = self._call(
                "saving",
                "POST",
                self._upload_url,
                params=params,
                headers=headers,
                data=body,
                timeout=deadline,
            )
        if status == 200:
            meta = json.loads(answer)
            return ObjectInfo(len(data), _parse_time(meta.get("updated")), meta["generation"])
        if status == 404:
            raise self._fail(404, answer, "saving")  # an upload 404s only without a bucket
        if status == 412 and expect is not ANY:
            raise ConflictError(
                f"stored object changed: {self.url} was created, replaced or deleted by "
                "another writer since it was last read. Load it again, merge, and save."
            ) from StorageError(f"HTTP 412: {answer.decode(errors='replace')[:200]}")
        raise self._fail(status, answer, "saving")

    def delete(self) -> bool:
        with self._lock:
            status, _, body = self._call("deleting", "DELETE", self._meta_url)
        if status in (200, 204):
            return True
        if self._object_missing(status, body):
            return False
        raise self._fail(status, body, "deleting")

    def lock(self) -> AbstractContextManager[None]:
        """A per-process lock (re-entrant); GCS offers no lock, use ``expect``."""
        return hold(self._lock)

    def sibling(self, suffix: str) -> GCSStore:
        store = GCSStore.__new__(GCSStore)
        store._init(self._fs, self._retries, self.url + suffix, self._write_timeout)
        return store
