"""The manager's lock: a caller's lock made re-entrant for the manager's own nested calls."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from .errors import StateError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "LockLike", "ReentrantLock"]

#: Seconds a manager waits for a caller's lock before saying it looks held by the caller.
DEFAULT_LOCK_TIMEOUT = 10.0


class LockLike(Protocol):
    """Anything usable as ``with lock:`` (``threading.Lock``, ``RLock``, a file lock...)."""

    def __enter__(self) -> Any: ...
    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> Any: ...


class ReentrantLock:
    """The manager's view of its lock: re-entrant for the manager's own nested calls.

    ``restore()`` calls ``save()``, ``rotate_keys()`` calls ``load()`` and ``save()``, each of
    which takes the lock: with a caller's plain ``threading.Lock`` that would deadlock. This
    adapter takes the caller's lock once per outermost call, so other components sharing it
    are still excluded for the whole operation.

    ``timeout`` (seconds, None: wait forever) bounds the wait for a lock that has an
    ``acquire(timeout=...)`` method: a caller calling the manager while holding the plain
    ``threading.Lock`` it passed in would otherwise hang silently; it gets a ``StateError``.
    """

    __slots__ = ("_depth", "_inner", "_owner", "_timeout")

    def __init__(self, inner: LockLike, timeout: float | None = None) -> None:
        self._inner = inner
        self._owner: int | None = None
        self._depth = 0
        self._timeout = timeout

    def __enter__(self) -> ReentrantLock:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return self
        acquire = getattr(self._inner, "acquire", None)
        if self._timeout is not None and callable(acquire):
            if not acquire(timeout=self._timeout):
                raise StateError(
                    f"the manager's lock was not free after {self._timeout:g} s: if this "
                    "thread holds the lock it passed to the manager, call the manager outside "
                    "`with lock:` (or pass an RLock); otherwise another thread holds it that long"
                )
        else:
            self._inner.__enter__()
        self._owner, self._depth = me, 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._inner.__exit__(None, None, None)
