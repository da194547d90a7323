"""The orphan sweep on every backend (issue 12): crash leftovers and packs dropped by plain
writes are collected through ``Store.list_dir`` on local files, memory://, S3 (moto), Azure
(Azurite), GCS (fake-gcs-server) and generic fsspec; never a pack the HEAD or a retained
version names (every version loads after the sweep); and a reader process loading in a loop
while a writer ticks and the sweep deletes never sees an error.

Crash leftovers come from a real process SIGKILLed between its pack write and its HEAD write
(memory:// exists in one process only: there the writer dies by an exception that nothing
catches, and is dropped). The grace period is set per step: long for the first sighting,
then 0 ("the grace has passed"), instead of sleeping through it; the reader test uses a real
2-second grace.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from statevault import StateManager

from backends import BACKEND_MARKS, Backend
from faults.fs import inject_local

BACKENDS = [
    pytest.param(f"{name}_backend", marks=BACKEND_MARKS.get(name, []))
    for name in ("local", "memory", "s3", "azure", "gcs", "generic")
]
CHILD_TIMEOUT = 120


def manager(backend: Backend, *, grace: float, keep_versions: int = 2) -> StateManager:
    sm = StateManager(
        backend.url("state.sv"),
        storage_options=backend.storage_options or None,
        spool_dir=False,
        keep_versions=keep_versions,
    )
    delta = sm.layers.commit.delta
    assert delta is not None
    delta.grace, delta.gc_every, delta.sweep_every = grace, 1, 1
    return sm


def state(n: int) -> dict[str, Any]:
    """``base`` never changes (a piece shared by every version), ``tail`` grows."""
    return {"n": n, "base": np.arange(20_000.0), "tail": np.full(5_000 + 100 * n, float(n))}


def check(got: dict[str, Any], n: int) -> None:
    assert got["n"] == n
    assert np.array_equal(got["base"], np.arange(20_000.0))
    assert np.array_equal(got["tail"], np.full(5_000 + 100 * n, float(n)))


def packs(sm: StateManager) -> set[str]:
    listed = sm.store.sibling(".packs").list_dir()
    assert listed is not None
    return {e.name for e in listed}


_KILLED_BETWEEN_PACK_AND_HEAD = r"""
import json, os, signal, sys
import numpy as np
from statevault import StateManager
sm = StateManager(sys.argv[1], storage_options=json.loads(sys.argv[2]) or None,
                  spool_dir=False, keep_versions=0)
