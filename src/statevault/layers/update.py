"""Read-modify-write: ``StateManager.update()`` and ``transaction()``, under the manager's lock
and the store's lock, with compare-and-swap retries.

The manager's lock keeps threads apart, the store's lock keeps managers of one process (and,
on local files, processes: ``flock``) apart; between processes elsewhere the strict save's
compare-and-swap turns a lost race into ``ConflictError``, which ``update()`` answers by
reading again and running ``fn`` again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from ..errors import ConflictError, StateNotFoundError

__all__ = ["UPDATE_RETRIES", "Updates"]

#: How many times ``update()`` re-reads and retries after a conflict before raising it.
UPDATE_RETRIES = 16


class Updates:
    """Read-modify-write over a manager's own ``load`` and a strict save.

    ``lock`` is the manager's lock and ``store_lock()`` returns the store's lock (asked for on
    every attempt); ``load()`` reads the state as ``StateManager.load()`` does (raising
    ``StateNotFoundError`` when nothing is stored, which starts as ``{}``), and
    ``save_strict(state)`` encodes and saves it with compare-and-swap whatever ``on_conflict``
    says, returning the new generation.
    """

    def __init__(
        self,
        lock: AbstractContextManager[Any],
        store_lock: Callable[[], AbstractContextManager[Any]],
        load: Callable[[], dict[str, Any]],
        save_strict: Callable[[Mapping[str, Any]], int],
    ) -> None:
        self._lock = lock
        self._store_lock = store_lock
        self._load = load
        self._save_strict = save_strict

    def update(
        self,
        fn: Callable[[dict[str, Any]], Mapping[str, Any] | None],
        retries: int = UPDATE_RETRIES,
    ) -> dict[str, Any]:
        """Run ``fn`` on the stored state and save what it returns (see ``StateManager.update``);
        on a conflict read again and rerun ``fn``, up to ``retries`` times, then raise it."""
        for attempt in range(retries + 1):
            with self._lock, self._store_lock():
                state = self.load_or_empty()
                result = fn(state)
                new = state if result is None else dict(result)
                try:
                    self._save_strict(new)
                except ConflictError:
                    if attempt == retries:
                        raise
                    continue
                return new
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Yield the stored state under both locks and save it strictly on a clean exit
        (see ``StateManager.transaction``); an exception in the block saves nothing."""
        with self._lock, self._store_lock():
            state = self.load_or_empty()
            yield state
            self._save_strict(state)

    def load_or_empty(self) -> dict[str, Any]:
        """The stored state, or ``{}`` when nothing is stored."""
        try:
            return self._load()
        except StateNotFoundError:
            return {}
