"""Background saving: ``save()`` snapshots now and returns a handle; one worker thread writes.

``BackgroundSaver(manager)`` sits beside a ``StateManager`` (any subclass) rather than being a
``save_state(state, wait=False)`` flag on it: the worker thread, its queue, exit hooks and
error reporting are a component with a lifetime (``flush``, ``close``) that the manager, which
may be shared by threads and used synchronously at the same time, should not grow. The worker
encodes and writes through ``manager.save`` / ``manager.commit`` (the same commit protocol,
CAS, retained versions and failover spool as a synchronous save), under the manager's lock.
The worker thread holds no reference to the saver: one that nothing references any more is
collected, and its finalizer lets the worker write what is pending and end.

What the caller gets:

- ``save(state)`` takes a consistent snapshot in the calling thread and returns a
  ``SaveHandle`` at once: nothing the bot changes afterwards leaks into the write. By default
  (``snapshot="copy"``) that is a private copy of what the bot can mutate
  (``statevault.freeze``: numpy/pandas data one memcpy each, containers rebuilt, immutable
  values kept, other types round-tripped through the codec), which the worker encodes; the
  stored bytes are those an encode at the call would have written. ``snapshot="encode"``
  encodes in the caller instead (a full encode, buffers aliasing numpy memory copied unless
  ``copy_buffers=False``). A state that cannot be encoded raises there, as ``save()`` does,
  and nothing is queued; with the copy, a value whose encode fails only in the worker
  (``max_state_bytes``, a registered encoder that fails on the copy) fails its handle.
- Coalescing: one snapshot is pending at most. A newer save replaces a pending one that has
  not started (its handle ends ``superseded``), so only the newest is written when saves come
  faster than storage takes them, and one worker writes in order: an older snapshot never
  lands after a newer one.
- Errors never vanish: a failed write is logged like a failed synchronous save (logger
  ``statevault``, ERROR), kept in ``last_error``, passed to ``on_error(handle)``, and reported
  by the next ``save()``'s handle (``previous_error``).
- ``flush(timeout)`` waits until everything queued has been written; ``close()`` flushes and
  stops the worker. At interpreter exit (normal end, ``sys.exit``, an uncaught exception,
  Ctrl-C's ``KeyboardInterrupt``) an ``atexit`` hook flushes; SIGTERM flushes too when
  ``handle_sigterm=True`` (it turns SIGTERM into ``SystemExit`` in the main thread).
  SIGKILL, ``os._exit`` or a power cut lose the snapshots not yet written, nothing else: the
  stored state is the last one written, intact (atomic replace).
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Literal

from .errors import StateError
from .freeze import Frozen, Unfreezable, freeze
from .layers import Snapshot
from .manager import StateManager
from .metrics import SaveMetrics
from .pool import CopyPool
from .transforms import Buffer

__all__ = ["BackgroundSaver", "SaveHandle", "Status"]

log = logging.getLogger("statevault")

Status = Literal["pending", "writing", "landed", "spooled", "failed", "superseded"]


class SaveHandle:
    """One background save: ``status``, ``generation`` once landed, ``error`` once failed.

    ``spooled``: the storage refused it and the frame is in the local failover spool
    (``failed`` is True too: it is not at the URL yet). ``previous_error``: the error of an
    earlier background write that failed since the previous ``save()`` call, or None.
    """

    def __init__(self, previous_error: BaseException | None = None) -> None:
        self.status: Status = "pending"
        self.generation: int | None = None
        self.error: BaseException | None = None
        self.metrics: SaveMetrics | None = None
        #: Seconds the ``save()`` call took (the snapshot, or the encode).
        self.snapshot_seconds = 0.0
        self.previous_error = previous_error
        self._done = threading.Event()

    def __repr__(self) -> str:
        return f"SaveHandle({self.status}, generation={self.generation})"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def landed(self) -> bool:
        return self.status == "landed"

    @property
    def spooled(self) -> bool:
        return self.status == "spooled"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "spooled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the save ended (any status but pending/writing); False on timeout."""
        return self._done.wait(timeout)

    def _finish(self, status: Status) -> None:
        self.status = status
        self._done.set()


def copy_aliased(snapshot: Snapshot) -> Snapshot:
    """The snapshot with every chunk that is not immutable ``bytes`` copied, so later
    mutations of the state's arrays cannot change what is written."""
    sections: list[list[Buffer]] = [
        [c if isinstance(c, bytes) else bytes(memoryview(c)) for c in chunks]
        for chunks in snapshot.sections
    ]
    return replace(snapshot, sections=sections)


