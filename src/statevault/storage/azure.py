"""``az://`` and ``abfs://`` (Azure Blob Storage) through adlfs: one PUT per save, ETag CAS.

Azure replaces a block blob atomically on every Put Blob, and honours ``If-Match: <etag>`` and
``If-None-Match: *`` on it, so ``write(expect=...)`` is a real compare-and-swap done by the
service. Each operation is one request: ``read`` is one GET (bytes and ETag from the same
response; states over 256 MiB take further GETs, each pinned to the first one's ETag),
``read_range`` and ``read_head`` one ranged GET, ``info`` one HEAD, ``write`` one Put Blob,
``delete`` one DELETE.

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
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

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
from azure.storage.blob.aio import BlobClient, BlobServiceClient, LinearRetry
from fsspec.asyn import sync
from fsspec.utils import tokenize

from ..errors import (
    ConflictError,
    StateError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)
from .base import ANY, ObjectInfo, Store, check_range, hold, join_chunks, process_lock, redact_url

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_CLIENT_OPTIONS", "AzureStore"]

#: Client settings statevault applies unless ``storage_options`` says otherwise.
DEFAULT_CLIENT_OPTIONS: Final[Mapping[str, float]] = {
    "connection_timeout": 2,
    "read_timeout": 5,
    "retry_total": 1,
}
#: Backoff (seconds, +-0.2) before each retry; the SDK's ExponentialRetry waits 15 s first.
RETRY_BACKOFF_S: Final = 0.5
#: A PUT may take this long plus one second per MiB before it is abandoned.
WRITE_TIMEOUT_BASE_S: Final = 60.0
WRITE_TIMEOUT_PER_MIB_S: Final = 1.0
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


class AzureStore(Store):
    """A block blob in an Azure Storage container (or Azurite); atomic and conditional.

    ``lock`` is a per-process lock only; across processes use ``write(expect=token)``, which
    the service enforces. The token is the blob's ETag. A missing container is a
    ``StorageError`` naming it (containers are not created implicitly, like S3 buckets).
    """

    protocol = "az"
    atomic = True
    conditional = True

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        write_timeout = (storage_options or {}).get("write_timeout")
        self._init(
            account_for(storage_options),
            url,
            None if write_timeout is None else float(write_timeout),
        )

    @classmethod
    def _on(cls, account: _Account, url: str, write_timeout: float | None) -> AzureStore:
        store = cls.__new__(cls)
        store._init(account, url, write_timeout)
        return store

    def _init(self, account: _Account, url: str, write_timeout: float | None) -> None:
        self._account = account
        self._write_timeout = write_timeout
        container, blob, _ = account.fs.split_path(url)
        if not container or not blob or url.endswith("/"):
            raise ValueError(
                f"{redact_url(url)} does not name a blob: use az://container/path/to/state"
            )
        self._container: str = container
        self._blob_name: str = blob
        self.url = f"az://{container}/{blob}"
        self._lock = process_lock(self.url)

    # -- requests -----------------------------------------------------------------------

    def _blob(self) -> BlobClient:
        blob: BlobClient = self._account.client.get_blob_client(self._container, self._blob_name)
        return blob

    def _run(self, coro_fn: Any, *args: Any, timeout: float | None = None) -> Any:
        # fsspec cancels the coroutine at the timeout and raises FSTimeoutError (a
        # TimeoutError, so it translates to StorageUnavailableError).
        return sync(self._account.fs.loop, coro_fn, *args, timeout=timeout)

    def _put_deadline(self, size: int) -> float:
        if self._write_timeout is not None:
            return self._write_timeout
        return WRITE_TIMEOUT_BASE_S + WRITE_TIMEOUT_PER_MIB_S * size / 2**20

    async def _download(self, offset: int | None, length: int | None) -> tuple[Any, bytes]:
        downloader = await self._blob().download_blob(offset=offset, length=length)
        data: bytes = await downloader.readall()
        return downloader.properties, data

    async def _properties(self) -> Any:
        return await self._blob().get_blob_properties()

    async def _upload(self, data: bytes, expect: object) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"overwrite": True}
        if expect is None:
            kwargs = {"overwrite": False}  # the SDK sends If-None-Match: *
        elif expect is not ANY:
            kwargs.update(etag=str(expect), match_condition=MatchConditions.IfNotModified)
        response: dict[str, Any] = await self._blob().upload_blob(
            data, blob_type="BlockBlob", length=len(data), max_concurrency=1, **kwargs
        )
        return response

    async def _delete(self) -> None:
        await self._blob().delete_blob()

    # -- errors ---------------------------------------------------------------------------

    def _fail(self, exc: BaseException, action: str) -> StorageError:
        """Azure's failures as statevault errors, ``exc`` chained; the rest via the base."""
        err: StorageError
        if isinstance(exc, ClientAuthenticationError) or _status(exc) in _DENIED_STATUS:
            err = StoragePermissionError(
                f"Access denied while {action} {self.url}: check the credentials "
                f"(account key, SAS token, role assignment) in storage_options. "
                f"({type(exc).__name__}: {_code(exc) or _status(exc)})"
            )
        elif _code(exc) in _CONTAINER_MISSING:
            err = StorageError(
                f"The container {self._container!r} does not exist while {action} {self.url}: "
                "create it (az storage container create, or the portal) or fix the URL."
            )
        elif isinstance(exc, ServiceRequestError | ServiceResponseError):
            err = StorageUnavailableError(
                f"Storage for {self.url} cannot be reached while {action}: check the endpoint, "
                f"network and credentials, then retry. ({type(exc).__name__}: {exc})"
            )
        else:
            return self._translate(exc, action)
        err.__cause__ = exc
        return err

    def _missing_blob(self, exc: BaseException) -> bool:
        return isinstance(exc, ResourceNotFoundError) and _code(exc) not in _CONTAINER_MISSING

    # -- Store --------------------------------------------------------------------------

    def read(self) -> tuple[Buffer, ObjectInfo]:
        """One GET; the ETag and the bytes come from the same response."""
        try:
            props, data = self._run(self._download, None, None)
        except Exception as e:
            if self._missing_blob(e):
                raise self._not_found(e) from e
            raise self._fail(e, "reading") from e
        return data, ObjectInfo(len(data), _modified(props.last_modified), str(props.etag))

    def read_range(self, start: int, end: int) -> bytes:
        check_range(start, end)
        if end <= start:
            if self.info() is None:
                raise self._not_found()
            return b""
        try:
            _, data = self._run(self._download, start, end - start)
        except Exception as e:
            if self._missing_blob(e):
                raise self._not_found(e) from e
            if _status(e) == 416:
                return b""  # start is at or past the end of the blob
            raise self._fail(e, "reading") from e
        result: bytes = data
        return result

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        """One ranged GET: the first bytes and the ETag of the same blob version."""
        if length <= 0:
            info = self.info()
            return None if info is None else (b"", info)
        try:
            props, data = self._run(self._download, 0, length)
        except Exception as e:
            if self._missing_blob(e):
                return None
            if _status(e) == 416:  # an empty blob has no byte 0
                info = self.info()
                return None if info is None else (b"", info)
            raise self._fail(e, "reading") from e
        # Content-Range: "bytes 0-99/12345"; absent when the whole blob was sent.
        total = str(props.content_range or "").rpartition("/")[2]
        size = int(total) if total.isdigit() else len(data)
        return data, ObjectInfo(size, _modified(props.last_modified), str(props.etag))

    def info(self) -> ObjectInfo | None:
        try:
            props = self._run(self._properties)
        except Exception as e:
            if self._missing_blob(e):
                return None
            raise self._fail(e, "inspecting") from e
        return ObjectInfo(int(props.size), _modified(props.last_modified), str(props.etag))

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """One Put Blob; ``expect`` becomes ``If-None-Match: *`` or ``If-Match: <etag>``."""
        data = join_chunks(chunks)
        if len(data) > MAX_PUT_BYTES:
            raise StorageError(
                f"Cannot save {len(data)} bytes to {self.url}: one Azure Put Blob carries at "
                "most 5000 MiB. Enable compression or split the state."
            )
        with self._lock:
            try:
                response = self._run(
                    self._upload, data, expect, timeout=self._put_deadline(len(data))
                )
            except StateError:
                raise
            except Exception as e:
                # 412 ConditionNotMet (replaced), 409 BlobAlreadyExists (created), and
                # If-Match on a deleted blob, which answers 404 BlobNotFound.
                if expect is not ANY and (
                    isinstance(e, ResourceModifiedError | ResourceExistsError)
                    or self._missing_blob(e)
                    or _status(e) == 412
                ):
                    raise ConflictError(
                        f"stored object changed: {self.url} was created, replaced or deleted "
                        "by another writer since it was last read. Load it again, merge, "
                        "and save."
                    ) from e
                raise self._fail(e, "saving") from e
        return ObjectInfo(len(data), _modified(response.get("last_modified")), response["etag"])

    def delete(self) -> bool:
        with self._lock:
            try:
                self._run(self._delete)
            except Exception as e:
                if self._missing_blob(e):
                    return False
                raise self._fail(e, "deleting") from e
            return True

    def lock(self) -> AbstractContextManager[None]:
        """A per-process lock (re-entrant); Azure leases are not used, use ``expect``."""
        return hold(self._lock)

    def sibling(self, suffix: str) -> AzureStore:
        return AzureStore._on(self._account, self.url + suffix, self._write_timeout)