sm.load()
# The pack is written for real; the process dies (SIGKILL) as the HEAD write starts.
sm.layers.commit._write = lambda pending: os.kill(os.getpid(), signal.SIGKILL)
sm.save({"n": -1, "base": np.arange(20_000.0) * 3, "tail": np.ones(9_000)})
"""


class _Died(BaseException):
    """The in-process stand-in for SIGKILL (nothing in statevault catches it)."""


def leave_a_crash_leftover(backend: Backend) -> None:
    """A writer that dies after its pack landed and before its HEAD was written."""
    if backend.name != "memory":
        options = json.dumps(backend.storage_options or {})
        child = [sys.executable, "-c", _KILLED_BETWEEN_PACK_AND_HEAD, backend.url("state.sv")]
        run = subprocess.run([*child, options], check=False, timeout=CHILD_TIMEOUT)
        assert run.returncode == -9  # killed, not a clean exit
        return
    doomed = StateManager(backend.url("state.sv"), spool_dir=False, keep_versions=0)
    doomed.load()

    def die(pending: Any) -> Any:
        raise _Died

    doomed.layers.commit._write = die  # type: ignore[method-assign]
    with pytest.raises(_Died):
        doomed.save({"n": -1, "base": np.arange(20_000.0) * 3, "tail": np.ones(9_000)})


@pytest.mark.parametrize("name", BACKENDS)
def test_the_sweep_collects_a_crash_leftover_and_nothing_named(
    name: str, request: pytest.FixtureRequest
) -> None:
    backend: Backend = request.getfixturevalue(name)
    sm = manager(backend, grace=3600.0)
    for n in range(3):
        sm.save(state(n))
    mine = packs(sm)
    leave_a_crash_leftover(backend)
    leftover = packs(sm) - mine
    assert len(leftover) == 1  # its pack landed, its HEAD never did
    sm.save(state(3))  # the first sighting: kept for the grace period
    assert leftover <= packs(sm)
    sm.layers.commit.delta.grace = 0.0  # type: ignore[union-attr]  # the grace has passed
    sm.save(state(4))
    left = packs(sm)
    assert not leftover & left  # swept
    head = sm.layers.commit.delta.knowledge.index.packs  # type: ignore[union-attr]
    assert {p.hex() for p in head} <= left  # the HEAD's packs stay (and the versions load:)
    fresh = manager(backend, grace=3600.0)
    check(fresh.load(), 4)
    versions = [v["generation"] for v in fresh.list_versions()]
    assert len(versions) >= 2
    for generation in versions:  # every retained version still loads
        check(fresh.load(version=generation), generation - 1)


def test_a_pack_a_forced_spool_push_dropped_is_swept(tmp_path: Path) -> None:
    path, spool = tmp_path / "store" / "state.sv", tmp_path / "spool"
    a = StateManager(path, spool_dir=False, keep_versions=0)
    a.save(state(1))
    dropped = packs(a)
    assert len(dropped) == 1
    down = StateManager(path, spool_dir=spool, keep_versions=0)
    with inject_local(path.parent) as fos:
        fos.arm(err=errno.EIO, times=-1)
        assert down.save_state(state(2)) is False  # spooled, base unknown
    assert down.flush_spool(force=True) is True  # a plain frame over the delta HEAD
    assert dropped <= packs(a)  # named by nothing now, retired by nothing either
    b = manager(Backend("local", f"{path.parent}/"), grace=3600.0, keep_versions=0)
    check(b.load(), 2)
    b.save(state(3))  # first sighting
    assert dropped <= packs(b)
    b.layers.commit.delta.grace = 0.0  # type: ignore[union-attr]
    b.save(state(4))
    assert not dropped & packs(b)
    assert packs(b)  # b's own pack stays
    check(StateManager(path, spool_dir=False).load(), 4)


READER = textwrap.dedent(
    """
    import logging, os, sys, time
    import numpy as np
    from statevault import StateManager
    from statevault.storage.local import LocalStore

    # A slow reader (well within the grace): 20 ms before each read of a pack, so the time
    # between reading a HEAD and reading its packs is long enough for a sweep to fall in it.
    for method in ("read", "read_range", "read_head"):
        def slow(self, *args, _real=getattr(LocalStore, method)):
            if ".packs" in self.path:
                time.sleep(0.02)
            return _real(self, *args)
        setattr(LocalStore, method, slow)

    class Seen(logging.Handler):  # a load that fell back to a version logs a warning
        def emit(self, record):
            raise SystemExit(f"the reader saw: {record.getMessage()}")

    logging.getLogger("statevault").addHandler(Seen(logging.WARNING))
    path, stop = sys.argv[1], sys.argv[2]
    loads, seen = 0, -1
    while not os.path.exists(stop):
        got = StateManager(path, spool_dir=False).load()
        n = got["n"]
        assert np.array_equal(got["base"], np.arange(20_000.0)), n
        assert np.array_equal(got["tail"], np.full(5_000 + 100 * n, float(n))), n
        loads, seen = loads + 1, max(seen, n)
    print(loads, seen)
    """
)


def test_a_reader_process_never_sees_an_error_while_the_sweep_deletes(tmp_path: Path) -> None:
    """A writer ticks; every few ticks a plain save drops its packs and it starts over (a
    restarted bot), so only the sweep can collect them; a sweeping manager with a real 2 s
    grace runs after every tick. Meanwhile a reader process loads in a loop."""
    path, stop = tmp_path / "state.sv", tmp_path / "stop"
    local = Backend("local", f"{tmp_path}/")
    writer = manager(local, grace=2.0, keep_versions=1)
    writer.save(state(0))
    sweeper = manager(local, grace=2.0, keep_versions=1)
    plain = StateManager(path, spool_dir=False, keep_versions=1, delta=False)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    swept = n = 0
    seconds = 30.0 if os.environ.get("STATEVAULT_STRESS") else 5.0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end and reader.poll() is None:
            n += 1
            if n % 5 == 0:
                plain.load()
                plain.save(state(n))  # the writer's packs are named by nothing now
                swept += sweeper.layers.recovery.collect_garbage(force=True)
                writer = manager(local, grace=2.0, keep_versions=1)
                writer.load()
            else:
                writer.save(state(n))
                swept += sweeper.layers.recovery.collect_garbage(force=True)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=CHILD_TIMEOUT)
    assert reader.returncode == 0, err
    loads, seen = map(int, out.split())
    assert loads > 0
    assert seen > 0
    assert swept > 0  # the sweep did delete while the reader read
    check(StateManager(path, spool_dir=False).load(), n)
