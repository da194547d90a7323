"""``gs://`` (Google Cloud Storage) through gcsfs: one upload per save, generation CAS.

GCS replaces an object atomically on every upload, and honours the ``ifGenerationMatch``
precondition on it (``0``: only if there is no live object), so ``write(expect=...)`` is a real
compare-and-swap done by the service; the token is the object's generation. Each operation is
one request: ``read`` one media GET (bytes and ``x-goog-generation`` from the same response),
``read_range`` / ``read_head`` one ranged GET, ``info`` one metadata GET, ``write`` one
multipart upload, ``delete`` one DELETE, ``list_dir`` one objects list per 1,000 names
(strongly consistent).

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
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Final
from urllib.parse import quote

import gcsfs
from fsspec.utils import tokenize

from ..errors import StorageError, StoragePermissionError
from .base import Listed, ObjectInfo
from .objectstore import ObjectStore, byte_range, content_total

__all__ = ["GCSStore"]

DEFAULT_REQUESTS_TIMEOUT: Final = 5
DEFAULT_RETRIES: Final = 1
RETRY_BACKOFF_S: Final = 0.5
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
    """A non-2xx answer (the codes ``ObjectStore`` reads are its status as text)."""

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


def _info(headers: Mapping[str, str], size: int) -> ObjectInfo:
    return ObjectInfo(
        size, _parse_time(headers.get("Last-Modified")), str(headers["X-Goog-Generation"])
    )


class GCSStore(ObjectStore[tuple[gcsfs.GCSFileSystem, int]]):
    """An object in a GCS bucket (or an emulator); atomic and conditional.

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``, which
    the service enforces with ``ifGenerationMatch``.
    """

    protocol = "gs"
    credentials_hint = "the credentials (token, service account) and the bucket's IAM policy"
    put_limit = "statevault sends a state in one upload of at most 5 GiB"
    if_absent: ClassVar[Mapping[str, Any]] = {"ifGenerationMatch": "0"}
    not_found_codes = frozenset({"404"})
    # A 404 reaches ``_fail`` only when it is the bucket's: ``_is_missing`` answers an
    # object's 404 first (after asking whether the bucket exists), and an upload 404s only
    # without a bucket.
    container_missing_codes = frozenset({"404"})
    # ifGenerationMatch on a deleted object answers 412, like a stale generation.
    deleted_answers_not_found = False

    @staticmethod
    def if_match(token: str) -> dict[str, Any]:
        return {"ifGenerationMatch": token}

    @classmethod
    def error_codes(cls, exc: BaseException) -> frozenset[str]:
        return frozenset({str(exc.status)}) if isinstance(exc, _HTTPStatus) else frozenset()

    @classmethod
    def classify_error(cls, exc: BaseException) -> type[StorageError] | None:
        if cls.error_codes(exc) & {"401", "403"}:
            return StoragePermissionError
        return None

    @classmethod
    def _connect(cls, storage_options: Mapping[str, Any] | None) -> tuple[gcsfs.GCSFileSystem, int]:
        return make_filesystem(storage_options)

    def _split(self, url: str) -> tuple[str, str]:
        bucket, key, _ = self._fs.split_path(url)
        return bucket, key

    @property
    def _fs(self) -> gcsfs.GCSFileSystem:
        return self._handle[0]

    @property
    def _retries(self) -> int:
        return max(0, self._handle[1])

    @property
    def _loop(self) -> Any:
        return self._fs.loop

    def _max_put_bytes(self) -> int:
        return MAX_PUT_BYTES

    def _init(
        self, handle: tuple[gcsfs.GCSFileSystem, int], url: str, write_timeout: float | None
    ) -> None:
        super()._init(handle, url, write_timeout)
        location = self._fs._location.rstrip("/")
        bucket = quote(self._container, safe="")
        object_path = f"b/{bucket}/o/{quote(self._key, safe='')}"
        self._meta_url = f"{location}/storage/v1/{object_path}"
        self._media_url = f"{location}/download/storage/v1/{object_path}"
        self._upload_url = f"{location}/upload/storage/v1/b/{bucket}/o"
        self._bucket_url = f"{location}/storage/v1/b/{bucket}"

    # -- failures -------------------------------------------------------------------------

    def _is_missing(self, exc: BaseException) -> bool:
        """A 404 for the object itself, not for its bucket (which is a misconfiguration)."""
        return self._missing_at_probe(exc) and not self._bucket_missing()

    def _missing_at_probe(self, exc: BaseException) -> bool:
        # No bucket probe here: this is the first-save probe, kept to one request; a
        # missing bucket is reported by the upload that follows (uploads 404 only then).
        return "404" in self.error_codes(exc)

    def _bucket_missing(self) -> bool:
        try:
            status: int = self._run(self._send, "GET", self._bucket_url)[0]
        except Exception:  # noqa: BLE001 - the original 404 is reported instead
            return False
        return status == 404

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

    async def _expect(
        self, ok: tuple[int, ...], method: str, url: str, **kwargs: Any
    ) -> tuple[Mapping[str, str], bytes]:
        """``_send``; an answer outside ``ok`` is raised as ``_HTTPStatus``."""
        status, headers, body = await self._send(method, url, **kwargs)
        if status not in ok:
            raise _HTTPStatus(status, body.decode(errors="replace")[:300])
        return headers, body

    async def _get(self, start: int | None, length: int | None) -> tuple[bytes, ObjectInfo]:
        span = byte_range(start, length)
        headers = {"Range": span} if span else None
        answer, body = await self._expect(
            (200, 206), "GET", self._media_url, params={"alt": "media"}, headers=headers
        )
        return body, _info(answer, content_total(answer.get("Content-Range"), len(body)))

    async def _head(self) -> ObjectInfo:
        _, body = await self._expect((200,), "GET", self._meta_url)
        meta = json.loads(body)
        return ObjectInfo(int(meta["size"]), _parse_time(meta.get("updated")), meta["generation"])

    async def _put(self, data: bytes, conditions: dict[str, Any]) -> ObjectInfo:
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
        _, answer = await self._expect(
            (200,),
            "POST",
            self._upload_url,
            params={"uploadType": "multipart", **conditions},
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
            data=body,
        )
        meta = json.loads(answer)
        return ObjectInfo(len(data), _parse_time(meta.get("updated")), meta["generation"])

    async def _remove(self) -> None:
        await self._expect((200, 204), "DELETE", self._meta_url)

    async def _list(self, prefix: str) -> list[Listed]:
        found: list[Listed] = []
        params = {
            "prefix": prefix,
            "delimiter": "/",
            "maxResults": str(self.list_page),
            "fields": "items(name,size,updated),nextPageToken",
        }
        while True:
            _, body = await self._expect((200,), "GET", f"{self._bucket_url}/o", params=params)
            answer = json.loads(body)
            for item in answer.get("items", ()):
                modified = _parse_time(item.get("updated"))
                stamp = None if modified is None else modified.timestamp()
                found.append(Listed(str(item["name"])[len(prefix) :], int(item["size"]), stamp))
            token = answer.get("nextPageToken")
            if not token:
                return found
            params["pageToken"] = token
