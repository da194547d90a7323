"""statevault.aio inside a real running event loop, on local files, memory:// and moto S3."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from statevault import StateManager, TradingStateManager, generate_key
from statevault.aio import AsyncStateManager, AsyncTradingStateManager
from statevault.errors import ConflictError, StorageUnavailableError
from statevault.metrics import CountingStore
from statevault.storage import ANY, ObjectInfo
from statevault.testing import Backend

pytestmark = pytest.mark.asyncio

BACKENDS = ["local_backend", "memory_backend", pytest.param("s3_backend", marks=pytest.mark.s3)]


@pytest.fixture(params=BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(request.param)
    return backend


def _manager(backend: Backend, cls: type[StateManager] = StateManager, **kw: Any) -> Any:
    return cls(backend.url(), storage_options=backend.options(), **kw)


class GatedStore(CountingStore):
    """The real store, whose writes wait for ``gate`` (and may fail after landing)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail_after_write = False

    def write(self, chunks: Sequence[Any], *, expect: object = ANY) -> ObjectInfo:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        info = super().write(chunks, expect=expect)
        if self.fail_after_write:
            self.fail_after_write = False
            raise StorageUnavailableError("connection dropped after the write")
        return info


def _gate(am: AsyncStateManager) -> GatedStore:
    frames = am.sync.layers.frames
    gated = GatedStore(frames.store)
    frames.store = gated
    return gated


async def test_round_trip_and_every_operation(any_backend: Backend) -> None:
    async with AsyncStateManager(manager=_manager(any_backend)) as am:
        assert await am.state_exists() is False
        assert await am.load_state() == {}
        state = {"cash": 1.5, "prices": pd.Series([1.0, 2.0]), "a": np.arange(5)}
        assert await am.save(state) == 1
        assert await am.save_state({"x": 2}) is True
        loaded = await am.load()
        assert loaded == {"x": 2}
        assert await am.state_exists() is True
        versions = await am.list_versions()
        assert [v["generation"] for v in versions][:2] == [2, 1]
        old = await am.load(1)
        pd.testing.assert_series_equal(old["prices"], state["prices"])
        assert await am.restore(1) == 3
        assert (await am.get_state_info())["generation"] == 3
        assert (await am.state_info()).generation == 3
        assert await am.flush_spool() is False
        assert am.last_outcome is not None
        assert am.last_outcome.generation == 3
        assert await am.delete_state() is True
        assert await am.state_exists() is False


