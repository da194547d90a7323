"""SIGKILL a process saving to S3 (moto on 127.0.0.1) at random moments, with history on: a
fresh reader always loads the last acknowledged state or the one in flight, never a torn or
older one, and the killed writer's successor saves on without a conflict.

The local-file counterpart is tests/test_crash.py. Default: ``STATEVAULT_S3_CRASH_KILLS``
kills (5); ``tox -e stress`` sets 200. The kill moments come from a seeded generator.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import pytest

from statevault import StateManager

from backends import S3_BUCKET, MotoS3
from faults import count
from faults.kill import kill_saves

KILLS = count("STATEVAULT_S3_CRASH_KILLS", 5, 200)


@pytest.mark.s3
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_during_s3_saves_never_tears_or_loses_the_state(
    s3_bucket: MotoS3, tmp_path: object
) -> None:
    url = f"s3://{S3_BUCKET}/crash.state"
    options = s3_bucket.storage_options
    spool = str(tmp_path)
    saver = {"storage_options": options, "keep_versions": 2, "spool_dir": spool}

    def load() -> dict[str, Any]:
        state: dict[str, Any] = StateManager(url, storage_options=options, spool_dir=spool).load()
        return state

    kills = 0
    for _ in kill_saves(
        url,
        saver,
        kills=KILLS,
        load=load,
        rng=random.Random(20261201),
        max_pause_s=0.05,
        pad_size=64 * 1024,
    ):
        kills += 1
    assert kills == KILLS
    # The retained versions are whole states too.
    reader = StateManager(url, storage_options=options, spool_dir=spool, keep_versions=2)
    for version in reader.list_versions():
        old = reader.load(version=version["generation"])
        assert old["check"] == [old["i"]] * 100
