"""Any other fsspec filesystem, best effort: temp file beside the target, then ``fs.mv``.

statevault has no special knowledge of these filesystems, so it promises only what fsspec's
API can: ``atomic`` and ``conditional`` are False. A write goes to ``.<name>.tmp-<pid>-<rand>``
beside the target and is then moved over it; whether that move is atomic depends on the
filesystem (a rename on local-like filesystems, copy-then-delete on most object stores).
``write(expect=...)`` compares the current token just before writing, under a per-process
lock: another process can replace the object between that check and the move, and that
replace is then lost. Temp files of writers that died mid-write are not cleaned up (there is
no cross-process lock to prove a writer dead); they are dot-files beside the state.

Tokens hash everything ``fs.info`` reports except the name, plus a CRC of the first 4 KiB,
so they change whenever the filesystem reports any change. A token read while another
writer is replacing the object may match neither version; that can only cause a spurious
``ConflictError``, never a lost update.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import fsspec

from ..errors import StateError, StorageError
from .base import (
    ANY,
    TOKEN_HEAD_BYTES,
    Listed,
    ObjectInfo,
    Store,
    check_expected,
    check_range,
    head_crc,
    hold,
    join_chunks,
    process_lock,
    redact_url,
    translate_error,
)
from .registry import store_class

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["GenericStore"]

_READ_ATTEMPTS = 3


def _modified(info: Mapping[str, Any]) -> datetime | None:
    for key in ("mtime", "LastModified", "last_modified", "modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            with suppress(ValueError):
                parsed = datetime.fromisoformat(value)
                return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _fingerprint(info: Mapping[str, Any]) -> str:
    fields = {k: v for k, v in info.items() if k != "name"}
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class GenericStore(Store):
    """An object on any fsspec filesystem statevault has no adapter for; best effort.

    Not atomic, not truly conditional (see the module docstring). ``lock`` is a per-process
    lock. ``read`` brackets the download between two ``fs.info`` calls and retries if they
    differ, so the returned info matches the bytes unless the filesystem reports nothing
    that changes.
    """

    atomic = False
    conditional = False

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        shown = redact_url(url)
        try:
            fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except ImportError as e:
            raise StorageError(f"Cannot open {shown}: {e}") from e
        except ValueError as e:
            raise StorageError(
                f"Cannot open {shown}: {e}. Check the URL's protocol and storage_options."
            ) from e
        except Exception as e:
            raise translate_error(e, url=shown, action="opening") from e
        self._init(fs, str(path), shown)

    def _translate(self, exc: BaseException, action: str) -> StorageError:
        # The filesystem underneath may be one statevault has a backend for (s3fs behind a
        # cache, say): that backend's module knows what its client's errors mean.
        return translate_error(exc, url=self.url, action=action, classify=self._classify)

    def _classify(self, exc: BaseException) -> type[StorageError] | None:
        protocols = self._fs.protocol
        for protocol in (protocols,) if isinstance(protocols, str) else protocols:
            try:
                owner = store_class(str(protocol))
            except StorageError:  # its backend's package is not installed: not its error
                continue
            if owner is not GenericStore:
                return owner.classify_error(exc)
        return None

    @classmethod
    def _on(cls, fs: fsspec.AbstractFileSystem, path: str, url: str) -> GenericStore:
        store = cls.__new__(cls)
        store._init(fs, path, url)
        return store

    def _init(self, fs: fsspec.AbstractFileSystem, path: str, url: str) -> None:
        self._fs = fs
        self.path = path
        self.url = url
        protocol = fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else str(protocol[0])
        # fsspec's token identifies the filesystem by its arguments, so stores opened
        # separately on the same filesystem and path share one lock.
        self._lock = process_lock(f"{getattr(fs, '_fs_token', id(fs))}|{path}")

    # -- reading ------------------------------------------------------------------------

    def _file_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self._fs.info(self.path)
        if info.get("type", "file") != "file":
            raise StorageError(
                f"{self.url} is a {info.get('type')}, not a state object: choose another URL."
            )
        return info

    def read(self) -> tuple[Buffer, ObjectInfo]:
        try:
            for _ in range(_READ_ATTEMPTS):
                before = self._file_info()
                data: bytes = self._fs.cat_file(self.path)
                after = self._file_info()
                if _fingerprint(before) == _fingerprint(after):
                    token = f"{_fingerprint(after)}-{head_crc(data):08x}"
                    return data, ObjectInfo(len(data), _modified(after), token)
        except FileNotFoundError as e:
            raise self._not_found(e) from e
        except StateError:
            raise
        except Exception as e:
            raise self._translate(e, "reading") from e
        raise StorageError(
            f"{self.url} kept changing while being read; retry when writers are idle."
        )

    def read_range(self, start: int, end: int) -> bytes:
        check_range(start, end)
        try:
            size = int(self._file_info()["size"])
            end = min(end, size)
            if end <= start:
                return b""
            data: bytes = self._fs.cat_file(self.path, start=start, end=end)
            return data
        except FileNotFoundError as e:
            raise self._not_found(e) from e
        except StateError:
            raise
        except Exception as e:
            raise self._translate(e, "reading") from e

    def info(self) -> ObjectInfo | None:
        try:
            return self._current()
        except StateError:
            raise
        except Exception as e:
            raise self._translate(e, "inspecting") from e

    def _current(self) -> ObjectInfo | None:
        try:
            info = self._file_info()
            head: bytes = self._fs.cat_file(self.path, start=0, end=TOKEN_HEAD_BYTES)
        except FileNotFoundError:
            return None
        token = f"{_fingerprint(info)}-{head_crc(head):08x}"
        return ObjectInfo(int(info["size"]), _modified(info), token)

    # -- writing ------------------------------------------------------------------------

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """Write a temp file beside the target, then ``fs.mv`` it over; best effort."""
        data = join_chunks(chunks)
        with self._lock:
            try:
                if expect is not ANY:
                    self._check_expected(expect)
                self._replace(data)
                info = self._current()
            except StateError:
                raise
            except Exception as e:
                raise self._translate(e, "saving") from e
        if info is None:
            raise StorageError(
                f"{self.url} vanished right after it was written: another writer deleted it."
            )
        return info

    def _check_expected(self, expect: object) -> None:
        check_expected(self.url, self._current(), expect)

    def _replace(self, data: bytes) -> None:
        parent, _, name = self.path.rpartition("/")
        tmp_name = f".{name}.tmp-{os.getpid()}-{secrets.token_hex(8)}"
        tmp = f"{parent}/{tmp_name}" if parent else tmp_name
        try:
            try:
                self._fs.pipe_file(tmp, data)
            except FileNotFoundError:
                # Only create directories when the filesystem says they are missing: on
                # object stores makedirs can have side effects (creating buckets).
                self._fs.makedirs(parent, exist_ok=True)
                self._fs.pipe_file(tmp, data)
            self._fs.mv(tmp, self.path)
        except BaseException:
            with suppress(Exception):
                self._fs.rm_file(tmp)
            raise

    def delete(self) -> bool:
        with self._lock:
            try:
                if self._current() is None:
                    return False
                self._fs.rm_file(self.path)
            except StateError:
                raise
            except FileNotFoundError:
                return False
            except Exception as e:
                raise self._translate(e, "deleting") from e
            return True

    def list_dir(self) -> list[Listed]:
        """One ``fs.ls(<path>, detail=True)`` (the filesystem's listing cache dropped first,
        so it is asked anew): its files, with the size and the first time field it reports
        (``mtime``, ``LastModified``, ...). Consistent as the filesystem's listing is. Where
        it reports no time the stamp is None, and the orphan sweep tells a rewrite only by a
        changed size: enough for packs, whose names are never reused (a random nonce)."""
        try:
            self._fs.invalidate_cache(self.path)
            entries: list[dict[str, Any]] = self._fs.ls(self.path, detail=True)
        except FileNotFoundError:
            return []
        except StateError:
            raise
        except Exception as e:
            raise self._translate(e, "listing") from e
        found = []
        for info in entries:
            full = str(info.get("name", "")).rstrip("/")
            name = full.rpartition("/")[2]
            if info.get("type", "file") != "file" or full == self.path.rstrip("/"):
                continue  # a folder, or <path> itself being a file
            if not name or name.startswith("."):
                continue
            modified = _modified(info)
            stamp = None if modified is None else modified.timestamp()
            found.append(Listed(name, int(info.get("size") or 0), stamp))
        return found

    def lock(self) -> AbstractContextManager[None]:
        """A per-process lock (re-entrant); nothing stops other processes."""
        return hold(self._lock)

    def sibling(self, suffix: str) -> GenericStore:
        return GenericStore._on(self._fs, self.path + suffix, self.url + suffix)
