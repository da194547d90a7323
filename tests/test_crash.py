"""SIGKILL a saving process at random moments: the state on disk is always the last or the one
before, never torn, and killed writers' temp files do not pile up.

The default run kills 20 times (enough that a non-atomic replace of the 256 KiB payload is
caught tearing); the ``slow`` run kills ``STATEVAULT_CRASH_KILLS`` times (200, 10-60 s;
``tox -e stress`` sets 1000).
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from statevault import StateManager

from faults.kill import kill_saves

QUICK_KILLS = 20
FULL_KILLS = int(os.environ.get("STATEVAULT_CRASH_KILLS", "200"))


def temp_files(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.tmp")]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")
@pytest.mark.parametrize(
    "KILLS",
    [
        pytest.param(QUICK_KILLS, id="quick"),
        pytest.param(FULL_KILLS, id="full", marks=pytest.mark.slow),
    ],
)
def test_sigkill_during_saves_never_tears_the_state(tmp_path: Path, KILLS: int) -> None:
    path = tmp_path / "crash.state"
    max_temps = 0
    kills = 0
    for _ in kill_saves(
        str(path),
        {"compression": None},
        kills=KILLS,
        load=lambda: StateManager(path).load(),  # a fresh reader each time
        rng=random.Random(1234),
        max_pause_s=0.03,
        pad_size=256 * 1024,
    ):
        kills += 1
        max_temps = max(max_temps, len(temp_files(path)))
    # Each writer cleans up after the dead ones (under the lock), so at most the last killed
    # writer's temp file is left at any time.
    assert max_temps <= 1
    assert kills == KILLS