class _Worker:
    """The queue and the worker thread of one saver; it holds no reference to the saver, so
    an unreferenced ``BackgroundSaver`` is collected (its finalizer closes this, which
    writes what is pending and ends the thread)."""

    def __init__(
        self,
        manager: StateManager,
        on_error: Callable[[SaveHandle], None] | None,
        on_done: Callable[[SaveHandle], None] | None,
    ) -> None:
        self.manager = manager
        self.on_error = on_error
        self.on_done = on_done
        self.last_error: BaseException | None = None
        self.unreported: BaseException | None = None
        self.cond = threading.Condition()
        self.pending: tuple[Snapshot | Frozen | Mapping[str, Any], SaveHandle, float] | None = None
        self.writing: SaveHandle | None = None
        self.closed = False
        self.exit_timeout: float | None = 30.0  # of the atexit flush
        self.thread = threading.Thread(
            target=self.run, name=f"statevault-background {manager.url}", daemon=True
        )
        self.thread.start()

    def put(self, snapshot: Snapshot | Frozen | Mapping[str, Any], seconds: float) -> SaveHandle:
        with self.cond:
            if self.closed:
                raise StateError(f"the background saver of {self.manager.url} is closed")
            handle = SaveHandle(self.unreported)
            handle.snapshot_seconds = seconds
            self.unreported = None
            if self.pending is not None:
                self.pending[1]._finish("superseded")
            self.pending = (snapshot, handle, seconds)
            self.cond.notify_all()
        return handle

    def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while self.pending is not None or self.writing is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.cond.wait(remaining)
        return True

    def shut(self) -> None:
        """Refuse new saves; the worker writes what is pending, then ends. Never blocks."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def close(self, timeout: float | None = None) -> bool:
        flushed = self.flush(timeout)
        self.shut()
        if flushed and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
        self.unregister()
        return flushed

    def at_exit(self) -> None:
        self.close(self.exit_timeout)

    def unregister(self) -> None:
        atexit.unregister(self.at_exit)  # a no-op when it is not registered

    def run(self) -> None:
        while True:
            with self.cond:
                while self.pending is None and not self.closed:
                    self.cond.wait()
                if self.pending is None:
                    break
                snapshot, handle, seconds = self.pending
                self.pending = None
                self.writing = handle
                handle.status = "writing"
            try:
                self.write(snapshot, handle, seconds)
            finally:
                # Dropped before waiting: the copy pool reuses a snapshot's memory only once
                # nothing holds it (statevault.pool).
                del snapshot
                with self.cond:
                    self.writing = None
                    self.cond.notify_all()
        self.unregister()  # closed and drained: the exit hook has nothing left to flush

    def write(
        self, snapshot: Snapshot | Frozen | Mapping[str, Any], handle: SaveHandle, seconds: float
    ) -> None:
        manager = self.manager
        with manager.lock:  # last_save read below belongs to this commit
            try:
                if isinstance(snapshot, Snapshot):
                    handle.generation = manager.commit(snapshot, encode_seconds=seconds)
                elif isinstance(snapshot, Frozen):  # the copy: encoded (and timed) by save()
                    handle.generation = manager.save(snapshot.thaw())
                else:  # taken as it is (encode_in_worker)
                    handle.generation = manager.save(snapshot)
                status: Status = "landed"
            except BaseException as e:
                handle.error = e
                status = "spooled" if manager.last_save and manager.last_save.spooled else "failed"
                cause = f" (cause: {type(e.__cause__).__name__}: {e.__cause__})"
                log.error(
                    "background save of %s failed: %s%s",
                    manager.url,
                    e,
                    cause if e.__cause__ else "",
                )
                log.debug("background save of %s failed", manager.url, exc_info=e)
            handle.metrics = manager.last_save
        if handle.error is not None:
            with self.cond:
                self.last_error = handle.error
                self.unreported = handle.error
        handle._finish(status)
        for callback in (self.on_error if handle.error is not None else None, self.on_done):
            if callback is not None:
                try:
                    callback(handle)
                except Exception:
                    log.exception("a BackgroundSaver callback failed on %r", handle)


class BackgroundSaver:
    """Save a manager's state from a background thread: ``save()`` returns at once.

    ``snapshot`` says how ``save()`` keeps later mutations out of the write: ``"copy"`` (the
    default) copies what the bot can mutate (``statevault.freeze``: numpy and pandas data one
    memcpy each, containers rebuilt; a few ms on the M state) and the worker encodes the
    copy; ``"encode"`` encodes on the caller's thread (the cost of a full encode) and, with
    ``copy_buffers`` (default True), copies the chunks that alias numpy memory.
    ``encode_in_worker=True`` takes no snapshot at all (``save()`` costs microseconds, the
    worker reads the state later): only for bots that replace their values rather than mutate
    them; then a failed encode is reported through the handle, not raised. ``on_error(handle)``
    and ``on_done(handle)`` run in the worker thread. Thread-safe: several threads may call
    ``save()``. A saver nobody references any more is garbage-collected like any object; its
    finalizer lets the worker write the pending snapshot and end (``close()`` is still the way
    to know it was written). ``reuse_memory`` (default True) copies numeric arrays into the
    memory of snapshots already written (``statevault.pool``): the copy costs less than half
    (3 against 7 ms on the bench's M state), for keeping the last written snapshot's numeric
    data allocated between saves (6.8 MB on M).
    """

    def __init__(
        self,
        manager: StateManager,
        *,
        snapshot: Literal["copy", "encode"] = "copy",
        copy_buffers: bool = True,
        on_error: Callable[[SaveHandle], None] | None = None,
        on_done: Callable[[SaveHandle], None] | None = None,
        flush_at_exit: bool = True,
        handle_sigterm: bool = False,
        exit_timeout: float | None = 30.0,
        encode_in_worker: bool = False,
        reuse_memory: bool = True,
    ) -> None:
        if snapshot not in ("copy", "encode"):
            raise ValueError(f"snapshot must be 'copy' or 'encode', not {snapshot!r}")
        self.manager = manager
        self.snapshot = snapshot
        self.encode_in_worker = encode_in_worker
        self.copy_buffers = copy_buffers
        self._pool = CopyPool() if reuse_memory else None
        self._pool_lock = threading.Lock()  # a pool serves one freeze at a time
        self._worker = _Worker(manager, on_error, on_done)
        # Collected without close(): the worker writes what is pending, then ends.
        self._finalizer = weakref.finalize(self, self._worker.shut)
        self._finalizer.atexit = False  # at exit, the atexit flush below does it (and waits)
        self._worker.exit_timeout = exit_timeout
        if flush_at_exit:
            atexit.register(self._worker.at_exit)
        if handle_sigterm:
            install_sigterm_exit()

    def __repr__(self) -> str:
        return f"BackgroundSaver({self.manager!r})"

    @property
    def on_error(self) -> Callable[[SaveHandle], None] | None:
        """Called with the handle of each failed write, in the worker thread."""
        return self._worker.on_error

    @property
    def on_done(self) -> Callable[[SaveHandle], None] | None:
        """Called with the handle of each write that ended, in the worker thread."""
        return self._worker.on_done

    @property
    def exit_timeout(self) -> float | None:
        """Seconds the ``atexit`` flush waits for pending work (None: as long as it takes)."""
        return self._worker.exit_timeout

    @property
    def last_error(self) -> BaseException | None:
        """The error of the most recent background write that failed (None: none failed)."""
        return self._worker.last_error

    # -- the caller's side

    def save(self, state: Mapping[str, Any]) -> SaveHandle:
        """Snapshot ``state`` now and queue it; return its handle at once.

        Raises ``SerializationError`` / ``ValidationError`` for a state that cannot be saved
        (nothing queued), ``StateError`` after ``close()``.
        """
        start = time.perf_counter()
        snapshot: Snapshot | Frozen | Mapping[str, Any]
        if self.encode_in_worker:
            snapshot = dict(state)  # the top level is the caller's: take it as it is now
        elif self.snapshot == "copy" and isinstance(state, Mapping):
            self.manager.validate(state)
            try:
                with self._pool_lock:
                    snapshot = freeze(
                        dict(state), self.manager.layers.codec.layout.codec, self._pool
                    )
            except Unfreezable as e:
                log.debug("%s: %s; encoding the state in the caller", self.manager.url, e)
                snapshot = self._encoded(state)
        else:
            snapshot = self._encoded(state)
        return self._worker.put(snapshot, time.perf_counter() - start)

    def _encoded(self, state: Mapping[str, Any]) -> Snapshot:
        snapshot = self.manager.encode(state)
        return copy_aliased(snapshot) if self.copy_buffers else snapshot

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued snapshot was written (or failed); False on timeout."""
        return self._worker.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``), then stop the worker; True if everything was written.
        Later ``save()`` calls raise. Safe to call twice."""
        return self._worker.close(timeout)

    def __enter__(self) -> BackgroundSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def install_sigterm_exit() -> None:
    """Make SIGTERM raise ``SystemExit(143)`` in the main thread, so ``atexit`` hooks (the
    background flush) run. Only from the main thread; an existing non-default handler is
    kept (then it is that handler's job to exit cleanly)."""
    if threading.current_thread() is not threading.main_thread():
        raise StateError("handle_sigterm=True needs the main thread (signal handlers live there)")
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
