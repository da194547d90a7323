"""``az://`` and ``abfs://`` (Azure Blob Storage) through adlfs: one PUT per save, ETag CAS.

Azure replaces a block blob atomically on every Put Blob, and honours ``If-Match: <etag>`` and
``If-None-Match: *`` on it, so ``write(expect=...)`` is a real compare-and-swap done by the
service. Each operation is one request: ``read`` is one GET (bytes and ETag from the same
response; states over 256 MiB take further GETs, each pinned to the first one's ETag),
``read_range`` and ``read_head`` one ranged GET, ``info`` one HEAD, ``write`` one Put Blob,
``delete`` one DELETE, ``list_dir`` one List Blobs per 1,000 names (strongly consistent).

Credentials and endpoints are whatever adlfs accepts in ``storage_options``
(``connection_string``, ``account_name`` with ``account_key``, ``sas_token`` or
``credential``, ``account_host``, ``anon``, the ``AZURE_STORAGE_*`` environment variables, a
service principal or ``DefaultAzureCredential``): an ``AzureBlobFileSystem`` is built from them,
so a URL works the same here as through plain fsspec. The requests themselves go through a
blob client of our own (azure-storage-blob's async client, built from the same credential),
because adlfs's client keeps the SDK's defaults, which suit batch jobs and not a trading loop:
exponential retries starting at 15 s, and uploads over 64 MiB split into blocks.

Defaults chosen to fail fast, each overridable in ``storage_options``:

- ``connection_timeout=2``, ``read_timeout=5`` (seconds; the SDK's are 20 and 60);
- ``retry_total=1``: statevault's own option, one retry after about 0.5 s of backoff
  (the SDK's default is 3 retries after 15, 18 and 24 s);
- ``write_timeout``: statevault's own option, a deadline in seconds for one whole PUT;
  default 60 s plus 1 s per MiB of state.

aiohttp (under azure-core) emits a ``ResourceWarning`` for each request body over 1 MiB given
as bytes, which is how the SDK sends a single Put Blob; Python hides ResourceWarnings by
default, and the body is sent whole. Test suites that turn warnings into errors need
``ignore:Sending a large body directly with raw bytes:ResourceWarning``.

A state is written with one Put Blob, so it holds at most 5000 MiB; bigger ones are refused
before any request (staged block uploads carry the condition only on their last request, and
would need several requests per save).
"""

from __future__ import annotations

import asyncio
import copy
import threading
import weakref
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import adlfs
from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobProperties
from azure.storage.blob.aio import BlobClient, BlobServiceClient, LinearRetry
from fsspec.asyn import sync
from fsspec.utils import tokenize

from ..errors import StorageError, StoragePermissionError, StorageUnavailableError
from .base import Listed, ObjectInfo
from .objectstore import ObjectStore, content_total

__all__ = ["DEFAULT_CLIENT_OPTIONS", "AzureStore"]

#: Client settings statevault applies unless ``storage_options`` says otherwise.
DEFAULT_CLIENT_OPTIONS: Final[Mapping[str, float]] = {
    "connection_timeout": 2,
    "read_timeout": 5,
    "retry_total": 1,
}
#: Backoff (seconds, +-0.2) before each retry; the SDK's ExponentialRetry waits 15 s first.
RETRY_BACKOFF_S: Final = 0.5
#: The largest blob one Put Blob may carry (service versions from 2019-12-12).
MAX_PUT_BYTES: Final = 5000 * 2**20
#: Reads up to this size take one GET.
MAX_SINGLE_GET_BYTES: Final = 256 * 2**20

#: Our options: consumed here, never passed to adlfs.
_OWN_OPTIONS: Final = ("write_timeout", "retry_total", "skip_instance_cache")
_DENIED_STATUS: Final = frozenset({401, 403})
_CONTAINER_MISSING: Final = frozenset({"ContainerNotFound", "ContainerBeingDeleted"})


