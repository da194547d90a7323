"""Background saving: ``save()`` encodes now and returns a handle; one worker thread writes.

``BackgroundSaver(manager)`` sits beside a ``StateManager`` (any subclass) rather than being a
``save_state(state, wait=False)`` flag on it: the worker thread, its queue, exit hooks and
error reporting are a component with a lifetime (``flush``, ``close``) that the manager, which
may be shared by threads and used synchronously at the same time, should not grow. The writes
go through ``manager.commit`` (the same commit protocol, CAS, retained versions and failover
spool as ``save()``), under the manager's lock.

What the caller gets:

- ``save(state)`` encodes the state in the calling thread (``manager.encode``: a consistent
  snapshot; nothing the bot changes afterwards leaks into it; buffers that alias the state's
  arrays are copied unless ``copy_buffers=False``) and returns a ``SaveHandle`` at once.
  A state that cannot be encoded raises there, as ``save()`` does: nothing is queued.
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
from .layers import Snapshot
from .manager import StateManager
from .metrics import SaveMetrics
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


class BackgroundSaver:
    """Save a manager's state from a background thread: ``save()`` returns at once.

    ``copy_buffers`` (default True) copies chunks that alias the state's numpy memory (one
    memcpy of the arrays, bench/README.md); pass False only if the bot never mutates arrays in
    place after saving them. ``encode_in_worker=True`` moves the encode into the worker too, so
    ``save()`` costs microseconds, but then the worker reads the state later: only for bots
    that replace their values rather than mutate them (or pass a copy); a failed encode is
    then reported through the handle, not raised. ``on_error(handle)`` and ``on_done(handle)``
    run in the worker thread. Thread-safe: several threads may call ``save()``.
    """

    def __init__(
        self,
        manager: StateManager,
        *,
        copy_buffers: bool = True,
        on_error: Callable[[SaveHandle], None] | None = None,
        on_done: Callable[[SaveHandle], None] | None = None,
        flush_at_exit: bool = True,
        handle_sigterm: bool = False,
        exit_timeout: float | None = 30.0,
        encode_in_worker: bool = False,
    ) -> None:
        self.manager = manager
        self.encode_in_worker = encode_in_worker
        self.copy_buffers = copy_buffers
        self.on_error = on_error
        self.on_done = on_done
        self.exit_timeout = exit_timeout
        self.last_error: BaseException | None = None
        self._unreported: BaseException | None = None
        self._cond = threading.Condition()
        self._pending: tuple[Snapshot | Mapping[str, Any], SaveHandle, float] | None = None
        self._writing: SaveHandle | None = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"statevault-background {manager.url}", daemon=True
        )
        self._thread.start()
        if flush_at_exit:
            ref = weakref.ref(self)

            def at_exit() -> None:
                saver = ref()
                if saver is not None:
                    saver.close(saver.exit_timeout)

            self._at_exit = at_exit
            atexit.register(at_exit)
        if handle_sigterm:
            install_sigterm_exit()

    def __repr__(self) -> str:
        return f"BackgroundSaver({self.manager!r})"

    # -- the caller's side

    def save(self, state: Mapping[str, Any]) -> SaveHandle:
        """Encode ``state`` now and queue it; return its handle at once.

        Raises ``SerializationError`` / ``ValidationError`` for a state that cannot be saved
        (nothing queued), ``StateError`` after ``close()``.
        """
        start = time.perf_counter()
        snapshot: Snapshot | Mapping[str, Any]
        if self.encode_in_worker:
            snapshot = dict(state)  # the top level is the caller's: take it as it is now
        else:
            snapshot = self.manager.encode(state)
            if self.copy_buffers:
                snapshot = copy_aliased(snapshot)
        encode_seconds = time.perf_counter() - start
        with self._cond:
            if self._closed:
                raise StateError(f"the background saver of {self.manager.url} is closed")
            handle = SaveHandle(self._unreported)
            self._unreported = None
            if self._pending is not None:
                superseded = self._pending[1]
                superseded._finish("superseded")
            self._pending = (snapshot, handle, encode_seconds)
            self._cond.notify_all()
        return handle

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued snapshot was written (or failed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._writing is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``), then stop the worker; True if everything was written.
        Later ``save()`` calls raise. Safe to call twice."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if flushed:
            self._thread.join(timeout)
        if hasattr(self, "_at_exit"):
            atexit.unregister(self._at_exit)
        return flushed

    def __enter__(self) -> BackgroundSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                snapshot, handle, encode_seconds = self._pending
                self._pending = None
                self._writing = handle
                handle.status = "writing"
            try:
                self._write(snapshot, handle, encode_seconds)
            finally:
                with self._cond:
                    self._writing = None
                    self._cond.notify_all()

    def _write(
        self, snapshot: Snapshot | Mapping[str, Any], handle: SaveHandle, encode_seconds: float
    ) -> None:
        manager = self.manager
        with manager.lock:  # last_save read below belongs to this commit
            try:
                if isinstance(snapshot, Snapshot):
                    handle.generation = manager.commit(snapshot, encode_seconds=encode_seconds)
                else:
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
            with self._cond:
                self.last_error = handle.error
                self._unreported = handle.error
        handle._finish(status)
        for callback in (self.on_error if handle.error is not None else None, self.on_done):
            if callback is not None:
                try:
                    callback(handle)
                except Exception:
                    log.exception("a BackgroundSaver callback failed on %r", handle)


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