async def test_forgiving_save_logs_and_returns_false(
    memory_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    am = AsyncStateManager(manager=_manager(memory_backend))
    assert await am.save_state({"bad": object()}) is False
    assert "save of" in caplog.text
    assert am.last_outcome is not None
    assert not am.last_outcome.landed
    with pytest.raises(Exception, match="object"):
        await am.save({"bad": object()})
    await am.aclose()


async def test_trading_operations(any_backend: Backend) -> None:
    async with AsyncTradingStateManager(manager=_manager(any_backend, TradingStateManager)) as am:
        pairs = {"A-B": {"spread": pd.Series([0.1, 0.2]), "hedge_ratio": 1.2}}
        positions = {"A-B": {"side": "long", "lots": 1.0}}
        assert await am.save_trading(positions, pairs, {"cash": 10.0}) == 1
        assert await am.save_trading_state(positions, pairs, {"cash": 11.0}) is True
        state = await am.load_trading_state()
        assert state["cash"] == 11.0
        assert state["active_positions"] == positions
        pd.testing.assert_series_equal(
            (await am.load_pair_state("A-B"))["spread"], pairs["A-B"]["spread"]
        )
        summary = await am.get_portfolio_summary()
        assert summary["generation"] == 2
        assert summary["portfolio"] == {"cash": 11.0}


async def test_concurrent_tasks_on_one_manager(any_backend: Backend) -> None:
    am = AsyncStateManager(manager=_manager(any_backend))
    generations = await asyncio.gather(*(am.save({"i": i}) for i in range(12)))
    # One worker: the saves ran one at a time, in call order, none conflicting.
    assert generations == list(range(1, 13))
    loads = await asyncio.gather(*(am.load() for _ in range(3)))
    assert loads == [{"i": 11}] * 3
    await am.aclose()


async def test_the_loop_keeps_running_while_a_save_writes(memory_backend: Backend) -> None:
    am = AsyncStateManager(manager=_manager(memory_backend))
    gated = _gate(am)
    save = asyncio.create_task(am.save({"x": 1}))
    await asyncio.to_thread(gated.entered.wait, 30)
    ticks = 0
    for _ in range(50):  # the loop runs other tasks while the write is stuck in the worker
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 50
    assert not save.done()
    gated.gate.set()
    assert await save == 1


async def test_cancel_before_the_save_started_did_not_land(any_backend: Backend) -> None:
    am = AsyncStateManager(manager=_manager(any_backend))
    gated = _gate(am)
    first = asyncio.create_task(am.save({"n": 1}))
    await asyncio.to_thread(gated.entered.wait, 30)
    queued = asyncio.create_task(am.save({"n": 2}))
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert am.last_outcome is not None
    assert am.last_outcome.cancelled
    assert not am.last_outcome.landed
    gated.gate.set()
    assert await first == 1
    assert (await am.settle()).cancelled  # the newest save call's outcome, not the first's
    assert await am.load() == {"n": 1}
    assert await am.save({"n": 3}) == 2  # not poisoned
    assert await am.load() == {"n": 3}


@pytest.mark.parametrize("fails", [False, True], ids=["landed", "landed-then-error"])
async def test_cancel_while_the_write_runs(any_backend: Backend, fails: bool) -> None:
    am = AsyncStateManager(manager=_manager(any_backend))
    assert await am.save({"n": 0}) == 1
    records: list[Any] = []
    am.sync.on_metrics = records.append
    gated = _gate(am)
    gated.fail_after_write = fails
    task = asyncio.create_task(am.save({"n": 1}))
    await asyncio.to_thread(gated.entered.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The next save is queued behind the running write: it never runs at the same time.
    follow = asyncio.create_task(am.save({"n": 2}))
    await asyncio.sleep(0)
    assert not follow.done()
    gated.gate.set()
    generation = await follow
    outcome = await am.settle()
    assert outcome is not None
    assert outcome.landed
    assert outcome.generation == generation
    assert await am.load() == {"n": 2}
    # What the cancelled save did is on record: landed as 2, or reported failed.
    cancelled_save, follow_save = [r for r in records if hasattr(r, "spooled")]
    assert cancelled_save.ok is not fails
    assert cancelled_save.generation == (None if fails else 2)
    # Either way its frame landed (generation 2) and the commit layer recognises it, so the
    # follow-up is 3, not a conflict: an unknown outcome never fails the next save.
    assert generation == 3
    assert follow_save.ok
    assert follow_save.generation == 3
    if not fails:
        assert await am.load(2) == {"n": 1}


async def test_cancel_during_settle_keeps_the_outcome(memory_backend: Backend) -> None:
    am = AsyncStateManager(manager=_manager(memory_backend))
    gated = _gate(am)
    task = asyncio.create_task(am.save({"n": 1}))
    await asyncio.to_thread(gated.entered.wait, 30)
    task.cancel()
    settle = asyncio.create_task(am.settle())
    await asyncio.sleep(0)
    settle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settle
    gated.gate.set()
    outcome = await am.settle()
    assert outcome is not None
    assert outcome.landed
    assert outcome.generation == 1


async def test_conflict_from_another_writer_is_raised(memory_backend: Backend) -> None:
    am = AsyncStateManager(manager=_manager(memory_backend))
    assert await am.save({"n": 1}) == 1
    other = _manager(memory_backend)
    other.load()
    other.save({"n": "other"})
    with pytest.raises(ConflictError):
        await am.save({"n": 2})
    assert am.last_outcome is not None
    assert isinstance(am.last_outcome.error, ConflictError)


async def test_constructor_forms(tmp_path: Any) -> None:
    am = AsyncStateManager(tmp_path / "s.bin", keep_versions=0)
    assert await am.save({"a": 1}) == 1
    assert am.url.endswith("s.bin")
    with pytest.raises(TypeError):
        AsyncStateManager()
    with pytest.raises(TypeError):
        AsyncStateManager(tmp_path / "s.bin", manager=am.sync)
    await am.aclose()


async def test_rotate_keys_reports_each_retained_version(memory_backend: Backend) -> None:
    old, new = generate_key(), generate_key()
    sm = _manager(memory_backend, encryption_key=old, keep_versions=3)
    for i in range(3):
        sm.save({"i": i})
    rotated = AsyncStateManager(
        manager=_manager(memory_backend, encryption_key=[new, old], keep_versions=3)
    )
    seen: list[tuple[int, int, str]] = []
    generation = await rotated.rotate_keys(
        progress=lambda done, total: seen.append((done, total, threading.current_thread().name))
    )
    assert generation == 4
    total = len(await rotated.list_versions())
    assert [(d, t) for d, t, _ in seen] == [(k, total) for k in range(total)]
    assert all(name.startswith("statevault-aio") for _, _, name in seen)  # in the worker
    await rotated.aclose()
