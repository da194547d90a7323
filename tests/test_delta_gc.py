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