class _Account:
    """One adlfs filesystem (credential resolution) and our blob service client beside it."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        fs_options = {k: v for k, v in options.items() if k not in _OWN_OPTIONS}
        for key in ("connection_timeout", "read_timeout"):
            fs_options.setdefault(key, DEFAULT_CLIENT_OPTIONS[key])
        self.fs = adlfs.AzureBlobFileSystem(skip_instance_cache=True, **fs_options)
        retry_total = int(options.get("retry_total", DEFAULT_CLIENT_OPTIONS["retry_total"]))
        client_kwargs: dict[str, Any] = {
            "connection_timeout": fs_options["connection_timeout"],
            "read_timeout": fs_options["read_timeout"],
            "retry_policy": LinearRetry(
                backoff=RETRY_BACKOFF_S,  # type: ignore[arg-type]
                retry_total=max(0, retry_total),
                random_jitter_range=0.2,  # type: ignore[arg-type]
            ),
            "max_single_put_size": MAX_PUT_BYTES,
            "max_single_get_size": MAX_SINGLE_GET_BYTES,
        }
        self.client = sync(self.fs.loop, self._connect, client_kwargs)
        weakref.finalize(self, _close_client, self.fs.loop, self.client)

    async def _connect(self, client_kwargs: dict[str, Any]) -> BlobServiceClient:
        # The same choice of credential as adlfs's do_connect, with our client settings.
        # Built inside the loop: the async client binds to the running loop.
        fs = self.fs
        if fs.connection_string is not None:
            return BlobServiceClient.from_connection_string(fs.connection_string, **client_kwargs)
        host = getattr(fs, "account_host", None) or f"{fs.account_name}.blob.core.windows.net"
        account_url = f"https://{host}"
        credential = fs.credential if fs.credential is not None else fs.account_key
        if credential is None and fs.sas_token is not None:
            sas = fs.sas_token if fs.sas_token.startswith("?") else f"?{fs.sas_token}"
            account_url += sas
        return BlobServiceClient(account_url, credential=credential, **client_kwargs)


def _close_client(loop: Any, client: BlobServiceClient) -> None:
    """Close the client's HTTP session on its loop (the account was collected, or exit).

    The finalizer may run on any thread, the loop's own included (where waiting would
    deadlock), so the close is scheduled, and waited for only from other threads.
    """
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    future = asyncio.run_coroutine_threadsafe(client.close(), loop)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not loop:
        with suppress(Exception):  # best effort: at exit the loop may stop meanwhile
            future.result(timeout=5)


_accounts: dict[str, _Account] = {}
_accounts_guard = threading.Lock()


def account_for(storage_options: Mapping[str, Any] | None) -> _Account:
    """Return the (shared) account for these options; equal options share one client.

    ``skip_instance_cache=True`` gives a fresh one. Deep copies: the caller's dict is never
    changed, and later changes to it do not reach the cached client.
    """
    options = copy.deepcopy(dict(storage_options or {}))
    fresh = bool(options.get("skip_instance_cache", False))
    key = tokenize({k: v for k, v in options.items() if k != "write_timeout"})
    with _accounts_guard:
        account = None if fresh else _accounts.get(key)
        if account is None:
            account = _Account(options)
            if not fresh:
                _accounts[key] = account
        return account


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return None if code is None else str(code)


def _modified(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


class AzureStore(ObjectStore[_Account]):
    """A block blob in an Azure Storage container (or Azurite); atomic and conditional.

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``, which
    the service enforces. The token is the blob's ETag. A missing container is a
    ``StorageError`` naming it (containers are not created implicitly, like S3 buckets).
    """

    protocol = "az"
    object_word = "a blob"
    container_word = "container"
    create_hint = " (az storage container create, or the portal)"
    credentials_hint = (
        "the credentials (account key, SAS token, role assignment) in storage_options"
    )
    put_limit = "one Azure Put Blob carries at most 5000 MiB"
    unconditional: ClassVar[Mapping[str, Any]] = {"overwrite": True}
    if_absent: ClassVar[Mapping[str, Any]] = {"overwrite": False}  # the SDK sends If-None-Match: *
    not_found_errors = (ResourceNotFoundError,)
    container_missing_codes = _CONTAINER_MISSING
    # 412 ConditionNotMet (replaced) and 409 BlobAlreadyExists (created); If-Match on a
    # deleted blob answers 404 BlobNotFound (deleted_answers_not_found).
    precondition_errors = (ResourceModifiedError, ResourceExistsError)

    @staticmethod
    def if_match(token: str) -> dict[str, Any]:
        return {"overwrite": True, "etag": token, "match_condition": MatchConditions.IfNotModified}

    @classmethod
    def error_codes(cls, exc: BaseException) -> frozenset[str]:
        return frozenset(str(c) for c in (_status(exc), _code(exc)) if c is not None)

    @classmethod
    def classify_error(cls, exc: BaseException) -> type[StorageError] | None:
        if isinstance(exc, ClientAuthenticationError) or _status(exc) in _DENIED_STATUS:
            return StoragePermissionError
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return StorageUnavailableError
        return None

    def _describe(self, exc: BaseException) -> str:
        # The service's code, not its message (which quotes the string it signed).
        return f"{type(exc).__name__}: {_code(exc) or _status(exc) or exc}"

    @classmethod
    def _connect(cls, storage_options: Mapping[str, Any] | None) -> _Account:
        return account_for(storage_options)

    def _split(self, url: str) -> tuple[str, str]:
        container, blob, _ = self._handle.fs.split_path(url)
        return container, blob

    @property
    def _account(self) -> _Account:
        return self._handle

    @property
    def _loop(self) -> Any:
        return self._handle.fs.loop

    def _max_put_bytes(self) -> int:
        return MAX_PUT_BYTES

    # -- requests -----------------------------------------------------------------------

    def _blob(self) -> BlobClient:
        blob: BlobClient = self._handle.client.get_blob_client(self._container, self._key)
        return blob

    async def _get(self, start: int | None, length: int | None) -> tuple[bytes, ObjectInfo]:
        downloader = await self._blob().download_blob(offset=start, length=length)
        data: bytes = await downloader.readall()
        props = downloader.properties
        size = content_total(props.content_range, len(data))
        return data, ObjectInfo(size, _modified(props.last_modified), str(props.etag))

    async def _head(self) -> ObjectInfo:
        props = await self._blob().get_blob_properties()
        return ObjectInfo(int(props.size), _modified(props.last_modified), str(props.etag))

    async def _put(self, data: bytes, conditions: dict[str, Any]) -> ObjectInfo:
        response: dict[str, Any] = await self._blob().upload_blob(
            data, blob_type="BlockBlob", length=len(data), max_concurrency=1, **conditions
        )
        return ObjectInfo(len(data), _modified(response.get("last_modified")), response["etag"])

    async def _remove(self) -> None:
        await self._blob().delete_blob()

    async def _list(self, prefix: str) -> list[Listed]:
        container = self._handle.client.get_container_client(self._container)
        found: list[Listed] = []
        # walk_blobs with a delimiter: one level (sub-folders come back as BlobPrefix items,
        # skipped); the pager follows each page's continuation marker.
        async for item in container.walk_blobs(
            name_starts_with=prefix, delimiter="/", results_per_page=self.list_page
        ):
            if isinstance(item, BlobProperties):
                modified = _modified(item.last_modified)
                stamp = None if modified is None else modified.timestamp()
                found.append(Listed(str(item.name)[len(prefix) :], int(item.size), stamp))
        return found
