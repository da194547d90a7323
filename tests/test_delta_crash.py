"""A delta save failed at every OS call it makes (the fault harness of tests/faults/): the
pack write, the HEAD's write, fsyncs, renames, the history link. Whatever fails, a fresh
process loads the last acknowledged state or the one in flight, exactly, and the saves after
the fault succeed; a pack left behind by the failed save is retired and later collected.

And a reader process loading in a loop while a writer ticks, compacts and collects never
sees an error (the grace period protects the packs of the HEAD it read).
"""

from __future__ import annotations

import errno
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from statevault import StateError, StateManager

from faults.fs import MUTATING, inject_local

BIG = 6_000  # floats: each array is a piece of its own


def state(n: int) -> dict[str, Any]:
    """State ``n``: ``base`` never changes (a shared piece), ``tail`` grows, ``n`` checks."""
    return {
        "n": n,
        "base": np.arange(BIG, dtype=np.float64),
        "tail": np.full(BIG + n, float(n)),
        "check": [n] * 16,
    }


def identify(got: dict[str, Any]) -> int | str:
    n = got.get("n")
    if not isinstance(n, int) or got.get("check") != [n] * 16:
        return "torn"
    if not np.array_equal(got["base"], np.arange(BIG, dtype=np.float64)):
        return "torn"
    if not np.array_equal(got["tail"], np.full(BIG + n, float(n))):
        return "torn"
    return n


def make(root: Path, spool: Path) -> StateManager:
    return StateManager(root / "state.sv", keep_versions=2, spool_dir=spool, compression=None)


def fresh(root: Path, spool: Path) -> int | str:
    try:
        return identify(make(root, spool).load())
    except StateError as e:
        return f"error {type(e).__name__}"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


def _calls(base: Path) -> list[Any]:
    root, spool = base / "store", base / "spool"
    sm = make(root, spool)
    sm.save(state(1))
    with inject_local(root) as fos:
        sm.save(state(2))
        return list(fos.calls)


def test_a_delta_save_failed_at_every_os_call(tmp_path: Path) -> None:
    calls = _calls(tmp_path / "probe")
    assert any("packs" in c.path for c in calls)  # the pack write is among them
    broken = []
    for call in calls:
        for landed in (False, True):
            if landed and call.op not in MUTATING:
                continue
            base = tmp_path / f"c{call.index}{'a' if landed else 'b'}"
            root, spool = base / "store", base / "spool"
            sm = make(root, spool)
            sm.save(state(1))
            acked = False
            with inject_local(root) as fos:
                fos.arm(at=call.index, err=errno.EIO, after=landed)
                try:
                    sm.save(state(2))
                    acked = True
                except StateError:
                    pass
            loaded = fresh(root, spool)
            if loaded not in ((2,) if acked else (1, 2)):
                broken.append(f"{call.op} {Path(call.path).name} after={landed}: {loaded}")
            for n in (3, 4):
                try:
                    sm.save(state(n))
                except StateError as e:
                    broken.append(f"{call.op} after={landed}: later save {n}: {e}")
            if fresh(root, spool) != 4:
                broken.append(f"{call.op} after={landed}: final {fresh(root, spool)}")
    assert not broken, "\n".join(broken)


READER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from statevault import StateManager
    path, rounds = sys.argv[1], int(sys.argv[2])
    seen = 0
    for _ in range(rounds):
        got = StateManager(path, spool_dir=False).load()
        n = got["n"]
        assert np.array_equal(got["tail"], np.full(6000 + n, float(n))), n
        seen = max(seen, n)
    print(seen)
    """
)


def test_a_reader_process_never_sees_an_error_while_a_writer_ticks_and_collects(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sv"
    sm = StateManager(path, keep_versions=1, spool_dir=False)
    delta = sm.layers.commit.delta
    assert delta is not None
    delta.grace, delta.gc_every, delta.max_packs = 5.0, 1, 3
    sm.save(state(0))
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), "150"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    n = 0
    while reader.poll() is None:
        n += 1
        sm.save(state(n))
    out, err = reader.communicate()
    assert reader.returncode == 0, err
    assert int(out) > 0
