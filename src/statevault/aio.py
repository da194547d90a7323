"""Async managers for asyncio bots: every operation as a coroutine that never blocks the loop.

``AsyncStateManager`` wraps a ``StateManager`` (``AsyncTradingStateManager`` a
``TradingStateManager``) and runs each call in one worker thread of its own. The methods have
the names and contracts of the synchronous ones (strict ``save``/``load`` raise, forgiving
``save_state``/``load_state`` log and return), only awaited::

    am = AsyncStateManager("s3://bucket/bot.state", storage_options=...)
    generation = await am.save(state)
    state = await am.load_state()

Why a wrapper over one worker thread, not a second implementation on s3fs's coroutines:

- The commit protocol (CAS, retained versions, the failover spool, conflict recovery) exists
  once, in ``statevault.layers``; a coroutine copy of it would be a second protocol to keep
  correct. The wrapper adds no storage logic at all.
- s3fs's coroutines run on fsspec's own I/O loop thread; the synchronous ``S3Store`` already
  awaits them there, so a save offloaded to a thread never starts or nests an event loop in
  the caller's loop and never meets "event loop is already running". Measured on the M state
  (bench/async_bench.py, bench/README.md): the loop's median lag during a save is a few ms on
  local files and on S3, within the issue's 10 ms target, so the remaining cost of the thread
  (a little GIL contention while the state is encoded) did not justify the copy.
- One thread per manager serialises its operations in call order, which is what makes
  cancellation safe (below) and keeps the manager's generation bookkeeping single-writer.

Cancellation: cancelling a task awaiting ``save`` never leaves an unknown outcome behind.
Cancelled before its write started, the save did not happen (``last_outcome.landed`` False).
Cancelled while it runs in the worker thread, the save finishes there (a thread cannot be
interrupted midway; the store's atomic replace decides landed or not) and its result is
recorded in ``last_outcome`` when it ends; ``await settle()`` waits for it. A save is one call
into the worker, so it has one await point. Every later call
queues behind it on the same thread, so it never runs concurrently with the next save and the
next save sees what it left (landed: its generation; failed: the commit layer's usual
recovery, the same as for a synchronous save that raised).

The state passed to ``save`` is encoded in the worker thread: other tasks must not mutate it
until the save returns (pass a copy, or use ``statevault.background.BackgroundSaver``, which
copies it in the calling thread). ``last_outcome`` belongs to the most recent save call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from .layers import Snapshot
from .manager import StateManager
from .trading import TradingStateManager

__all__ = ["AsyncStateManager", "AsyncTradingStateManager", "SaveOutcome"]

T = TypeVar("T")
M = TypeVar("M", bound=StateManager)


@dataclass(frozen=True)
class SaveOutcome:
    """How a save ended: ``landed`` (then ``generation``), or not (then ``error``, or
    ``cancelled`` with no error when it was cancelled before it wrote anything)."""

    landed: bool
    generation: int | None = None
    error: BaseException | None = None
    cancelled: bool = False


class _AsyncBase(Generic[M]):
    """The worker thread and the coroutine wrappers shared by both async managers."""

    def __init__(self, manager: M) -> None:
        self.sync: M = manager
        # One thread: calls run one at a time in call order (see the module docstring).
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="statevault-aio"
        )
        self._calls = 0  # numbers the save calls, so last_outcome is the newest one's
        #: How the most recent save ended (None: none yet, or one still running).
        self.last_outcome: SaveOutcome | None = None

    @property
    def url(self) -> str:
        return self.sync.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sync!r})"

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        future = self._executor.submit(functools.partial(fn, *args, **kwargs))
        return await asyncio.wrap_future(future)

    # -- saving

    async def _save(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one save-like call in the worker and record its outcome when it ends."""
        self.last_outcome = None
        self._calls += 1
        future = self._executor.submit(functools.partial(fn, *args))
        future.add_done_callback(functools.partial(self._record, self._calls))
        return await asyncio.wrap_future(future)

    def _record(self, call: int, future: concurrent.futures.Future[Any]) -> None:
        # Runs in the worker thread when the call ends (at once for one cancelled unstarted).
        if call != self._calls:  # an earlier save ending late: the newest call's outcome wins
            return
        if future.cancelled():
            self.last_outcome = SaveOutcome(False, cancelled=True)
        elif (error := future.exception()) is not None:
            self.last_outcome = SaveOutcome(False, error=error)
        elif future.result() is False:  # a forgiving save that logged its failure
            self.last_outcome = SaveOutcome(False)
        else:
            record = self.sync.last_save
            self.last_outcome = SaveOutcome(True, record.generation if record else None)

    async def settle(self) -> SaveOutcome | None:
        """Wait until every call queued so far (a save whose task was cancelled included) has
        ended, and return how the last save ended. Never raises the save's error."""
        await asyncio.wait([asyncio.wrap_future(self._executor.submit(lambda: None))])
        return self.last_outcome

    async def save(self, state: Mapping[str, Any]) -> int:
        """``StateManager.save`` in the worker thread; returns the new generation."""
        generation: int = await self._save(self.sync.save, state)
        return generation

    async def save_state(self, state: Mapping[str, Any]) -> bool:
        """``StateManager.save_state``: True, or logs (as the sync call) and returns False."""
        ok: bool = await self._save(self.sync.save_state, state)
        return ok

    async def commit(self, snapshot: Snapshot) -> int:
        """``StateManager.commit`` (write a snapshot made by ``sync.encode``)."""
        generation: int = await self._save(self.sync.commit, snapshot)
        return generation

    # -- everything else: the synchronous call in the worker thread

    async def load(self, version: int | None = None, *, fallback: bool = False) -> dict[str, Any]:
        """``StateManager.load``."""
        return await self._call(self.sync.load, version, fallback=fallback)

    async def load_state(self, version: int | None = None) -> dict[str, Any]:
        """``StateManager.load_state`` (never raises; ``{}`` when nothing is readable)."""
        return await self._call(self.sync.load_state, version)

    async def list_versions(self) -> list[dict[str, Any]]:
        """``StateManager.list_versions``."""
        return await self._call(self.sync.list_versions)

    async def restore(self, version: int) -> int:
        """``StateManager.restore``."""
        generation: int = await self._save(self.sync.restore, version)
        return generation

    async def flush_spool(self) -> bool:
        """``StateManager.flush_spool``."""
        return await self._call(self.sync.flush_spool)

    async def state_exists(self) -> bool:
        """``StateManager.state_exists``."""
        return await self._call(self.sync.state_exists)

    async def delete_state(self) -> bool:
        """``StateManager.delete_state``."""
        return await self._call(self.sync.delete_state)

    async def get_state_info(self) -> dict[str, Any]:
        """``StateManager.get_state_info``."""
        return await self._call(self.sync.get_state_info)

    async def state_info(self) -> Any:
        """``StateManager.state_info`` (a ``StateInfo``)."""
        return await self._call(self.sync.state_info)

    async def rotate_keys(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """``StateManager.rotate_keys`` (``progress`` is called in the worker thread)."""
        generation: int = await self._save(
            functools.partial(self.sync.rotate_keys, progress=progress)
        )
        return generation

    # -- lifetime

    async def aclose(self) -> None:
        """Wait for queued calls, then stop the worker thread. The sync manager stays usable."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncStateManager(_AsyncBase[StateManager]):
    """``StateManager`` for asyncio: each operation a coroutine run in one worker thread.

    Pass a URL and the ``StateManager`` options, or an existing manager as ``manager=``
    (the sync object stays usable as ``.sync``; both share its lock).
    """

    def __init__(
        self,
        url_or_path: str | os.PathLike[str] | None = None,
        *,
        manager: StateManager | None = None,
        **options: Any,
    ) -> None:
        if manager is None:
            if url_or_path is None:
                raise TypeError("AsyncStateManager needs a URL or manager=")
            manager = StateManager(url_or_path, **options)
        elif url_or_path is not None or options:
            raise TypeError("pass either a URL with options or manager=, not both")
        super().__init__(manager)


class AsyncTradingStateManager(_AsyncBase[TradingStateManager]):
    """``TradingStateManager`` for asyncio, with the trading operations as coroutines too."""

    def __init__(
        self,
        url_or_path: str | os.PathLike[str] | None = None,
        *,
        manager: TradingStateManager | None = None,
        **options: Any,
    ) -> None:
        if manager is None:
            if url_or_path is None:
                raise TypeError("AsyncTradingStateManager needs a URL or manager=")
            manager = TradingStateManager(url_or_path, **options)
        elif url_or_path is not None or options:
            raise TypeError("pass either a URL with options or manager=, not both")
        super().__init__(manager)

    async def save_trading(
        self,
        active_positions: Mapping[Any, Any] | None,
        pair_states: Mapping[Any, Any] | None,
        portfolio_data: Mapping[str, Any] | None = None,
    ) -> int:
        """``TradingStateManager.save_trading``: raises; returns the generation."""
        generation: int = await self._save(
            self.sync.save_trading, active_positions, pair_states, portfolio_data
        )
        return generation

    async def save_trading_state(
        self,
        active_positions: Mapping[Any, Any] | None,
        pair_states: Mapping[Any, Any] | None,
        portfolio_data: Mapping[str, Any] | None = None,
    ) -> bool:
        """``TradingStateManager.save_trading_state``: True, or logs and returns False."""
        ok: bool = await self._save(
            self.sync.save_trading_state, active_positions, pair_states, portfolio_data
        )
        return ok

    async def load_trading_state(self) -> dict[str, Any]:
        """``TradingStateManager.load_trading_state`` (never raises)."""
        return await self._call(self.sync.load_trading_state)

    async def get_portfolio_summary(self) -> dict[str, Any]:
        """``TradingStateManager.get_portfolio_summary``."""
        return await self._call(self.sync.get_portfolio_summary)

    async def load_pair_state(self, pair: str) -> Any:
        """``TradingStateManager.load_pair_state``."""
        return await self._call(self.sync.load_pair_state, pair)
