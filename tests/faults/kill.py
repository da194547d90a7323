"""SIGKILL a process in the middle of a run of saves: the loop test_crash.py and
test_reliability_crash.py share.

``SAVER`` is the child: it opens ``StateManager(url, **kwargs)``, loads, then saves states
numbered from its start value forever, printing each number once ``save()`` has returned
(acknowledged). ``kill_a_saver`` starts it, waits for its first acknowledged save, lets it
run a random while (from a seeded generator) and kills it. ``kill_saves`` does that again
and again, each new saver resuming where the stored state ends, and checks after each kill
that a fresh reader loads a whole state, the last acknowledged one or the one in flight.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SAVER", "kill_a_saver", "kill_saves"]

# argv: url, the manager's keyword arguments as JSON, the first number, the pad's size. The
# payload is big enough that a kill often lands mid-write.
SAVER = r"""
import json, os, sys
from statevault import StateManager
url, kwargs = sys.argv[1], json.loads(sys.argv[2])
start, pad_size = int(sys.argv[3]), int(sys.argv[4])
sm = StateManager(url, **kwargs)
sm.load_state()
pad = os.urandom(pad_size)
i = start
while True:
    sm.save({"i": i, "pad": pad, "check": [i] * 100})
    sys.stdout.write(f"{i}\n")
    sys.stdout.flush()
    i += 1
"""


def kill_a_saver(
    url: str,
    kwargs: dict[str, Any],
    start: int,
    *,
    rng: random.Random,
    max_pause_s: float,
    pad_size: int,
) -> int:
    """Run ``SAVER`` from ``start`` until a random moment after its first acknowledged save,
    SIGKILL it, and return the last number it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, url, json.dumps(kwargs), str(start), str(pad_size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    # Wait for at least one acknowledged save, then let it run a random while.
    first = proc.stdout.readline()
    assert first.strip() == str(start), first
    time.sleep(rng.uniform(0, max_pause_s))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked = [int(first)] + [int(line) for line in proc.stdout.read().split()]
    proc.stdout.close()
    return acked[-1]


def kill_saves(
    url: str,
    kwargs: dict[str, Any],
    *,
    kills: int,
    load: Callable[[], dict[str, Any]],
    rng: random.Random,
    max_pause_s: float,
    pad_size: int,
) -> Iterator[dict[str, Any]]:
    """``kills`` rounds of ``kill_a_saver``; after each, ``load()`` (a fresh reader) must give
    a whole state numbered the last acknowledged save or the one after; yields that state."""
    next_start = 0
    for _ in range(kills):
        last = kill_a_saver(
            url, kwargs, next_start, rng=rng, max_pause_s=max_pause_s, pad_size=pad_size
        )
        state = load()  # never an error
        # The save in flight when the child died may or may not have landed.
        assert state["i"] in (last, last + 1), (state["i"], last)
        assert state["check"] == [state["i"]] * 100
        yield state
        next_start = state["i"] + 1
