"""Figures for every save and load: time per phase, bytes, requests, generation, spooled.

Each ``StateManager.save()`` / ``load()`` fills one record (``SaveMetrics`` / ``LoadMetrics``),
keeps it as ``manager.last_save`` / ``manager.last_load``, logs it as one DEBUG line (logger
``statevault.metrics``) and passes it to the manager's ``on_metrics`` callback, so a user can
feed Prometheus or OpenTelemetry without statevault depending on either.

How it is measured, with the smallest hooks: the manager opens a ``Recorder`` around the
operation (a thread-local slot, so concurrent managers in other threads do not mix), the
frame store times the transforms (``build``), and ``CountingStore`` (a thin layer over the
backend's ``Store``) times and counts every storage call. Outside a save or load nothing is
recorded; inside, the cost is a few ``perf_counter()`` calls per storage request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .storage import ANY, Listed, ObjectInfo, Store

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["CountingStore", "LoadMetrics", "MetricsCallback", "Recorder", "SaveMetrics"]

log = logging.getLogger("statevault.metrics")


@dataclass
class SaveMetrics:
    """What one save cost. Times in seconds; ``write`` includes the version copy and any
    spool write; ``other`` is the commit protocol's remainder (probes are in ``write`` too:
    every storage call counts as I/O). ``ok`` False: the save raised ``error``."""

    url: str
    ok: bool = False
    generation: int | None = None
    spooled: bool = False
    encode: float = 0.0
    transform: float = 0.0
    write: float = 0.0
    total: float = 0.0
    bytes_written: int = 0
    bytes_read: int = 0
    requests: int = 0
    error: str | None = None

    @property
    def other(self) -> float:
        return max(0.0, self.total - self.encode - self.transform - self.write)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadMetrics:
    """What one load cost. ``read`` is time in storage calls, ``decode`` the rest (undoing
    the transforms, decoding, migrating, validating). ``source`` as ``last_load_source``."""

    url: str
    ok: bool = False
    generation: int | None = None
    source: str | None = None
    read: float = 0.0
    decode: float = 0.0
    total: float = 0.0
    bytes_read: int = 0
    requests: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: ``on_metrics`` receives each record; an exception it raises is logged, never propagated.
MetricsCallback = Callable[[SaveMetrics | LoadMetrics], None]


@dataclass
class Recorder:
    """Accumulates one operation's I/O and transform figures (see the module docstring)."""

    io: float = 0.0
    transform: float = 0.0
    bytes_written: int = 0
    bytes_read: int = 0
    requests: int = 0
    spooled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_active = threading.local()


def current() -> Recorder | None:
    """The recorder of the operation running in this thread, or None."""
    rec: Recorder | None = getattr(_active, "rec", None)
    return rec


@contextmanager
def recording() -> Iterator[Recorder]:
    """Make a new recorder current in this thread; an enclosing one (a manager calling its
    own ``save`` from ``restore``) keeps receiving nothing from the inner operation."""
    outer = current()
    rec = Recorder()
    _active.rec = rec
    try:
        yield rec
    finally:
        _active.rec = outer


@contextmanager
def timed_transform() -> Iterator[None]:
    rec = current()
    if rec is None:
        yield
        return
    t = time.perf_counter()
    try:
        yield
    finally:
        rec.transform += time.perf_counter() - t


def emit(record: SaveMetrics | LoadMetrics, callback: MetricsCallback | None) -> None:
    """Log ``record`` as one DEBUG line and hand it to ``callback``."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s", type(record).__name__, record.as_dict())
    if callback is not None:
        try:
            callback(record)
        except Exception:
            log.exception("the on_metrics callback failed on %r", record)


def _size(chunks: Sequence[Buffer]) -> int:
    return sum(memoryview(c).nbytes for c in chunks)


class CountingStore(Store):
    """A ``Store`` that times and counts every call on the store it wraps (a layer).

    It changes nothing else: same URL, flags, errors and results; ``sibling()`` wraps the
    sibling, so version slots and the spool's neighbours are counted too.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.protocol = inner.protocol
        self.atomic = inner.atomic
        self.conditional = inner.conditional

    def __repr__(self) -> str:
        return f"CountingStore({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (an S3 store's write timeout, ...) stay reachable.
        return getattr(self.inner, name)

    def _count(self, rec: Recorder, t: float, read: int = 0, written: int = 0) -> None:
        rec.io += time.perf_counter() - t
        rec.requests += 1
        rec.bytes_read += read
        rec.bytes_written += written

    def read(self) -> tuple[Buffer, ObjectInfo]:
        rec = current()
        if rec is None:
            return self.inner.read()
        t = time.perf_counter()
        try:
            data, info = self.inner.read()
        finally:
            rec.io += time.perf_counter() - t
            rec.requests += 1
        rec.bytes_read += memoryview(data).nbytes
        return data, info

    def read_range(self, start: int, end: int) -> bytes:
        rec = current()
        if rec is None:
            return self.inner.read_range(start, end)
        t = time.perf_counter()
        try:
            data = self.inner.read_range(start, end)
        finally:
            rec.io += time.perf_counter() - t
            rec.requests += 1
        rec.bytes_read += len(data)
        return data

    def read_range_owned(self, start: int, end: int) -> bytearray | memoryview:
        rec = current()
        if rec is None:
            return self.inner.read_range_owned(start, end)
        t = time.perf_counter()
        try:
            data = self.inner.read_range_owned(start, end)
        finally:
            rec.io += time.perf_counter() - t
            rec.requests += 1
        rec.bytes_read += len(data)
        return data

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        rec = current()
        if rec is None:
            return self.inner.read_head(length)
        t = time.perf_counter()
        try:
            found = self.inner.read_head(length)
        finally:
            rec.io += time.perf_counter() - t
            rec.requests += 1
        if found is not None:
            rec.bytes_read += len(found[0])
        return found

    def keep_copy(self, dest: Store, chunks: Sequence[Buffer], written: ObjectInfo) -> int:
        inner_dest = dest.inner if isinstance(dest, CountingStore) else dest
        rec = current()
        if rec is None:
            return self.inner.keep_copy(inner_dest, chunks, written)
        t = time.perf_counter()
        sent = 0
        try:
            sent = self.inner.keep_copy(inner_dest, chunks, written)
        finally:
            self._count(rec, t, written=sent)
        return sent

    def info(self) -> ObjectInfo | None:
        rec = current()
        if rec is None:
            return self.inner.info()
        t = time.perf_counter()
        try:
            return self.inner.info()
        finally:
            self._count(rec, t)

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        rec = current()
        if rec is None:
            return self.inner.write(chunks, expect=expect)
        t = time.perf_counter()
        try:
            return self.inner.write(chunks, expect=expect)
        finally:
            self._count(rec, t, written=_size(chunks))

    def delete(self) -> bool:
        rec = current()
        if rec is None:
            return self.inner.delete()
        t = time.perf_counter()
        try:
            return self.inner.delete()
        finally:
            self._count(rec, t)

    def discard_lock(self) -> None:
        self.inner.discard_lock()

    def dropping_new_lock(self) -> AbstractContextManager[None]:
        return self.inner.dropping_new_lock()

    def list_dir(self) -> list[Listed] | None:
        return self.inner.list_dir()

    def lock(self) -> AbstractContextManager[None]:
        return self.inner.lock()

    def sibling(self, suffix: str) -> Store:
        return CountingStore(self.inner.sibling(suffix))
