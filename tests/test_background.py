"""BackgroundSaver: consistent snapshots, coalescing in order, errors reported, exit flush."""

from __future__ import annotations

import gc
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from statevault import StateManager
from statevault.background import BackgroundSaver, SaveHandle, copy_aliased
from statevault.codec import TypeRegistry
from statevault.errors import (
    SerializationError,
    StateError,
    StorageUnavailableError,
    ValidationError,
)
from statevault.metrics import CountingStore
from statevault.storage import ANY, ObjectInfo
from statevault.testing import Backend
from test_freeze import _mutate, _private_copy

from bench.gen_state import make_state
from strategies import assert_same, values

BACKENDS = ["local_backend", "memory_backend", pytest.param("s3_backend", marks=pytest.mark.s3)]


@pytest.fixture(params=BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(request.param)
    return backend


def _manager(backend: Backend, **kw: Any) -> StateManager:
    return StateManager(backend.url(), storage_options=backend.options(), **kw)


class GatedStore(CountingStore):
    """The real store; writes wait for ``gate`` and fail while ``down`` is set."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.down = False
        self.written: list[int] = []

    def write(self, chunks: Sequence[Any], *, expect: object = ANY) -> ObjectInfo:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if self.down:
            raise StorageUnavailableError("storage is down (test)")
        return super().write(chunks, expect=expect)


def _gate(sm: StateManager) -> GatedStore:
    frames = sm.layers.frames
    gated = GatedStore(frames.store)
    frames.store = gated
    return gated


def test_save_returns_a_handle_and_lands(any_backend: Backend) -> None:
    sm = _manager(any_backend)
    with BackgroundSaver(sm, flush_at_exit=False) as saver:
        handle = saver.save({"a": np.arange(4), "x": 1})
        assert handle.wait(30)
        assert handle.landed
        assert handle.generation == 1
        assert handle.metrics is not None
        assert handle.metrics.bytes_written > 0
    np.testing.assert_array_equal(sm.load()["a"], np.arange(4))


def test_later_mutations_never_leak_into_the_save(memory_backend: Backend) -> None:
    sm = _manager(memory_backend)
    gated = _gate(sm)
    gated.gate.clear()
    saver = BackgroundSaver(sm, flush_at_exit=False)
    prices = np.zeros(1000)
    state = {"prices": prices, "orders": [1, 2]}
    handle = saver.save(state)
    prices[:] = 7.0  # the bot goes on mutating while the write waits
    state["orders"].append(3)
    state["new"] = True
    gated.gate.set()
    assert saver.flush(30)
    assert handle.landed
    loaded = sm.load()
    np.testing.assert_array_equal(loaded["prices"], np.zeros(1000))
    assert loaded["orders"] == [1, 2]
    assert "new" not in loaded
    saver.close()


def test_copy_aliased_copies_buffers_that_share_memory() -> None:
    sm = StateManager("memory://copy/s.bin")
    array = np.arange(10.0)
    snapshot = sm.encode({"a": array})
    copied = copy_aliased(snapshot)
    assert all(isinstance(c, bytes) for chunks in copied.sections for c in chunks)
    assert [b"".join(bytes(c) for c in s) for s in copied.sections] == [
        b"".join(bytes(memoryview(c)) for c in s) for s in snapshot.sections
    ]


def test_coalescing_writes_only_the_newest_in_order(any_backend: Backend) -> None:
    sm = _manager(any_backend)
    gated = _gate(sm)
    gated.gate.clear()
    landed: list[int] = []
    saver = BackgroundSaver(sm, flush_at_exit=False, on_done=lambda h: landed.append(h.generation))
    first = saver.save({"n": 0})
    assert gated.entered.wait(30)  # the worker is writing n=0; the next saves pile up
    handles = [saver.save({"n": i}) for i in range(1, 6)]
    gated.gate.set()
    assert saver.flush(30)
    assert first.landed
    assert [h.status for h in handles] == ["superseded"] * 4 + ["landed"]
    assert landed == [1, 2]  # in order, the newest last
    assert sm.load() == {"n": 5}
    saver.close()


def test_errors_never_vanish(memory_backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    sm = _manager(memory_backend, spool_dir=False)
    gated = _gate(sm)
    gated.down = True
    failed: list[SaveHandle] = []
    saver = BackgroundSaver(sm, flush_at_exit=False, on_error=failed.append)
    handle = saver.save({"n": 1})
    assert handle.wait(30)
    assert handle.failed
    assert not handle.spooled
    assert isinstance(handle.error, StorageUnavailableError)
    assert failed == [handle]
    assert saver.last_error is handle.error
    assert "background save of" in caplog.text
    gated.down = False
    nxt = saver.save({"n": 2})
    assert nxt.previous_error is handle.error  # the next call's result reports it
    assert nxt.wait(30)
    assert nxt.landed
    assert saver.save({"n": 3}).previous_error is None
    saver.close()


def test_a_refused_write_is_spooled(memory_backend: Backend, tmp_path: Path) -> None:
    sm = _manager(memory_backend, spool_dir=tmp_path / "spool")
    gated = _gate(sm)
    gated.down = True
    saver = BackgroundSaver(sm, flush_at_exit=False)
    handle = saver.save({"n": 1})
    assert handle.wait(30)
    assert handle.spooled
    assert handle.metrics is not None
    assert handle.metrics.spooled
    saver.close()


def test_unencodable_state_raises_at_once_and_close_refuses(memory_backend: Backend) -> None:
    saver = BackgroundSaver(_manager(memory_backend), flush_at_exit=False)
    with pytest.raises(SerializationError):
        saver.save({"bad": object()})
    assert saver.close(30)
    with pytest.raises(StateError, match="closed"):
        saver.save({"n": 1})
    assert saver.close(30)  # twice is fine


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import numpy as np
    from statevault import StateManager
    from statevault.background import BackgroundSaver

    path, mode = sys.argv[1], sys.argv[2]
    sm = StateManager(path, spool_dir=False)
    saver = BackgroundSaver(sm, handle_sigterm=(mode == "sigterm"))
    if mode in ("exit", "sigterm"):
        saver.save({"n": 0}).wait(30)
        frames = sm.layers.frames
        real_write = frames.store.write
        def slow_write(chunks, **kw):
            time.sleep(0.2)  # still pending when the process is told to end
            return real_write(chunks, **kw)
        frames.store.write = slow_write
        saver.save({"n": 1})
        saver.save({"n": 2})
        if mode == "sigterm":
            print("ready", flush=True)
            time.sleep(60)
        sys.exit(0)  # atexit flushes the newest pending snapshot
    # mode == "kill": save forever until SIGKILL
    big = np.arange(200_000.0)
    sm.save({"n": -1, "big": big})
    print("ready", flush=True)
    i = 0
    while True:
        big += 1
        saver.save({"n": i, "big": big})
        i += 1
    """
)


