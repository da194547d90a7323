"""SIGKILL a process saving to S3 (moto on 127.0.0.1) at random moments, with history on: a
fresh reader always loads the last acknowledged state or the one in flight, never a torn or
older one, and the killed writer's successor saves on without a conflict.

The local-file counterpart is tests/test_crash.py. Default: ``STATEVAULT_S3_CRASH_KILLS``
kills (5); ``tox -e stress`` sets 200. The kill moments come from a seeded generator.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from statevault import StateManager

from backends import S3_BUCKET, MotoS3
from faults import count

KILLS = count("STATEVAULT_S3_CRASH_KILLS", 5, 200)

# Saves states numbered from its start value, printing each number once save() returned.
CHILD = r"""
import json, os, sys
from statevault import StateManager
url, options, start, spool = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sm = StateManager(url, storage_options=options, keep_versions=2, spool_dir=spool)
sm.load_state()
pad = os.urandom(64 * 1024)
i = start
while True:
    sm.save({"i": i, "pad": pad, "check": [i] * 100})
    sys.stdout.write(f"{i}\n")
    sys.stdout.flush()
    i += 1
"""


@pytest.mark.s3
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_during_s3_saves_never_tears_or_loses_the_state(
    s3_bucket: MotoS3, tmp_path: object
) -> None:
    url = f"s3://{S3_BUCKET}/crash.state"
    options = s3_bucket.storage_options
    spool = str(tmp_path)
    rng = random.Random(20261201)
    next_start = 0
    kills = 0

    while kills < KILLS:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, json.dumps(options), str(next_start), spool],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.strip() == str(next_start), first
        time.sleep(rng.uniform(0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked = [int(first)] + [int(line) for line in proc.stdout.read().split()]
        proc.stdout.close()
        kills += 1
        last = acked[-1]
        reader = StateManager(url, storage_options=options, spool_dir=spool)
        state = reader.load()  # never an error
        assert state["i"] in (last, last + 1), (state["i"], last)
        assert state["check"] == [state["i"]] * 100

        next_start = state["i"] + 1
    assert kills == KILLS
    # The retained versions are whole states too.
    reader = StateManager(url, storage_options=options, spool_dir=spool, keep_versions=2)
    for version in reader.list_versions():
        old = reader.load(version=version["generation"])
        assert old["check"] == [old["i"]] * 100
