"""Delta garbage and its safety (issue 12): a HEAD never references a pack garbage
collection may have deleted, and every pack that no HEAD, retained version or retired list
names is collected in the end (crash leftovers, leaks of full saves, packs kept aside).

Two writers are real managers on one local directory; the race between a writer's probe and
its HEAD write is reproduced by running the other writer inside that gap (the real write
then goes ahead), not by sleeping past the grace period (grace is set to 0).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from statevault import StateManager
from statevault.layers.commit import Pending
from test_delta_store import _collecting, packs_of, same, series_state, tick


def _in_the_gap(sm: StateManager, other: Callable[[], None]) -> None:
    """Run ``other`` once between ``sm``'s next probe and its HEAD write (the real write
    follows): the probe->write gap of a slow writer, past the grace period."""
    commit = sm.layers.commit
    real = commit.write

    def write(pending: Pending) -> Any:
        commit.write = real  # type: ignore[method-assign]
        other()
        return real(pending)

    commit.write = write  # type: ignore[method-assign]


def test_overwrite_writer_never_commits_a_head_over_packs_collected_in_its_gap(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sv"
    a = _collecting(StateManager(path, spool_dir=False, keep_versions=0, on_conflict="overwrite"))
    b = _collecting(StateManager(path, spool_dir=False, keep_versions=0))
    state = tick(series_state(3, 2_000))
    a.save(state)
    first = set(packs_of(path))
    theirs = series_state(3, 2_000, seed=9)

    def b_replaces_and_collects() -> None:
        b.load()
        b.save(theirs)  # every buffer changes: a's packs are retired ...
        b.save({**theirs, "cash": 2.0})  # ... and collected (grace 0)
        assert not first & set(packs_of(path))

    _in_the_gap(a, b_replaces_and_collects)
    mine = tick(state)
    a.save(mine)  # last writer wins, but not with a HEAD over deleted packs
    same(StateManager(path, spool_dir=False).load(), mine)
    # and a's next save (delta from what it just wrote) is sound too
    a.save(tick(mine))
    same(StateManager(path, spool_dir=False).load(), tick(mine))


def test_discard_lock_drops_a_local_lock_file_and_is_a_no_op_elsewhere(tmp_path: Path) -> None:
    from statevault.metrics import CountingStore
    from statevault.storage import open_store

    store = open_store(str(tmp_path / "p"))
    store.write([b"x"])
    store.delete()
    assert (tmp_path / ".p.lock").exists()  # kept by delete (writers of the path may race)
    CountingStore(store).discard_lock()  # the counting layer forwards it
    assert not (tmp_path / ".p.lock").exists()
    store.discard_lock()  # nothing left: still no error
    memory = open_store("memory://gc-discard/p")
    memory.write([b"x"])
    memory.discard_lock()
    assert memory.read()[0] == b"x"  # a no-op: the object is untouched


# ------------------------------------------------------------------ the orphan sweep

_KILLED_BETWEEN_PACK_AND_HEAD = r"""
import os, signal, sys
import numpy as np
from statevault import StateManager
sm = StateManager(sys.argv[1], spool_dir=False, keep_versions=0)
sm.load()
# The pack is written for real; the process dies (SIGKILL) as the HEAD write starts.
sm.layers.commit._write = lambda pending: os.kill(os.getpid(), signal.SIGKILL)
sm.save({"a": np.arange(30_000.0) * 7, "cash": -1.0})
"""

_READER = r"""
import sys
from statevault import StateManager
state = StateManager(sys.argv[1], spool_dir=False).load()
print(float(state["a"].sum()), state["cash"])
"""


def _sweeping(sm: StateManager, grace: float = 0.0) -> StateManager:
    delta = sm.layers.commit.delta
    assert delta is not None
    delta.grace, delta.gc_every, delta.sweep_every = grace, 1, 1
    return sm


def test_a_crash_leftover_pack_is_swept_after_two_sweeps_a_grace_apart(tmp_path: Path) -> None:
    import subprocess
    import sys

    import numpy as np

    path = tmp_path / "s.sv"
    sm = _sweeping(StateManager(path, spool_dir=False, keep_versions=0), grace=3600.0)
    sm.save({"a": np.arange(30_000.0), "cash": 1.0})
    live = set(packs_of(path))
    child = [sys.executable, "-c", _KILLED_BETWEEN_PACK_AND_HEAD, str(path)]
    run = subprocess.run(child, check=False)
    assert run.returncode == -9  # killed, not a clean exit
    leftover = set(packs_of(path)) - live
    assert len(leftover) == 1  # its pack landed, its HEAD never did
    sm.save({"a": np.arange(30_000.0), "cash": 2.0})  # first sighting: kept (grace)
    assert leftover <= set(packs_of(path))
    sm.layers.commit.delta.grace = 0.0  # type: ignore[union-attr]  # the grace has passed
    sm.save({"a": np.arange(30_000.0), "cash": 3.0})
    assert not leftover & set(packs_of(path))
    assert set(packs_of(path)) == live  # the state's own pack is named by its HEAD: kept
    reader = subprocess.run(
        [sys.executable, "-c", _READER, str(path)], capture_output=True, text=True, check=True
    )
    assert reader.stdout.split() == [str(float(np.arange(30_000.0).sum())), "3.0"]


def test_packs_a_plain_save_dropped_are_swept_and_versions_keep_theirs(tmp_path: Path) -> None:
    path = tmp_path / "s.sv"
    a = _collecting(StateManager(path, spool_dir=False, keep_versions=0))
    a.layers.commit.delta.grace = 3600.0  # type: ignore[union-attr]  # retired, not deleted
    for seed in range(3):  # every buffer changes: each save retires the previous pack
        a.save(series_state(2, 2_000, seed=seed))
    assert len(packs_of(path)) == 3
    plain = StateManager(path, spool_dir=False, keep_versions=0, delta=False)
    plain.load()
    plain.save(series_state(2, 2_000, seed=7))  # a plain frame: the retired list is gone
    b = _sweeping(StateManager(path, spool_dir=False, keep_versions=2))
    b.load()
    first = series_state(2, 2_000, seed=8)
    b.save(first)
    b.save({**first, "cash": 5.0})
    mine = b.layers.commit.delta.knowledge.index.packs  # type: ignore[union-attr]
    assert {p.name for p in packs_of(path)} == {n.hex() for n in mine}
    for v in b.list_versions():  # every retained version still loads
        b.load(version=v["generation"])
