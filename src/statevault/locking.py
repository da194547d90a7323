"""The manager's lock: a caller's lock made re-entrant for the manager's own nested calls."""

from __future__ import annotations

import threading
from typing import Any, Protocol

__all__ = ["LockLike", "ReentrantLock"]


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
    """

    __slots__ = ("_depth", "_inner", "_owner")

    def __init__(self, inner: LockLike) -> None:
        self._inner = inner
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> ReentrantLock:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return self
        self._inner.__enter__()
        self._owner, self._depth = me, 1
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any, /) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._inner.__exit__(None, None, None)