def _child(path: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_pending_work_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    child = _child(path, "exit")
    child.communicate(timeout=60)
    assert child.returncode == 0
    assert StateManager(path, spool_dir=False).load() == {"n": 2}


def test_sigterm_flushes_with_handle_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    child = _child(path, "sigterm")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert StateManager(path, spool_dir=False).load() == {"n": 2}


def test_sigkill_loses_at_most_the_unwritten_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    child = _child(path, "kill")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    sm = StateManager(path, spool_dir=False)
    # Let a few background writes land, then kill without warning.
    for _ in range(200):
        if sm.get_state_info()["generation"] not in (None, 1):
            break
        threading.Event().wait(0.05)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    state = StateManager(path, spool_dir=False).load()
    # Whatever landed last is whole and self-consistent: big was saved together with its n.
    n = state["n"]
    np.testing.assert_array_equal(state["big"], np.arange(200_000.0) + (n + 1 if n >= 0 else 0))


def test_encode_in_worker_reports_a_bad_state_through_the_handle(memory_backend: Backend) -> None:
    sm = _manager(memory_backend)
    with BackgroundSaver(sm, flush_at_exit=False, encode_in_worker=True) as saver:
        good = saver.save({"n": 1})
        bad = saver.save({"bad": object()})
        assert saver.flush(30)
    assert good.status in ("landed", "superseded")
    assert bad.failed
    assert isinstance(bad.error, SerializationError)
    assert sm.load() == {"n": 1} if good.landed else not sm.state_exists()


_URLS = itertools.count()


@pytest.mark.parametrize("snapshot", ["copy", "encode"])
def test_a_bot_mutating_every_kind_of_value_saves_the_state_of_the_call(snapshot: str) -> None:
    sm = StateManager(f"memory://bg-mutate/{next(_URLS)}/s.bin", spool_dir=False)
    gated = _gate(sm)
    state = make_state("S")
    state["book"] = np.arange(12.0).reshape(3, 4)  # a bare numpy array (not in a Series)
    state["orders"] = [{"id": 1, "fills": [0.5, 0.25]}, {"id": 2, "fills": []}]
    state["nested"] = {"a": {"b": [np.zeros(3), {"c": {1, 2}}]}}
    before = _private_copy(state)
    with BackgroundSaver(sm, flush_at_exit=False, snapshot=snapshot) as saver:  # type: ignore[arg-type]
        gated.gate.clear()
        handle = saver.save(state)
        # The bot goes on at once, through every kind of value, while the write waits.
        for pair in state["pair_states"].values():
            pair["price1"].iloc[-1] = 0.0  # a Series cell
            pair["spread"] += 1.0  # in place
            pair["stats"].iloc[0, 0] = -1.0  # a DataFrame cell
            pair["stats"]["new"] = 1.0  # a new column
            pair["hedge_ratio"] = 9.9
        state["book"][0, 0] = 42.0
        state["orders"][0]["fills"].append(1.0)
        state["orders"].append({"id": 3})
        state["nested"]["a"]["b"][0][:] = 7.0
        state["nested"]["a"]["b"][1]["c"].add(3)
        state["suspended_pairs"].add("NEW-PAIR")
        state["active_positions"].clear()
        _mutate(state)
        gated.gate.set()
        assert handle.wait(30)
    assert handle.landed
    assert_same(before, sm.load())


@settings(max_examples=20)
@given(values(max_leaves=10))
def test_the_landed_state_is_the_one_before_the_mutations(value: Any) -> None:
    sm = StateManager(f"memory://bg-prop/{next(_URLS)}/s.bin", spool_dir=False)
    gated = _gate(sm)
    state = {"v": value}
    before = _private_copy(state)
    with BackgroundSaver(sm, flush_at_exit=False) as saver:
        gated.gate.clear()
        handle = saver.save(state)
        _mutate(state)
        gated.gate.set()
        assert handle.wait(30)
    assert handle.landed, handle.error
    assert_same(before, sm.load())


def test_the_copy_lands_the_bytes_a_synchronous_save_would_write(memory_backend: Backend) -> None:
    sm = _manager(memory_backend, keep_versions=0)
    state = make_state("S")
    del state["suspended_pairs"]  # a copied set may iterate in another order
    sm.save(state)
    synchronous = memory_backend.get_raw()
    with BackgroundSaver(sm, flush_at_exit=False) as saver:
        assert saver.save(state).wait(30)
    background = memory_backend.get_raw()
    # Same frame but for the generation in the header: compare the sections' payloads.
    assert sm.layers.frames.reader(background).header.generation == 2
    frames = sm.layers.frames
    one, two = frames.reader(synchronous), frames.reader(background)
    assert [one.section(i) for i in range(len(one.header.sections))] == [
        two.section(i) for i in range(len(two.header.sections))
    ]


def test_a_type_that_does_not_round_trip_is_encoded_in_the_caller(memory_backend: Backend) -> None:
    class Opaque:
        pass

    registry = TypeRegistry()
    registry.register_serializer("opaque", lambda o: "opaque" if isinstance(o, Opaque) else o)
    registry.register_deserializer("opaque", lambda v: v)  # one way: loads as the str
    sm = _manager(memory_backend, registry=registry)
    with BackgroundSaver(sm, flush_at_exit=False) as saver:
        prices = np.zeros(3)
        handle = saver.save({"x": Opaque(), "prices": prices})
        prices[:] = 1.0
        assert handle.wait(30)
    assert handle.landed
    loaded = sm.load()
    assert loaded["x"] == "opaque"
    np.testing.assert_array_equal(loaded["prices"], np.zeros(3))


def test_a_validator_rejects_at_the_call(memory_backend: Backend) -> None:
    sm = _manager(memory_backend, validator=lambda s: "n" in s)
    with BackgroundSaver(sm, flush_at_exit=False) as saver:
        with pytest.raises(ValidationError):
            saver.save({"x": 1})
        assert saver.save({"n": pd.Series([1.0])}).wait(30)


def test_an_unreferenced_saver_is_collected_and_its_last_snapshot_lands(
    memory_backend: Backend,
) -> None:
    sm = _manager(memory_backend)
    gated = _gate(sm)
    gated.gate.clear()
    saver = BackgroundSaver(sm)  # with the atexit flush: it must not keep the saver alive
    first = saver.save({"n": 1})
    assert gated.entered.wait(30)
    last = saver.save({"n": 2})  # pending behind the gated write
    ref = weakref.ref(saver)
    worker = saver._worker.thread
    del saver
    gc.collect()
    assert ref() is None
    gated.gate.set()
    assert last.wait(30)
    assert first.landed
    assert last.landed
    assert sm.load() == {"n": 2}
    worker.join(30)
    assert not worker.is_alive()  # collected saver: the worker wrote what was pending, then ended
